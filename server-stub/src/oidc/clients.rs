//! The registered relying parties and their authentication (`client_secret_basic` only): id and
//! secret are form-decoded (RFC 6749 §2.3.1), and the secret is compared in constant time, as
//! SHA-256 digests so that not even its length leaks. Failed authentications are counted and,
//! from one address, limited ([`authenticate_client`]).

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::RelyingPartyConfig;
use crate::error::{Result, ServerError, StartError};
use crate::rate::{self, Bucket, Limit};
use crate::server::AppState;
use crate::{clock, db};

/// A registered client with the digest of its secret.
struct Client {
    config: RelyingPartyConfig,
    secret_digest: [u8; 32],
}

/// The registered relying parties.
pub(crate) struct Clients(Vec<Client>);

impl Clients {
    /// Validates the configured relying parties (ids unique, names printable). Ids that differ
    /// only in case or in `-`, `_`, `.` count as the same: they share one secret variable
    /// (`SLEUTEL_RP_SECRET_<ID>`), so one secret would open two registrations with different
    /// names and allowed claims, and a person or an operator could not tell them apart.
    pub(crate) fn new(relying_parties: Vec<RelyingPartyConfig>) -> Result<Self, StartError> {
        let mut clients: Vec<Client> = Vec::with_capacity(relying_parties.len());
        for config in relying_parties {
            config.validate()?;
            let variable = RelyingPartyConfig::secret_variable(&config.client_id);
            if clients
                .iter()
                .any(|c| RelyingPartyConfig::secret_variable(&c.config.client_id) == variable)
            {
                return Err(StartError::Config(format!(
                    "relying party {} is configured twice",
                    config.client_id
                )));
            }
            clients.push(Client {
                secret_digest: Sha256::digest(config.secret.as_bytes()).into(),
                config,
            });
        }
        Ok(Self(clients))
    }

    /// The registration of `client_id`.
    pub(crate) fn get(&self, client_id: &str) -> Option<&RelyingPartyConfig> {
        self.0
            .iter()
            .find(|c| c.config.client_id == client_id)
            .map(|c| &c.config)
    }

    /// The display name of `client_id`.
    pub(crate) fn name(&self, client_id: &str) -> Option<String> {
        self.0
            .iter()
            .find(|c| c.config.client_id == client_id)
            .map(|c| c.config.name.clone())
    }

    /// The claims `client_id` is registered for.
    pub(crate) fn allowed_claims(&self, client_id: &str) -> Option<Vec<String>> {
        self.0
            .iter()
            .find(|c| c.config.client_id == client_id)
            .map(|c| c.config.allowed_claims.clone())
    }

    /// Authenticates the client of a request (`client_secret_basic`).
    fn authenticate(&self, headers: &HeaderMap) -> Result<&RelyingPartyConfig> {
        let (id, secret) = basic_credentials(headers).ok_or(ServerError::InvalidClient)?;
        let given: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let client = self.0.iter().find(|c| c.config.client_id == id);
        // Compare even for an unknown id, so timing does not tell which ids exist.
        let expected = client.map(|c| c.secret_digest).unwrap_or([0xA5; 32]);
        let matches = bool::from(given.ct_eq(&expected));
        match client {
            Some(client) if matches => Ok(&client.config),
            _ => Err(ServerError::InvalidClient),
        }
    }
}

/// The client id and secret of an `Authorization: Basic` header, each form-decoded.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Decodes one `application/x-www-form-urlencoded` value.
fn form_decode(value: &str) -> Option<String> {
    if value.contains(['&', '=']) {
        return None;
    }
    if value.is_empty() {
        return Some(String::new());
    }
    url::form_urlencoded::parse(value.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
}

/// Authenticates the client of a token or backchannel request from `source`.
///
/// Failures are counted per source address: once the policy's number in the last minute is
/// reached, every authentication from that address is refused with `slow_down` (429) until the
/// window has passed, the right secret included, or guessing would go on at full speed. They are
/// also counted per registered client id, from all addresses together, and beyond the policy's
/// number the operator is alerted in the log; that count refuses nothing, since a refusal would
/// let anyone hold a relying party up and would answer differently for ids that exist.
pub(super) async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    source: IpAddr,
) -> Result<RelyingPartyConfig> {
    let authenticated = state.clients.authenticate(headers).cloned();
    let claimed = basic_credentials(headers)
        .map(|(id, _)| id)
        .filter(|id| state.clients.name(id).is_some());
    state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let policy = &app.policy;
            let by_source = Bucket::ClientAuthFailuresBySource(source);
            let source_limit =
                Limit::per_minute(policy.max_client_auth_failures_per_source_per_minute);
            if let Err(exceeded) = rate::check(&tx, by_source, source_limit, now)? {
                return Err(ServerError::ClientAuthRateLimited {
                    retry_after: exceeded.retry_after,
                });
            }
            if authenticated.is_err() {
                rate::record(&tx, by_source, source_limit, now)?;
                if let Some(id) = &claimed {
                    let by_client = Bucket::ClientAuthFailuresByClient(id);
                    let alert =
                        Limit::per_minute(policy.alert_client_auth_failures_per_client_per_minute);
                    if rate::take(&tx, by_client, alert, now)?.is_err() {
                        tracing::warn!(
                            client_id = %id,
                            "failed authentications of one client id beyond the alert level: \
                             its secret may be under attack"
                        );
                    }
                }
                tx.commit()?;
                tracing::info!(%source, "a client authentication failed");
            }
            authenticated
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(value))).unwrap(),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(
            basic_credentials(&basic("my%20client:s%3Acret+x")),
            Some(("my client".into(), "s:cret x".into()))
        );
        assert_eq!(basic_credentials(&basic("no-colon")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn only_the_right_secret_authenticates() {
        let clients = Clients::new(vec![RelyingPartyConfig::demo()]).unwrap();
        assert!(
            clients
                .authenticate(&basic("online-overheid:demo-secret"))
                .is_ok()
        );
        assert!(
            clients
                .authenticate(&basic("online-overheid:demo-secreT"))
                .is_err()
        );
        assert!(clients.authenticate(&basic("someone:demo-secret")).is_err());
    }

    #[test]
    fn duplicate_client_ids_are_refused() {
        let twice = vec![RelyingPartyConfig::demo(), RelyingPartyConfig::demo()];
        assert!(Clients::new(twice).is_err());
    }

    #[test]
    fn client_ids_differing_only_in_case_or_separators_are_refused() {
        for other in ["SHOP-A", "shop_a", "Shop.A"] {
            let both = vec![
                RelyingPartyConfig::new("shop-a", "s1", "Shop A"),
                RelyingPartyConfig::new(other, "s2", "Shop B"),
            ];
            assert!(Clients::new(both).is_err(), "{other}");
        }
    }
}
