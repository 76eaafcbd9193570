//! The error body of every endpoint ([`ApiError`]) and its machine-readable [`codes`].

use serde::{Deserialize, Serialize};

/// The JSON error body of every endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable code (see [`codes`]).
    pub error: String,
    /// Human-readable explanation, without secrets.
    #[serde(default)]
    pub error_description: String,
    /// Attempts left, for a wrong code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// Seconds to wait, for throttling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The error codes of [`ApiError::error`].
pub mod codes {
    /// The body or a parameter is malformed.
    pub const INVALID_REQUEST: &str = "invalid_request";
    /// The body is larger than allowed.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// The request took longer than the server allows, its body's upload included (408).
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// The DPoP-style proof is missing, invalid or stale.
    pub const INVALID_PROOF: &str = "invalid_proof";
    /// The proof was already used.
    pub const PROOF_REPLAYED: &str = "proof_replayed";
    /// No such enrollment (or not this device's).
    pub const UNKNOWN_ENROLLMENT: &str = "unknown_enrollment";
    /// The enrollment has expired.
    pub const ENROLLMENT_EXPIRED: &str = "enrollment_expired";
    /// The enrollment is not at the step this call belongs to.
    pub const WRONG_STEP: &str = "wrong_step";
    /// The identity token is invalid (signature, issuer, nonce, expiry, content).
    pub const INVALID_IDENTITY_TOKEN: &str = "invalid_identity_token";
    /// The identity is valid but not admitted (under age).
    pub const IDENTITY_REFUSED: &str = "identity_refused";
    /// Wrong SMS code; `attempts_left` says how many remain.
    pub const WRONG_SMS_CODE: &str = "wrong_sms_code";
    /// The SMS code expired; ask a new one.
    pub const SMS_CODE_EXPIRED: &str = "sms_code_expired";
    /// Too many wrong SMS codes: the enrollment is over.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// Asked for a new SMS code too soon; `retry_after` says when.
    pub const RESEND_TOO_SOON: &str = "resend_too_soon";
    /// Too many enrollments started (by this key, from this address, or on the server), SMS
    /// codes sent to the number, or wrong SMS codes for the number today: wait `retry_after`
    /// seconds (429).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The device is not registered.
    pub const UNKNOWN_DEVICE: &str = "unknown_device";
    /// The device was revoked.
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// No such request for this account.
    pub const UNKNOWN_REQUEST: &str = "unknown_request";
    /// The request expired.
    pub const REQUEST_EXPIRED: &str = "request_expired";
    /// The request was already answered.
    pub const REQUEST_ALREADY_ANSWERED: &str = "request_already_answered";
    /// The response is malformed or its device signature or binding is wrong.
    pub const INVALID_RESPONSE: &str = "invalid_response";
    /// Wrong code; `attempts_left` says how many remain.
    pub const WRONG_PIN: &str = "wrong_pin";
    /// The account is blocked after too many wrong codes.
    pub const ACCOUNT_BLOCKED: &str = "account_blocked";
    /// A code change the phone was told did not take effect arrived late: it is refused, and
    /// the device keeps its PIN key.
    pub const CODE_CHANGE_VOID: &str = "code_change_void";
    /// The request demands another verification method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// Bank simulator: credit cards cannot prove an identity.
    pub const CREDIT_CARD_REFUSED: &str = "credit_card_refused";
    /// Bank simulator: wrong card PIN.
    pub const WRONG_CARD_PIN: &str = "wrong_card_pin";
    /// Bank simulator: unknown card.
    pub const UNKNOWN_CARD: &str = "unknown_card";
    /// Bank simulator: the card is blocked after too many wrong PINs.
    pub const CARD_BLOCKED: &str = "card_blocked";
    /// eID website: the card has expired.
    pub const EID_CARD_EXPIRED: &str = "eid_card_expired";
    /// eID website: the card was revoked (reported lost or stolen).
    pub const EID_CARD_REVOKED: &str = "eid_card_revoked";
    /// Wrong identification or activation code; `attempts_left` says how many remain.
    pub const WRONG_IDENTITY_CODE: &str = "wrong_identity_code";
    /// The identification or activation code has expired: ask for a new one.
    pub const IDENTITY_CODE_EXPIRED: &str = "identity_code_expired";
    /// The identification or activation code was already used: each works once.
    pub const IDENTITY_CODE_USED: &str = "identity_code_used";
    /// Too many wrong tries of the identification code: it no longer works.
    pub const IDENTITY_CODE_BLOCKED: &str = "identity_code_blocked";
    /// The push token is malformed for its platform (empty, too long, a character outside the
    /// platform's alphabet).
    pub const INVALID_PUSH_TOKEN: &str = "invalid_push_token";
    /// The sign-in link is not a valid link of this server (a MAC that does not verify, a step
    /// from the future): it was not made by the sign-in page.
    pub const SIGN_IN_LINK_INVALID: &str = "sign_in_link_invalid";
    /// The sign-in link has expired: its QR step is over, or the browser's sign-in ended. Scan
    /// the code the page shows now.
    pub const SIGN_IN_LINK_EXPIRED: &str = "sign_in_link_expired";
    /// The browser's sign-in was already taken by an earlier link (or the number form): each
    /// sign-in binds one account, once.
    pub const SIGN_IN_LINK_USED: &str = "sign_in_link_used";
    /// No such resource.
    pub const NOT_FOUND: &str = "not_found";
    /// A server fault; nothing was changed.
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// The server is busy with conflicting work on the same data; try again after
    /// `retry_after` seconds. Nothing was changed.
    pub const TEMPORARILY_UNAVAILABLE: &str = "temporarily_unavailable";

    // OAuth 2.0 (RFC 6749 §5.2) and CIBA (§13, §11) error codes of the OIDC endpoints.

    /// Client authentication failed (unknown client, wrong secret, no credentials).
    pub const INVALID_CLIENT: &str = "invalid_client";
    /// The `auth_req_id` is unknown, belongs to another client, or its token was already issued.
    pub const INVALID_GRANT: &str = "invalid_grant";
    /// The grant type is not the CIBA grant.
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    /// The scope is missing `openid` or names an unsupported scope.
    pub const INVALID_SCOPE: &str = "invalid_scope";
    /// CIBA: the binding message is too long or has characters that cannot be shown.
    pub const INVALID_BINDING_MESSAGE: &str = "invalid_binding_message";
    /// The person declined, or the request was closed (account blocked).
    pub const ACCESS_DENIED: &str = "access_denied";
    /// CIBA poll: the person has not answered yet.
    pub const AUTHORIZATION_PENDING: &str = "authorization_pending";
    /// CIBA poll: polled faster than the interval; wait longer (the client adds 5 seconds).
    pub const SLOW_DOWN: &str = "slow_down";
    /// CIBA poll: the request expired before the person answered.
    pub const EXPIRED_TOKEN: &str = "expired_token";
    /// The number picked on the phone is not the one the relying party shows: the request is
    /// declined and recorded as suspicious.
    pub const WRONG_NUMBER: &str = "wrong_number";
}
