//! The Apple Push Notification service over HTTP/2, with token-based authentication: an ES256
//! provider token (header `kid` = the key id, claims `iss` = the team id and `iat`) signed with
//! the developer account's `.p8` key. Apple accepts a provider token for an hour and refuses one
//! renewed more often than every 20 minutes, so one token serves every push until it is
//! [`PROVIDER_TOKEN_REFRESH`] old.
//!
//! The push is an alert with a generic text and `mutable-content`, so that the app's
//! notification service extension can fetch the signed request (the ids ride beside `aps`) and
//! put the request's own text in its place; Apple never sees what is asked.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use reqwest::StatusCode;
use serde_json::json;
use sleutel_protocol::jose::{self, Header};
use zeroize::Zeroizing;

use super::fcm::loggable;
use super::{Delivery, Outcome, Refusal, http_client, refusal};
use crate::config::{ApnsConfig, check_service_url};
use crate::error::StartError;

/// Age at which the provider token is replaced: Apple refuses tokens older than an hour
/// (`ExpiredProviderToken`), and refuses renewing more often than every 20 minutes
/// (`TooManyProviderTokenUpdates`); 50 minutes keeps clear of both.
pub(crate) const PROVIDER_TOKEN_REFRESH: Duration = Duration::from_secs(50 * 60);

/// The shortest time between two provider tokens that Apple accepts.
pub(crate) const PROVIDER_TOKEN_MIN_AGE: Duration = Duration::from_secs(20 * 60);

/// The alert's title: the app's name, nothing about the request.
pub(crate) const ALERT_TITLE: &str = "Digitale sleutel";

/// The alert's text before the app's extension replaces it with the request's own: generic, so
/// that neither Apple nor a locked screen learns who asks what.
pub(crate) const ALERT_BODY: &str = "U hebt een nieuwe aanvraag. Open de app om ze te bekijken.";

/// Longest key id, team id and topic accepted: Apple's ids have 10 characters and bundle ids
/// are short; anything much longer is a configuration mistake.
const MAX_APNS_ID_CHARS: usize = 64;
/// Longest topic (bundle id, with a suffix such as `.voip`) accepted.
const MAX_TOPIC_CHARS: usize = 255;

/// A provider token and when it was made.
struct ProviderToken {
    jwt: String,
    issued: Instant,
}

/// APNs with its signing key and the provider token in use.
pub(crate) struct Apns {
    http: reqwest::Client,
    base: String,
    key_id: String,
    team_id: String,
    topic: String,
    key: SigningKey,
    provider: Mutex<Option<ProviderToken>>,
}

