-- Version 17 (as SQLite's v17.sql): the pings of ping-mode relying parties, shared by every
-- instance, their notification tokens sealed under the configuration's notification key.
CREATE TABLE pings (
    request_id   TEXT PRIMARY KEY REFERENCES action_requests (id) ON DELETE CASCADE,
    auth_req_id  TEXT NOT NULL,
    endpoint     TEXT NOT NULL,
    sealed_token BYTEA NOT NULL,
    forget_at    BIGINT NOT NULL
);

CREATE INDEX pings_forget_at ON pings (forget_at);
