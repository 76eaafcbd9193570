//! The form of a CIBA backchannel authentication request (`POST /oidc/bc-authorize`), read as
//! the handler reads it once the client is authenticated (`read_ask`): scopes, `login_hint`,
//! binding message, expiry, `acr_values`, the kind with its payment or document, the claims and
//! the `claims` parameter, number matching and the ping token. The first byte picks a poll or a
//! ping client. Checks that an accepted ask names a normalised Belgian mobile number, lives
//! within the policy's lifetime, asks `openid`, at most the limit of distinct known claims,
//! carries a template exactly for a transaction and a document exactly for a signature, and
//! that both pass their own checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::bc_authorize_form::run(data);
});
