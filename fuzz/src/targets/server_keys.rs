//! The server's published keys (`GET /v1/server-keys`) as the phone pins them at enrollment.
//! The first byte says whether the app was built with the expected key's thumbprint. Checks
//! that every pinned key has a key id, is a P-256 point that verifies, and is the expected key
//! when one was configured.
use crate::thumbprint;
use sleutel_core::fuzzing::server_keys;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((&pick, body)) = data.split_first() else {
        return false;
    };
    let expected = thumbprint();
    let configured = (pick & 1 == 1).then_some(expected.as_str());
    let Ok(pinned) = server_keys(body, configured) else {
        return false;
    };
    assert!(!pinned.keys.is_empty());
    for key in &pinned.keys {
        assert!(key.kid.as_deref().is_some_and(|kid| !kid.is_empty()));
        assert!(key.to_verifying_key().is_ok());
        if configured.is_some() {
            assert_eq!(key.thumbprint(), expected);
        }
    }
    true
}
