//! The registered relying parties and their authentication, one method per client as
//! registered:
//! - `client_secret_basic`: id and secret are form-decoded (RFC 6749 §2.3.1), and the secret is
//!   compared in constant time, as SHA-256 digests so that not even its length leaks.
//! - `private_key_jwt` (OIDC Core §9, RFC 7523): a JWT signed with ES256 by a registered key,
//!   naming the client (`iss` = `sub`) and this server (`aud`), short-lived, and used once: its
//!   `jti` is kept until it expires, in the database, where a unique key lets only one of two
//!   concurrent uses pass.
//!
//! A request that carries more than one method is refused (RFC 6749 §2.3). Failed
//! authentications, of either method, are counted and, from one address, limited
//! ([`authenticate_client`]).

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::VerifyingKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sleutel_protocol::api::oidc::{self, CLIENT_ASSERTION_TYPE_JWT_BEARER};
use sleutel_protocol::jose::{self, ES256, UnverifiedJws};
use sleutel_protocol::limits::{
    CLIENT_ASSERTION_CLOCK_SKEW_SECS, MAX_CLIENT_ASSERTION_JTI_CHARS,
    MAX_CLIENT_ASSERTION_LIFETIME_SECS,
};
use subtle::ConstantTimeEq;

use crate::clock;
use crate::config::{ClientAuthentication, RelyingPartyConfig};
use crate::error::{Result, ServerError, StartError};
use crate::extract::Params;
use crate::rate::{self, Bucket, Limit};
use crate::server::AppState;
use crate::store::{Tx, relying_parties};

/// The form parameter that carries a client assertion (RFC 7521 §4.2).
const PARAM_CLIENT_ASSERTION: &str = "client_assertion";
/// The form parameter that names the assertion's type (RFC 7521 §4.2).
const PARAM_CLIENT_ASSERTION_TYPE: &str = "client_assertion_type";
/// The form parameter of `client_secret_post` (RFC 6749 §2.3.1), which no client is registered
/// for: a secret in the body is refused rather than ignored.
const PARAM_CLIENT_SECRET: &str = "client_secret";

/// What a registered client proves itself with.
enum Credential {
    /// The SHA-256 of its secret (`client_secret_basic`).
    SecretDigest([u8; 32]),
    /// Its public keys by `kid` (`private_key_jwt`).
    Keys(Vec<(String, VerifyingKey)>),
}

/// A registered client with what it authenticates with.
struct Client {
    config: RelyingPartyConfig,
    credential: Credential,
}

/// The registered relying parties.
pub(crate) struct Clients(Vec<Client>);

/// A client that proved who it is.
pub(super) struct Authenticated<'a> {
    pub(super) config: &'a RelyingPartyConfig,
    /// For an assertion: its `jti` to record, which may still turn out to be a replay.
    pub(super) assertion: Option<AssertionUse>,
}

/// The single use of a client assertion, as the database keeps it.
pub(super) struct AssertionUse {
    /// base64url SHA-256 of the `jti`: fixed length whatever the client sent.
    pub(super) jti_hash: String,
    /// Until when the assertion could still be accepted, and so the `jti` must be kept.
    pub(super) keep_until: i64,
}

/// The claims of a received client assertion, each optional so that a missing one is named in
/// the refusal.
#[derive(Deserialize)]
struct ReceivedAssertion {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// `aud`: one value or several (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Several(Vec<String>),
}

impl Audience {
    /// Whether this audience names one of `accepted`.
    fn names_one_of(&self, accepted: &[String]) -> bool {
        let is_ours = |value: &String| accepted.contains(value);
        match self {
            Self::One(value) => is_ours(value),
            Self::Several(values) => values.iter().any(is_ours),
        }
    }
}

/// A refusal of a client authentication, saying which check failed.
fn refused(why: &'static str) -> ServerError {
    ServerError::InvalidClientAuthentication(why)
}

