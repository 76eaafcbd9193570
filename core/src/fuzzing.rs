//! The phone's readers of outside input, reachable by the fuzz targets (`fuzz/`, feature
//! `fuzzing`). Each function here is a thin door to the code the authenticator runs, not a copy
//! of it: what the fuzzer finds there, a phone would hit. No app enables the feature.
//!
//! The outside input the phone reads: the bank's return link, the counter's activation link and
//! the codes the person types, push payloads, the server's published keys, signed action
//! requests, the server's error answers and the return URL of an app sign-in.

use sleutel_protocol::action::ActionRequest;
use sleutel_protocol::api::PushMessage;
use sleutel_protocol::jose::Jwks;

use crate::actions::{self, ActionView};
use crate::error::CoreError;
use crate::{client, enrollment::input, server_keys, sign_in};

/// The identity token of the bank's return link `link` for `enrollment_id`, as
/// [`Authenticator::complete_bank_handoff`](crate::Authenticator::complete_bank_handoff) reads it.
pub fn bank_return_link(link: &str, enrollment_id: &str) -> Result<String, CoreError> {
    input::parse_bank_return(link, enrollment_id)
}

/// The token of the counter e-mail's activation link, as the counter enrollment reads it.
pub fn counter_activation_link(link: &str) -> Result<String, CoreError> {
    input::activation_link(link).map(|token| token.as_str().to_owned())
}

/// The canonical form of an identification code from the eID website as the person typed it.
pub fn identification_code(typed: &str) -> Result<String, CoreError> {
    input::identification_code(typed).map(|code| code.as_str().to_owned())
}

/// The canonical form of an activation code from the counter as the person typed it.
pub fn activation_code(typed: &str) -> Result<String, CoreError> {
    input::activation_code(typed).map(|code| code.as_str().to_owned())
}

/// A push payload as [`Authenticator::handle_push`](crate::Authenticator::handle_push) reads it
/// before it looks up the account.
pub fn push_payload(payload: &str) -> Result<PushMessage, CoreError> {
    actions::parse_push(payload)
}

/// The keys the phone pins from the server's published set (`GET /v1/server-keys`, JSON),
/// with `thumbprint` as the key the app was built for, if any. The JSON is read as the HTTP
/// client reads an answer body.
pub fn server_keys(body: &[u8], thumbprint: Option<&str>) -> Result<Jwks, CoreError> {
    let fetched: Jwks =
        serde_json::from_slice(body).map_err(|e| CoreError::untrusted(e.to_string()))?;
    server_keys::to_pin(fetched, thumbprint)
}

/// An action request JWS verified against the pinned `server_keys` for the account
/// `account_id` of the server `issuer` at `now`, and the view the person would be shown: the
/// request as verified and the cleaned view.
pub fn action_request(
    jws: &str,
    server_keys: &Jwks,
    issuer: &str,
    account_id: &str,
    now: i64,
) -> Result<(ActionRequest, ActionView), CoreError> {
    let verified = actions::verify_request_for(jws, server_keys, issuer, account_id, now)?;
    let shown = actions::view(account_id, verified.request.clone());
    Ok((verified.request, shown))
}

/// What the phone makes of an error answer with HTTP status `status` and body `body`, or `None`
/// when `status` is no HTTP status code at all (the HTTP client never hands such a one over).
pub fn error_answer(status: u16, body: &[u8]) -> Option<CoreError> {
    let status = reqwest::StatusCode::from_u16(status).ok()?;
    Some(client::error_from_body(status, body))
}

/// The return URL of an app sign-in as the phone accepts it from the server at `server_url`.
pub fn sign_in_return_url(url: &str, server_url: &str) -> Result<String, CoreError> {
    sign_in::check_return_url(url, server_url)
}
