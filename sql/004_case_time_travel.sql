-- Table step for time travel: when each case was first seen and when it stopped being open, so
-- that "open (and overdue) as of T" is answered from the case tables, never from raw history.
--   first_event_at: the earliest event of the case that was ingested (normally its receipt or
--                   submission; later for a case whose start came before the stream did);
--   closed_at:      the earliest event after which the case is no longer open (its closing, or
--                   for a case seen only after it closed, its first follow-up such as a rating).
-- A case is open as of T when first_event_at <= T and (closed_at IS NULL OR closed_at > T).
-- feedback_reports.closed_at already existed as the closing time; it keeps that meaning and
-- now also covers reports whose closing came before the stream began.

ALTER TABLE dossiers ADD COLUMN IF NOT EXISTS first_event_at timestamptz;
ALTER TABLE dossiers ADD COLUMN IF NOT EXISTS closed_at timestamptz;
ALTER TABLE feedback_reports ADD COLUMN IF NOT EXISTS first_event_at timestamptz;

-- Existing cases get both from their stored events (a one-time scan, here and never per query).
UPDATE dossiers AS d
SET first_event_at = e.first_event_at, closed_at = e.closed_at
FROM (
    SELECT dossier_id,
           min(event_time) AS first_event_at,
           min(event_time) FILTER (WHERE kind NOT IN (
               'received', 'supplement_requested', 'supplement_received', 'processing'
           )) AS closed_at
    FROM dossier_events
    GROUP BY dossier_id
) AS e
WHERE e.dossier_id = d.dossier_id;

UPDATE feedback_reports AS f
SET first_event_at = e.first_event_at, closed_at = e.closed_at
FROM (
    SELECT report_id,
           min(event_time) AS first_event_at,
           min(event_time) FILTER (WHERE kind NOT IN ('submitted', 'assigned')) AS closed_at
    FROM feedback_events
    GROUP BY report_id
) AS e
WHERE e.report_id = f.report_id;

-- "Still open at T" is one range scan: cases closed after T plus the open ones (at infinity).
-- For T = now that is the open cases only, as the partial is_open indexes were.
CREATE INDEX IF NOT EXISTS dossiers_open_until_idx
    ON dossiers ((coalesce(closed_at, 'infinity'::timestamptz)), due_at);
CREATE INDEX IF NOT EXISTS feedback_reports_open_until_idx
    ON feedback_reports ((coalesce(closed_at, 'infinity'::timestamptz)), due_at);