impl Clients {
    /// Validates the configured relying parties (ids unique, names printable, keys usable). Ids
    /// that differ only in case or in `-`, `_`, `.` count as the same: they share one secret
    /// variable (`SLEUTEL_RP_SECRET_<ID>`), so one secret would open two registrations with
    /// different names and allowed claims, and a person or an operator could not tell them
    /// apart.
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
            let credential = match &config.authentication {
                ClientAuthentication::SecretBasic(secret) => {
                    Credential::SecretDigest(Sha256::digest(secret.as_bytes()).into())
                }
                ClientAuthentication::PrivateKeyJwt(jwks) => {
                    let mut keys = Vec::with_capacity(jwks.keys.len());
                    for jwk in &jwks.keys {
                        // validate() checked that each key has a kid and is a P-256 point.
                        let key = jwk.to_verifying_key().map_err(|e| {
                            StartError::Config(format!(
                                "relying party {}: a key is not usable: {e}",
                                config.client_id
                            ))
                        })?;
                        keys.push((jwk.kid.clone().unwrap_or_default(), key));
                    }
                    Credential::Keys(keys)
                }
            };
            clients.push(Client { credential, config });
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

    /// Authenticates the client of a request with the one method it carries: an
    /// `Authorization` header (`client_secret_basic`) or a client assertion in the form
    /// `params` (`private_key_jwt`), whose audience must be one of `audiences`. Does not yet
    /// record the assertion's single use ([`record_assertion_use`]).
    pub(super) fn authenticate(
        &self,
        headers: &HeaderMap,
        params: &Params,
        audiences: &[String],
        now: i64,
    ) -> Result<Authenticated<'_>> {
        let basic = headers.contains_key(header::AUTHORIZATION);
        let assertion =
            params.has(PARAM_CLIENT_ASSERTION) || params.has(PARAM_CLIENT_ASSERTION_TYPE);
        let secret_in_body = params.has(PARAM_CLIENT_SECRET);
        match (basic, assertion, secret_in_body) {
            (true, false, false) => self
                .authenticate_basic(headers)
                .map(|config| Authenticated {
                    config,
                    assertion: None,
                }),
            (false, true, false) => self.authenticate_assertion(params, audiences, now),
            (false, false, true) => Err(refused(
                "client_secret_post is not supported: authenticate as the client is registered",
            )),
            (false, false, false) => Err(ServerError::InvalidClient),
            _ => Err(refused(
                "more than one client authentication method in one request (RFC 6749 §2.3)",
            )),
        }
    }

    /// Authenticates a client with `client_secret_basic`.
    fn authenticate_basic(&self, headers: &HeaderMap) -> Result<&RelyingPartyConfig> {
        let (id, secret) = basic_credentials(headers).ok_or(ServerError::InvalidClient)?;
        let given: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let client = self.0.iter().find(|c| c.config.client_id == id);
        // Compare even for an unknown id or a key client, so timing does not tell which ids
        // exist, nor how they authenticate.
        let expected = match client.map(|c| &c.credential) {
            Some(Credential::SecretDigest(digest)) => *digest,
            _ => [0xA5; 32],
        };
        let matches = bool::from(given.ct_eq(&expected));
        match client {
            Some(
                client @ Client {
                    credential: Credential::SecretDigest(_),
                    ..
                },
            ) if matches => Ok(&client.config),
            _ => Err(ServerError::InvalidClient),
        }
    }

    /// Authenticates a client with `private_key_jwt` (OIDC Core §9, RFC 7523 §3). The
    /// signature is checked before any claim is judged, so that an unsigned or forged
    /// assertion learns nothing from the answer beyond that.
    fn authenticate_assertion(
        &self,
        params: &Params,
        audiences: &[String],
        now: i64,
    ) -> Result<Authenticated<'_>> {
        if params.optional(PARAM_CLIENT_ASSERTION_TYPE) != Some(CLIENT_ASSERTION_TYPE_JWT_BEARER) {
            return Err(refused(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let token = params
            .optional(PARAM_CLIENT_ASSERTION)
            .ok_or_else(|| refused("client_assertion is missing"))?;
        let jws = UnverifiedJws::parse(token, "client assertion")
            .map_err(|_| refused("client_assertion is not a compact JWS"))?;
        // Before any key is looked at: `none` and HMAC algorithms are refused outright.
        if jws.header.alg != ES256 {
            return Err(refused("client_assertion must be signed with ES256"));
        }
        // Read before the signature is checked only to find the client and its key; the
        // decisions below are taken on the same bytes once they are verified.
        let claims: ReceivedAssertion =
            jose::parse_claims(jws.unverified_payload(), "assertion")
                .map_err(|_| refused("the claims of client_assertion are unreadable"))?;
        let (Some(iss), Some(sub)) = (claims.iss.as_deref(), claims.sub.as_deref()) else {
            return Err(refused("client_assertion must carry iss and sub"));
        };
        if iss != sub {
            return Err(refused(
                "iss and sub of client_assertion must both be the client id",
            ));
        }
        if params.optional("client_id").is_some_and(|id| id != sub) {
            return Err(refused("client_id is not the client of client_assertion"));
        }
        let Some((client, keys)) = self.0.iter().find_map(|c| match &c.credential {
            Credential::Keys(keys) if c.config.client_id == sub => Some((c, keys)),
            _ => None,
        }) else {
            return Err(refused(
                "the sub of client_assertion is no client registered for private_key_jwt",
            ));
        };
        let key = match (jws.header.kid.as_deref(), keys.as_slice()) {
            (Some(kid), _) => keys
                .iter()
                .find(|(k, _)| k == kid)
                .map(|(_, key)| key)
                .ok_or_else(|| refused("the kid of client_assertion names no key of the client"))?,
            (None, [(_, only)]) => only,
            (None, _) => {
                return Err(refused(
                    "client_assertion needs a kid: the client has several keys",
                ));
            }
        };
        jws.verify_any_type(key, "client assertion")
            .map_err(|_| refused("the signature of client_assertion does not verify"))?;
        if !claims.aud.is_some_and(|aud| aud.names_one_of(audiences)) {
            return Err(refused(
                "the aud of client_assertion must be the issuer or the token endpoint",
            ));
        }
        let exp = claims
            .exp
            .ok_or_else(|| refused("client_assertion must carry exp"))?;
        if now > exp.saturating_add(CLIENT_ASSERTION_CLOCK_SKEW_SECS) {
            return Err(refused("client_assertion has expired"));
        }
        let furthest = now + MAX_CLIENT_ASSERTION_LIFETIME_SECS + CLIENT_ASSERTION_CLOCK_SKEW_SECS;
        if exp > furthest {
            return Err(refused(
                "the exp of client_assertion lies further ahead than an assertion may live",
            ));
        }
        let in_the_future =
            |at: Option<i64>| at.is_some_and(|at| at > now + CLIENT_ASSERTION_CLOCK_SKEW_SECS);
        if in_the_future(claims.nbf) {
            return Err(refused("client_assertion is not valid yet (nbf)"));
        }
        if in_the_future(claims.iat) {
            return Err(refused("client_assertion is issued in the future (iat)"));
        }
        let jti = claims
            .jti
            .filter(|jti| !jti.is_empty())
            .ok_or_else(|| refused("client_assertion must carry jti"))?;
        if jti.chars().count() > MAX_CLIENT_ASSERTION_JTI_CHARS {
            return Err(refused("the jti of client_assertion is too long"));
        }
        Ok(Authenticated {
            config: &client.config,
            assertion: Some(AssertionUse {
                jti_hash: jose::sha256_b64(jti.as_bytes()),
                keep_until: exp + CLIENT_ASSERTION_CLOCK_SKEW_SECS,
            }),
        })
    }
}

/// Records the single use of a client assertion of `client_id`; a `jti` of the client still
/// kept is a replay (RFC 7523 §3), refused. The insert decides, under the table's primary key,
/// so that of two concurrent uses exactly one passes; a row kept past its assertion's life is
/// taken over, since its assertion is refused by its expiry anyway.
fn record_assertion_use(tx: &Tx<'_>, client_id: &str, used: &AssertionUse, now: i64) -> Result<()> {
    if !relying_parties::record_assertion_id(tx, client_id, &used.jti_hash, used.keep_until, now)? {
        return Err(refused("the jti of client_assertion was used already"));
    }
    Ok(())
}

/// The client id of a request as it claims it, before any check: the Basic user, the
/// `client_id` parameter, or the `sub` of the client assertion. For counting failures only.
fn claimed_client_id(headers: &HeaderMap, params: &Params) -> Option<String> {
    if let Some((id, _)) = basic_credentials(headers) {
        return Some(id);
    }
    if let Some(id) = params.optional("client_id") {
        return Some(id.to_owned());
    }
    let jws = UnverifiedJws::parse(params.optional(PARAM_CLIENT_ASSERTION)?, "assertion").ok()?;
    let claims: ReceivedAssertion =
        jose::parse_claims(jws.unverified_payload(), "assertion").ok()?;
    claims.sub
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

/// Whether `error` is the refusal of a client authentication, which counts as a failure (a
/// database fault does not).
fn is_refusal(error: &ServerError) -> bool {
    matches!(
        error,
        ServerError::InvalidClient | ServerError::InvalidClientAuthentication(_)
    )
}

/// Authenticates the client of a token or backchannel request from `source`, whose form
/// parameters are `params`.
///
/// Failures are counted per source address: once the policy's number in the last minute is
/// reached, every authentication from that address is refused with `slow_down` (429) until the
/// window has passed, the right credentials included, or guessing would go on at full speed.
/// They are also counted per registered client id, from all addresses together, and beyond the
/// policy's number the operator is alerted in the log; that count refuses nothing, since a
/// refusal would let anyone hold a relying party up and would answer differently for ids that
/// exist. A replayed assertion is a failure like any other.
pub(super) async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    source: IpAddr,
) -> Result<RelyingPartyConfig> {
    // RFC 7523 §3: the audience may be the issuer or the token endpoint URL, at every endpoint
    // that authenticates clients (CIBA §7.1 names the issuer for the backchannel endpoint).
    let audiences = [
        state.url.clone(),
        format!("{}{}", state.url, oidc::PATH_TOKEN),
    ];
    let authenticated = state
        .clients
        .authenticate(headers, params, &audiences, clock::now())
        .map(|a| (a.config.clone(), a.assertion));
    // The database work may run more than once (a conflict between instances), so it sees the
    // outcome of the credentials by reference and hands a refusal back for the caller to return.
    let (accepted, refusal) = match authenticated {
        Ok(pair) => (Some(pair), None),
        Err(refusal) if is_refusal(&refusal) => (None, Some(refusal)),
        Err(fault) => return Err(fault),
    };
    let refusal_text = refusal
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let claimed = claimed_client_id(headers, params).filter(|id| state.clients.name(id).is_some());
    let decided = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let policy = &app.policy;
            let by_source = Bucket::ClientAuthFailuresBySource(source);
            let source_limit =
                Limit::per_minute(policy.max_client_auth_failures_per_source_per_minute);
            if let Err(exceeded) = rate::check(&tx, by_source, source_limit, now)? {
                return Err(ServerError::ClientAuthRateLimited {
                    retry_after: exceeded.retry_after,
                });
            }
            // `Err(None)`: the credentials' refusal, held by the caller.
            let outcome: std::result::Result<RelyingPartyConfig, Option<ServerError>> =
                match &accepted {
                    Some((config, Some(used))) => {
                        record_assertion_use(&tx, &config.client_id, used, now)
                            .map(|()| config.clone())
                            .map_err(Some)
                    }
                    Some((config, None)) => Ok(config.clone()),
                    None => Err(None),
                };
            match outcome {
                Ok(config) => {
                    tx.commit()?;
                    Ok(Ok(config))
                }
                Err(refusal) if refusal.as_ref().is_none_or(is_refusal) => {
                    rate::record(&tx, by_source, source_limit, now)?;
                    if let Some(id) = &claimed {
                        let by_client = Bucket::ClientAuthFailuresByClient(id);
                        let alert = Limit::per_minute(
                            policy.alert_client_auth_failures_per_client_per_minute,
                        );
                        // Alerted when this failure fills the window, not at every failure
                        // beyond it: a flood of wrong secrets would otherwise flood the log.
                        let counted = rate::take(&tx, by_client, alert, now)?.is_ok();
                        if counted && rate::room(&tx, by_client, alert, now)? == 0 {
                            tracing::warn!(
                                client_id = %id,
                                "failed authentications of one client id beyond the alert \
                                 level: its credentials may be under attack"
                            );
                        }
                    }
                    tx.commit()?;
                    let reason = refusal
                        .as_ref()
                        .map_or_else(|| refusal_text.clone(), ToString::to_string);
                    tracing::info!(%source, %reason, "a client authentication failed");
                    Ok(Err(refusal))
                }
                Err(Some(fault)) => Err(fault),
                Err(None) => Err(ServerError::Internal("a refusal without a reason".into())),
            }
        })
        .await?;
    match decided {
        Ok(config) => Ok(config),
        Err(Some(refusal)) => Err(refusal),
        Err(None) => {
            Err(refusal
                .unwrap_or_else(|| ServerError::Internal("a refusal without a reason".into())))
        }
    }
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
                .authenticate_basic(&basic("online-overheid:demo-secret"))
                .is_ok()
        );
        assert!(
            clients
                .authenticate_basic(&basic("online-overheid:demo-secreT"))
                .is_err()
        );
        assert!(
            clients
                .authenticate_basic(&basic("someone:demo-secret"))
                .is_err()
        );
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
