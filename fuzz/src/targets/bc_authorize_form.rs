//! The form of a CIBA backchannel authentication request (`POST /oidc/bc-authorize`), read as
//! the handler reads it once the client is authenticated (`read_ask`): scopes, `login_hint`,
//! binding message, expiry, `acr_values`, the kind with its payment or document, the claims and
//! the `claims` parameter, number matching and the ping token. The first byte picks a poll or a
//! ping client. Checks that an accepted ask names a normalised Belgian mobile number, lives
//! within the policy's lifetime, asks `openid`, at most the limit of distinct known claims,
//! carries a template exactly for a transaction and a document exactly for a signature, and
//! that both pass their own checks.
use sleutel_protocol::action::{ActionKind, MAX_CLAIMS};
use sleutel_protocol::claims;
use sleutel_protocol::limits::MAX_BINDING_MESSAGE_CHARS;
use sleutel_protocol::phone::normalize_belgian_mobile;
use sleutel_server::RelyingPartyConfig;
use sleutel_server::fuzzing::backchannel_form;

/// The policy's longest request lifetime in these runs.
const MAX_TTL: i64 = 300;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((&pick, form)) = data.split_first() else {
        return false;
    };
    let client = if pick & 1 == 0 {
        RelyingPartyConfig::demo()
    } else {
        RelyingPartyConfig::demo().with_ping("https://rp.example/ciba/ping")
    };
    let Ok(ask) = backchannel_form(form, MAX_TTL, &client) else {
        return false;
    };
    assert_eq!(
        normalize_belgian_mobile(&ask.phone_number).as_deref(),
        Ok(ask.phone_number.as_str())
    );
    assert!(ask.ttl_secs > 0 && ask.ttl_secs <= MAX_TTL);
    assert!(ask.scope.split(' ').any(|s| s == "openid"));
    let asked: Vec<&String> = ask
        .required_claims
        .iter()
        .chain(&ask.optional_claims)
        .collect();
    assert!(asked.len() <= MAX_CLAIMS);
    for (i, claim) in asked.iter().enumerate() {
        assert!(claims::is_known(claim));
        assert!(!asked[i + 1..].contains(claim));
    }
    if let Some(message) = &ask.binding_message {
        assert!(!message.is_empty() && message.chars().count() <= MAX_BINDING_MESSAGE_CHARS);
    }
    assert_eq!(
        ask.transaction.is_some(),
        ask.kind == ActionKind::ConfirmTransaction
    );
    assert_eq!(ask.document.is_some(), ask.kind == ActionKind::Sign);
    if let Some(transaction) = &ask.transaction {
        assert!(transaction.validate().is_ok());
    }
    if let Some(document) = &ask.document {
        assert!(document.validate().is_ok());
    }
    true
}
