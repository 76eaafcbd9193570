//! Identity tokens from the banks, as the server verifies them
//! (`POST /v1/enrollments/{id}/identity`, `verify_identity_token`): trusted issuer and key,
//! signature, binding, lifetime, names, birth date and national register number. With the mode
//! bit set, the rest is the claims, signed by the target with the bank's key. Checks that an
//! accepted token is bound to the enrollment and its nonce, lives within the longest lifetime,
//! and has a birth date an age can be computed from.
use std::sync::OnceLock;

use crate::{ENROLLMENT_ID, NONCE, NOW, mode, sign, signing_key, text, thumbprint};
use sleutel_protocol::identity::{Bank, IDENTITY_TYP, IdentitySource};
use sleutel_protocol::jose::Header;
use sleutel_protocol::limits::{CLOCK_SKEW_SECS, MAX_IDENTITY_TOKEN_LIFETIME_SECS};
use sleutel_server::fuzzing::{FixedKeys, identity_token};

fn keys() -> &'static FixedKeys {
    static KEYS: OnceLock<FixedKeys> = OnceLock::new();
    KEYS.get_or_init(|| match FixedKeys::new(signing_key()) {
        Ok(keys) => keys,
        Err(e) => panic!("fixed keys: {e}"),
    })
}

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((signed, rest)) = mode(data) else {
        return false;
    };
    let token = if signed {
        sign(&Header::es256(IDENTITY_TYP).with_kid(thumbprint()), rest)
    } else {
        let Some(token) = text(rest) else {
            return false;
        };
        token.to_owned()
    };
    let Ok(claims) = identity_token(keys(), &token, ENROLLMENT_ID, NONCE, Bank::Kbc, NOW) else {
        return false;
    };
    assert_eq!(claims.iss, Bank::Kbc.issuer());
    assert_eq!(claims.enrollment_id, ENROLLMENT_ID);
    assert_eq!(claims.nonce, NONCE);
    assert_eq!(claims.source, IdentitySource::Bank);
    assert!(claims.exp > NOW && claims.iat <= NOW + CLOCK_SKEW_SECS);
    assert!(claims.exp > claims.iat && claims.exp - claims.iat <= MAX_IDENTITY_TOKEN_LIFETIME_SECS);
    assert!(claims.age_at(NOW).is_ok());
    true
}
