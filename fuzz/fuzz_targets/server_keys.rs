//! The server's published keys (`GET /v1/server-keys`) as the phone pins them at enrollment.
//! The first byte says whether the app was built with the expected key's thumbprint. Checks
//! that every pinned key has a key id, is a P-256 point that verifies, and is the expected key
//! when one was configured.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::server_keys::run(data);
});
