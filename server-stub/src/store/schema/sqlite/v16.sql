-- Sleutel server schema, version 16: rate events counted per second.
--
-- Every event is stamped with whole seconds, so the events of one bucket in one second are
-- kept as one row with their count: a window's count is the sum of at most one row per second
-- of the window, not one row per event. A busy relying party's backchannel calls (thousands a
-- minute) were read back one row each on every call; now the window holds at most 60 rows.
CREATE TABLE rate_counts (
    bucket     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    count      INTEGER NOT NULL CHECK (count > 0),
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (bucket, at)
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_counts_expiry ON rate_counts (expires_at);

INSERT INTO rate_counts (bucket, at, count, expires_at)
    SELECT bucket, at, count(*), max(expires_at) FROM rate_events GROUP BY bucket, at;
DROP TABLE rate_events;
