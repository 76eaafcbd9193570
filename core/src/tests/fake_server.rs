//! A minimal in-process server for the core's own tests. It checks every message with the
//! protocol crate's verifiers (DPoP proofs, proofs of possession, the two-signature response),
//! follows the reference server's enrollment steps and repeat rules, and can be told to lose an
//! answer after acting on the call, to fail, or to refuse. The reference server and the
//! end-to-end harness cover the real behaviour.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use serde::Serialize;
use sleutel_protocol::action::{
    ACTION_TYP, ActionKind, ActionRequest, RelyingParty, UserVerification,
};
use sleutel_protocol::api::{self, ApiError, codes};
use sleutel_protocol::dpop::{self, PROOF_HEADER};
use sleutel_protocol::jose::{self, GeneralJws, Header, Jwk, Jwks};
use sleutel_protocol::response::{Decision, DeclineReason, DeviceSignedResponse, UvMethod};

use crate::{Account, Authenticator, Bank};

/// The code the tests choose.
pub(crate) const CODE: &str = "13579";
/// Another acceptable code.
pub(crate) const OTHER_CODE: &str = "27182";
/// The SMS control code the fake always sends.
pub(crate) const SMS_CODE: &str = "123456";
/// The bank's return link for the fake's enrollment.
pub(crate) const BANK_RETURN: &str =
    "sleutel://enroll/bank?enrollment_id=enr-1&identity_token=a.b.c";

/// Where the fake's one enrollment stands, as on the reference server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Step {
    #[default]
    Identity,
    Sms,
    Keys,
    Done,
}

/// The calls a fault can be planted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Call {
    Identity,
    Sms,
    Complete,
    /// `POST /v1/device/pin`.
    Pin,
    /// `POST /v1/device/biometric`.
    Biometric,
    /// `POST /v1/device/pin/resolve`.
    Resolve,
}

/// What goes wrong with the next answer to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The server acts on the call, then the connection breaks in the middle of the answer.
    DropAnswer,
    /// The server acts on the call, then a proxy answers 502 with an HTML page.
    BadGateway,
    /// The server fails (500) without changing anything.
    FailUnchanged,
    /// The request never reaches the server in time: the phone sees the connection break, and
    /// the server keeps the request as sent ([`Fake::held_pin_change`]) for a test to deliver
    /// late.
    HoldRequest,
    /// The server acts on the call and never answers: the app dies waiting, as a test that
    /// drops the call's future plays it.
    ActThenHang,
}

/// A request as the phone sent it, held back to arrive later.
#[derive(Clone)]
pub(crate) struct HeldRequest {
    pub(crate) proof: String,
    pub(crate) body: Bytes,
}

