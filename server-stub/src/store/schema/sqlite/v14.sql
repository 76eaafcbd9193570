-- Sleutel server schema, version 14: client assertions (private_key_jwt, RFC 7523).

-- The ids (`jti`) of the client assertions accepted, by client and SHA-256 of the id, until the
-- assertion expires: RFC 7523 §3 lets an assertion be used once, and the primary key makes the
-- second of two concurrent uses fail in the database, whichever handler gets there first. A
-- row is useless once its assertion has expired (the expiry alone refuses it then) and is
-- purged by oidc::purge_expired.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti_hash   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
) STRICT;
CREATE INDEX client_assertion_jtis_expiry ON client_assertion_jtis (expires_at);
