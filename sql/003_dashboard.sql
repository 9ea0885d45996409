-- Table step for the dashboard: alert acknowledgements, and indexes for the ward page's
-- breakdowns, which read case tables by ward and time window (cost grows with the window's
-- cases in that ward, never with the whole history).

-- One row per acknowledgement; the alert key names the condition (kind:subject). An alert is
-- shown as acknowledged while its newest acknowledgement is younger than the configured hold.
CREATE TABLE IF NOT EXISTS alert_acks (
    alert_key   text        NOT NULL CHECK (length(alert_key) BETWEEN 1 AND 200),
    acked_at    timestamptz NOT NULL DEFAULT now(),
    acked_by    text        NOT NULL DEFAULT '' CHECK (length(acked_by) <= 100),
    PRIMARY KEY (alert_key, acked_at)
);

-- The dashboard connects as the read-only role; acknowledging is the one write it may make.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioc_reader') THEN
        GRANT INSERT ON alert_acks TO ioc_reader;
    END IF;
END
$$;

CREATE INDEX IF NOT EXISTS dossiers_ward_received_idx ON dossiers (ward_code, received_at);
CREATE INDEX IF NOT EXISTS feedback_reports_ward_submitted_idx
    ON feedback_reports (ward_code, submitted_at);
-- The dead-letter spike alert counts recent arrivals.
CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at);
