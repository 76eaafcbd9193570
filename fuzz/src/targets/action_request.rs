//! Action requests as the phone verifies them (`verify_request` against the pinned keys, then
//! the view the person is shown). With the mode bit set, the rest is the request's claims,
//! signed by the target with the pinned key. Checks that an accepted request is for this
//! account from this server, unexpired with a lifetime within the limit, asks for a bounded
//! set of distinct claims, and that every text shown stays within its length.
use crate::{ACCOUNT_ID, KID, NOW, SERVER_URL, jwks, mode, sign, text};
use sleutel_core::fuzzing::action_request;
use sleutel_protocol::action::{ACTION_TYP, MAX_CLAIMS};
use sleutel_protocol::jose::Header;
use sleutel_protocol::limits::{
    CLOCK_SKEW_SECS, MAX_ACTION_LIFETIME_SECS, MAX_ACTION_TEXT_CHARS, MAX_BINDING_MESSAGE_CHARS,
    MAX_RP_NAME_CHARS,
};

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((signed, rest)) = mode(data) else {
        return false;
    };
    let token = if signed {
        sign(&Header::es256(ACTION_TYP).with_kid(KID), rest)
    } else {
        let Some(token) = text(rest) else {
            return false;
        };
        token.to_owned()
    };
    let Ok((request, view)) = action_request(&token, &jwks(KID), SERVER_URL, ACCOUNT_ID, NOW)
    else {
        return false;
    };
    assert_eq!(request.iss, SERVER_URL);
    assert_eq!(request.aud, ACCOUNT_ID);
    assert!(request.exp > NOW && request.iat <= NOW + CLOCK_SKEW_SECS);
    assert!(request.exp > request.iat && request.exp - request.iat <= MAX_ACTION_LIFETIME_SECS);
    let claims = request.all_claims();
    assert!(claims.len() <= MAX_CLAIMS);
    for (i, claim) in claims.iter().enumerate() {
        assert!(!claims[i + 1..].contains(claim));
    }
    assert_eq!(view.request_id, request.jti);
    assert!(view.rp_name.chars().count() <= MAX_RP_NAME_CHARS);
    assert!(view.text.chars().count() <= MAX_ACTION_TEXT_CHARS);
    if let Some(message) = &view.binding_message {
        assert!(message.chars().count() <= MAX_BINDING_MESSAGE_CHARS);
    }
    true
}
