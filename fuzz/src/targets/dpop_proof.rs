//! DPoP-style proofs, as the server reads the `DPoP` header of every phone call
//! (`dpop::verify_proof`). With the mode bit set, the rest is the proof's claims, signed by the
//! target under a header that carries the signing key. Checks that an accepted proof names the
//! key that signed it (thumbprint), a `jti` within its length, and an `iat` within the accepted
//! age and clock skew.
use crate::{NOW, jwk, mode, sign, text, thumbprint};
use sleutel_protocol::dpop::{PROOF_TYP, verify_proof};
use sleutel_protocol::jose::Header;
use sleutel_protocol::limits::{CLOCK_SKEW_SECS, MAX_ID_CHARS, PROOF_MAX_AGE_SECS};

/// The request every proof is checked against.
const METHOD: &str = "POST";
const TARGET: &str = "/v1/requests/req-1/response";
const BODY: &[u8] = b"{}";

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((signed, rest)) = mode(data) else {
        return false;
    };
    let token = if signed {
        sign(&Header::es256(PROOF_TYP).with_jwk(jwk()), rest)
    } else {
        let Some(token) = text(rest) else {
            return false;
        };
        token.to_owned()
    };
    let Ok(proof) = verify_proof(&token, METHOD, TARGET, BODY, NOW) else {
        return false;
    };
    assert_eq!(proof.jkt, proof.jwk.thumbprint());
    if signed {
        assert_eq!(proof.jkt, thumbprint());
    }
    assert!(!proof.jti.is_empty() && proof.jti.len() <= MAX_ID_CHARS);
    assert!(proof.iat <= NOW + CLOCK_SKEW_SECS && proof.iat >= NOW - PROOF_MAX_AGE_SECS);
    true
}
