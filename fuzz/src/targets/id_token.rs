//! ID tokens as a relying party verifies them (`api::oidc::verify_id_token`, used by the
//! harness's relying party and the load generator). With the mode bit set, the rest is the
//! claims, signed by the target with the published key. Checks that an accepted token is the
//! expected issuer's, for the expected client, unexpired and not issued in the future, and that
//! the approval it carries can be checked without a panic.
use crate::{CLIENT_ID, KID, NOW, SERVER_URL, jwks, mode, sign, text};
use sleutel_protocol::api::oidc::{ID_TOKEN_TYP, verify_id_token};
use sleutel_protocol::jose::Header;
use sleutel_protocol::limits::CLOCK_SKEW_SECS;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((signed, rest)) = mode(data) else {
        return false;
    };
    let token = if signed {
        sign(&Header::es256(ID_TOKEN_TYP).with_kid(KID), rest)
    } else {
        let Some(token) = text(rest) else {
            return false;
        };
        token.to_owned()
    };
    let Ok(claims) = verify_id_token(&token, &jwks(KID), SERVER_URL, CLIENT_ID, NOW) else {
        return false;
    };
    assert_eq!(claims.iss, SERVER_URL);
    assert_eq!(claims.aud, CLIENT_ID);
    assert!(claims.exp > NOW);
    assert!(claims.iat <= NOW + CLOCK_SKEW_SECS);
    true
}
