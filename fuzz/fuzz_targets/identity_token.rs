//! Identity tokens from the banks, as the server verifies them
//! (`POST /v1/enrollments/{id}/identity`, `verify_identity_token`): trusted issuer and key,
//! signature, binding, lifetime, names, birth date and national register number. With the mode
//! bit set, the rest is the claims, signed by the target with the bank's key. Checks that an
//! accepted token is bound to the enrollment and its nonce, lives within the longest lifetime,
//! and has a birth date an age can be computed from.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::identity_token::run(data);
});
