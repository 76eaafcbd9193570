-- Sleutel server schema, version 13: the authorization code flow (OpenID Connect Core §3.1).

-- A browser's sign-in, from the authorization request to the redirect back. The browser holds
-- only a random session id in a cookie; the table keys it by its SHA-256, so a copy of the
-- database does not hand out live sessions. What the relying party asked is kept here until
-- the code is issued, and the CSRF token of the number form is bound to the session.
CREATE TABLE browser_sessions (
    id_hash        TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    state          TEXT,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    login_hint     TEXT,
    acr_values     TEXT,
    claims         TEXT,
    ui_locale      TEXT,
    csrf_token     TEXT NOT NULL,
    -- Set once the number form was sent: the short code the page and the phone both show,
    -- the action request (none for an unknown number, whose wait page simply expires) and
    -- when the wait ends.
    binding_code   TEXT,
    auth_req_id    TEXT,
    wait_until     INTEGER,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX browser_sessions_expiry ON browser_sessions (expires_at);

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
    expires_at        INTEGER NOT NULL,
    used_at           INTEGER,
    access_token_hash TEXT
) STRICT;

-- Access tokens for the UserInfo endpoint, by their SHA-256.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    auth_req_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
