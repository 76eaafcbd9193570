//! The HTTP client of the phone API: every request carries a DPoP-style proof by the device key,
//! answers are size-bounded, and JSON error bodies become typed [`CoreError`]s.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use sleutel_protocol::api::{ApiError, codes};
use sleutel_protocol::display::clean_display_text;
use sleutel_protocol::dpop::{self, PROOF_HEADER};
use sleutel_protocol::jose::Jwk;
use sleutel_protocol::limits::MAX_BODY_BYTES;

use crate::error::CoreError;
use crate::keystore::{Keystore, KeystoreSigner};

/// Time allowed to open a connection: a phone on a bad network gives up quickly and retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest server error explanation kept, in characters: a sentence for a dialog, not a page.
const MAX_ERROR_DESCRIPTION_CHARS: usize = 200;
/// Longest unexpected server error code kept, in characters: the API's codes are short words.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// Whether the server may have carried out a call that failed with `e`: the request may have
/// reached it and only the answer was lost or unusable (a transport failure, a server failure,
/// an answer from a proxy, a success answer the phone could not read). Such a call must be
/// retried with the same local state. Only an error answer from the Sleutel API itself (a JSON
/// body with a 4xx status) is a refusal the phone may act on.
pub(crate) fn outcome_unknown(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Network { .. } | CoreError::ServerUnavailable { .. }
    )
}

/// Whether the server said the enrollment is at another step than the call belongs to.
pub(crate) fn is_wrong_step(e: &CoreError) -> bool {
    matches!(e, CoreError::Server { code, .. } if code == codes::WRONG_STEP)
}

/// The device key a request is signed with.
pub(crate) struct DeviceKey<'a> {
    keystore: &'a dyn Keystore,
    alias: &'a str,
    jwk: Jwk,
}

impl<'a> DeviceKey<'a> {
    /// Loads the public part of the device key under `alias`.
    pub(crate) fn load(keystore: &'a dyn Keystore, alias: &'a str) -> Result<Self, CoreError> {
        let public = keystore.public_key(alias.to_owned())?;
        Self::from_sec1(keystore, alias, &public)
    }

    /// The device key under `alias` whose public key the keystore gave as the SEC1 point
    /// `public` (when it generated the key, say).
    pub(crate) fn from_sec1(
        keystore: &'a dyn Keystore,
        alias: &'a str,
        public: &[u8],
    ) -> Result<Self, CoreError> {
        let jwk = Jwk::from_sec1(public).map_err(|_| {
            CoreError::from(crate::KeystoreError::Unavailable {
                detail: "the keystore returned an invalid public key".into(),
            })
        })?;
        Ok(Self {
            keystore,
            alias,
            jwk,
        })
    }

    /// The public key as a JWK.
    pub(crate) fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// A signer for this key.
    pub(crate) fn signer(&self) -> KeystoreSigner<'a> {
        KeystoreSigner::new(self.keystore, self.alias)
    }

    /// Whether the keystore says this key lives in secure hardware. A keystore that cannot
    /// tell counts as no: the phone then claims less than it may have, never more.
    pub(crate) fn in_hardware(&self) -> bool {
        match self.keystore.is_hardware_backed(self.alias.to_owned()) {
            Ok(in_hardware) => in_hardware,
            Err(e) => {
                warn!("the keystore cannot tell whether the device key is in hardware: {e}");
                false
            }
        }
    }
}

