//! The counter e-mail's activation link (`sleutel://enroll/counter?activation=...`) as the
//! phone reads it. Checks that an accepted link yields a token of the activation token's shape,
//! and that the link the server builds for that token reads back to it.
use crate::text;
use sleutel_core::CoreError;
use sleutel_core::fuzzing::counter_activation_link;
use sleutel_protocol::api;
use sleutel_protocol::identity::is_activation_token;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some(link) = text(data) else {
        return false;
    };
    match counter_activation_link(link) {
        Ok(token) => {
            assert!(is_activation_token(&token));
            let again = api::counter_activation_link(&token);
            assert!(matches!(counter_activation_link(&again), Ok(t) if t == token));
            true
        }
        Err(CoreError::InvalidInput { .. }) => false,
        Err(other) => panic!("a bad link is invalid input, not {other:?}"),
    }
}
