//! A relying party ("Online overheid") logging a citizen in through OpenID Connect CIBA in poll
//! mode, and verifying the ID token it receives against the server's JWKS.

use std::sync::Arc;
use std::time::Duration;

use sleutel_protocol::api::{
    self, BackchannelAuthResponse, DiscoveryDocument, IdTokenClaims, TokenResponse, codes,
};
use sleutel_protocol::jose::Jwks;
use tokio::sync::OnceCell;

use crate::sim::json_or_error;
use crate::{HarnessError, Result, http_client, now};

/// What a relying party asks for.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The citizen's phone number (`login_hint`).
    pub phone_number: String,
    /// The binding message shown on both screens.
    pub binding_message: Option<String>,
    /// Scopes; `openid profile` asks for the name.
    pub scope: String,
    /// `acr_values`: [`api::ACR_CODE_OR_BIOMETRIC`] lets the person confirm with a biometric;
    /// without it the code is required.
    pub acr_values: Option<String>,
}

impl LoginRequest {
    /// A login with the name (`openid profile`).
    pub fn new(phone_number: &str) -> Self {
        Self {
            phone_number: phone_number.to_owned(),
            binding_message: None,
            scope: "openid profile".into(),
            acr_values: None,
        }
    }

    /// Accepts a biometric confirmation as well as the code.
    pub fn allowing_biometrics(mut self) -> Self {
        self.acr_values = Some(api::ACR_CODE_OR_BIOMETRIC.to_owned());
        self
    }

    /// Sets the binding message.
    pub fn with_message(mut self, message: &str) -> Self {
        self.binding_message = Some(message.to_owned());
        self
    }
}

/// A registered relying party.
#[derive(Clone)]
pub struct RelyingParty {
    http: reqwest::Client,
    base: String,
    client_id: String,
    secret: String,
    /// The discovery document, fetched once: it names every endpoint and the issuer.
    discovery: Arc<OnceCell<DiscoveryDocument>>,
}

impl RelyingParty {
    /// The relying party `client_id` with `secret`, at the server `base`.
    pub fn new(base: &str, client_id: &str, secret: &str) -> Result<Self> {
        Ok(Self {
            http: http_client()?,
            base: base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            discovery: Arc::default(),
        })
    }

    /// The demo relying party "Online overheid".
    pub fn demo(base: &str) -> Result<Self> {
        Self::new(base, "online-overheid", "demo-secret")
    }

    /// The server's discovery document.
    pub async fn discovery(&self) -> Result<&DiscoveryDocument> {
        self.discovery
            .get_or_try_init(|| async {
                let url = format!("{}{}", self.base, api::PATH_OIDC_DISCOVERY);
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
        let endpoint = &self.discovery().await?.backchannel_authentication_endpoint;
        let mut form = vec![
            ("scope", request.scope.as_str()),
            ("login_hint", request.phone_number.as_str()),
        ];
        if let Some(message) = &request.binding_message {
            form.push(("binding_message", message));
        }
        if let Some(acr_values) = &request.acr_values {
            form.push(("acr_values", acr_values));
        }
        let response = self.authenticated(endpoint).form(&form).send().await?;
        json_or_error(response).await
    }

    /// Polls the token endpoint once.
    pub async fn poll_token(&self, auth_req_id: &str) -> Result<TokenResponse> {
        let endpoint = &self.discovery().await?.token_endpoint;
        let response = self
            .authenticated(endpoint)
            .form(&[
                ("grant_type", api::CIBA_GRANT_TYPE),
                ("auth_req_id", auth_req_id),
            ])
            .send()
            .await?;
        json_or_error(response).await
    }

    /// A POST with client_secret_basic: RFC 6749 §2.3.1 form-encodes id and secret first.
    fn authenticated(&self, endpoint: &str) -> reqwest::RequestBuilder {
        self.http.post(endpoint).basic_auth(
            form_encode(&self.client_id),
            Some(form_encode(&self.secret)),
        )
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

    /// Verifies an ID token against the server's JWKS, issuer and this client id.
    pub async fn verify_id_token(&self, id_token: &str) -> Result<IdTokenClaims> {
        let issuer = &self.discovery().await?.issuer;
        api::verify_id_token(
            id_token,
            &self.jwks().await?,
            issuer,
            &self.client_id,
            now(),
        )
        .map_err(|e| HarnessError::Verification(e.to_string()))
    }

    /// The whole login: start, wait for the citizen, verify the ID token.
    pub async fn login(&self, request: &LoginRequest, timeout: Duration) -> Result<IdTokenClaims> {
        let started = self.backchannel_authorize(request).await?;
        let token = self.wait_for_token(&started, timeout).await?;
        self.verify_id_token(&token.id_token).await
    }
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
