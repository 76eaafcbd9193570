-- Sleutel server schema, version 9: an unblock from the same phone replaces its device key.

-- The thumbprint of the device an enrollment replaces: an unblock from the same phone makes a
-- new device key and names the one it had, proven by that key's signature at the start. The
-- named device must belong to the account of the identity the enrollment proves, and it is
-- revoked in the completion's transaction. NULL for every other enrollment.
ALTER TABLE enrollments ADD COLUMN replaces_jkt TEXT;
