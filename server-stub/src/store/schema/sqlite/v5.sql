-- Sleutel server schema, version 5: kinds of request, required and optional claims, number
-- matching, superseded requests, and the rate of backchannel calls per relying party.

-- What the request asks (login, share_data, confirm_transaction, sign); earlier rows were logins.
ALTER TABLE action_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'login';
-- Claims the person may leave out (JSON array); `claims` holds the required ones.
ALTER TABLE action_requests ADD COLUMN optional_claims TEXT NOT NULL DEFAULT '[]';
-- Under number matching, the number the relying party shows (10-99).
ALTER TABLE action_requests ADD COLUMN match_number INTEGER;
-- Why the server closed a request (status 'denied'): 'blocked' or 'superseded'.
ALTER TABLE action_requests ADD COLUMN closed_reason TEXT;
CREATE INDEX action_requests_client ON action_requests (client_id, account_id, status);

-- Every backchannel authentication call of the last minute per relying party, refused or not.
CREATE TABLE backchannel_calls (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX backchannel_calls_client ON backchannel_calls (client_id, at);
