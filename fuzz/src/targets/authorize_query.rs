//! The query of an authorization request (`GET /oidc/authorize`), checked as the handler
//! checks it once the client and its redirect URI are known (`check_request`): response type,
//! request objects, state, scopes, PKCE, `acr_values`, claims and `prompt`. Checks that an
//! accepted request asks `openid` with an S256 challenge of 32 bytes, and that a refusal carries
//! one of the OAuth error codes of RFC 6749 §4.1.2.1 and OIDC Core §3.1.2.6.
use sleutel_protocol::jose;
use sleutel_server::RelyingPartyConfig;
use sleutel_server::fuzzing::authorize_query;

/// The error codes an authorization request may be refused with by a redirect.
const CODES: [&str; 6] = [
    "invalid_request",
    "unsupported_response_type",
    "request_not_supported",
    "request_uri_not_supported",
    "login_required",
    "invalid_scope",
];

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    match authorize_query(data, &RelyingPartyConfig::demo()) {
        Ok(None) => false,
        Ok(Some(ask)) => {
            assert!(ask.scope.split(' ').any(|s| s == "openid"));
            let challenge = jose::b64_decode(&ask.code_challenge, "challenge");
            assert_eq!(challenge.map(|c| c.len()).ok(), Some(32));
            true
        }
        Err(refusal) => {
            assert!(CODES.contains(&refusal.error), "{}", refusal.error);
            assert!(!refusal.description.is_empty());
            false
        }
    }
}
