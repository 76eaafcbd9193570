//! The whole phone flow against a minimal in-process server that checks every message with the
//! protocol crate's own verifiers: DPoP proofs, proofs of possession, the two-signature
//! response. The reference server and the end-to-end harness cover the real behaviour; this
//! keeps the core honest about the wire format on its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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

use crate::{Authenticator, Bank, CoreError, Keystore, SoftwareKeystore};

const CODE: &str = "13579";
const SMS_CODE: &str = "123456";

#[derive(Default)]
struct Fake {
    issuer: String,
    server_key: Option<SigningKey>,
    device_jkt: Option<String>,
    device_key: Option<VerifyingKey>,
    pin_key: Option<VerifyingKey>,
    requests: HashMap<String, String>,
    attempts_left: u32,
    answers: Vec<(Decision, Option<UvMethod>, Option<DeclineReason>)>,
    refuse_completion: bool,
}

type Shared = Arc<Mutex<Fake>>;

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
        Ok(p) if fake.device_jkt.as_ref().is_none_or(|jkt| *jkt == p.jkt) => None,
        _ => Some(error(StatusCode::UNAUTHORIZED, codes::INVALID_PROOF, None)),
    }
}

async fn start(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let mut fake = s.lock().unwrap();
    let token = headers.get(PROOF_HEADER).unwrap().to_str().unwrap();
    let p = dpop::verify_proof(token, "POST", uri.path(), &body, crate::now()).unwrap();
    let _: api::StartEnrollment = serde_json::from_slice(&body).unwrap();
    fake.device_jkt = Some(p.jkt);
    ok(api::EnrollmentStarted {
        enrollment_id: "enr-1".into(),
        nonce: "nonce-1".into(),
        handoff_url: "http://bank.invalid/authorize?enrollment_id=enr-1".into(),
        expires_at: crate::now() + 600,
    })
}

async fn identity(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    let submitted: api::SubmitIdentity = serde_json::from_slice(&body).unwrap();
    if submitted.identity_token != "a.b.c" {
        return error(StatusCode::BAD_REQUEST, codes::INVALID_IDENTITY_TOKEN, None);
    }
    ok(api::SmsSent {
        phone_number_masked: "+32 4•• •• 34 56".into(),
        expires_at: crate::now() + 300,
        resend_after: crate::now() + 30,
    })
}

async fn sms(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    let verify: api::VerifySms = serde_json::from_slice(&body).unwrap();
    if verify.code != SMS_CODE {
        return error(StatusCode::BAD_REQUEST, codes::WRONG_SMS_CODE, Some(2));
    }
    ok(api::SmsVerified {
        display_name: "Jan Peeters".into(),
    })
}

async fn server_keys(State(s): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::GET, &uri, b"") {
        return refusal;
    }
    let key = fake.server_key.as_ref().unwrap();
    ok(Jwks {
        keys: vec![Jwk::from_verifying_key(key.verifying_key()).published("k1")],
    })
}

async fn complete(State(s): State<Shared>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let mut fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::POST, &uri, &body) {
        return refusal;
    }
    if fake.refuse_completion {
        return error(StatusCode::GONE, codes::ENROLLMENT_EXPIRED, None);
    }
    let done: api::CompleteEnrollment = serde_json::from_slice(&body).unwrap();
    assert_eq!(Some(done.device_key.thumbprint()), fake.device_jkt);
    let device = done.device_key.to_verifying_key().unwrap();
    let pin = done.pin_key.to_verifying_key().unwrap();
    for (key, role, pop) in [
        (&device, "device", &done.device_pop),
        (&pin, "pin", &done.pin_pop),
    ] {
        let message = api::enrollment_pop_message(role, "enr-1", "nonce-1");
        let signature = jose::b64_decode(pop, "pop").unwrap();
        jose::verify_es256(key, message.as_bytes(), &signature, "pop").unwrap();
    }
    fake.device_key = Some(device);
    fake.pin_key = Some(pin);
    fake.attempts_left = 3;
    let key = fake.server_key.as_ref().unwrap();
    ok(api::EnrollmentCompleted {
        account_id: "acct-1".into(),
        display_name: "Jan Peeters".into(),
        issuer: fake.issuer.clone(),
        server_keys: Jwks {
            keys: vec![Jwk::from_verifying_key(key.verifying_key()).published("k1")],
        },
    })
}

