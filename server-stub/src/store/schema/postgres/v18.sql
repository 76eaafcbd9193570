-- Version 18 (as SQLite's v18.sql): the relying party a "not me" report names, the last code
-- change applied to a device, and the code changes a phone was told did not take effect.
ALTER TABLE account_events ADD COLUMN client_id TEXT;
CREATE INDEX account_events_by_kind ON account_events (account_id, event, at);

ALTER TABLE devices ADD COLUMN pin_change_id TEXT;

CREATE TABLE void_code_changes (
    device_jkt TEXT NOT NULL REFERENCES devices (jkt),
    change_id  TEXT NOT NULL,
    forget_at  BIGINT NOT NULL,
    PRIMARY KEY (device_jkt, change_id)
);
CREATE INDEX void_code_changes_forget_at ON void_code_changes (forget_at);
