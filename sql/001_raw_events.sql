-- Table step: the raw events of the four feeds, as accepted by the consumers, and the dead letters.
-- One row per event; the primary key (event_id, event_time) absorbs redelivered duplicates and is
-- compatible with TimescaleDB hypertables, which need the time column in every unique key.

CREATE TABLE IF NOT EXISTS dossier_events (
    event_id        text        NOT NULL,
    event_time      timestamptz NOT NULL,
    ward_code       text        NOT NULL,
    dossier_id      text        NOT NULL,
    kind            text        NOT NULL,
    procedure_field text        NOT NULL,
    channel         text        NOT NULL,
    service_level   text        NOT NULL,
    received_at     timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    digitized       boolean     NOT NULL,
    e_signed        boolean     NOT NULL,
    fee_vnd         bigint      NOT NULL CHECK (fee_vnd >= 0),
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
);
CREATE INDEX IF NOT EXISTS dossier_events_dossier_idx ON dossier_events (dossier_id, event_time);

CREATE TABLE IF NOT EXISTS payment_events (
    event_id      text        NOT NULL,
    event_time    timestamptz NOT NULL,
    ward_code     text        NOT NULL,
    payment_id    text        NOT NULL,
    merchant_id   text        NOT NULL,
    merchant_type text        NOT NULL,
    channel       text        NOT NULL,
    amount_vnd    bigint      NOT NULL CHECK (amount_vnd > 0),
    status        text        NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
);
CREATE INDEX IF NOT EXISTS payment_events_ward_time_idx ON payment_events (ward_code, event_time);

CREATE TABLE IF NOT EXISTS feedback_events (
    event_id     text             NOT NULL,
    event_time   timestamptz      NOT NULL,
    ward_code    text             NOT NULL,
    report_id    text             NOT NULL,
    kind         text             NOT NULL,
    category     text             NOT NULL,
    urgency      text             NOT NULL,
    channel      text             NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    submitted_at timestamptz      NOT NULL,
    due_at       timestamptz      NOT NULL,
    rating       smallint         CHECK (rating BETWEEN 1 AND 5),
    ingested_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
);
CREATE INDEX IF NOT EXISTS feedback_events_report_idx ON feedback_events (report_id, event_time);

CREATE TABLE IF NOT EXISTS air_quality_readings (
    event_id       text             NOT NULL,
    event_time     timestamptz      NOT NULL,
    ward_code      text             NOT NULL,
    station_id     text             NOT NULL,
    period_minutes smallint         NOT NULL CHECK (period_minutes BETWEEN 1 AND 60),
    pm25           double precision CHECK (pm25 >= 0),
    pm10           double precision CHECK (pm10 >= 0),
    no2            double precision CHECK (no2 >= 0),
    o3             double precision CHECK (o3 >= 0),
    so2            double precision CHECK (so2 >= 0),
    co             double precision CHECK (co >= 0),
    ingested_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, event_time)
);
CREATE INDEX IF NOT EXISTS air_quality_readings_station_idx
    ON air_quality_readings (station_id, event_time);

-- Messages that could not be accepted, kept whole with where they came from and why.
CREATE TABLE IF NOT EXISTS dead_letters (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    kafka_partition integer,
    kafka_offset bigint,
    message_key  bytea,
    raw          bytea       NOT NULL,
    reason       text        NOT NULL,
    detail       text        NOT NULL DEFAULT '',
    received_at  timestamptz NOT NULL DEFAULT now()
);
-- A redelivered poison message (after a crash before the offset commit) is stored once.
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_source_idx
    ON dead_letters (topic, kafka_partition, kafka_offset)
    WHERE kafka_offset IS NOT NULL;
CREATE INDEX IF NOT EXISTS dead_letters_reason_idx ON dead_letters (reason, received_at);

-- With TimescaleDB the raw event tables become hypertables; on plain PostgreSQL they stay tables
-- with the same columns and keys, so every query works on both.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('dossier_events', 'event_time', if_not_exists => TRUE,
                                  migrate_data => TRUE);
        PERFORM create_hypertable('payment_events', 'event_time', if_not_exists => TRUE,
                                  migrate_data => TRUE);
        PERFORM create_hypertable('feedback_events', 'event_time', if_not_exists => TRUE,
                                  migrate_data => TRUE);
        PERFORM create_hypertable('air_quality_readings', 'event_time', if_not_exists => TRUE,
                                  migrate_data => TRUE);
    END IF;
END
$$;
