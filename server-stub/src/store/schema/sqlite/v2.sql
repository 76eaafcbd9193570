-- Sleutel server schema, version 2.

-- The PIN key belongs to the phone that registered it. With more than one active device per
-- person (policy max_devices), each phone derives its own PIN key (its own salt), so an answer is
-- checked against the answering device's key. Existing devices get the key their account had.
ALTER TABLE devices ADD COLUMN pin_jwk TEXT;
UPDATE devices SET pin_jwk = (SELECT a.pin_jwk FROM accounts a WHERE a.id = devices.account_id);
ALTER TABLE accounts DROP COLUMN pin_jwk;
