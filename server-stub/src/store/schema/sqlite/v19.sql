-- Version 19: backchannel requests for a number without a usable digital key (nobody enrolled
-- it, its key is blocked, or its account has no active phone). They are answered as a
-- registered person's request is, and polled and limited alike, so that no answer tells a
-- registered number from an unknown one (decision 0030). The number is not stored: only its
-- keyed hash (HMAC-SHA256 under a server secret), which the limits per person count by. A row
-- is kept, like a request, for the retention period after its expiry.
CREATE TABLE unanswerable_requests (
    auth_req_id   TEXT PRIMARY KEY,
    client_id     TEXT NOT NULL,
    number_hash   BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_poll_at  INTEGER,
    superseded_at INTEGER
) STRICT;

CREATE INDEX unanswerable_requests_number ON unanswerable_requests (number_hash, client_id);
CREATE INDEX unanswerable_requests_expiry ON unanswerable_requests (expires_at);
