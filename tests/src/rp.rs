//! A relying party ("Online overheid") logging a citizen in through OpenID Connect CIBA in poll
//! or ping mode, asking for each kind of request, claims, an acr and number matching, and
//! verifying the ID token it receives against the server's JWKS and against what it asked: the
//! token's `sleutel_action` claim ([`IdTokenClaims::sleutel_action`]) says what the person
//! approved (kind, binding message, payment, free-text digest, document, and the hash of the
//! signed request that names the server's evidence).
//!
//! A relying party authenticates with its secret (`client_secret_basic`) or with a signing key
//! (`private_key_jwt`, [`ClientKey`]): then every call carries a fresh client assertion.
//!
//! The `_raw` variants send the same requests with any form and hand back the server's answer
//! as it came, for tests that check a refusal's status, headers and body.

use std::sync::Arc;
use std::time::Duration;

use p256::ecdsa::SigningKey;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sleutel_protocol::action::{ActionKind, SignDocument, Transaction};
use sleutel_protocol::api::oidc::{
    BackchannelAuthResponse, ClientAssertionClaims, DiscoveryDocument, IdTokenClaims, TokenResponse,
};
use sleutel_protocol::api::{self, codes};
use sleutel_protocol::approval::ApprovedAction;
use sleutel_protocol::jose::{self, Header, Jwk, Jwks, b64};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::sim::json_or_error;
use crate::{HarnessError, Result, http_client};

/// The binding message of [`RelyingParty::start_login`], the login most tests start with.
pub const TEST_BINDING_MESSAGE: &str = "TEST-1";

/// What a relying party asks for.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The citizen's phone number (`login_hint`).
    pub phone_number: String,
    /// The binding message shown on both screens.
    pub binding_message: Option<String>,
    /// Scopes; `openid profile` asks for the name.
    pub scope: String,
    /// `acr_values`: [`api::oidc::ACR_CODE_OR_BIOMETRIC`] lets the person confirm with a biometric;
    /// without it the code is required.
    pub acr_values: Option<String>,
    /// The kind of request (`kind`); `None` is a login.
    pub kind: Option<ActionKind>,
    /// Claims asked with the `claims` parameter: name and whether essential (required).
    pub claims: Vec<(String, bool)>,
    /// The transaction to confirm.
    pub transaction: Option<Transaction>,
    /// The document to sign.
    pub document: Option<SignDocument>,
    /// Whether the relying party shows a number the person picks on the phone.
    pub number_matching: bool,
    /// The bearer token for pings, for a ping-mode client.
    pub client_notification_token: Option<String>,
    /// `requested_expiry` in seconds.
    pub requested_expiry: Option<i64>,
}

impl LoginRequest {
    /// A login with the name (`openid profile`).
    pub fn new(phone_number: &str) -> Self {
        Self {
            phone_number: phone_number.to_owned(),
            binding_message: None,
            scope: "openid profile".into(),
            acr_values: None,
            kind: None,
            claims: Vec::new(),
            transaction: None,
            document: None,
            number_matching: false,
            client_notification_token: None,
            requested_expiry: None,
        }
    }

    /// Only `openid`: no claim by scope.
    pub fn openid_only(mut self) -> Self {
        self.scope = "openid".into();
        self
    }

    /// Asks for `claim` as required (`essential`).
    pub fn requiring(mut self, claim: &str) -> Self {
        self.claims.push((claim.to_owned(), true));
        self
    }

    /// Asks for `claim` as optional.
    pub fn optionally(mut self, claim: &str) -> Self {
        self.claims.push((claim.to_owned(), false));
        self
    }

