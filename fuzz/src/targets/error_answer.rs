//! The server's error answers as the phone reads them (status and body to `CoreError`). The
//! first two bytes are the HTTP status. Checks that a 5xx is always "server unavailable"
//! whatever its body says, so that the phone treats the call's outcome as unknown.
use sleutel_core::CoreError;
use sleutel_core::fuzzing::error_answer;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let status = u16::from_be_bytes(*status);
    let Some(error) = error_answer(status, body) else {
        assert!(!(100..=999).contains(&status));
        return false;
    };
    if (500..=599).contains(&status) {
        assert!(
            matches!(error, CoreError::ServerUnavailable { status: Some(s), .. } if s == status)
        );
    }
    // Accepted: read as the API's own refusal rather than an unusable answer.
    !matches!(error, CoreError::ServerUnavailable { .. })
}
