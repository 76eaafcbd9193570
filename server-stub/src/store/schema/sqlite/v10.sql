-- Sleutel server schema, version 10: the push token of each device.

-- Where a device receives its push notifications: one token per device (a new registration
-- replaces it), and one device per token, since a token addresses one app install: the same
-- token registered by another device moves there. The token is the platform's (FCM
-- registration token, APNs device token in lowercase hexadecimal); it is never logged.
CREATE TABLE push_tokens (
    device_jkt TEXT PRIMARY KEY REFERENCES devices (jkt) ON DELETE CASCADE,
    platform   TEXT NOT NULL CHECK (platform IN ('fcm', 'apns')),
    token      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (platform, token)
) STRICT;

-- A token lives only as long as its device may receive requests. The database drops it, so that
-- no way of revoking a device or blocking an account, now or later, can forget to:
-- a revoked device (deactivated, replaced by a newer activation or by an unblock) ...
CREATE TRIGGER push_tokens_revoked_device AFTER UPDATE OF revoked_at ON devices
WHEN NEW.revoked_at IS NOT NULL
BEGIN
    DELETE FROM push_tokens WHERE device_jkt = NEW.jkt;
END;

-- ... a device key registered again for another account ...
CREATE TRIGGER push_tokens_moved_device AFTER UPDATE OF account_id ON devices
WHEN NEW.account_id IS NOT OLD.account_id
BEGIN
    DELETE FROM push_tokens WHERE device_jkt = NEW.jkt;
END;

-- ... and every device of a blocked account (an unblock ends with a new device key, or the same
-- one registered again; the phone then registers its token again). A removed device takes its
-- token along through the foreign key.
CREATE TRIGGER push_tokens_blocked_account AFTER UPDATE OF blocked_at ON accounts
WHEN NEW.blocked_at IS NOT NULL
BEGIN
    DELETE FROM push_tokens
    WHERE device_jkt IN (SELECT jkt FROM devices WHERE account_id = NEW.id);
END;
