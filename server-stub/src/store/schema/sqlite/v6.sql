-- Sleutel server schema, version 6: wrong codes counted per device as well as per account,
-- one table of rate-limit events (enrollment starts, wrong SMS codes per number, failed client
-- authentications, backchannel calls), and indexes for purging expired enrollments.

-- Wrong codes typed on this device since its last right code. The account's count adds up the
-- person's phones; this one keeps a thief on one phone from getting fresh guesses whenever the
-- person types the right code on another (policy max_devices > 1).
ALTER TABLE devices ADD COLUMN pin_failures INTEGER NOT NULL DEFAULT 0;

-- One row per counted event in a sliding window: `bucket` names what is counted and for whom
-- (see rate.rs), `expires_at` is when the row no longer counts for any window and may be purged.
CREATE TABLE rate_events (
    bucket     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX rate_events_bucket ON rate_events (bucket, at);
CREATE INDEX rate_events_expiry ON rate_events (expires_at);

-- Backchannel calls are counted in rate_events now.
DROP TABLE backchannel_calls;

-- Enrollments are purged a while after they expire; proofs are looked up by key.
CREATE INDEX enrollments_expiry ON enrollments (expires_at);
CREATE INDEX enrollments_device ON enrollments (device_jkt);