    /// Makes it a request of `kind`.
    pub fn of_kind(mut self, kind: ActionKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// A transaction confirmation of `transaction`.
    pub fn confirming(mut self, transaction: Transaction) -> Self {
        self.kind = Some(ActionKind::ConfirmTransaction);
        self.transaction = Some(transaction);
        self
    }

    /// A signature of `document`.
    pub fn signing(mut self, document: SignDocument) -> Self {
        self.kind = Some(ActionKind::Sign);
        self.document = Some(document);
        self
    }

    /// Shows a number for the person to pick on the phone.
    pub fn with_number_matching(mut self) -> Self {
        self.number_matching = true;
        self
    }

    /// Gives the bearer token for pings (ping mode).
    pub fn with_notification_token(mut self, token: &str) -> Self {
        self.client_notification_token = Some(token.to_owned());
        self
    }

    /// Asks for the request to expire after `secs` seconds.
    pub fn expiring_in(mut self, secs: i64) -> Self {
        self.requested_expiry = Some(secs);
        self
    }

    /// The form of the backchannel authentication request.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("scope", self.scope.clone()),
            ("login_hint", self.phone_number.clone()),
        ];
        let mut add = |name: &'static str, value: Option<String>| {
            if let Some(value) = value {
                form.push((name, value));
            }
        };
        add("binding_message", self.binding_message.clone());
        add("acr_values", self.acr_values.clone());
        add(
            "kind",
            self.kind.and_then(|k| match serde_json::to_value(k) {
                Ok(serde_json::Value::String(name)) => Some(name),
                _ => None,
            }),
        );
        if !self.claims.is_empty() {
            let id_token: serde_json::Map<String, serde_json::Value> = self
                .claims
                .iter()
                .map(|(claim, essential)| {
                    (claim.clone(), serde_json::json!({ "essential": essential }))
                })
                .collect();
            add(
                "claims",
                Some(serde_json::json!({ "id_token": id_token }).to_string()),
            );
        }
        match &self.transaction {
            Some(Transaction::Payment {
                amount,
                currency,
                payee,
                iban,
            }) => {
                add("transaction_amount", Some(amount.clone()));
                add("transaction_currency", Some(currency.clone()));
                add("transaction_payee", Some(payee.clone()));
                add("transaction_iban", Some(iban.clone()));
            }
            Some(Transaction::FreeText { text }) => add("transaction_text", Some(text.clone())),
            None => {}
        }
        if let Some(document) = &self.document {
            add("document_name", Some(document.name.clone()));
            add("document_sha256", Some(document.sha256.clone()));
        }
        add(
            "number_matching",
            self.number_matching.then(|| "true".to_owned()),
        );
        add(
            "client_notification_token",
            self.client_notification_token.clone(),
        );
        add(
            "requested_expiry",
            self.requested_expiry.map(|s| s.to_string()),
        );
        form
    }

    /// Checks that `approved` (an ID token's `sleutel_action`) is the approval of this request:
    /// the same kind (a login when none was set), binding message, transaction (free text by
    /// the digest of the text as shown) and document. A mismatch is a
    /// [`HarnessError::Verification`] naming the member.
    pub fn check_approved(&self, approved: &ApprovedAction) -> Result<()> {
        approved
            .check_asked(
                self.kind.unwrap_or(ActionKind::Login),
                self.binding_message.as_deref(),
                self.transaction.as_ref(),
                self.document.as_ref(),
            )
            .map_err(|e| HarnessError::Verification(e.to_string()))
    }

    /// Accepts a biometric confirmation as well as the code.
    pub fn allowing_biometrics(mut self) -> Self {
        self.acr_values = Some(api::oidc::ACR_CODE_OR_BIOMETRIC.to_owned());
        self
    }

    /// Sets the binding message.
    pub fn with_message(mut self, message: &str) -> Self {
        self.binding_message = Some(message.to_owned());
        self
    }
}

/// Lifetime of the client assertions a [`ClientKey`] makes: one call's worth, well inside the
/// server's maximum ([`sleutel_protocol::limits::MAX_CLIENT_ASSERTION_LIFETIME_SECS`]).
pub const CLIENT_ASSERTION_LIFETIME_SECS: i64 = 60;

