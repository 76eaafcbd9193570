//! A relying party ("Online overheid") logging a citizen in through OpenID Connect CIBA in poll
//! mode, and verifying the ID token it receives against the server's JWKS.

use std::time::Duration;

use sleutel_protocol::api::{
    self, BackchannelAuthResponse, DiscoveryDocument, IdTokenClaims, TokenResponse,
};
use sleutel_protocol::jose::{self, Jwks, UnverifiedJws};
use sleutel_protocol::limits::CLOCK_SKEW_SECS;

use crate::sim::api_error;
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
}

impl LoginRequest {
    /// A login with the name (`openid profile`).
    pub fn new(phone_number: &str) -> Self {
        Self {
            phone_number: phone_number.to_owned(),
            binding_message: None,
            scope: "openid profile".into(),
        }
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
}

impl RelyingParty {
    /// The relying party `client_id` with `secret`, at the server `base`.
    pub fn new(base: &str, client_id: &str, secret: &str) -> Result<Self> {
        Ok(Self {
            http: http_client()?,
            base: base.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    /// The demo relying party "Online overheid".
    pub fn demo(base: &str) -> Result<Self> {
        Self::new(base, "online-overheid", "demo-secret")
    }

    /// The server's discovery document.
    pub async fn discovery(&self) -> Result<DiscoveryDocument> {
        let response = self
            .http
            .get(format!("{}{}", self.base, api::PATH_OIDC_DISCOVERY))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(api_error(response).await);
        }
        Ok(response.json().await?)
    }

    /// Starts a backchannel authentication: the server pushes a request to the citizen's phone.
    pub async fn backchannel_authorize(
        &self,
        request: &LoginRequest,
    ) -> Result<BackchannelAuthResponse> {
        let discovery = self.discovery().await?;
        let mut form = vec![
            ("scope", request.scope.clone()),
            ("login_hint", request.phone_number.clone()),
        ];
        if let Some(message) = &request.binding_message {
            form.push(("binding_message", message.clone()));
        }
        let response = self
            .http
            .post(discovery.backchannel_authentication_endpoint)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(&self.secret)),
            )
            .form(&form)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(api_error(response).await);
        }
        Ok(response.json().await?)
    }

    /// Polls the token endpoint once.
    pub async fn poll_token(&self, auth_req_id: &str) -> Result<TokenResponse> {
        let response = self
            .http
            .post(format!("{}{}", self.base, api::PATH_OIDC_TOKEN))
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(&self.secret)),
            )
            .form(&[
                ("grant_type", api::CIBA_GRANT_TYPE),
                ("auth_req_id", auth_req_id),
            ])
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(api_error(response).await);
        }
        Ok(response.json().await?)
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
                Err(e) if e.api_code() == Some("authorization_pending") => {}
                Err(e) if e.api_code() == Some("slow_down") => interval += Duration::from_secs(5),
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout("the citizen's answer".into()));
            }
        }
    }

    /// Verifies an ID token: ES256 signature by a key of the server's JWKS, issuer, audience,
    /// expiry and issue time.
    pub async fn verify_id_token(&self, id_token: &str) -> Result<IdTokenClaims> {
        let discovery = self.discovery().await?;
        let jwks: Jwks = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await?
            .json()
            .await?;
        let jws = UnverifiedJws::parse(id_token, "id token")
            .map_err(|e| HarnessError::Verification(e.to_string()))?;
        let kid = jws.header.kid.clone().unwrap_or_default();
        let key = jwks
            .find(&kid)
            .ok_or_else(|| HarnessError::Verification(format!("no key {kid:?} in the JWKS")))?
            .to_verifying_key()
            .map_err(|e| HarnessError::Verification(e.to_string()))?;
        let payload = jws
            .verify(&key, api::ID_TOKEN_TYP, "id token")
            .map_err(|e| HarnessError::Verification(e.to_string()))?;
        let claims: IdTokenClaims = jose::parse_claims(&payload, "id token")
            .map_err(|e| HarnessError::Verification(e.to_string()))?;
        let now = now();
        if claims.iss != discovery.issuer {
            return Err(HarnessError::Verification(format!("issuer {}", claims.iss)));
        }
        if claims.aud != self.client_id {
            return Err(HarnessError::Verification(format!(
                "audience {}",
                claims.aud
            )));
        }
        if claims.exp <= now || claims.iat > now + CLOCK_SKEW_SECS {
            return Err(HarnessError::Verification(
                "token outside its lifetime".into(),
            ));
        }
        Ok(claims)
    }

    /// The whole login: start, wait for the citizen, verify the ID token.
    pub async fn login(&self, request: &LoginRequest, timeout: Duration) -> Result<IdTokenClaims> {
        let started = self.backchannel_authorize(request).await?;
        let token = self.wait_for_token(&started, timeout).await?;
        self.verify_id_token(&token.id_token).await
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before HTTP Basic.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
