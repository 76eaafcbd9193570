//! Firebase Cloud Messaging through the HTTP v1 API. The server authenticates as a Google
//! service account: it signs a JWT assertion with the account's RSA key (RS256, with `ring`,
//! which rustls already links: docs/decisions/0005), trades it at the account's `token_uri` for
//! an OAuth 2.0 access token (RFC 7523), and keeps that token until shortly before it expires.
//! The message is data only (`account_id`, `request_id`), high priority, and lives on FCM no
//! longer than the request.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::json;
use sleutel_protocol::jose;
use zeroize::Zeroizing;

use super::{
    Delivery, Outcome, Refusal, bounded_body, http_client, refusal, retry_after, transport,
};
use crate::clock;
use crate::config::{FcmConfig, check_service_url};
use crate::error::StartError;

/// The OAuth 2.0 scope of sending through FCM.
pub(crate) const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The grant type of a JWT assertion (RFC 7523 §2.1).
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Lifetime of the signed assertion: Google accepts at most an hour, and it is used at once.
pub(crate) const ASSERTION_LIFETIME_SECS: i64 = 3600;

/// How long before its expiry an access token is replaced: a token that expires while a send is
/// on its way is refused, and five minutes covers any clock difference and slow call.
pub(crate) const ACCESS_TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Longest an access token is kept, whatever lifetime the token endpoint states: Google's live
/// an hour. A stated lifetime is outside input; without this bound an absurd one would overflow
/// the clock arithmetic, and a token kept far beyond its real life would only be refused.
pub(crate) const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Longest access token accepted from the token endpoint, in bytes: Google's are a few hundred.
const MAX_ACCESS_TOKEN_BYTES: usize = 8 * 1024;

/// Longest Firebase project id accepted: Google project ids have 6 to 30 characters.
const MAX_PROJECT_ID_CHARS: usize = 30;

/// The fields of a service account's JSON key file that the server reads (the file has more).
/// Every field is optional here, so that a missing one is named rather than described by the
/// JSON parser, whose messages can quote the file.
#[derive(Deserialize)]
struct ServiceAccountFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// An access token and when to replace it.
struct AccessToken {
    value: Zeroizing<String>,
    refresh_at: Instant,
}

/// FCM with its credentials and the access token in use.
pub(crate) struct Fcm {
    http: reqwest::Client,
    send_url: String,
    token_uri: String,
    client_email: String,
    key_id: Option<String>,
    key: RsaKeyPair,
    rng: SystemRandom,
    access: tokio::sync::Mutex<Option<AccessToken>>,
}