// The key stays out of Debug output.
impl fmt::Debug for Apns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Apns")
            .field("base", &self.base)
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Apns {
    /// Reads the `.p8` key named in `config`. Errors name the file and what is wrong, never its
    /// contents.
    pub(crate) fn load(config: &ApnsConfig) -> Result<Self, StartError> {
        let letters_or_digits = "letters or digits";
        check_id(
            "APNs key id",
            &config.key_id,
            MAX_APNS_ID_CHARS,
            letters_or_digits,
            |b| b.is_ascii_alphanumeric(),
        )?;
        check_id(
            "APNs team id",
            &config.team_id,
            MAX_APNS_ID_CHARS,
            letters_or_digits,
            |b| b.is_ascii_alphanumeric(),
        )?;
        check_id(
            "APNs topic",
            &config.topic,
            MAX_TOPIC_CHARS,
            "letters, digits, '.', '-' or '_'",
            |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'),
        )?;
        let base = check_service_url("the APNs endpoint", config.base_url())?;
        let path = config.key_file.display().to_string();
        let unusable = |detail: &str| StartError::PushCredentials {
            path: path.clone(),
            detail: detail.to_owned(),
        };
        let pem = Zeroizing::new(
            std::fs::read_to_string(&config.key_file)
                .map_err(|e| unusable(&format!("cannot read it: {e}")))?,
        );
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|_| unusable("not an APNs signing key (a PKCS#8 P-256 private key in PEM)"))?;
        Ok(Self {
            http: http_client(true)?,
            base,
            key_id: config.key_id.clone(),
            team_id: config.team_id.clone(),
            topic: config.topic.clone(),
            key,
            provider: Mutex::new(None),
        })
    }

    /// One attempt at `delivery`.
    pub(crate) async fn send(&self, delivery: &Delivery) -> Outcome {
        let message = &delivery.message;
        let body = json!({
            "aps": {
                "alert": {"title": ALERT_TITLE, "body": ALERT_BODY},
                "mutable-content": 1,
            },
            "account_id": message.account_id,
            "request_id": message.request_id,
        });
        // The token is hexadecimal (checked when it was registered), so it is safe in the path.
        let url = format!("{}/3/device/{}", self.base, delivery.target.token);
        let sent = self
            .http
            .post(url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("bearer {}", self.provider_token()),
            )
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", delivery.expires_at.to_string())
            .header("apns-collapse-id", &message.request_id)
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
        let reason = reason(&body);
        let why = format!("APNs answered HTTP {} {reason}", status.as_u16());
        match (status, reason.as_str()) {
            // The app was uninstalled, or the token never was one of this app's.
            (StatusCode::GONE, _) | (StatusCode::BAD_REQUEST, "BadDeviceToken") => {
                Outcome::Unregistered
            }
            (StatusCode::FORBIDDEN, "ExpiredProviderToken") => {
                if self.forget_provider_token() {
                    Outcome::Retry { after, why }
                } else {
                    Outcome::Rejected(format!(
                        "{why} for a token younger than Apple's 20 minutes: is the clock right?"
                    ))
                }
            }
            (StatusCode::TOO_MANY_REQUESTS, _) => Outcome::Retry { after, why },
            (status, _) if status.is_server_error() => Outcome::Retry { after, why },
            _ => Outcome::Rejected(why),
        }
    }

    /// The provider token in use, or a new one once it is [`PROVIDER_TOKEN_REFRESH`] old.
    fn provider_token(&self) -> String {
        let mut provider = self
            .provider
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match provider.as_ref() {
            Some(token) if token.issued.elapsed() < PROVIDER_TOKEN_REFRESH => token.jwt.clone(),
            _ => {
                let jwt = self.sign_provider_token(crate::clock::now());
                *provider = Some(ProviderToken {
                    jwt: jwt.clone(),
                    issued: Instant::now(),
                });
                jwt
            }
        }
    }

    /// Drops a provider token Apple called expired, unless it is younger than Apple lets a
    /// token be renewed; returns whether it was dropped.
    fn forget_provider_token(&self) -> bool {
        let mut provider = self
            .provider
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let old_enough = provider
            .as_ref()
            .is_none_or(|token| token.issued.elapsed() >= PROVIDER_TOKEN_MIN_AGE);
        if old_enough {
            *provider = None;
        }
        old_enough
    }

    /// A provider token made at `now`.
    fn sign_provider_token(&self, now: i64) -> String {
        let header = Header {
            alg: "ES256".into(),
            typ: None,
            kid: Some(self.key_id.clone()),
            jwk: None,
        };
        let claims = json!({"iss": self.team_id, "iat": now});
        let Ok(jwt) = jose::sign_compact(&header, claims.to_string().as_bytes(), &self.key);
        jwt
    }
}

/// The `reason` of an APNs error answer (`BadDeviceToken`, `Unregistered`, ...), as the log may
/// show it.
fn reason(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        reason: String,
    }
    serde_json::from_slice::<Body>(body)
        .map(|b| loggable(&b.reason))
        .unwrap_or_else(|_| "-".into())
}

/// Refuses an empty or overlong value, or one with a byte `allowed` refuses: these go into the
/// provider token and the request's headers.
fn check_id(
    what: &str,
    value: &str,
    max: usize,
    alphabet: &str,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), StartError> {
    if !value.is_empty() && value.len() <= max && value.bytes().all(allowed) {
        Ok(())
    } else {
        Err(StartError::Config(format!(
            "{what} {value:?} must be 1-{max} {alphabet}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apns_refusal_gives_its_reason_only() {
        assert_eq!(reason(br#"{"reason":"BadDeviceToken"}"#), "BadDeviceToken");
        assert_eq!(reason(b"<html>"), "-");
    }
}
