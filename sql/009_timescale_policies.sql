-- Table step, TimescaleDB only: compress raw event chunks once they are a week old and drop raw
-- events after 400 days. Rollups and case tables are small and kept; dashboards never read raw
-- history, so compressed or dropped chunks do not slow them down. On plain PostgreSQL this file
-- does nothing (the test machines run that path; compose.yaml runs this one).
DO $$
DECLARE
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    FOREACH t IN ARRAY ARRAY['dossier_events', 'payment_events', 'feedback_events',
                             'air_quality_readings']
    LOOP
        EXECUTE format(
            'ALTER TABLE %I SET (timescaledb.compress, '
            'timescaledb.compress_segmentby = ''ward_code'', '
            'timescaledb.compress_orderby = ''event_time DESC'')', t);
        PERFORM add_compression_policy(t::regclass, INTERVAL '7 days', if_not_exists => TRUE);
        PERFORM add_retention_policy(t::regclass, INTERVAL '400 days', if_not_exists => TRUE);
    END LOOP;
END
$$;
