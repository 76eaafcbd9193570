-- Version 20: the pings of requests nobody can answer (schema v19). A ping-mode relying party
-- is pinged when a newer request of its own for the same number supersedes one, whether a
-- person could answer it or not, so that its pings tell a registered number from an unknown
-- one no more than its answers do (decision 0030). As in `pings`, the notification token is
-- kept only sealed (AES-256-GCM under the notification key, the `auth_req_id` as associated
-- data), and the row goes with its request or at `forget_at`, whichever comes first.
CREATE TABLE unanswerable_pings (
    auth_req_id  TEXT PRIMARY KEY
                 REFERENCES unanswerable_requests (auth_req_id) ON DELETE CASCADE,
    endpoint     TEXT NOT NULL,
    sealed_token BLOB NOT NULL,
    forget_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX unanswerable_pings_forget_at ON unanswerable_pings (forget_at);