// The key and the access token stay out of Debug output.
impl fmt::Debug for Fcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fcm")
            .field("send_url", &self.send_url)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl Fcm {
    /// Reads the service account's key file named in `config`. Errors name the file and what
    /// is wrong, never its contents.
    pub(crate) fn load(config: &FcmConfig) -> Result<Self, StartError> {
        let path = config.service_account_file.display().to_string();
        let unusable = |detail: String| StartError::PushCredentials {
            path: path.clone(),
            detail,
        };
        let text = Zeroizing::new(
            std::fs::read_to_string(&config.service_account_file)
                .map_err(|e| unusable(format!("cannot read it: {e}")))?,
        );
        let file: ServiceAccountFile = serde_json::from_str(&text).map_err(|e| {
            unusable(format!(
                "not a service account's JSON key file ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if file.kind.as_deref() != Some("service_account") {
            return Err(unusable(
                "not a service account's key file (\"type\" is not \"service_account\")".into(),
            ));
        }
        // The key is moved into memory that is wiped on drop before anything can fail.
        let pem = file.private_key.map(Zeroizing::new);
        let missing = |field: &str| unusable(format!("the file has no \"{field}\""));
        let pem = pem.ok_or_else(|| missing("private_key"))?;
        let client_email = file.client_email.ok_or_else(|| missing("client_email"))?;
        let project = config
            .project_id
            .clone()
            .or(file.project_id)
            .ok_or_else(|| missing("project_id"))?;
        check_project_id(&project)?;
        let token_uri = config
            .token_uri
            .clone()
            .or(file.token_uri)
            .ok_or_else(|| missing("token_uri"))?;
        let token_uri = check_service_url("the FCM token_uri", &token_uri)?;
        let api_base = check_service_url(
            "the FCM API base URL",
            config
                .api_base
                .as_deref()
                .unwrap_or(FcmConfig::DEFAULT_API_BASE),
        )?;
        let key = rsa_key(&pem).map_err(unusable)?;
        Ok(Self {
            http: http_client(false)?,
            send_url: format!("{api_base}/v1/projects/{project}/messages:send"),
            token_uri,
            client_email,
            key_id: file.private_key_id,
            key,
            rng: SystemRandom::new(),
            access: tokio::sync::Mutex::new(None),
        })
    }

    /// One attempt at `delivery`.
    pub(crate) async fn send(&self, delivery: &Delivery) -> Outcome {
        let access = match self.access_token().await {
            Ok(access) => access,
            Err(outcome) => return outcome,
        };
        // Checked again here: fetching the access token may have taken the request's last
        // seconds, and FCM takes no TTL of zero.
        let ttl = delivery.expires_at - clock::now();
        if ttl <= 0 {
            return Outcome::Expired;
        }
        let body = json!({
            "message": {
                "token": delivery.target.token,
                "data": {
                    "account_id": delivery.message.account_id,
                    "request_id": delivery.message.request_id,
                },
                "android": {
                    "priority": "HIGH",
                    "ttl": format!("{ttl}s"),
                },
            }
        });
        let sent = self
            .http
            .post(&self.send_url)
            .bearer_auth(access.as_str())
            .json(&body)
            .send()
            .await;
        let Refusal {
            status,
            after,
            body,
        } = match refusal(sent).await {
            Ok(refused) => refused,
            Err(outcome) => return outcome,
        };
        let error = FcmError::read(&body);
        if error.error_code.as_deref() == Some("UNREGISTERED") {
            return Outcome::Unregistered;
        }
        let why = format!(
            "FCM answered HTTP {} {} {}",
            status.as_u16(),
            error.status.as_deref().unwrap_or("-"),
            error.error_code.as_deref().unwrap_or("-")
        );
        if status == StatusCode::UNAUTHORIZED {
            // The access token was refused (revoked, or expired early): get another.
            self.forget_access_token(&access).await;
            return Outcome::Retry { after, why };
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Outcome::Retry { after, why };
        }
        Outcome::Rejected(why)
    }

    /// The access token in use, or a new one when it is missing or about to expire. One
    /// refresh at a time: concurrent sends wait for it rather than each asking for a token.
    async fn access_token(&self) -> Result<Zeroizing<String>, Outcome> {
        let mut access = self.access.lock().await;
        if let Some(token) = access.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_access_token().await?;
        let value = fresh.value.clone();
        *access = Some(fresh);
        Ok(value)
    }

    /// Forgets the access token `refused`, which FCM refused, so that the next send fetches a
    /// new one. A token fetched since by another send stays: the sends in flight with the old
    /// one come back refused one after another, and each would otherwise throw the new token
    /// away and make the token endpoint issue yet another.
    async fn forget_access_token(&self, refused: &str) {
        let mut access = self.access.lock().await;
        if access
            .as_ref()
            .is_some_and(|token| token.value.as_str() == refused)
        {
            *access = None;
        }
    }

    /// Trades a freshly signed assertion for an access token at the token endpoint.
    async fn fetch_access_token(&self) -> Result<AccessToken, Outcome> {
        let assertion = self
            .assertion(clock::now())
            .map_err(|why| Outcome::Rejected(why.into()))?;
        let asked = Instant::now();
        let sent = self
            .http
            .post(&self.token_uri)
            .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)])
            .send()
            .await
            .map_err(|e| Outcome::Retry {
                after: None,
                why: format!("OAuth token endpoint: {}", transport(e)),
            })?;
        let status = sent.status();
        if !status.is_success() {
            let after = retry_after(sent.headers());
            let refusal = OAuthError::read(&bounded_body(sent).await);
            let why = format!(
                "the OAuth token endpoint answered HTTP {} {}",
                status.as_u16(),
                refusal.error.as_deref().unwrap_or("-")
            );
            return Err(
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    Outcome::Retry { after, why }
                } else {
                    Outcome::Rejected(why)
                },
            );
        }
        let body = bounded_body(sent).await;
        let granted: TokenResponse = serde_json::from_slice(&body).map_err(|_| Outcome::Retry {
            after: None,
            why: "the OAuth token endpoint's answer could not be read".into(),
        })?;
        let value = Zeroizing::new(granted.access_token);
        if value.is_empty() || value.len() > MAX_ACCESS_TOKEN_BYTES {
            return Err(Outcome::Rejected(
                "the OAuth token endpoint gave an unusable access token".into(),
            ));
        }
        Ok(AccessToken {
            value,
            refresh_at: refresh_at(asked, granted.expires_in),
        })
    }

    /// The service account's JWT assertion at `now` (RS256): it asks for the FCM scope at the
    /// token endpoint, for at most [`ASSERTION_LIFETIME_SECS`].
    fn assertion(&self, now: i64) -> Result<String, &'static str> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": FCM_SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let input = format!(
            "{}.{}",
            jose::b64(header.to_string()),
            jose::b64(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "the service account's key could not sign the OAuth assertion")?;
        Ok(format!("{input}.{}", jose::b64(signature)))
    }
}

