-- Table step, TimescaleDB only: retention of raw events as configured. The setting
-- ioc.raw_retention (ALTER DATABASE d SET ioc.raw_retention = '400 days', or per session when
-- migrating) replaces 009's fixed 400 days; 'off' keeps raw events for ever. Unset, it is 400 days.
-- The dev database of `ioc services up` sets it off: tests replay history of fixed past dates.
DO $$
DECLARE
    t text;
    raw text := coalesce(nullif(current_setting('ioc.raw_retention', true), ''), '400 days');
    keep interval;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF lower(raw) NOT IN ('off', 'none') THEN
        BEGIN
            keep := raw::interval;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'ioc.raw_retention = % is neither an interval (400 days) nor off', raw;
        END;
        IF keep < INTERVAL '1 day' THEN
            RAISE EXCEPTION 'ioc.raw_retention = % is under a day: raw events would vanish', raw;
        END IF;
    END IF;
    FOREACH t IN ARRAY ARRAY['dossier_events', 'payment_events', 'feedback_events',
                             'air_quality_readings']
    LOOP
        PERFORM remove_retention_policy(t::regclass, if_exists => TRUE);
        IF keep IS NOT NULL THEN
            PERFORM add_retention_policy(t::regclass, keep);
        END IF;
    END LOOP;
END
$$;
