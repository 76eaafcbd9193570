-- Sleutel server schema, version 15: signing in with a QR code from another device, or with the
-- app on the same phone (the sign-in links of `/app/sign-in`).

-- Every browser session gets a public link id and a random link secret. The QR code's link
-- carries the id, a time step and HMAC-SHA256(secret, id and step); the app-to-app link the id
-- and HMAC-SHA256(secret, id). The secret never leaves the server, so a photo of the QR code
-- gives nobody the codes of the steps to come, and the session id (the cookie) is never in a
-- link. Sessions made before this version have no link id and offer only the number form.
ALTER TABLE browser_sessions ADD COLUMN link_id TEXT;
ALTER TABLE browser_sessions ADD COLUMN link_secret TEXT;
CREATE UNIQUE INDEX browser_sessions_link_id ON browser_sessions (link_id);
-- How the session was bound to an account: 'number' (the form), 'qr' or 'app'. Set once, by
-- the first of them; every later link of the session is refused.
ALTER TABLE browser_sessions ADD COLUMN bound_by TEXT
    CHECK (bound_by IS NULL OR bound_by IN ('number', 'qr', 'app'));
-- For a session bound by an app-to-app link: the SHA-256 of the one-time return token handed
-- to the phone. The authorization code of such a session leaves the server only through the
-- return URL, never through the browser that holds the session cookie.
ALTER TABLE browser_sessions ADD COLUMN return_token_hash TEXT;
CREATE UNIQUE INDEX browser_sessions_return_token ON browser_sessions (return_token_hash);
