-- Sleutel server schema, version 12: one push token may serve several devices, one per account.

-- A phone with two accounts is one app install, so one push token, but it has a device key
-- (a device) per account. Version 10 kept each token on one device, so every registration took
-- the token from the phone's other account, and anyone with a device could take a stranger's
-- token away. A token is now unique per device and per account: the same token on a device of
-- another account is that install's other account (or, at worst, someone else's requests waking
-- this install, which fetches nothing it cannot verify).
--
-- SQLite cannot drop a UNIQUE constraint, so the table is rebuilt. The triggers of version 10
-- name the table in their bodies and are dropped first, then made again as they were.
DROP TRIGGER push_tokens_revoked_device;
DROP TRIGGER push_tokens_moved_device;
DROP TRIGGER push_tokens_blocked_account;

CREATE TABLE push_tokens_v12 (
    device_jkt TEXT PRIMARY KEY REFERENCES devices (jkt) ON DELETE CASCADE,
    platform   TEXT NOT NULL CHECK (platform IN ('fcm', 'apns')),
    token      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
INSERT INTO push_tokens_v12 (device_jkt, platform, token, updated_at)
    SELECT device_jkt, platform, token, updated_at FROM push_tokens;
DROP TABLE push_tokens;
ALTER TABLE push_tokens_v12 RENAME TO push_tokens;
-- Finds the devices holding a token: a registration moves it within an account, and a token
-- the service reports gone is dropped from every device.
CREATE INDEX push_tokens_token ON push_tokens (platform, token);

CREATE TRIGGER push_tokens_revoked_device AFTER UPDATE OF revoked_at ON devices
WHEN NEW.revoked_at IS NOT NULL
BEGIN
    DELETE FROM push_tokens WHERE device_jkt = NEW.jkt;
END;

CREATE TRIGGER push_tokens_moved_device AFTER UPDATE OF account_id ON devices
WHEN NEW.account_id IS NOT OLD.account_id
BEGIN
    DELETE FROM push_tokens WHERE device_jkt = NEW.jkt;
END;

CREATE TRIGGER push_tokens_blocked_account AFTER UPDATE OF blocked_at ON accounts
WHEN NEW.blocked_at IS NOT NULL
BEGIN
    DELETE FROM push_tokens
    WHERE device_jkt IN (SELECT jkt FROM devices WHERE account_id = NEW.id);
END;