/// When an access token asked for at `asked`, said to expire `expires_in` seconds later, is
/// replaced: [`ACCESS_TOKEN_REFRESH_MARGIN`] before it expires, keeping it at most
/// [`MAX_ACCESS_TOKEN_LIFETIME`]. A token without a stated lifetime serves the one send.
fn refresh_at(asked: Instant, expires_in: Option<u64>) -> Instant {
    let lifetime = Duration::from_secs(expires_in.unwrap_or(0)).min(MAX_ACCESS_TOKEN_LIFETIME);
    asked + lifetime.saturating_sub(ACCESS_TOKEN_REFRESH_MARGIN)
}

/// A Firebase project id goes into the URL path: lowercase letters, digits and hyphens only.
fn check_project_id(project: &str) -> Result<(), StartError> {
    let fits = !project.is_empty()
        && project.len() <= MAX_PROJECT_ID_CHARS
        && project
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fits {
        Ok(())
    } else {
        Err(StartError::Config(format!(
            "FCM project id {project:?} must be 1-{MAX_PROJECT_ID_CHARS} lowercase letters, \
             digits or '-'"
        )))
    }
}

/// The RSA key of a service account: a PKCS#8 `PRIVATE KEY` in PEM. What is wrong is said
/// without anything of the key.
fn rsa_key(pem: &str) -> Result<RsaKeyPair, String> {
    let (label, der) = pem_rfc7468::decode_vec(pem.as_bytes())
        .map_err(|_| "\"private_key\" is not a PEM block".to_owned())?;
    let der = Zeroizing::new(der);
    if label != "PRIVATE KEY" {
        return Err(format!(
            "\"private_key\" is a {label:?} block, not a PKCS#8 \"PRIVATE KEY\""
        ));
    }
    RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| format!("\"private_key\" is not a usable RSA key ({e})"))
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The token endpoint's refusal (RFC 6749 §5.2); only the code is read.
#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: Option<String>,
}

impl OAuthError {
    fn read(body: &[u8]) -> Self {
        let mut error: Self = serde_json::from_slice(body).unwrap_or_default();
        error.error = error.error.map(|code| loggable(&code));
        error
    }
}

/// What an FCM error answer says: `error.status` (`INVALID_ARGUMENT`, `NOT_FOUND`, ...) and
/// the FCM error code in `error.details` (`UNREGISTERED`, `QUOTA_EXCEEDED`, ...). The message
/// text is not read, so nothing FCM echoes reaches the log.
#[derive(Default)]
struct FcmError {
    status: Option<String>,
    error_code: Option<String>,
}