/// The fake's state; tests read and change it between calls.
#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) issuer: String,
    pub(crate) account_id: String,
    pub(crate) server_key: Option<SigningKey>,
    /// A second signing key the fake publishes as `k2`.
    pub(crate) extra_key: Option<SigningKey>,
    pub(crate) step: Step,
    pub(crate) device_jkt: Option<String>,
    pub(crate) device_key: Option<VerifyingKey>,
    pub(crate) pin_key: Option<VerifyingKey>,
    pub(crate) requests: HashMap<String, String>,
    pub(crate) attempts_left: u32,
    pub(crate) answers: Vec<(Decision, Option<UvMethod>, Option<DeclineReason>)>,
    /// Key registrations that changed the server's state.
    pub(crate) registrations: u32,
    pub(crate) faults: HashMap<Call, Fault>,
    /// Refuse every completion with this status and code.
    pub(crate) refuse_completion: Option<(StatusCode, &'static str)>,
    /// Refuse every enrollment start with this status and code.
    pub(crate) refuse_start: Option<(StatusCode, &'static str)>,
    /// Answer every listing of pending requests with this status and code.
    pub(crate) list_error: Option<(StatusCode, &'static str)>,
    /// Send the bank handoff to this URL instead of an https one.
    pub(crate) handoff_url: Option<String>,
    /// The device was revoked: every call with a valid proof is refused with `device_revoked`.
    pub(crate) revoked: bool,
    /// The registered biometric key.
    pub(crate) biometric_key: Option<VerifyingKey>,
    /// Biometric keys the server took.
    pub(crate) biometric_registrations: u32,
    /// Calls to `DELETE /v1/device/biometric`.
    pub(crate) biometric_deletes: u32,
    /// The thumbprint of the device the last start named as replaced, its proof verified.
    pub(crate) replaced: Option<String>,
    /// The push token registered last, as the server received it.
    pub(crate) push_token: Option<(api::PushPlatform, String)>,
    /// Calls to `PUT /v1/device/push-token`, refused ones included.
    pub(crate) push_token_calls: u32,
    /// What the last completion said of the device key: in secure hardware or not.
    pub(crate) device_key_in_hardware: Option<bool>,
    /// The proof id of the code change applied last.
    pub(crate) pin_change_id: Option<String>,
    /// The code changes declared void by a resolve.
    pub(crate) void_changes: std::collections::HashSet<String>,
    /// Calls to `POST /v1/device/pin/resolve`.
    pub(crate) resolves: u32,
    /// The code change a [`Fault::HoldRequest`] kept back.
    pub(crate) held_pin_change: Option<HeldRequest>,
}

pub(crate) type Shared = Arc<Mutex<Fake>>;

fn error(status: StatusCode, code: &str, attempts_left: Option<u32>) -> Response {
    let body = ApiError {
        error: code.into(),
        error_description: code.into(),
        attempts_left,
        retry_after: None,
    };
    (status, axum::Json(body)).into_response()
}

fn ok<T: Serialize>(body: T) -> Response {
    axum::Json(body).into_response()
}

fn wrong_step() -> Response {
    error(StatusCode::CONFLICT, codes::WRONG_STEP, None)
}

/// The answer to a call the server has acted on, spoiled by the planted fault if any.
fn answer_with(fault: Option<Fault>, answer: Response) -> Response {
    match fault {
        None | Some(Fault::FailUnchanged) | Some(Fault::ActThenHang) => answer,
        // The length promises more than is sent: the client sees the connection end early.
        Some(Fault::DropAnswer | Fault::HoldRequest) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, "4096")
            .body(Body::from("{\"account_id\":"))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Some(Fault::BadGateway) => {
            (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>").into_response()
        }
    }
}

fn failed_unchanged() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL_ERROR,
        None,
    )
}

/// Checks the proof as the real server must: signature, method, path, body hash, age; and,
/// once a device is known, that the proof is by that device.
fn proof(
    fake: &Fake,
    headers: &HeaderMap,
    method: Method,
    uri: &Uri,
    body: &[u8],
) -> Option<Response> {
    let token = headers
        .get(PROOF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    match dpop::verify_proof(token, method.as_str(), target, body, crate::now()) {
        Ok(p) if fake.device_jkt.as_ref().is_none_or(|jkt| *jkt == p.jkt) => fake
            .revoked
            .then(|| error(StatusCode::UNAUTHORIZED, codes::DEVICE_REVOKED, None)),
        _ => Some(error(StatusCode::UNAUTHORIZED, codes::INVALID_PROOF, None)),
    }
}

async fn start(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let mut fake = s.lock().unwrap();
    let token = headers.get(PROOF_HEADER).unwrap().to_str().unwrap();
    let p = dpop::verify_proof(token, "POST", uri.path(), &body, crate::now()).unwrap();
    if let Some((status, code)) = fake.refuse_start {
        return error(status, code, None);
    }
    let started: api::StartEnrollment = serde_json::from_slice(&body).unwrap();
    // As the reference server: the replaced device's signature must hand its place to this key.
    let replaced = started.replaces.map(|replaced| replaced.verify(&p.jkt));
    if let Some(Err(_)) = replaced {
        return error(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, None);
    }
    fake.replaced = replaced.and_then(Result::ok);
    fake.device_jkt = Some(p.jkt);
    fake.step = Step::Identity;
    ok(api::EnrollmentStarted {
        enrollment_id: "enr-1".into(),
        nonce: "nonce-1".into(),
        handoff_url: Some(
            fake.handoff_url
                .clone()
                .unwrap_or_else(|| "https://bank.invalid/authorize?enrollment_id=enr-1".into()),
        ),
        expires_at: crate::now() + 600,
    })
}

async fn identity(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    let fault = fake.faults.remove(&Call::Identity);
    if fault == Some(Fault::FailUnchanged) {
        return failed_unchanged();
    }
    if fake.step != Step::Identity {
        return wrong_step();
    }
    let submitted: api::SubmitIdentity = serde_json::from_slice(&body).unwrap();
    if submitted.identity_token != "a.b.c" {
        return error(StatusCode::BAD_REQUEST, codes::INVALID_IDENTITY_TOKEN, None);
    }
    fake.step = Step::Sms;
    answer_with(
        fault,
        ok(api::SmsSent {
            phone_number_masked: "+32 4•• •• 34 56".into(),
            expires_at: crate::now() + 300,
            resend_after: crate::now() + 30,
        }),
    )
}

async fn sms(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    let fault = fake.faults.remove(&Call::Sms);
    if fault == Some(Fault::FailUnchanged) {
        return failed_unchanged();
    }
    let verified = ok(api::SmsVerified {
        display_name: "Jan Peeters".into(),
    });
    match fake.step {
        // Right after the SMS step, a repeated verification is answered as verified again.
        Step::Keys => return answer_with(fault, verified),
        Step::Identity | Step::Done => return wrong_step(),
        Step::Sms => {}
    }
    let verify: api::VerifySms = serde_json::from_slice(&body).unwrap();
    if verify.code != SMS_CODE {
        return error(StatusCode::BAD_REQUEST, codes::WRONG_SMS_CODE, Some(2));
    }
    fake.step = Step::Keys;
    answer_with(fault, verified)
}

async fn resend(State(s): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, b"") {
        return refusal;
    }
    if fake.step != Step::Sms {
        return wrong_step();
    }
    ok(api::SmsSent {
        phone_number_masked: "+32 4•• •• 34 56".into(),
        expires_at: crate::now() + 300,
        resend_after: crate::now() + 30,
    })
}

