//! Client authentication at the token and backchannel endpoints: HTTP Basic
//! (`client_secret_basic`) and `private_key_jwt` assertions (RFC 7523), as
//! `Clients::authenticate` checks them before the single use is recorded. The first byte's mode
//! bit says the rest is an assertion's claims to sign with the key client's key; its second bit
//! says an `Authorization` header comes first (its length in the next byte). Checks that only a
//! registered client is accepted, a key client only by an assertion, a secret client only by
//! its secret, and that an assertion's `jti` is kept no longer than an assertion may live.
use std::sync::OnceLock;

use crate::{KEY_CLIENT_ID, KID, NOW, SERVER_URL, jwks, sign};
use sleutel_protocol::api::oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use sleutel_protocol::jose::Header;
use sleutel_protocol::limits::{
    CLIENT_ASSERTION_CLOCK_SKEW_SECS, MAX_CLIENT_ASSERTION_LIFETIME_SECS,
};
use sleutel_server::RelyingPartyConfig;
use sleutel_server::fuzzing::{Clients, client_credentials};

fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        let key_client = RelyingPartyConfig::new(KEY_CLIENT_ID, "", "RP with keys")
            .with_private_key_jwt(jwks(KID));
        match Clients::new(vec![RelyingPartyConfig::demo(), key_client]) {
            Ok(clients) => clients,
            Err(e) => panic!("clients: {e}"),
        }
    })
}

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((&flags, rest)) = data.split_first() else {
        return false;
    };
    let (authorization, rest) = if flags & 2 != 0 {
        let Some((&length, rest)) = rest.split_first() else {
            return false;
        };
        let (header, rest) = rest.split_at(usize::from(length).min(rest.len()));
        (Some(header), rest)
    } else {
        (None, rest)
    };
    let form: Vec<u8> = if flags & 1 != 0 {
        let assertion = sign(&Header::es256("JWT").with_kid(KID), rest);
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT_BEARER)
            .append_pair("client_assertion", &assertion)
            .finish()
            .into_bytes()
    } else {
        rest.to_vec()
    };
    let audiences = [SERVER_URL.to_owned(), format!("{SERVER_URL}/oidc/token")];
    let Ok(accepted) = client_credentials(clients(), authorization, &form, &audiences, NOW) else {
        return false;
    };
    match accepted.assertion_kept_until {
        Some(until) => {
            assert_eq!(accepted.client_id, KEY_CLIENT_ID);
            assert!(until >= NOW);
            assert!(
                until
                    <= NOW
                        + MAX_CLIENT_ASSERTION_LIFETIME_SECS
                        + 2 * CLIENT_ASSERTION_CLOCK_SKEW_SECS
            );
        }
        None => {
            assert_eq!(accepted.client_id, RelyingPartyConfig::DEMO_CLIENT_ID);
            assert!(authorization.is_some());
        }
    }
    true
}