async fn list(State(s): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let fake = s.lock().unwrap();
    if let Some(refusal) = proof(&fake, &headers, Method::GET, &uri, b"") {
        return refusal;
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
    if signed.response.decision == Decision::Approve
        && signed.verify_user(fake.pin_key.as_ref().unwrap()).is_err()
    {
        fake.attempts_left -= 1;
        let left = fake.attempts_left;
        if left == 0 {
            return error(StatusCode::FORBIDDEN, codes::ACCOUNT_BLOCKED, None);
        }
        return error(StatusCode::FORBIDDEN, codes::WRONG_PIN, Some(left));
    }
    fake.requests.remove(&id);
    let r = &signed.response;
    fake.answers.push((r.decision, r.method, r.reason));
    ok(api::ResponseAccepted {
        status: "done".into(),
    })
}

async fn serve() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shared: Shared = Arc::new(Mutex::new(Fake {
        issuer: url.clone(),
        server_key: Some(SigningKey::generate()),
        ..Fake::default()
    }));
    let app = Router::new()
        .route(api::PATH_ENROLLMENTS, post(start))
        .route("/v1/enrollments/{id}/identity", post(identity))
        .route("/v1/enrollments/{id}/sms", post(sms))
        .route("/v1/enrollments/{id}/complete", post(complete))
        .route(api::PATH_SERVER_KEYS, get(server_keys))
        .route(api::PATH_REQUESTS, get(list))
        .route("/v1/requests/{id}", get(one))
        .route("/v1/requests/{id}/response", post(answer))
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, shared)
}

