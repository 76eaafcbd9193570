-- Sleutel server schema, version 8: lasting evidence of what was approved, kept for the
-- policy's retention period. Depends only on versions 1 to 5.

-- The phone's answer exactly as the server received and verified it: the general-JSON JWS
-- (RFC 7515 §7.2.1) over the request's hash, signed by the device key and, for an approval, the
-- code's or the biometric key. Written in the transaction that records the answer (approval,
-- decline, wrong number); NULL while pending, for requests the server closed (blocked,
-- superseded) or that expired, and for answers recorded before this version.
ALTER TABLE action_requests ADD COLUMN response_jws TEXT;
-- The public keys (JWK) the response's signatures verified with: the device key, and for an
-- approval the code's or biometric key. A code change or a new biometric key replaces the
-- device's key, and the evidence must still verify afterwards.
ALTER TABLE action_requests ADD COLUMN response_device_jwk TEXT;
ALTER TABLE action_requests ADD COLUMN response_uv_jwk TEXT;

-- base64url SHA-256 of `jws`: the `request_hash` the phone signs and the ID token carries, so
-- that a token leads to its evidence. NULL for requests made before this version.
ALTER TABLE action_requests ADD COLUMN request_hash TEXT;
CREATE INDEX action_requests_request_hash ON action_requests (request_hash);

-- The purge finds old requests by when they were settled: answered or closed, else expired.
CREATE INDEX action_requests_settled ON action_requests (coalesce(answered_at, expires_at));