async fn server_keys(State(s): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::GET, &uri, b"") {
        return refusal;
    }
    ok(published_keys(&fake))
}

fn published_keys(fake: &Fake) -> Jwks {
    let mut keys = Vec::new();
    for (kid, key) in [("k1", &fake.server_key), ("k2", &fake.extra_key)] {
        if let Some(key) = key {
            keys.push(Jwk::from_verifying_key(key.verifying_key()).published(kid));
        }
    }
    Jwks { keys }
}

async fn complete(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    let fault = fake.faults.remove(&Call::Complete);
    if fault == Some(Fault::FailUnchanged) {
        return failed_unchanged();
    }
    if let Some((status, code)) = fake.refuse_completion {
        return error(status, code, None);
    }
    let done: api::CompleteEnrollment = serde_json::from_slice(&body).unwrap();
    assert_eq!(Some(done.device_key.thumbprint()), fake.device_jkt);
    fake.device_key_in_hardware = Some(done.device_key_in_hardware);
    let device = done.device_key.to_verifying_key().unwrap();
    let pin = done.pin_key.to_verifying_key().unwrap();
    for (key, role, pop) in [
        (&device, "device", &done.device_pop),
        (&pin, "pin", &done.pin_pop),
    ] {
        let message = api::enrollment_pop_message(role, "enr-1", "nonce-1");
        assert!(jose::verifies_b64(key, &message, pop), "{role}_pop");
    }
    match fake.step {
        // The same keys again: the answer was lost, the registration stands.
        Step::Done if fake.device_key == Some(device) && fake.pin_key == Some(pin) => {}
        // Another PIN key for the registered device is a wrong code, as at the real server.
        Step::Done if fake.device_key == Some(device) => {
            fake.attempts_left = fake.attempts_left.saturating_sub(1);
            return if fake.attempts_left == 0 {
                error(StatusCode::FORBIDDEN, codes::ACCOUNT_BLOCKED, Some(0))
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    codes::WRONG_PIN,
                    Some(fake.attempts_left),
                )
            };
        }
        Step::Keys => {
            fake.device_key = Some(device);
            fake.pin_key = Some(pin);
            fake.attempts_left = 3;
            fake.step = Step::Done;
            fake.registrations += 1;
        }
        _ => return wrong_step(),
    }
    answer_with(
        fault,
        ok(api::EnrollmentCompleted {
            account_id: fake.account_id.clone(),
            display_name: "Jan Peeters".into(),
            issuer: fake.issuer.clone(),
            server_keys: published_keys(&fake),
        }),
    )
}

async fn list(State(s): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::GET, &uri, b"") {
        return refusal;
    }
    if let Some((status, code)) = fake.list_error {
        return error(status, code, None);
    }
    ok(api::PendingRequests {
        requests: fake.requests.values().cloned().collect(),
    })
}

async fn one(
    State(s): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::GET, &uri, b"") {
        return refusal;
    }
    match fake.requests.get(&id) {
        Some(jws) => ok(api::RequestEnvelope {
            request: jws.clone(),
        }),
        None => error(StatusCode::NOT_FOUND, codes::UNKNOWN_REQUEST, None),
    }
}

