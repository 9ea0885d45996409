-- Table step, TimescaleDB only: drop the index create_hypertable made on each raw table's time
-- column alone (sql/001 left TimescaleDB's default). Nothing reads raw events by time alone:
-- dashboards read rollups and case tables, the case writers read a case's events by its id, the
-- key is (event_id, event_time), chunks are found by their own time ranges, compression sorts by
-- its own settings and retention drops whole chunks. The index was a third b-tree on every
-- insert and the whole difference in size between hypertables and plain tables (243.5 against
-- 221.1 bytes per raw event; python -m bench.timescale storage and ingest, README Benchmarks).
-- The plain path never had it, so this is a no-op there. Names are qualified with the schema
-- being migrated (the first on the search path), so a like-named index elsewhere is left alone.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['dossier_events', 'payment_events', 'feedback_events',
                             'air_quality_readings']
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I.%I', current_schema(), t || '_event_time_idx');
    END LOOP;
END
$$;