/// The `typ` of the client assertions a [`ClientKey`] makes: the one RFC 7519 §5.1 suggests.
pub const CLIENT_ASSERTION_TYP: &str = "JWT";

/// A relying party's signing key for `private_key_jwt` (RFC 7523): it signs a fresh client
/// assertion, with a random `jti`, for every call.
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<SigningKey>,
    kid: Option<String>,
}

impl ClientKey {
    /// The key `key`, named `kid` in the assertions' header (none: the server must have this
    /// key alone registered).
    pub fn new(key: SigningKey, kid: Option<&str>) -> Self {
        Self {
            key: Arc::new(key),
            kid: kid.map(str::to_owned),
        }
    }

    /// The public key as the relying party registers it: with its `kid`, for ES256 signatures.
    pub fn public_jwk(&self) -> Jwk {
        let jwk = Jwk::from_verifying_key(self.key.verifying_key());
        match &self.kid {
            Some(kid) => jwk.published(kid.clone()),
            None => jwk,
        }
    }

    /// A client assertion of `client_id` for `audience` (the issuer or the token endpoint
    /// URL), valid from `now` for [`CLIENT_ASSERTION_LIFETIME_SECS`], with a random `jti`.
    pub fn assertion(&self, client_id: &str, audience: &str, now: i64) -> Result<String> {
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti)
            .map_err(|e| HarnessError::Usage(format!("no randomness: {e}")))?;
        let claims = ClientAssertionClaims {
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            aud: audience.to_owned(),
            jti: jose::b64(jti),
            iat: now,
            exp: now + CLIENT_ASSERTION_LIFETIME_SECS,
        };
        let payload =
            serde_json::to_vec(&claims).map_err(|e| HarnessError::Usage(e.to_string()))?;
        let mut header = Header::es256(CLIENT_ASSERTION_TYP);
        if let Some(kid) = &self.kid {
            header = header.with_kid(kid.clone());
        }
        match jose::sign_compact(&header, &payload, self.key.as_ref()) {
            Ok(token) => Ok(token),
            Err(never) => match never {},
        }
    }
}

/// How a relying party proves who it is.
#[derive(Clone)]
enum Credentials {
    /// `client_secret_basic`.
    Secret(String),
    /// `private_key_jwt`.
    Key(ClientKey),
}

/// A registered relying party.
#[derive(Clone)]
pub struct RelyingParty {
    http: reqwest::Client,
    base: String,
    client_id: String,
    credentials: Credentials,
    /// The discovery document, fetched once: it names every endpoint and the issuer.
    discovery: Arc<OnceCell<DiscoveryDocument>>,
}

impl RelyingParty {
    /// The relying party `client_id` with `secret`, at the server `base`.
    pub fn new(base: &str, client_id: &str, secret: &str) -> Result<Self> {
        Ok(Self::with_client(http_client()?, base, client_id, secret))
    }