/// The HTTP client, shared by every account.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new() -> Result<Self, CoreError> {
        // The process-wide provider may already be installed (by us or the host app): fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A redirect would point the proof's URL at another target: refuse them.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CoreError::Network {
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self { http })
    }

    /// Sends one request to `base_url` + `path` with a proof by `device`, the JSON `body` (if
    /// any) sent byte for byte as hashed in the proof, and decodes a JSON answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        base_url: &str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        device: &DeviceKey<'_>,
    ) -> Result<T, CoreError> {
        self.call_with_proof_id(base_url, method, path, body, device, &crate::random_id()?)
            .await
    }

    /// As [`Client::call`], with the proof id `jti` chosen by the caller: a call the phone must
    /// be able to ask about later (a code change) is known to the server by it. `jti` must be
    /// fresh and random, as every proof id.
    pub(crate) async fn call_with_proof_id<T: DeserializeOwned>(
        &self,
        base_url: &str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        device: &DeviceKey<'_>,
        jti: &str,
    ) -> Result<T, CoreError> {
        let bytes = self
            .signed_call(base_url, method, path, body, device, jti)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            CoreError::unavailable(None, format!("the server's answer could not be read: {e}"))
        })
    }

    /// The body of a success answer to a call signed with `device`'s proof `jti`, or the error
    /// the answer says. Not generic, so the phones' library carries the HTTP exchange once,
    /// not once for every answer type.
    async fn signed_call(
        &self,
        base_url: &str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        device: &DeviceKey<'_>,
        jti: &str,
    ) -> Result<Vec<u8>, CoreError> {
        let url = format!("{}{path}", base_url.trim_end_matches('/'));
        let body = body.unwrap_or_default();
        let proof = dpop::make_proof(
            &device.signer(),
            device.jwk(),
            method.as_str(),
            &url,
            &body,
            jti,
            crate::now(),
        )?;
        let mut request = self
            .http
            .request(method, &url)
            .header(PROOF_HEADER, proof)
            .header(reqwest::header::ACCEPT, "application/json");
        if !body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(network)?;
        let status = response.status();
        let bytes = read_bounded(response, status).await?;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(error_from_body(status, &bytes))
        }
    }
}

fn network(e: reqwest::Error) -> CoreError {
    // reqwest's Display includes the URL but never headers or bodies, so nothing secret leaks.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    };
    CoreError::Network {
        detail: format!("{kind}: {e}"),
    }
}

