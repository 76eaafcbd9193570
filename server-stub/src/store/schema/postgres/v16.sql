-- Sleutel server schema for PostgreSQL (15 and later), version 16.
--
-- The whole schema as the SQLite migrations v1 to v16 (server-stub/src/store/schema/sqlite/) leave it, in one
-- file: the PostgreSQL store starts at version 16, and every later version is added to both
-- databases side by side. scripts/compare-schemas checks that both have the same tables, columns,
-- keys and indexes. The comments of the SQLite migrations tell why each column was added.
--
-- The same SQL statements run on both databases, so the types follow what the code binds: every
-- integer is BIGINT, 0/1 flags included (the code binds booleans as integers and compares them
-- with integers), every blob BYTEA, every text TEXT. Times are Unix seconds; identifiers are random
-- base64url. SQLite's `PRAGMA application_id` (which marks the file as ours) has no equivalent.
--
-- SQLite compares and sorts text byte by byte; a database with the C collation (as
-- scripts/postgres-cluster makes) sorts the same. Load this file as one script (psql -f, or one
-- simple-query batch), in one transaction: the trigger functions' bodies hold semicolons.

-- Server secrets: the action/ID-token signing key, the simulated banks' keys, the pairwise
-- subject secret and the SMS-code hashing key. (Production keeps these in an HSM.)
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- Proof ids seen recently, per device key, to refuse replays.
CREATE TABLE proof_jtis (
    jkt        TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (jkt, jti)
);
CREATE INDEX proof_jtis_expiry ON proof_jtis (expires_at);

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
    pin_failures             BIGINT NOT NULL DEFAULT 0,
    blocked_at               BIGINT,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);

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
    created_at               BIGINT NOT NULL,
    expires_at               BIGINT NOT NULL,
    given_name               TEXT,
    family_name              TEXT,
    birthdate                TEXT,
    national_register_number TEXT,
    identity_issuer          TEXT,
    evidence_type            TEXT,
    evidence_reference       TEXT,
    sms_code_hash            BYTEA,
    sms_expires_at           BIGINT,
    sms_sent_at              BIGINT,
    sms_sends                BIGINT NOT NULL DEFAULT 0,
    sms_failures             BIGINT NOT NULL DEFAULT 0,
    -- The account a completed enrollment created or renewed, so that a repeated completion
    -- gets the same answer.
    account_id               TEXT REFERENCES accounts (id),
    -- Wrong identification or activation codes typed in this enrollment.
    code_failures            BIGINT NOT NULL DEFAULT 0,
    -- The device an unblock from the same phone replaces (revoked on completion); else NULL.
    replaces_jkt             TEXT
);
CREATE INDEX enrollments_expiry ON enrollments (expires_at);
CREATE INDEX enrollments_device ON enrollments (device_jkt);

