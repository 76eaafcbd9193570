//! Push payloads as the phone reads them before it looks anything up (`handle_push`). Checks
//! that an accepted payload names two well-formed ids and survives a JSON round trip.
use crate::text;
use sleutel_core::fuzzing::push_payload;
use sleutel_protocol::api::is_valid_id;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some(payload) = text(data) else {
        return false;
    };
    let Ok(message) = push_payload(payload) else {
        return false;
    };
    assert!(is_valid_id(&message.account_id) && is_valid_id(&message.request_id));
    let again = serde_json::to_string(&message).map(|json| push_payload(&json));
    assert!(matches!(again, Ok(Ok(ref m)) if *m == message));
    true
}
