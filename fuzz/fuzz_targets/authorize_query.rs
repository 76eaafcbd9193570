//! The query of an authorization request (`GET /oidc/authorize`), checked as the handler
//! checks it once the client and its redirect URI are known (`check_request`): response type,
//! request objects, state, scopes, PKCE, `acr_values`, claims and `prompt`. Checks that an
//! accepted request asks `openid` with an S256 challenge of 32 bytes, and that a refusal carries
//! one of the OAuth error codes of RFC 6749 §4.1.2.1 and OIDC Core §3.1.2.6.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sleutel_fuzz::targets::authorize_query::run(data);
});
