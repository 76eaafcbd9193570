//! ID tokens as a relying party verifies them (`api::oidc::verify_id_token`, used by the
//! harness's relying party and the load generator). With the mode bit set, the rest is the
//! claims, signed by the target with the published key. Checks that an accepted token is the
//! expected issuer's, for the expected client, unexpired and not issued in the future, and that
//! the approval it carries can be checked without a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::id_token::run(data);
});