fn new_request(fake: &mut Fake, id: &str) {
    let now = crate::now();
    let request = ActionRequest {
        iss: fake.issuer.clone(),
        aud: "acct-1".into(),
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
    };
    let jws = jose::sign_compact(
        &Header::es256(ACTION_TYP).with_kid("k1"),
        &serde_json::to_vec(&request).unwrap(),
        fake.server_key.as_ref().unwrap(),
    )
    .unwrap();
    fake.requests.insert(id.into(), jws);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_approval_and_decline_follow_the_wire_format() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = keyring_core::mock::Store::new().unwrap();
    let keystore = Arc::new(SoftwareKeystore::new(credentials, "conformance"));
    let auth = Authenticator::open(dir.path(), &url, keystore.clone()).unwrap();

    // Enrollment.
    let handoff = auth
        .start_bank_enrollment("+32 470 12 34 56".into(), Bank::Kbc)
        .await
        .unwrap();
    assert_eq!(handoff.enrollment_id, "enr-1");
    let progress = auth.enrollment_in_progress().unwrap().unwrap();
    assert_eq!(progress.phone_number, "+32470123456");
    assert_eq!(
        auth.verify_sms_code(SMS_CODE.into()).await,
        Err(CoreError::WrongStep {
            expected: crate::EnrollmentStep::BankHandoff
        })
    );
    let sms = auth
        .complete_bank_handoff(
            "sleutel://enroll/bank?enrollment_id=enr-1&identity_token=a.b.c".into(),
        )
        .await
        .unwrap();
    assert_eq!(sms.phone_number_masked, "+32 4•• •• 34 56");
    assert_eq!(
        auth.verify_sms_code("000000".into()).await,
        Err(CoreError::WrongSmsCode { attempts_left: 2 })
    );
    auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
    let account = auth.choose_code(CODE.into(), CODE.into()).await.unwrap();
    assert_eq!(account.account_id, "acct-1");
    assert_eq!(account.display_name, "Jan Peeters");
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);

    // A request by push, delivered twice, shows once.
    new_request(&mut fake.lock().unwrap(), "req-1");
    let push = r#"{"account_id":"acct-1","request_id":"req-1"}"#;
    let view = auth.handle_push(push.into()).await.unwrap();
    assert_eq!(view.rp_name, "Online overheid");
    auth.handle_push(push.into()).await.unwrap();
    assert_eq!(auth.pending().unwrap().len(), 1);

    // A wrong code keeps the request; the right one approves it.
    assert_eq!(
        auth.approve_with_code("req-1".into(), "27182".into()).await,
        Err(CoreError::WrongCode { attempts_left: 2 })
    );
    assert_eq!(auth.pending().unwrap().len(), 1);
    auth.approve_with_code("req-1".into(), CODE.into())
        .await
        .unwrap();
    assert!(auth.pending().unwrap().is_empty());

    // After a restart, a polled request is declined without a code.
    drop(auth);
    let auth = Authenticator::open(dir.path(), &url, keystore).unwrap();
    assert_eq!(auth.accounts().unwrap(), vec![account]);
    new_request(&mut fake.lock().unwrap(), "req-2");
    let listed = auth.refresh_pending().await.unwrap();
    assert_eq!(listed.len(), 1);
    auth.decline("req-2".into(), DeclineReason::NotMe)
        .await
        .unwrap();

    let history = auth.history().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].decision, Decision::Decline);
    assert_eq!(history[1].method, Some(UvMethod::Pin));
    assert_eq!(
        fake.lock().unwrap().answers,
        vec![
            (Decision::Approve, Some(UvMethod::Pin), None),
            (Decision::Decline, None, Some(DeclineReason::NotMe)),
        ]
    );

    // A request the server no longer lists disappears locally on refresh.
    new_request(&mut fake.lock().unwrap(), "req-3");
    assert_eq!(auth.refresh_pending().await.unwrap().len(), 1);
    fake.lock().unwrap().requests.clear();
    assert!(auth.refresh_pending().await.unwrap().is_empty());
    assert_eq!(
        auth.approve_with_code("req-3".into(), CODE.into()).await,
        Err(CoreError::UnknownRequest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_completion_leaves_no_salt_and_no_account() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = keyring_core::mock::Store::new().unwrap();
    let keystore = Arc::new(SoftwareKeystore::new(credentials, "conformance"));
    let auth = Authenticator::open(dir.path(), &url, keystore.clone()).unwrap();
    auth.start_bank_enrollment("+32470123456".into(), Bank::Ing)
        .await
        .unwrap();
    auth.complete_bank_handoff(
        "sleutel://enroll/bank?enrollment_id=enr-1&identity_token=a.b.c".into(),
    )
    .await
    .unwrap();
    auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
    let alias = auth.ctx.store.enrollment().unwrap().unwrap().device_alias;
    fake.lock().unwrap().refuse_completion = true;

    let err = auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::EnrollmentExpired);
    assert!(auth.accounts().unwrap().is_empty());
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);
    let salt = crate::enrollment::salt_secret_name(&alias);
    assert_eq!(keystore.get_secret(salt).unwrap(), None);
    assert_eq!(
        keystore.public_key(alias),
        Err(crate::KeystoreError::KeyNotFound)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_wrong_code_blocks_the_account_and_no_further_code_is_sent() {
    let (url, fake) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = keyring_core::mock::Store::new().unwrap();
    let keystore = Arc::new(SoftwareKeystore::new(credentials, "conformance"));
    let auth = Authenticator::open(dir.path(), &url, keystore).unwrap();
    auth.start_bank_enrollment("+32470123456".into(), Bank::Kbc)
        .await
        .unwrap();
    auth.complete_bank_handoff(
        "sleutel://enroll/bank?enrollment_id=enr-1&identity_token=a.b.c".into(),
    )
    .await
    .unwrap();
    auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
    auth.choose_code(CODE.into(), CODE.into()).await.unwrap();
    new_request(&mut fake.lock().unwrap(), "req-1");
    auth.refresh_pending().await.unwrap();

    for left in [2, 1] {
        assert_eq!(
            auth.approve_with_code("req-1".into(), "27182".into()).await,
            Err(CoreError::WrongCode {
                attempts_left: left
            })
        );
    }
    assert_eq!(
        auth.approve_with_code("req-1".into(), "27182".into()).await,
        Err(CoreError::AccountBlocked)
    );
    fake.lock().unwrap().attempts_left = 3;
    assert_eq!(
        auth.approve_with_code("req-1".into(), CODE.into()).await,
        Err(CoreError::AccountBlocked)
    );
    assert_eq!(
        auth.accounts().unwrap()[0].status,
        crate::AccountStatus::Blocked
    );
    assert!(fake.lock().unwrap().answers.is_empty());
}
