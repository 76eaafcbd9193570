//! The bank's return link (`sleutel://enroll/bank?...`) as the phone reads it when the bank's
//! app hands back (`parse_bank_return`). Checks that an accepted link yields a token within the
//! JWS size limit, and that the link the bank simulator builds for that token reads back to it.
use crate::{ENROLLMENT_ID, text};
use sleutel_core::CoreError;
use sleutel_core::fuzzing::bank_return_link;
use sleutel_protocol::api;
use sleutel_protocol::limits::MAX_JWS_BYTES;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some(link) = text(data) else {
        return false;
    };
    match bank_return_link(link, ENROLLMENT_ID) {
        Ok(token) => {
            assert!(!token.is_empty() && token.len() <= MAX_JWS_BYTES);
            let again = api::bank_return_link(ENROLLMENT_ID, &token);
            assert!(matches!(bank_return_link(&again, ENROLLMENT_ID), Ok(t) if t == token));
            true
        }
        Err(CoreError::HandoffRefused { reason }) => {
            assert!(!reason.is_empty());
            false
        }
        Err(other) => panic!("a bank link is refused as a handoff, not {other:?}"),
    }
}
