//! Compact JWS (every signed token the project reads: action requests, proofs, identity and ID
//! tokens, client assertions): `UnverifiedJws::parse` and both verifications. Checks that a
//! parsed token has three parts within the size limit, that its decoded payload re-encodes to
//! the payload part (no second encoding of the same bytes passes), that `action_kid` reads the
//! same key id, and that a verification returns exactly the parsed payload.
use crate::{signing_key, text};
use sleutel_protocol::action::{ACTION_TYP, action_kid};
use sleutel_protocol::jose::{self, UnverifiedJws};
use sleutel_protocol::limits::MAX_JWS_BYTES;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some(token) = text(data) else {
        return false;
    };
    let Ok(jws) = UnverifiedJws::parse(token, "token") else {
        assert!(action_kid(token).is_err());
        return false;
    };
    assert!(token.len() <= MAX_JWS_BYTES);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(jose::b64(jws.unverified_payload()), parts[1]);
    assert_eq!(action_kid(token).ok().flatten(), jws.header.kid);
    let payload = jws.unverified_payload().to_vec();
    let key = signing_key().verifying_key();
    if let Ok(verified) = jws.clone().verify(key, ACTION_TYP, "token") {
        assert_eq!(verified, payload);
        assert_eq!(jws.header.typ.as_deref(), Some(ACTION_TYP));
    }
    if let Ok(verified) = jws.verify_any_type(key, "token") {
        assert_eq!(verified, payload);
    }
    true
}