async fn answer(
    State(s): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    let Some(request_jws) = fake.requests.get(&id).cloned() else {
        return error(StatusCode::CONFLICT, codes::REQUEST_ALREADY_ANSWERED, None);
    };
    let jws: GeneralJws = serde_json::from_slice(&body).unwrap();
    let signed = DeviceSignedResponse::verify(jws, fake.device_key.as_ref().unwrap()).unwrap();
    signed
        .response
        .validate(&id, &request_jws, crate::now())
        .unwrap();
    if fake.attempts_left == 0 {
        return error(StatusCode::FORBIDDEN, codes::ACCOUNT_BLOCKED, None);
    }
    if signed.response.decision == Decision::Approve {
        if signed.response.method == Some(UvMethod::Biometric) {
            let Some(key) = fake.biometric_key else {
                return error(StatusCode::BAD_REQUEST, codes::METHOD_NOT_ALLOWED, None);
            };
            if signed.verify_user(&key).is_err() {
                return error(StatusCode::BAD_REQUEST, codes::INVALID_RESPONSE, None);
            }
        } else if signed.verify_user(fake.pin_key.as_ref().unwrap()).is_err() {
            return wrong_code(&mut fake);
        }
    }
    fake.requests.remove(&id);
    let r = &signed.response;
    fake.answers.push((r.decision, r.method, r.reason));
    ok(api::ResponseAccepted {
        status: "done".into(),
    })
}

/// Counts a wrong code: `wrong_pin` with the attempts left, or `account_blocked` at the last.
fn wrong_code(fake: &mut Fake) -> Response {
    fake.attempts_left = fake.attempts_left.saturating_sub(1);
    let left = fake.attempts_left;
    if left == 0 {
        return error(StatusCode::FORBIDDEN, codes::ACCOUNT_BLOCKED, None);
    }
    error(StatusCode::FORBIDDEN, codes::WRONG_PIN, Some(left))
}

fn updated(status: &str) -> Response {
    ok(api::DeviceUpdated {
        status: status.into(),
    })
}

/// The proof id of a request whose proof [`proof`] accepted.
fn proof_id(headers: &HeaderMap, method: Method, uri: &Uri, body: &[u8]) -> String {
    let token = headers.get(PROOF_HEADER).unwrap().to_str().unwrap();
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    dpop::verify_proof(token, method.as_str(), target, body, crate::now())
        .unwrap()
        .jti
}

/// `POST /v1/device/pin`, as the reference server: the current PIN key authorises, a wrong one
/// counts, a change already applied is answered again, and one declared void is refused.
async fn change_pin(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    let fault = fake.faults.remove(&Call::Pin);
    if fault == Some(Fault::FailUnchanged) {
        return failed_unchanged();
    }
    if fault == Some(Fault::HoldRequest) {
        fake.held_pin_change = Some(HeldRequest {
            proof: headers
                .get(PROOF_HEADER)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned(),
            body,
        });
        return answer_with(fault, updated("pin_changed"));
    }
    let change_id = proof_id(&headers, Method::POST, &uri, &body);
    if fake.void_changes.contains(&change_id) {
        return error(StatusCode::CONFLICT, codes::CODE_CHANGE_VOID, None);
    }
    if fake.attempts_left == 0 {
        return error(StatusCode::FORBIDDEN, codes::ACCOUNT_BLOCKED, None);
    }
    let change: api::ChangePin = serde_json::from_slice(&body).unwrap();
    let new = change.new_pin_key.to_verifying_key().unwrap();
    let device_jkt = fake.device_jkt.clone().unwrap();
    let message = api::pin_change_message(&device_jkt, &change.new_pin_key.thumbprint());
    assert!(jose::verifies_b64(&new, &message, &change.new_pin_pop));
    if fake.pin_key != Some(new) {
        if !jose::verifies_b64(
            fake.pin_key.as_ref().unwrap(),
            &message,
            &change.current_pin_signature,
        ) {
            return wrong_code(&mut fake);
        }
        fake.pin_key = Some(new);
        fake.pin_change_id = Some(change_id);
        fake.attempts_left = 3;
    }
    answer_with(fault, updated("pin_changed"))
}

