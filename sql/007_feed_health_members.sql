-- Table step: each ingest process's own view of its feeds (lag of the partitions it holds, its
-- rate), so that several members of one consumer group add up in feed_health instead of
-- overwriting each other. A member refreshes its rows with every batch and heartbeat and deletes
-- them when it stops; rows of a member that died are left out once they are stale.
CREATE TABLE IF NOT EXISTS feed_health_members (
    feed         text             NOT NULL,
    member       text             NOT NULL CHECK (length(member) BETWEEN 1 AND 200),
    consumer_lag bigint,
    rate_per_s   double precision,
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (feed, member)
);
