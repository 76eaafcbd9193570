//! Form bodies and query strings as the server reads them (`Params::parse`: each name once),
//! and the grant of a token request (`POST /oidc/token`, `read_grant`). Checks that the
//! parameters kept, written out as a form again, read back to the same set, and that an accepted
//! grant names one of our identifiers (CIBA) or carries every part of a code exchange.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::token_form::run(data);
});