/// `POST /v1/device/pin/resolve`, as the reference server: `applied` for the change applied
/// last, otherwise `void`, recorded so that the change's late arrival is refused.
async fn resolve_pin_change(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    fake.resolves += 1;
    if fake.faults.remove(&Call::Resolve) == Some(Fault::FailUnchanged) {
        return failed_unchanged();
    }
    let asked: api::ResolveCodeChange = serde_json::from_slice(&body).unwrap();
    let outcome = if fake.pin_change_id.as_ref() == Some(&asked.change_id) {
        api::CodeChangeOutcome::Applied
    } else {
        fake.void_changes.insert(asked.change_id);
        api::CodeChangeOutcome::Void
    };
    ok(api::CodeChangeResolved { outcome })
}

/// Delivers the code change a [`Fault::HoldRequest`] kept back, as it was sent, to the fake at
/// `url`; the answer's status and error code.
pub(crate) async fn deliver_held_pin_change(url: &str, fake: &Shared) -> (StatusCode, String) {
    let held = fake.lock().unwrap().held_pin_change.take().unwrap();
    let response = reqwest::Client::new()
        .post(format!("{url}{}", api::PATH_DEVICE_PIN))
        .header(PROOF_HEADER, held.proof)
        .header(header::CONTENT_TYPE, "application/json")
        .body(held.body.to_vec())
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let text = response.text().await.unwrap();
    let code = serde_json::from_str::<ApiError>(&text)
        .map(|e| e.error)
        .unwrap_or_default();
    (status, code)
}

/// `POST /v1/device/biometric`: the PIN key authorises the biometric key.
async fn enable_biometric(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (answer, hang) = register_biometric(&s, &headers, &uri, &body);
    if hang {
        std::future::pending::<()>().await;
    }
    answer
}

/// What `enable_biometric` answers, and whether it then hangs instead of answering.
fn register_biometric(
    s: &Shared,
    headers: &HeaderMap,
    uri: &Uri,
    body: &Bytes,
) -> (Response, bool) {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, headers, Method::POST, uri, body) {
        return (refusal, false);
    }
    let fault = fake.faults.remove(&Call::Biometric);
    if fault == Some(Fault::FailUnchanged) {
        return (failed_unchanged(), false);
    }
    if fake.attempts_left == 0 {
        return (
            error(StatusCode::FORBIDDEN, codes::ACCOUNT_BLOCKED, None),
            false,
        );
    }
    let register: api::RegisterBiometricKey = serde_json::from_slice(body).unwrap();
    let key = register.biometric_key.to_verifying_key().unwrap();
    let device_jkt = fake.device_jkt.clone().unwrap();
    let message = api::biometric_enable_message(&device_jkt, &register.biometric_key.thumbprint());
    assert!(jose::verifies_b64(&key, &message, &register.biometric_pop));
    if !jose::verifies_b64(
        fake.pin_key.as_ref().unwrap(),
        &message,
        &register.pin_signature,
    ) {
        return (wrong_code(&mut fake), false);
    }
    fake.biometric_key = Some(key);
    fake.attempts_left = 3;
    fake.biometric_registrations += 1;
    (
        answer_with(fault, updated("biometric_enabled")),
        fault == Some(Fault::ActThenHang),
    )
}

/// `DELETE /v1/device/biometric`.
async fn disable_biometric(State(s): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::DELETE, &uri, b"") {
        return refusal;
    }
    fake.biometric_key = None;
    fake.biometric_deletes += 1;
    updated("biometric_disabled")
}

/// `PUT /v1/device/push-token`, as the reference server: an active device of an account that is
/// not blocked, a token its platform could have issued; a new token replaces the old.
async fn register_push_token(
    State(s): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut fake = s.lock().unwrap();
    fake.push_token_calls += 1;
    if let Some(refusal) = proof(&fake, &headers, Method::PUT, &uri, &body) {
        return refusal;
    }
    if fake.attempts_left == 0 {
        return error(StatusCode::FORBIDDEN, codes::ACCOUNT_BLOCKED, None);
    }
    let register: api::RegisterPushToken = serde_json::from_slice(&body).unwrap();
    match api::canonical_push_token(register.platform, &register.token) {
        Ok(token) => {
            fake.push_token = Some((register.platform, token));
            updated("push_token_registered")
        }
        Err(_) => error(StatusCode::BAD_REQUEST, codes::INVALID_PUSH_TOKEN, None),
    }
}

/// `POST /v1/device/deactivate`: the device is revoked for good.
async fn deactivate(State(s): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, b"") {
        return refusal;
    }
    fake.revoked = true;
    updated("deactivated")
}

