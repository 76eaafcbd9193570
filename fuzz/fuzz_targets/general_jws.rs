//! General-JSON JWS: the phone's two-signature answer as the server reads it
//! (`POST /v1/requests/{id}/response`): the JSON body, `DeviceSignedResponse::verify` with the
//! device key, the user-verification signature, and `ActionResponse::validate`. With the mode
//! bit set, the rest is an answer's payload that the target signs as the phone would. Checks
//! the JSON round trip, that a verified answer carries the signatures its decision needs, and
//! that a valid answer names the request and its hash and was made within the proof's age.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::general_jws::run(data);
});
