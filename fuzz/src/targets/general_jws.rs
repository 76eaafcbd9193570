//! General-JSON JWS: the phone's two-signature answer as the server reads it
//! (`POST /v1/requests/{id}/response`): the JSON body, `DeviceSignedResponse::verify` with the
//! device key, the user-verification signature, and `ActionResponse::validate`. With the mode
//! bit set, the rest is an answer's payload that the target signs as the phone would. Checks
//! the JSON round trip, that a verified answer carries the signatures its decision needs, and
//! that a valid answer names the request and its hash and was made within the proof's age.
use crate::{NOW, REQUEST_ID, REQUEST_JWS, mode, sign_response, signing_key};
use sleutel_protocol::jose::{self, GeneralJws};
use sleutel_protocol::limits::{CLOCK_SKEW_SECS, PROOF_MAX_AGE_SECS};
use sleutel_protocol::response::{Decision, DeviceSignedResponse};
use sleutel_server::fuzzing::json_body;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((signed, rest)) = mode(data) else {
        return false;
    };
    let jws: GeneralJws = if signed {
        // Sign as an approval when the payload says so, so that both shapes are reached.
        let approve = std::str::from_utf8(rest).is_ok_and(|t| t.contains("approve"));
        sign_response(rest, approve)
    } else {
        let Ok(jws) = json_body::<GeneralJws>(rest) else {
            return false;
        };
        let again = serde_json::to_vec(&jws).map(|bytes| json_body::<GeneralJws>(&bytes));
        assert!(matches!(again, Ok(Ok(ref j)) if *j == jws));
        jws
    };
    let count = jws.signatures.len();
    let key = signing_key().verifying_key();
    let Ok(answer) = DeviceSignedResponse::verify(jws, key) else {
        return false;
    };
    let expected = match answer.response.decision {
        Decision::Approve => 2,
        Decision::Decline => 1,
    };
    assert_eq!(count, expected);
    // The user-verification signature is checked apart (the server counts its failures): a
    // decline has none to verify, and one the target signed verifies.
    let user_verified = answer.verify_user(key).is_ok();
    if expected == 1 {
        assert!(!user_verified);
    } else if signed {
        assert!(user_verified);
    }
    let valid = answer
        .response
        .validate(REQUEST_ID, REQUEST_JWS, NOW)
        .is_ok();
    if valid {
        let response = &answer.response;
        assert_eq!(response.request_id, REQUEST_ID);
        assert_eq!(response.request_hash, jose::sha256_b64(REQUEST_JWS));
        assert!(response.iat <= NOW + CLOCK_SKEW_SECS && response.iat >= NOW - PROOF_MAX_AGE_SECS);
        assert_eq!(
            response.method.is_some(),
            response.decision == Decision::Approve
        );
        assert_eq!(
            response.reason.is_some(),
            response.decision == Decision::Decline
        );
    }
    valid
}
