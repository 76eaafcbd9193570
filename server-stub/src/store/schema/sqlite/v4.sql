-- Sleutel server schema, version 4: the eID and counter sources, the account's life (code
-- change, biometric key, deactivation, lost-phone block) and the account history.

-- Simulator: each citizen's eID card, its PIN only as a salted hash.
CREATE TABLE eid_cards (
    serial       TEXT PRIMARY KEY,
    citizen_id   TEXT NOT NULL REFERENCES citizens (id),
    valid_until  TEXT NOT NULL,
    pin_salt     BLOB NOT NULL,
    pin_hash     BLOB NOT NULL,
    pin_failures INTEGER NOT NULL DEFAULT 0,
    blocked_at   INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX eid_cards_citizen ON eid_cards (citizen_id);

-- Identification codes (eID website, bound to a phone number) and activation codes (counter),
-- stored only as keyed hashes, with the identity they prove. Single use.
CREATE TABLE identity_codes (
    id                       TEXT PRIMARY KEY,
    kind                     TEXT NOT NULL CHECK (kind IN ('eid', 'counter')),
    code_hash                BLOB NOT NULL UNIQUE,
    phone_number             TEXT,
    email                    TEXT NOT NULL,
    given_name               TEXT NOT NULL,
    family_name              TEXT NOT NULL,
    birthdate                TEXT NOT NULL,
    national_register_number TEXT NOT NULL,
    issuer                   TEXT NOT NULL,
    evidence_type            TEXT NOT NULL,
    evidence_reference       TEXT NOT NULL,
    created_at               INTEGER NOT NULL,
    expires_at               INTEGER NOT NULL,
    used_at                  INTEGER,
    failures                 INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX identity_codes_phone ON identity_codes (kind, phone_number);

-- Simulator: what would have gone out by e-mail.
CREATE TABLE email_outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    email   TEXT NOT NULL,
    subject TEXT NOT NULL,
    text    TEXT NOT NULL,
    sent_at INTEGER NOT NULL
) STRICT;
CREATE INDEX email_outbox_address ON email_outbox (email, seq);

-- Wrong identification or activation codes typed in one enrollment.
ALTER TABLE enrollments ADD COLUMN code_failures INTEGER NOT NULL DEFAULT 0;

-- The biometric key a device registered (NULL: biometrics off), and why a device was revoked.
ALTER TABLE devices ADD COLUMN biometric_jwk TEXT;
ALTER TABLE devices ADD COLUMN revoked_reason TEXT;

-- Which method approved a request is already in action_requests.method.

-- What happened to each account, for the person and for support: activations, unblocks,
-- revoked devices, code changes, biometrics, deactivations, blocks. Never a secret.
CREATE TABLE account_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    event      TEXT NOT NULL,
    detail     TEXT NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX account_events_account ON account_events (account_id, seq);
