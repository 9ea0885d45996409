-- Table step: payments by channel per ward and hour, so the ward page's channel breakdown reads a
-- rollup instead of raw payments. With that, raw payment and air-quality rows need no index but
-- their keys, which makes ingest cheaper per event.
CREATE TABLE IF NOT EXISTS payment_channel_hourly (
    ward_code    text        NOT NULL,
    bucket       timestamptz NOT NULL,
    channel      text        NOT NULL,
    transactions integer     NOT NULL DEFAULT 0,
    amount_vnd   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (ward_code, bucket, channel)
);

-- Backfill from what is already stored (a no-op on a new database).
INSERT INTO payment_channel_hourly (ward_code, bucket, channel, transactions, amount_vnd)
SELECT ward_code, date_trunc('hour', event_time), channel, count(*), sum(amount_vnd)
FROM payment_events WHERE status = 'succeeded'
GROUP BY 1, 2, 3
ON CONFLICT (ward_code, bucket, channel) DO NOTHING;

DROP INDEX IF EXISTS payment_events_ward_time_idx;
DROP INDEX IF EXISTS air_quality_readings_station_idx;
