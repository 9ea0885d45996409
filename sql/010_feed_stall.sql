-- Table step: why a feed is stalled, when no event is at fault (a batch that cannot be fetched or
-- decompressed, e.g. a codec missing on the consumer). Each member reports the stalls of its own
-- partitions; feed_health shows the oldest stall of the members that reported recently, so the
-- wall and `ioc status` can say "stalled since ..., because ..." instead of a silent gap.
ALTER TABLE feed_health_members
    ADD COLUMN IF NOT EXISTS stall_reason  text,
    ADD COLUMN IF NOT EXISTS stalled_since timestamptz;

ALTER TABLE feed_health
    ADD COLUMN IF NOT EXISTS stall_reason  text,
    ADD COLUMN IF NOT EXISTS stalled_since timestamptz;