    /// The relying party `client_id` with `secret`, at the server `base`, over `http` (a client
    /// the caller already built).
    pub fn with_client(http: reqwest::Client, base: &str, client_id: &str, secret: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            credentials: Credentials::Secret(secret.to_owned()),
            discovery: Arc::default(),
        }
    }

    /// The relying party `client_id` authenticating with `key` (`private_key_jwt`), at the
    /// server `base`.
    pub fn with_key(base: &str, client_id: &str, key: ClientKey) -> Result<Self> {
        Ok(Self::new(base, client_id, "")?.signing_with(client_id, key))
    }

    /// The same server's endpoints called as `client_id` authenticating with `key` instead of
    /// a secret.
    pub fn signing_with(&self, client_id: &str, key: ClientKey) -> Self {
        Self {
            client_id: client_id.to_owned(),
            credentials: Credentials::Key(key),
            ..self.clone()
        }
    }

    /// The same server's endpoints called with another client id and secret, as a client that
    /// guesses or mistypes them does.
    pub fn with_credentials(&self, client_id: &str, secret: &str) -> Self {
        // The clone keeps the discovery document: it is the same whoever asks.
        Self {
            client_id: client_id.to_owned(),
            credentials: Credentials::Secret(secret.to_owned()),
            ..self.clone()
        }
    }

    /// The client id this relying party authenticates with.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The demo relying party "Online overheid".
    pub fn demo(base: &str) -> Result<Self> {
        Self::new(base, "online-overheid", "demo-secret")
    }

    /// The server's discovery document.
    pub async fn discovery(&self) -> Result<&DiscoveryDocument> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!("{}{}", self.base, api::oidc::PATH_DISCOVERY);
                json_or_error(self.http.get(url).send().await?).await
            })
            .await
    }

    /// The keys that sign ID tokens, from the discovery document's JWKS URL.
    pub async fn jwks(&self) -> Result<Jwks> {
        let jwks_uri = &self.discovery().await?.jwks_uri;
        json_or_error(self.http.get(jwks_uri).send().await?).await
    }

    /// Starts a backchannel authentication: the server pushes a request to the citizen's phone.
    pub async fn backchannel_authorize(
        &self,
        request: &LoginRequest,
    ) -> Result<BackchannelAuthResponse> {
        json_or_error(self.backchannel_authorize_raw(&request.form()).await?).await
    }

    /// Starts the login most tests begin with: the name (`openid profile`) for `phone_number`,
    /// with the binding message [`TEST_BINDING_MESSAGE`].
    pub async fn start_login(&self, phone_number: &str) -> Result<BackchannelAuthResponse> {
        self.backchannel_authorize(
            &LoginRequest::new(phone_number).with_message(TEST_BINDING_MESSAGE),
        )
        .await
    }

    /// A backchannel authentication request with `form` as it is (any parameters, none
    /// checked here), answered as it came.
    pub async fn backchannel_authorize_raw<F: Serialize + ?Sized>(
        &self,
        form: &F,
    ) -> Result<reqwest::Response> {
        let discovery = self.discovery().await?;
        // CIBA §7.1: the audience of an assertion at this endpoint is the issuer.
        self.post_authenticated(
            &discovery.backchannel_authentication_endpoint,
            &discovery.issuer,
            form,
        )
        .await
    }

    /// Polls the token endpoint once.
    pub async fn poll_token(&self, auth_req_id: &str) -> Result<TokenResponse> {
        json_or_error(self.token_raw(auth_req_id).await?).await
    }

    /// Polls the token endpoint once, answered as it came (a pending request, a refusal, the
    /// `Retry-After` of a client held back).
    pub async fn token_raw(&self, auth_req_id: &str) -> Result<reqwest::Response> {
        self.token_request_raw(&[
            ("grant_type", api::oidc::CIBA_GRANT_TYPE),
            ("auth_req_id", auth_req_id),
        ])
        .await
    }

    /// A token request with `form` as it is (any grant), authenticated as this relying party
    /// is, answered as it came.
    pub async fn token_request_raw<F: Serialize + ?Sized>(
        &self,
        form: &F,
    ) -> Result<reqwest::Response> {
        let endpoint = &self.discovery().await?.token_endpoint;
        // OIDC Core §9: the audience of an assertion at the token endpoint is its URL.
        self.post_authenticated(endpoint, endpoint, form).await
    }

    /// POSTs `form` to `endpoint`, authenticated: with client_secret_basic (RFC 6749 §2.3.1
    /// form-encodes id and secret first), or with a fresh client assertion for `audience`
    /// added to the form (RFC 7523 §2.2).
    async fn post_authenticated<F: Serialize + ?Sized>(
        &self,
        endpoint: &str,
        audience: &str,
        form: &F,
    ) -> Result<reqwest::Response> {
        let request = self.http.post(endpoint).form(form);
        let request = match &self.credentials {
            Credentials::Secret(secret) => request
                .basic_auth(form_encode(&self.client_id), Some(form_encode(secret)))
                .build()?,
            Credentials::Key(key) => {
                let assertion =
                    key.assertion(&self.client_id, audience, sleutel_protocol::clock::now())?;
                let mut request = request.build()?;
                let mut body = request
                    .body()
                    .and_then(reqwest::Body::as_bytes)
                    .unwrap_or_default()
                    .to_vec();
                if !body.is_empty() {
                    body.push(b'&');
                }
                let added = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair(
                        "client_assertion_type",
                        api::oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                    )
                    .append_pair("client_assertion", &assertion)
                    .finish();
                body.extend_from_slice(added.as_bytes());
                *request.body_mut() = Some(body.into());
                request
            }
        };
        Ok(self.http.execute(request).await?)
    }

    /// Polls at the given interval until the person has answered, as CIBA poll mode asks:
    /// `authorization_pending` waits, `slow_down` adds 5 seconds (CIBA §11), anything else ends.
    pub async fn wait_for_token(
        &self,
        started: &BackchannelAuthResponse,
        timeout: Duration,
    ) -> Result<TokenResponse> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut interval = Duration::from_secs(started.interval.max(1) as u64);
        loop {
            tokio::time::sleep(interval).await;
            match self.poll_token(&started.auth_req_id).await {
                Ok(token) => return Ok(token),
                Err(e) if e.api_code() == Some(codes::AUTHORIZATION_PENDING) => {}
                Err(e) if e.api_code() == Some(codes::SLOW_DOWN) => {
                    interval += Duration::from_secs(5)
                }
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout("the citizen's answer".into()));
            }
        }
    }

    /// Ping mode: waits for the server's ping for `started` at `receiver`, checks that it
    /// carries `notification_token` as bearer, then fetches the token once.
    pub async fn token_after_ping(
        &self,
        started: &BackchannelAuthResponse,
        receiver: &crate::ping::PingReceiver,
        notification_token: &str,
        timeout: Duration,
    ) -> Result<TokenResponse> {
        let bearer = receiver.wait_for(&started.auth_req_id, timeout).await?;
        if bearer != notification_token {
            return Err(HarnessError::Verification(
                "the ping carried another bearer token than the one given".into(),
            ));
        }
        self.poll_token(&started.auth_req_id).await
    }

    /// Verifies an ID token against the server's JWKS, issuer and this client id.
    pub async fn verify_id_token(&self, id_token: &str) -> Result<IdTokenClaims> {
        let issuer = &self.discovery().await?.issuer;
        api::oidc::verify_id_token(
            id_token,
            &self.jwks().await?,
            issuer,
            &self.client_id,
            sleutel_protocol::clock::now(),
        )
        .map_err(|e| HarnessError::Verification(e.to_string()))
    }

    /// Verifies an ID token as [`RelyingParty::verify_id_token`] does, then checks that it
    /// approves what `request` asked ([`LoginRequest::check_approved`]): the token of a login
    /// is no confirmation of a payment, nor of another amount or IBAN.
    pub async fn verify_approval(
        &self,
        id_token: &str,
        request: &LoginRequest,
    ) -> Result<IdTokenClaims> {
        let claims = self.verify_id_token(id_token).await?;
        request.check_approved(&claims.sleutel_action)?;
        Ok(claims)
    }

    /// Exchanges an authorization code at the token endpoint (authorization code flow,
    /// authenticated as this relying party is: `client_secret_basic` or `private_key_jwt`),
    /// with the redirect URI of the authorization request and the PKCE verifier whose S256
    /// challenge it carried.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
    ) -> Result<TokenResponse> {
        let response = self
            .token_request_raw(&[
                ("grant_type", api::oidc::AUTHORIZATION_CODE_GRANT_TYPE),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", code_verifier),
            ])
            .await?;
        json_or_error(response).await
    }

    /// Verifies the ID token of an authorization code exchange as OIDC Core §3.1.3.7 asks:
    /// what [`RelyingParty::verify_id_token`] checks, then the `nonce` against the one this
    /// relying party sent (a token replayed into another login fails), then `at_hash` against
    /// the access token beside it (§3.1.3.8: the access token was not swapped).
    pub async fn verify_code_flow_tokens(
        &self,
        token: &TokenResponse,
        nonce: &str,
    ) -> Result<IdTokenClaims> {
        let claims = self.verify_id_token(&token.id_token).await?;
        check_nonce_and_at_hash(&claims, &token.access_token, nonce)?;
        Ok(claims)
    }

    /// The whole login: start, wait for the citizen, verify the ID token and what it approves.
    pub async fn login(&self, request: &LoginRequest, timeout: Duration) -> Result<IdTokenClaims> {
        let started = self.backchannel_authorize(request).await?;
        let token = self.wait_for_token(&started, timeout).await?;
        self.verify_approval(&token.id_token, request).await
    }
}

