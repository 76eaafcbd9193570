-- Version 18: three records the server kept no trace of.
--
-- The relying party an event concerns. A "this was not me" report names the relying party of
-- the reported request, which is refused new requests to the person for the whole suspicious
-- window (the others are only throttled); other events leave it NULL.
ALTER TABLE account_events ADD COLUMN client_id TEXT;
CREATE INDEX account_events_by_kind ON account_events (account_id, event, at);

-- The id of the last code change applied to the device: the proof id of the request that
-- changed its PIN key. A phone that lost the answer asks about that id and learns, without any
-- code being checked, that the change took effect.
ALTER TABLE devices ADD COLUMN pin_change_id TEXT;

-- Code changes the phone was told did not take effect: a request with one of these proof ids
-- that reaches the server late is refused, so the device never ends with a PIN key whose salt
-- the phone dropped. A row is needed only while such a proof could still be accepted
-- (`forget_at`, then the housekeeping purge).
CREATE TABLE void_code_changes (
    device_jkt TEXT NOT NULL REFERENCES devices (jkt),
    change_id  TEXT NOT NULL,
    forget_at  INTEGER NOT NULL,
    PRIMARY KEY (device_jkt, change_id)
) STRICT;
CREATE INDEX void_code_changes_forget_at ON void_code_changes (forget_at);