impl FcmError {
    fn read(body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Body {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(default)]
            status: Option<String>,
            #[serde(default)]
            details: Vec<Detail>,
        }
        #[derive(Deserialize)]
        struct Detail {
            #[serde(default, rename = "errorCode")]
            error_code: Option<String>,
        }
        let Ok(body) = serde_json::from_slice::<Body>(body) else {
            return Self::default();
        };
        Self {
            status: body.error.status.map(|s| loggable(&s)),
            error_code: body
                .error
                .details
                .into_iter()
                .find_map(|d| d.error_code)
                .map(|c| loggable(&c)),
        }
    }
}

/// Longest error code kept from a service's answer: the codes are short words.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// An error code from a service's answer, as the log may show it: letters, digits and `_`.
pub(crate) fn loggable(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(MAX_ERROR_CODE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FCM with the test-only service account key (tests/fixtures/README.md); nothing is sent.
    fn fcm(dir: &tempfile::TempDir) -> Fcm {
        let path = dir.path().join("service-account.json");
        let file = json!({
            "type": "service_account",
            "project_id": "sleutel-test",
            "private_key": include_str!("../../tests/fixtures/test-only-fcm-service-account-key.pem"),
            "client_email": "sleutel-push@sleutel-test.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token",
        });
        std::fs::write(&path, file.to_string()).unwrap();
        Fcm::load(&FcmConfig::new(path)).unwrap()
    }

    /// Makes `value` the access token in use.
    async fn holding(fcm: &Fcm, value: &str) {
        *fcm.access.lock().await = Some(AccessToken {
            value: Zeroizing::new(value.to_owned()),
            refresh_at: Instant::now() + Duration::from_secs(600),
        });
    }

    async fn held(fcm: &Fcm) -> Option<String> {
        fcm.access
            .lock()
            .await
            .as_ref()
            .map(|token| token.value.as_str().to_owned())
    }

    #[tokio::test]
    async fn a_refused_access_token_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let fcm = fcm(&dir);
        holding(&fcm, "refused").await;

        fcm.forget_access_token("refused").await;

        assert_eq!(held(&fcm).await, None);
    }

    #[tokio::test]
    async fn a_late_refusal_of_an_older_token_keeps_the_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let fcm = fcm(&dir);
        holding(&fcm, "newer").await;

        fcm.forget_access_token("older").await;

        assert_eq!(held(&fcm).await.as_deref(), Some("newer"));
    }

    #[test]
    fn an_fcm_error_gives_its_status_and_error_code_only() {
        let body = br#"{"error": {"code": 404, "message": "Requested entity was not found: tok",
            "status": "NOT_FOUND", "details": [{"@type":
            "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}"#;

        let error = FcmError::read(body);

        assert_eq!(error.status.as_deref(), Some("NOT_FOUND"));
        assert_eq!(error.error_code.as_deref(), Some("UNREGISTERED"));
    }

    #[test]
    fn a_body_that_is_not_an_fcm_error_reads_as_nothing() {
        let error = FcmError::read(b"<html>502</html>");

        assert_eq!((error.status, error.error_code), (None, None));
    }

    #[test]
    fn a_stated_lifetime_beyond_the_bound_is_cut_to_it() {
        let asked = Instant::now();

        let at = refresh_at(asked, Some(u64::MAX));

        assert_eq!(
            at,
            asked + MAX_ACCESS_TOKEN_LIFETIME - ACCESS_TOKEN_REFRESH_MARGIN
        );
    }

    #[test]
    fn project_ids_are_lowercase_words_with_hyphens() {
        assert!(check_project_id("sleutel-prod-42").is_ok());
        let long = "a".repeat(MAX_PROJECT_ID_CHARS + 1);
        for bad in ["", "Sleutel", "a/b", "a b", long.as_str()] {
            assert!(check_project_id(bad).is_err(), "{bad:?}");
        }
    }
}