/// Reads the body, refusing one larger than [`MAX_BODY_BYTES`] without buffering it all.
async fn read_bounded(
    mut response: reqwest::Response,
    status: StatusCode,
) -> Result<Vec<u8>, CoreError> {
    let too_large = || {
        CoreError::unavailable(
            failure_status(status),
            format!("the server's answer exceeds {MAX_BODY_BYTES} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The status to report in [`CoreError::ServerUnavailable`]: none for a success answer.
fn failure_status(status: StatusCode) -> Option<u16> {
    (!status.is_success()).then_some(status.as_u16())
}

/// Turns an error answer into the error the caller can act on. Only a JSON body with a 4xx
/// status is the API's refusal; a 5xx is [`CoreError::ServerUnavailable`] whatever its body
/// says, so that [`outcome_unknown`] recognises it, and so is any body that is not the API's.
pub(crate) fn error_from_body(status: StatusCode, body: &[u8]) -> CoreError {
    let parsed = serde_json::from_slice::<ApiError>(body);
    match parsed {
        // A 408 is no refusal: the server gave up waiting for the request's work, which may
        // still run to its end, so the call may have been carried out (a code change included).
        Ok(error) if status.is_client_error() && status != StatusCode::REQUEST_TIMEOUT => {
            map_api_error(error)
        }
        parsed => CoreError::unavailable(
            Some(status.as_u16()),
            match parsed {
                Ok(error) => {
                    clean_display_text(&error.error_description, MAX_ERROR_DESCRIPTION_CHARS)
                }
                Err(_) => status
                    .canonical_reason()
                    .unwrap_or("unexpected answer")
                    .to_owned(),
            },
        ),
    }
}

/// Maps the server's error codes to [`CoreError`]. Codes that only a bug could cause (a
/// malformed request, a bad proof) stay [`CoreError::Server`].
pub(crate) fn map_api_error(error: ApiError) -> CoreError {
    let description = clean_display_text(&error.error_description, MAX_ERROR_DESCRIPTION_CHARS);
    match error.error.as_str() {
        codes::UNKNOWN_ENROLLMENT | codes::ENROLLMENT_EXPIRED => CoreError::EnrollmentExpired,
        codes::INVALID_IDENTITY_TOKEN | codes::IDENTITY_REFUSED => CoreError::IdentityRefused {
            reason: description,
        },
        codes::WRONG_SMS_CODE => CoreError::WrongSmsCode {
            attempts_left: error.attempts_left.unwrap_or(0),
        },
        codes::SMS_CODE_EXPIRED => CoreError::SmsCodeExpired,
        codes::WRONG_IDENTITY_CODE => CoreError::WrongIdentityCode {
            attempts_left: error.attempts_left.unwrap_or(0),
        },
        codes::IDENTITY_CODE_EXPIRED => CoreError::IdentityCodeExpired,
        codes::IDENTITY_CODE_USED => CoreError::IdentityCodeUsed,
        codes::IDENTITY_CODE_BLOCKED => CoreError::IdentityCodeBlocked,
        codes::METHOD_NOT_ALLOWED => CoreError::CodeRequired,
        codes::TOO_MANY_ATTEMPTS => CoreError::TooManyAttempts,
        codes::RESEND_TOO_SOON => CoreError::ResendTooSoon {
            retry_after_secs: error.retry_after.unwrap_or(0),
        },
        codes::RATE_LIMITED => CoreError::RateLimited {
            retry_after_secs: error.retry_after.unwrap_or(0),
        },
        // The server no longer knows this device: for the person it is the same as a revocation.
        codes::DEVICE_REVOKED | codes::UNKNOWN_DEVICE => CoreError::DeviceRevoked,
        codes::UNKNOWN_REQUEST => CoreError::UnknownRequest,
        codes::REQUEST_EXPIRED => CoreError::RequestExpired,
        codes::REQUEST_ALREADY_ANSWERED => CoreError::RequestAlreadyAnswered,
        codes::WRONG_PIN => CoreError::WrongCode {
            attempts_left: error.attempts_left.unwrap_or(0),
        },
        codes::ACCOUNT_BLOCKED => CoreError::AccountBlocked,
        codes::WRONG_NUMBER => CoreError::WrongNumber,
        codes::SIGN_IN_LINK_EXPIRED => CoreError::SignInLinkExpired,
        codes::SIGN_IN_LINK_USED => CoreError::SignInLinkUsed,
        codes::SIGN_IN_LINK_INVALID => CoreError::NotASignInLink {
            reason: description,
        },
        // The phone checks tokens before sending them; a server with stricter rules refuses
        // the token as the phone's own check would.
        codes::INVALID_PUSH_TOKEN => CoreError::InvalidInput {
            field: "token".into(),
            reason: description,
        },
        _ => CoreError::Server {
            code: clean_display_text(&error.error, MAX_ERROR_CODE_CHARS),
            description,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str) -> ApiError {
        ApiError {
            error: code.into(),
            error_description: "d".into(),
            attempts_left: Some(2),
            retry_after: Some(30),
        }
    }

    #[test]
    fn a_request_timeout_leaves_the_outcome_unknown() {
        let body = serde_json::to_vec(&api(codes::REQUEST_TIMEOUT)).unwrap();
        let error = error_from_body(StatusCode::REQUEST_TIMEOUT, &body);
        assert!(outcome_unknown(&error), "{error:?}");
        // A refusal of the API with another 4xx status stays one the phone may act on.
        let refused = error_from_body(StatusCode::CONFLICT, &body);
        assert!(!outcome_unknown(&refused), "{refused:?}");
    }

    #[test]
    fn sign_in_link_refusals_map_to_their_own_errors() {
        assert_eq!(
            map_api_error(api(codes::SIGN_IN_LINK_EXPIRED)),
            CoreError::SignInLinkExpired
        );
        assert_eq!(
            map_api_error(api(codes::SIGN_IN_LINK_USED)),
            CoreError::SignInLinkUsed
        );
        assert!(matches!(
            map_api_error(api(codes::SIGN_IN_LINK_INVALID)),
            CoreError::NotASignInLink { .. }
        ));
    }

    #[test]
    fn server_error_codes_map_to_what_the_caller_can_do() {
        assert_eq!(
            map_api_error(api(codes::WRONG_PIN)),
            CoreError::WrongCode { attempts_left: 2 }
        );
        assert_eq!(
            map_api_error(api(codes::WRONG_SMS_CODE)),
            CoreError::WrongSmsCode { attempts_left: 2 }
        );
        assert_eq!(
            map_api_error(api(codes::RESEND_TOO_SOON)),
            CoreError::ResendTooSoon {
                retry_after_secs: 30
            }
        );
        assert_eq!(
            map_api_error(api(codes::RATE_LIMITED)),
            CoreError::RateLimited {
                retry_after_secs: 30
            }
        );
        assert_eq!(
            map_api_error(api(codes::ACCOUNT_BLOCKED)),
            CoreError::AccountBlocked
        );
        assert_eq!(
            map_api_error(api(codes::DEVICE_REVOKED)),
            CoreError::DeviceRevoked
        );
        assert_eq!(
            map_api_error(api(codes::WRONG_IDENTITY_CODE)),
            CoreError::WrongIdentityCode { attempts_left: 2 }
        );
        assert_eq!(
            map_api_error(api(codes::IDENTITY_CODE_EXPIRED)),
            CoreError::IdentityCodeExpired
        );
        assert_eq!(
            map_api_error(api(codes::IDENTITY_CODE_USED)),
            CoreError::IdentityCodeUsed
        );
        assert_eq!(
            map_api_error(api(codes::IDENTITY_CODE_BLOCKED)),
            CoreError::IdentityCodeBlocked
        );
        assert_eq!(
            map_api_error(api(codes::METHOD_NOT_ALLOWED)),
            CoreError::CodeRequired
        );
        assert_eq!(
            map_api_error(api(codes::IDENTITY_REFUSED)),
            CoreError::IdentityRefused { reason: "d".into() }
        );
        assert_eq!(
            map_api_error(api(codes::INVALID_PUSH_TOKEN)),
            CoreError::InvalidInput {
                field: "token".into(),
                reason: "d".into()
            }
        );
        assert_eq!(
            map_api_error(api(codes::INVALID_PROOF)),
            CoreError::Server {
                code: codes::INVALID_PROOF.into(),
                description: "d".into()
            }
        );
    }

    #[test]
    fn server_failures_keep_their_status_whatever_the_body() {
        let body = serde_json::to_vec(&api(codes::INTERNAL_ERROR)).unwrap();
        let e = error_from_body(StatusCode::INTERNAL_SERVER_ERROR, &body);
        assert_eq!(
            e,
            CoreError::ServerUnavailable {
                status: Some(500),
                detail: "d".into()
            }
        );
        assert!(outcome_unknown(&e));
        // Even a known code: a 5xx says the server failed, not that it refused.
        let body = serde_json::to_vec(&api(codes::WRONG_STEP)).unwrap();
        assert!(outcome_unknown(&error_from_body(
            StatusCode::SERVICE_UNAVAILABLE,
            &body
        )));
    }

    #[test]
    fn only_a_json_refusal_of_the_api_is_a_known_outcome() {
        let refusal = error_from_body(
            StatusCode::CONFLICT,
            &serde_json::to_vec(&api(codes::WRONG_STEP)).unwrap(),
        );
        assert!(is_wrong_step(&refusal));
        assert!(!outcome_unknown(&refusal));
        assert!(!outcome_unknown(&map_api_error(api(
            codes::INVALID_REQUEST
        ))));
        assert!(!outcome_unknown(&CoreError::EnrollmentExpired));
        for unknown in [
            CoreError::Network {
                detail: "timed out".into(),
            },
            // A proxy's page, not an answer of the API.
            error_from_body(StatusCode::REQUEST_TIMEOUT, b"<html>"),
            // A success answer the phone could not read, or an oversize one.
            CoreError::ServerUnavailable {
                status: None,
                detail: String::new(),
            },
        ] {
            assert!(outcome_unknown(&unknown), "{unknown:?}");
        }
    }

    #[test]
    fn non_json_error_bodies_name_the_http_status() {
        assert_eq!(
            error_from_body(StatusCode::BAD_GATEWAY, b"<html>"),
            CoreError::ServerUnavailable {
                status: Some(502),
                detail: "Bad Gateway".into()
            }
        );
    }
}
