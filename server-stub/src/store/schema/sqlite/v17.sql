-- Version 17: the pings of ping-mode relying parties (CIBA §10.2) move from one server's memory
-- into the database, so that whichever instance records a request's outcome sends its ping.
-- The relying party's notification token is a bearer credential: it is stored sealed
-- (AES-256-GCM under the notification key of the configuration, the request id as associated
-- data: nonce, then ciphertext and tag), never in the clear. A row lives until its ping is taken
-- for sending, its request is deleted, or `forget_at` passes (the housekeeping purge).
CREATE TABLE pings (
    request_id   TEXT PRIMARY KEY REFERENCES action_requests (id) ON DELETE CASCADE,
    auth_req_id  TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    sealed_token BLOB NOT NULL,
    forget_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX pings_forget_at ON pings (forget_at);
