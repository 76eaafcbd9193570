-- Sleutel server schema, version 1. Times are Unix seconds. Identifiers are random base64url.

-- Marks the file as a Sleutel server database (see db::APPLICATION_ID).
PRAGMA application_id = 1397510998;

-- Server secrets: the action/ID-token signing key, the simulated banks' keys, the pairwise
-- subject secret and the SMS-code hashing key. (Production keeps these in an HSM.)
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Proof ids seen recently, per device key, to refuse replays.
CREATE TABLE proof_jtis (
    jkt        TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (jkt, jti)
) STRICT, WITHOUT ROWID;
CREATE INDEX proof_jtis_expiry ON proof_jtis (expires_at);

-- Activations in progress: identity -> sms -> keys -> done (or failed).
CREATE TABLE enrollments (
    id                       TEXT PRIMARY KEY,
    nonce                    TEXT NOT NULL,
    device_jkt               TEXT NOT NULL,
    phone_number             TEXT NOT NULL,
    source                   TEXT NOT NULL,
    bank                     TEXT,
    step                     TEXT NOT NULL
                             CHECK (step IN ('identity', 'sms', 'keys', 'done', 'failed')),
    created_at               INTEGER NOT NULL,
    expires_at               INTEGER NOT NULL,
    given_name               TEXT,
    family_name              TEXT,
    birthdate                TEXT,
    national_register_number TEXT,
    identity_issuer          TEXT,
    evidence_type            TEXT,
    evidence_reference       TEXT,
    sms_code_hash            BLOB,
    sms_expires_at           INTEGER,
    sms_sent_at              INTEGER,
    sms_sends                INTEGER NOT NULL DEFAULT 0,
    sms_failures             INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One account per person (national register number); the account id is random.
CREATE TABLE accounts (
    id                       TEXT PRIMARY KEY,
    national_register_number TEXT NOT NULL UNIQUE,
    given_name               TEXT NOT NULL,
    family_name              TEXT NOT NULL,
    birthdate                TEXT NOT NULL,
    identity_source          TEXT NOT NULL,
    identity_issuer          TEXT NOT NULL,
    evidence_type            TEXT NOT NULL,
    evidence_reference       TEXT NOT NULL,
    pin_jwk                  TEXT NOT NULL,
    pin_failures             INTEGER NOT NULL DEFAULT 0,
    blocked_at               INTEGER,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
) STRICT;

-- Registered phones, found by the thumbprint of their device key.
CREATE TABLE devices (
    jkt          TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    jwk          TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    enrolled_at  INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX devices_account ON devices (account_id, revoked_at);

-- Which account a phone number reaches (login_hint): the one that last verified it by SMS.
CREATE TABLE phone_numbers (
    phone_number TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    verified_at  INTEGER NOT NULL
) STRICT;

-- Action requests (CIBA logins) and their answers.
CREATE TABLE action_requests (
    id               TEXT PRIMARY KEY,
    auth_req_id      TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    jws              TEXT NOT NULL,
    scope            TEXT NOT NULL,
    claims           TEXT NOT NULL,
    uv               TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'approved', 'declined', 'denied')),
    answered_at      INTEGER,
    auth_time        INTEGER,
    method           TEXT,
    consented_claims TEXT,
    decline_reason   TEXT,
    last_poll_at     INTEGER,
    token_issued_at  INTEGER
) STRICT;
CREATE INDEX action_requests_account ON action_requests (account_id, status, created_at);

-- Simulator: citizens and their bank cards (PINs only as salted hashes).
CREATE TABLE citizens (
    id                       TEXT PRIMARY KEY,
    given_name               TEXT NOT NULL,
    family_name              TEXT NOT NULL,
    birthdate                TEXT NOT NULL,
    national_register_number TEXT NOT NULL UNIQUE,
    bank                     TEXT NOT NULL,
    created_at               INTEGER NOT NULL
) STRICT;

CREATE TABLE cards (
    number       TEXT PRIMARY KEY,
    citizen_id   TEXT NOT NULL REFERENCES citizens (id),
    bank         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('debit', 'credit')),
    pin_salt     BLOB NOT NULL,
    pin_hash     BLOB NOT NULL,
    pin_failures INTEGER NOT NULL DEFAULT 0,
    blocked_at   INTEGER
) STRICT;
CREATE INDEX cards_citizen ON cards (citizen_id);

-- Simulator: what would have gone out by SMS and push.
CREATE TABLE sms_outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number TEXT NOT NULL,
    text         TEXT NOT NULL,
    sent_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX sms_outbox_phone ON sms_outbox (phone_number, seq);

CREATE TABLE push_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX push_outbox_account ON push_outbox (account_id, seq);
