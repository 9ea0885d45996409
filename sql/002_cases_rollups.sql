-- Table step: current state of each case, hourly rollups per ward, and per-feed ingest health.
-- Rollups are maintained inside the ingest transaction from the rows that were newly accepted, so
-- a redelivered event (absorbed by the raw table's key) is never counted twice. Dashboard queries
-- read these tables, never raw history: their cost depends on the window, not on the history.

-- Dossiers (hồ sơ TTHC): one row per case, recomputed from all of its events, so the final state
-- does not depend on the order in which the events arrived.
CREATE TABLE IF NOT EXISTS dossiers (
    dossier_id      text        PRIMARY KEY,
    ward_code       text        NOT NULL,
    procedure_field text        NOT NULL,
    channel         text        NOT NULL,
    service_level   text        NOT NULL,
    received_at     timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    digitized       boolean     NOT NULL,
    fee_vnd         bigint      NOT NULL,
    status          text        NOT NULL,
    status_time     timestamptz NOT NULL,
    resolved_at     timestamptz,
    outcome         text        CHECK (outcome IN ('early', 'on_time', 'late')),
    e_signed        boolean     NOT NULL DEFAULT false,
    is_open         boolean     NOT NULL,
    event_count     integer     NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Overdue backlog = open cases past due: a partial index keeps that query on open cases only.
CREATE INDEX IF NOT EXISTS dossiers_open_due_idx ON dossiers (ward_code, due_at) WHERE is_open;

CREATE TABLE IF NOT EXISTS feedback_reports (
    report_id    text             PRIMARY KEY,
    ward_code    text             NOT NULL,
    category     text             NOT NULL,
    urgency      text             NOT NULL,
    channel      text             NOT NULL,
    lat          double precision NOT NULL,
    lon          double precision NOT NULL,
    submitted_at timestamptz      NOT NULL,
    due_at       timestamptz      NOT NULL,
    status       text             NOT NULL,
    status_time  timestamptz      NOT NULL,
    closed_at    timestamptz,
    resolved_at  timestamptz,
    rating       smallint,
    is_open      boolean          NOT NULL,
    event_count  integer          NOT NULL,
    updated_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS feedback_reports_open_due_idx
    ON feedback_reports (ward_code, due_at) WHERE is_open;
-- Median resolution time reads the reports resolved inside the window.
CREATE INDEX IF NOT EXISTS feedback_reports_resolved_idx
    ON feedback_reports (resolved_at) WHERE resolved_at IS NOT NULL;

-- Hourly rollups per ward; bucket = start of the hour (hours are the same in UTC and UTC+7).
CREATE TABLE IF NOT EXISTS dossier_stats_hourly (
    ward_code            text        NOT NULL,
    bucket               timestamptz NOT NULL,
    received             integer     NOT NULL DEFAULT 0,
    received_online      integer     NOT NULL DEFAULT 0,
    received_full_online integer     NOT NULL DEFAULT 0,
    resolved             integer     NOT NULL DEFAULT 0,
    resolved_early       integer     NOT NULL DEFAULT 0,
    resolved_on_time     integer     NOT NULL DEFAULT 0,
    resolved_late        integer     NOT NULL DEFAULT 0,
    processing_seconds   double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (ward_code, bucket)
);
CREATE INDEX IF NOT EXISTS dossier_stats_hourly_bucket_idx ON dossier_stats_hourly (bucket);

CREATE TABLE IF NOT EXISTS payment_stats_hourly (
    ward_code       text        NOT NULL,
    bucket          timestamptz NOT NULL,
    transactions    integer     NOT NULL DEFAULT 0,
    amount_vnd      bigint      NOT NULL DEFAULT 0,
    public_total    integer     NOT NULL DEFAULT 0,
    public_cashless integer     NOT NULL DEFAULT 0,
    failed          integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (ward_code, bucket)
);
CREATE INDEX IF NOT EXISTS payment_stats_hourly_bucket_idx ON payment_stats_hourly (bucket);

-- Distinct counts cannot be summed from buckets: acceptance points keep one row per merchant and
-- local (Asia/Ho_Chi_Minh) day with a successful cashless payment.
CREATE TABLE IF NOT EXISTS payment_merchant_days (
    ward_code   text NOT NULL,
    day         date NOT NULL,
    merchant_id text NOT NULL,
    PRIMARY KEY (day, ward_code, merchant_id)
);

CREATE TABLE IF NOT EXISTS feedback_stats_hourly (
    ward_code        text        NOT NULL,
    bucket           timestamptz NOT NULL,
    submitted        integer     NOT NULL DEFAULT 0,
    resolved         integer     NOT NULL DEFAULT 0,
    resolved_in_time integer     NOT NULL DEFAULT 0,
    rejected         integer     NOT NULL DEFAULT 0,
    ratings          integer     NOT NULL DEFAULT 0,
    rating_sum       integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (ward_code, bucket)
);
CREATE INDEX IF NOT EXISTS feedback_stats_hourly_bucket_idx ON feedback_stats_hourly (bucket);

-- Hourly means per station and pollutant (bucket = hour in which the averaging period started);
-- VN_AQI with NowCast is computed from the last 12 of these.
CREATE TABLE IF NOT EXISTS air_quality_station_hourly (
    station_id text        NOT NULL,
    ward_code  text        NOT NULL,
    bucket     timestamptz NOT NULL,
    readings   integer          NOT NULL DEFAULT 0,
    pm25_sum   double precision NOT NULL DEFAULT 0,
    pm25_n     integer          NOT NULL DEFAULT 0,
    pm10_sum   double precision NOT NULL DEFAULT 0,
    pm10_n     integer          NOT NULL DEFAULT 0,
    no2_sum    double precision NOT NULL DEFAULT 0,
    no2_n      integer          NOT NULL DEFAULT 0,
    o3_sum     double precision NOT NULL DEFAULT 0,
    o3_n       integer          NOT NULL DEFAULT 0,
    so2_sum    double precision NOT NULL DEFAULT 0,
    so2_n      integer          NOT NULL DEFAULT 0,
    co_sum     double precision NOT NULL DEFAULT 0,
    co_n       integer          NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, bucket)
);
CREATE INDEX IF NOT EXISTS air_quality_station_hourly_bucket_idx
    ON air_quality_station_hourly (bucket);

-- Health of each feed's ingest, written by the consumers and read by the dashboard and `ioc status`.
CREATE TABLE IF NOT EXISTS feed_health (
    feed             text        PRIMARY KEY,
    last_event_time  timestamptz,
    last_ingest_at   timestamptz,
    events_total     bigint      NOT NULL DEFAULT 0,
    duplicates_total bigint      NOT NULL DEFAULT 0,
    dead_letters     bigint      NOT NULL DEFAULT 0,
    consumer_lag     bigint,
    rate_per_s       double precision,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