/// Starts a fake server on a loopback port whose account id is `acct-1`.
pub(crate) async fn serve() -> (String, Shared) {
    serve_account("acct-1").await
}

/// Starts a fake server on a loopback port whose enrollments create `account_id`.
pub(crate) async fn serve_account(account_id: &str) -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shared: Shared = Arc::new(Mutex::new(Fake {
        issuer: url.clone(),
        account_id: account_id.into(),
        server_key: Some(SigningKey::generate()),
        ..Fake::default()
    }));
    let app = Router::new()
        .route(api::PATH_ENROLLMENTS, post(start))
        .route("/v1/enrollments/{id}/identity", post(identity))
        .route("/v1/enrollments/{id}/sms", post(sms))
        .route("/v1/enrollments/{id}/sms/resend", post(resend))
        .route("/v1/enrollments/{id}/complete", post(complete))
        .route(api::PATH_SERVER_KEYS, get(server_keys))
        .route(api::PATH_REQUESTS, get(list))
        .route("/v1/requests/{id}", get(one))
        .route("/v1/requests/{id}/response", post(answer))
        .route(api::PATH_DEVICE_PIN, post(change_pin))
        .route(api::PATH_DEVICE_PIN_RESOLVE, post(resolve_pin_change))
        .route(
            api::PATH_DEVICE_BIOMETRIC,
            post(enable_biometric).delete(disable_biometric),
        )
        .route(api::PATH_DEVICE_DEACTIVATE, post(deactivate))
        .route(api::PATH_DEVICE_PUSH_TOKEN, put(register_push_token))
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, shared)
}

/// A login request `id` to `account_id` from the online government, as a server at `issuer`
/// makes it at `now`, valid for five minutes.
pub(crate) fn login_request(issuer: &str, account_id: &str, id: &str, now: i64) -> ActionRequest {
    ActionRequest {
        iss: issuer.into(),
        aud: account_id.into(),
        jti: id.into(),
        iat: now,
        exp: now + 300,
        rp: RelyingParty {
            id: "online-overheid".into(),
            name: "Online overheid".into(),
        },
        kind: ActionKind::Login,
        text: "Ik log in op de online overheid".into(),
        claims: vec!["name".into()],
        binding_message: Some("AB12".into()),
        uv: UserVerification::Pin,
        number_options: None,
        transaction: None,
        optional_claims: vec![],
        document: None,
    }
}

/// Signs `request` with the fake's key `k1` and lists it as pending under `id`.
pub(crate) fn add_request(fake: &mut Fake, id: &str, request: &ActionRequest) {
    let jws = jose::sign_compact(
        &Header::es256(ACTION_TYP).with_kid("k1"),
        &serde_json::to_vec(request).unwrap(),
        fake.server_key.as_ref().unwrap(),
    )
    .unwrap();
    fake.requests.insert(id.into(), jws);
}

/// Signs a login request `id` for the fake's account, optionally with number matching, and
/// makes it pending.
pub(crate) fn new_request_with(fake: &mut Fake, id: &str, number_options: Option<Vec<u8>>) {
    let mut request = login_request(&fake.issuer, &fake.account_id, id, crate::now());
    request.number_options = number_options;
    add_request(fake, id, &request);
}

/// Signs a plain login request `id` for the fake's account and makes it pending.
pub(crate) fn new_request(fake: &mut Fake, id: &str) {
    new_request_with(fake, id, None);
}

/// Starts an enrollment through KBC for the test's phone number.
pub(crate) async fn start_enrollment(auth: &Authenticator) {
    auth.start_bank_enrollment("+32470123456".into(), Bank::Kbc)
        .await
        .unwrap();
}

/// Runs an enrollment up to the SMS code: the bank has handed the identity over.
pub(crate) async fn enroll_until_sms(auth: &Authenticator) {
    start_enrollment(auth).await;
    auth.complete_bank_handoff(BANK_RETURN.into())
        .await
        .unwrap();
}

/// Runs an enrollment up to the choice of the code.
pub(crate) async fn enroll_until_code(auth: &Authenticator) {
    enroll_until_sms(auth).await;
    auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
}

/// Runs a whole enrollment with [`CODE`].
pub(crate) async fn enroll(auth: &Authenticator) -> Account {
    enroll_until_code(auth).await;
    auth.choose_code(CODE.into(), CODE.into()).await.unwrap()
}