/// The checks an authorization code flow adds to an ID token whose signature, issuer, audience
/// and expiry verified: its `nonce` is the one sent (compared in constant time), its `at_hash`
/// is that of `access_token`.
pub fn check_nonce_and_at_hash(
    claims: &IdTokenClaims,
    access_token: &str,
    nonce: &str,
) -> Result<()> {
    let nonce_matches = claims
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(nonce.as_bytes())));
    if !nonce_matches {
        return Err(HarnessError::Verification(
            "the ID token's nonce is not the one sent".into(),
        ));
    }
    if claims.at_hash.as_deref() != Some(at_hash(access_token).as_str()) {
        return Err(HarnessError::Verification(
            "the ID token's at_hash does not match the access token".into(),
        ));
    }
    Ok(())
}

/// The `at_hash` of an access token (OIDC Core §3.1.3.6): base64url of the left half of its
/// SHA-256, the hash that goes with ES256.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    b64(&digest[..digest.len() / 2])
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use sleutel_protocol::action::ActionKind;

    use super::*;

    fn claims(nonce: Option<&str>, access_token: &str) -> IdTokenClaims {
        IdTokenClaims {
            iss: "http://127.0.0.1:1".into(),
            sub: "pairwise".into(),
            aud: "online-overheid".into(),
            iat: 0,
            exp: 1,
            auth_time: 0,
            acr: api::oidc::ACR_CODE.into(),
            amr: vec!["pin".into()],
            name: None,
            given_name: None,
            family_name: None,
            birthdate: None,
            national_register_number: None,
            phone_number: None,
            age_over_18: None,
            nonce: nonce.map(str::to_owned),
            at_hash: Some(at_hash(access_token)),
            sleutel_action: ApprovedAction {
                kind: ActionKind::Login,
                request_hash: "hash".into(),
                binding_message: None,
                transaction: None,
                document: None,
            },
        }
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_sha256_in_base64url() {
        // OIDC Core §3.1.3.6; the digest computed apart: printf %s token | openssl dgst -sha256.
        assert_eq!(at_hash("token"), "PEaenWxYddN6Q_NT1PiOYQ");
    }

    #[test]
    fn a_token_with_the_nonce_sent_and_its_access_tokens_hash_passes() {
        assert!(check_nonce_and_at_hash(&claims(Some("n-1"), "at-1"), "at-1", "n-1").is_ok());
    }

    #[test]
    fn a_token_with_another_nonce_is_refused() {
        let result = check_nonce_and_at_hash(&claims(Some("n-2"), "at-1"), "at-1", "n-1");
        assert!(matches!(result, Err(HarnessError::Verification(_))));
    }

    #[test]
    fn a_token_without_a_nonce_is_refused() {
        let result = check_nonce_and_at_hash(&claims(None, "at-1"), "at-1", "n-1");
        assert!(matches!(result, Err(HarnessError::Verification(_))));
    }

    #[test]
    fn a_token_beside_another_access_token_is_refused() {
        let result = check_nonce_and_at_hash(&claims(Some("n-1"), "at-1"), "at-2", "n-1");
        assert!(matches!(result, Err(HarnessError::Verification(_))));
    }
}