-- Registered phones, found by the thumbprint of their device key.
CREATE TABLE devices (
    jkt             TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    jwk             TEXT NOT NULL,
    phone_number    TEXT NOT NULL,
    enrolled_at     BIGINT NOT NULL,
    revoked_at      BIGINT,
    -- Each phone's own PIN key, its biometric key (NULL: biometrics off), why it was revoked.
    pin_jwk         TEXT,
    biometric_jwk   TEXT,
    revoked_reason  TEXT,
    -- Wrong codes typed on this device since its last right code.
    pin_failures    BIGINT NOT NULL DEFAULT 0,
    -- The phone's statement that its keystore keeps the device key in secure hardware.
    key_in_hardware BIGINT NOT NULL DEFAULT 0 CHECK (key_in_hardware IN (0, 1)),
    -- Stands in for SQLite's implicit rowid: the order rows were inserted in, which breaks ties
    -- of `enrolled_at` in `ORDER BY enrolled_at, rowid`. The database numbers it; no statement
    -- writes it (GENERATED ALWAYS refuses one that tries).
    rowid           BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX devices_account ON devices (account_id, revoked_at);

-- Which account a phone number reaches (login_hint): the one that last verified it by SMS.
CREATE TABLE phone_numbers (
    phone_number TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    verified_at  BIGINT NOT NULL
);

-- Action requests (CIBA logins and the other kinds) and their answers.
CREATE TABLE action_requests (
    id                     TEXT PRIMARY KEY,
    auth_req_id            TEXT NOT NULL UNIQUE,
    client_id              TEXT NOT NULL,
    account_id             TEXT NOT NULL REFERENCES accounts (id),
    jws                    TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    claims                 TEXT NOT NULL,
    uv                     TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    expires_at             BIGINT NOT NULL,
    status                 TEXT NOT NULL
                           CHECK (status IN ('pending', 'approved', 'declined', 'denied')),
    answered_at            BIGINT,
    auth_time              BIGINT,
    method                 TEXT,
    consented_claims       TEXT,
    decline_reason         TEXT,
    last_poll_at           BIGINT,
    token_issued_at        BIGINT,
    -- login, share_data, confirm_transaction or sign.
    kind                   TEXT NOT NULL DEFAULT 'login',
    -- Claims the person may leave out (JSON array); `claims` holds the required ones.
    optional_claims        TEXT NOT NULL DEFAULT '[]',
    -- Under number matching, the number the relying party shows (10-99).
    match_number           BIGINT,
    -- Why the server closed a request (status 'denied'): 'blocked' or 'superseded'.
    closed_reason          TEXT,
    -- The evidence of the answer: the phone's JWS as received and the keys it verified with.
    response_jws           TEXT,
    response_device_jwk    TEXT,
    response_uv_jwk        TEXT,
    -- base64url SHA-256 of `jws`, which the phone signs and the ID token carries.
    request_hash           TEXT,
    -- key_in_hardware of the approving device, copied when the approval is recorded.
    device_key_in_hardware BIGINT CHECK (device_key_in_hardware IN (0, 1)),
    -- Stands in for SQLite's implicit rowid: the order rows were inserted in, which breaks ties
    -- of `created_at` in `ORDER BY created_at, rowid`. The database numbers it; no statement
    -- writes it (GENERATED ALWAYS refuses one that tries).
    rowid                  BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX action_requests_account ON action_requests (account_id, status, created_at);
CREATE INDEX action_requests_client ON action_requests (client_id, account_id, status);
CREATE INDEX action_requests_request_hash ON action_requests (request_hash);
-- The purge finds old requests by when they were settled: answered or closed, else expired.
CREATE INDEX action_requests_settled ON action_requests ((coalesce(answered_at, expires_at)));

-- Simulator: citizens, their bank cards and eID cards (PINs only as salted hashes).
CREATE TABLE citizens (
    id                       TEXT PRIMARY KEY,
    given_name               TEXT NOT NULL,
    family_name              TEXT NOT NULL,
    birthdate                TEXT NOT NULL,
    national_register_number TEXT NOT NULL UNIQUE,
    bank                     TEXT NOT NULL,
    created_at               BIGINT NOT NULL
);

CREATE TABLE cards (
    number       TEXT PRIMARY KEY,
    citizen_id   TEXT NOT NULL REFERENCES citizens (id),
    bank         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('debit', 'credit')),
    pin_salt     BYTEA NOT NULL,
    pin_hash     BYTEA NOT NULL,
    pin_failures BIGINT NOT NULL DEFAULT 0,
    blocked_at   BIGINT
);
CREATE INDEX cards_citizen ON cards (citizen_id);

CREATE TABLE eid_cards (
    serial       TEXT PRIMARY KEY,
    citizen_id   TEXT NOT NULL REFERENCES citizens (id),
    valid_until  TEXT NOT NULL,
    pin_salt     BYTEA NOT NULL,
    pin_hash     BYTEA NOT NULL,
    pin_failures BIGINT NOT NULL DEFAULT 0,
    blocked_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX eid_cards_citizen ON eid_cards (citizen_id);

-- Identification codes (eID website, bound to a phone number) and activation codes (counter),
-- stored only as keyed hashes, with the identity they prove. Single use.
CREATE TABLE identity_codes (
    id                       TEXT PRIMARY KEY,
    kind                     TEXT NOT NULL CHECK (kind IN ('eid', 'counter')),
    code_hash                BYTEA NOT NULL UNIQUE,
    phone_number             TEXT,
    email                    TEXT NOT NULL,
    given_name               TEXT NOT NULL,
    family_name              TEXT NOT NULL,
    birthdate                TEXT NOT NULL,
    national_register_number TEXT NOT NULL,
    issuer                   TEXT NOT NULL,
    evidence_type            TEXT NOT NULL,
    evidence_reference       TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    expires_at               BIGINT NOT NULL,
    used_at                  BIGINT,
    failures                 BIGINT NOT NULL DEFAULT 0,
    -- Keyed hash of the token of a counter code's e-mailed activation link (its second factor).
    link_hash                BYTEA
);
CREATE INDEX identity_codes_phone ON identity_codes (kind, phone_number);
CREATE UNIQUE INDEX identity_codes_link ON identity_codes (link_hash);

-- Simulator: what would have gone out by SMS, push and e-mail.
CREATE TABLE sms_outbox (
    seq          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    phone_number TEXT NOT NULL,
    text         TEXT NOT NULL,
    sent_at      BIGINT NOT NULL
);
CREATE INDEX sms_outbox_phone ON sms_outbox (phone_number, seq);

CREATE TABLE push_outbox (
    seq        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_outbox_account ON push_outbox (account_id, seq);

CREATE TABLE email_outbox (
    seq     BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email   TEXT NOT NULL,
    subject TEXT NOT NULL,
    text    TEXT NOT NULL,
    sent_at BIGINT NOT NULL
);
CREATE INDEX email_outbox_address ON email_outbox (email, seq);

-- What happened to each account, for the person and for support: activations, unblocks,
-- revoked devices, code changes, biometrics, deactivations, blocks. Never a secret.
CREATE TABLE account_events (
    seq        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    event      TEXT NOT NULL,
    detail     TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX account_events_account ON account_events (account_id, seq);

-- Rate-limit events per whole second: `bucket` names what is counted and for whom (see
-- rate.rs), `count` how many events it had in second `at`; `expires_at` is when the row no
-- longer counts for any window and may be purged.
CREATE TABLE rate_counts (
    bucket     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    count      BIGINT NOT NULL CHECK (count > 0),
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (bucket, at)
);
CREATE INDEX rate_counts_expiry ON rate_counts (expires_at);

-- Where a device receives its push notifications: one token per device (a new registration
-- replaces it). The same token may serve the devices of one phone's several accounts. The token
-- is the platform's (FCM registration token, APNs device token in lowercase hexadecimal); it is
-- never logged. A removed device takes its token along through the foreign key.
CREATE TABLE push_tokens (
    device_jkt TEXT PRIMARY KEY REFERENCES devices (jkt) ON DELETE CASCADE,
    platform   TEXT NOT NULL CHECK (platform IN ('fcm', 'apns')),
    token      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- Finds the devices holding a token: a registration moves it within an account, and a token
-- the service reports gone is dropped from every device.
CREATE INDEX push_tokens_token ON push_tokens (platform, token);

-- A browser's sign-in (OpenID Connect authorization code flow), by the SHA-256 of the random
-- session id its cookie holds, from the authorization request to the redirect back.
CREATE TABLE browser_sessions (
    id_hash           TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL,
    redirect_uri      TEXT NOT NULL,
    scope             TEXT NOT NULL,
    state             TEXT,
    nonce             TEXT,
    code_challenge    TEXT NOT NULL,
    login_hint        TEXT,
    acr_values        TEXT,
    claims            TEXT,
    ui_locale         TEXT,
    csrf_token        TEXT NOT NULL,
    -- Set once the number form was sent: the short code the page and the phone both show,
    -- the action request (none for an unknown number, whose wait page simply expires) and
    -- when the wait ends.
    binding_code      TEXT,
    auth_req_id       TEXT,
    wait_until        BIGINT,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    -- The public id and the secret of the session's QR-code and app-to-app links.
    link_id           TEXT,
    link_secret       TEXT,
    -- How the session was bound to an account, set once by the first of them.
    bound_by          TEXT CHECK (bound_by IS NULL OR bound_by IN ('number', 'qr', 'app')),
    -- For a session bound by an app-to-app link: the SHA-256 of the one-time return token.
    return_token_hash TEXT
);
CREATE INDEX browser_sessions_expiry ON browser_sessions (expires_at);
CREATE UNIQUE INDEX browser_sessions_link_id ON browser_sessions (link_id);
CREATE UNIQUE INDEX browser_sessions_return_token ON browser_sessions (return_token_hash);

-- Authorization codes (RFC 6749 §4.1.2), by the SHA-256 of the code: single use, short-lived,
-- bound to the client, the redirect URI and the PKCE challenge. `used_at` is kept after the
-- exchange so that a replay is recognised and revokes the access token it issued.
CREATE TABLE authorization_codes (
    code_hash         TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL,
    redirect_uri      TEXT NOT NULL,
    code_challenge    TEXT NOT NULL,
    nonce             TEXT,
    auth_req_id       TEXT NOT NULL,
    expires_at        BIGINT NOT NULL,
    used_at           BIGINT,
    access_token_hash TEXT
);

-- Access tokens for the UserInfo endpoint, by their SHA-256.
CREATE TABLE access_tokens (
    token_hash  TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    auth_req_id TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- The ids (`jti`) of the client assertions accepted (RFC 7523 §3: used once), by client and
-- SHA-256 of the id, until the assertion expires; the primary key makes the second of two
-- concurrent uses fail in the database.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti_hash   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
);
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);

-- A push token lives only as long as its device may receive requests. The database drops it, so
-- that no way of revoking a device or blocking an account, now or later, can forget to.
-- The functions keep the search_path they were created with, so that they delete from this
-- schema's push_tokens whatever search_path the session that fires them has.

-- Drops the push token of the device the trigger fired for.
CREATE FUNCTION push_tokens_drop_device() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM push_tokens WHERE device_jkt = NEW.jkt;
    RETURN NULL; -- an AFTER trigger's result is ignored
END;
$$;

-- Drops the push tokens of every device of the account the trigger fired for.
CREATE FUNCTION push_tokens_drop_account() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM push_tokens
    WHERE device_jkt IN (SELECT jkt FROM devices WHERE account_id = NEW.id);
    RETURN NULL; -- an AFTER trigger's result is ignored
END;
$$;

-- A revoked device (deactivated, replaced by a newer activation or by an unblock) ...
CREATE TRIGGER push_tokens_revoked_device AFTER UPDATE OF revoked_at ON devices
    FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION push_tokens_drop_device();

-- ... a device key registered again for another account ...
CREATE TRIGGER push_tokens_moved_device AFTER UPDATE OF account_id ON devices
    FOR EACH ROW WHEN (NEW.account_id IS DISTINCT FROM OLD.account_id)
    EXECUTE FUNCTION push_tokens_drop_device();

-- ... and every device of a blocked account (an unblock ends with a new device key, or the same
-- one registered again; the phone then registers its token again).
CREATE TRIGGER push_tokens_blocked_account AFTER UPDATE OF blocked_at ON accounts
    FOR EACH ROW WHEN (NEW.blocked_at IS NOT NULL)
    EXECUTE FUNCTION push_tokens_drop_account();
