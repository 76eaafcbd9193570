//! Pushes through FCM and APNs, sent by the real server to stand-ins of both services on
//! loopback (FCM's OAuth token endpoint and HTTP v1 API over HTTP/1.1, APNs over HTTP/2
//! without TLS). The stand-ins check what the services check: the URL, the headers, the
//! signature of the OAuth assertion (with the test-only RSA key's public half) and of the APNs
//! provider token (with the test's P-256 key), the claims and the JSON body; and they answer
//! the cases a sender must handle: busy (429 with Retry-After, 5xx), a dead token, a refused
//! message. The server's retry base is a millisecond, so no test waits for a real backoff.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::oidc::BackchannelAuthResponse;
use sleutel_protocol::api::{self, DeviceUpdated, PushPlatform, ResponseAccepted};
use sleutel_protocol::clock::now;
use sleutel_protocol::jose::{self, Jwk};
use sleutel_server::{
    ApnsConfig, ApnsEnvironment, FcmConfig, Policy, PushConfig, RelyingPartyConfig, ServerConfig,
    StartError,
};

use crate::common::*;

/// The test-only RSA key of the stand-in service account (tests/fixtures/README.md).
const SERVICE_ACCOUNT_KEY: &str = include_str!("../fixtures/test-only-fcm-service-account-key.pem");
/// Its public half, with which the stand-in token endpoint checks the assertion.
const SERVICE_ACCOUNT_PUBLIC_KEY: &str =
    include_str!("../fixtures/test-only-fcm-service-account-public-key.pem");
/// The stand-in service account's e-mail address.
const CLIENT_EMAIL: &str = "sleutel-push@sleutel-test.iam.gserviceaccount.com";
/// The stand-in service account's key id.
const PRIVATE_KEY_ID: &str = "test-only-key-1";
/// The Firebase project of the stand-in service account.
const PROJECT: &str = "sleutel-test";
/// The APNs key id, team id and topic of the tests.
const KEY_ID: &str = "TESTKEY123";
const TEAM_ID: &str = "TESTTEAM45";
const TOPIC: &str = "be.sleutel.app";

/// An FCM registration token of today's shape.
const FCM_TOKEN: &str = "cK3x9Qm1TfO:APA91bF-2x_Yq.9wZ";
/// A 32-byte APNs device token.
const APNS_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// How long a test waits for something the server does in the background.
const WAIT: Duration = Duration::from_secs(10);

// --- the stand-in services ----------------------------------------------------------------------

/// A request the stand-in received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The form fields of a token request.
    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

/// An answer the stand-in gives, in order, before its default one.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
    delay: Duration,
}

impl Answer {
    fn status(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            retry_after: None,
            body,
            delay: Duration::ZERO,
        }
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What a stand-in has seen and will answer; the token endpoint and the message endpoint each
/// have their own list.
#[derive(Default)]
struct Log {
    tokens: Vec<Received>,
    messages: Vec<Received>,
    token_answers: VecDeque<Answer>,
    message_answers: VecDeque<Answer>,
}

/// A stand-in of FCM (with Google's token endpoint at `/token`) or of APNs, on loopback.
#[derive(Clone)]
struct StandIn {
    url: String,
    log: Arc<Mutex<Log>>,
}

impl StandIn {
    async fn start() -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(receive).with_state(log.clone());
        // axum serves HTTP/1.1 and, with its http2 feature, HTTP/2 with prior knowledge.
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, log }
    }

    fn answer_token(&self, answer: Answer) {
        self.log.lock().unwrap().token_answers.push_back(answer);
    }

    fn answer_message(&self, answer: Answer) {
        self.log.lock().unwrap().message_answers.push_back(answer);
    }

    fn tokens(&self) -> Vec<Received> {
        self.log.lock().unwrap().tokens.clone()
    }

    fn messages(&self) -> Vec<Received> {
        self.log.lock().unwrap().messages.clone()
    }

    /// Waits until `count` messages came, and returns them.
    async fn wait_for_messages(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(Instant::now() < deadline, "{count} push(es) expected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(State(log): State<Arc<Mutex<Log>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let received = Received {
        path: parts.uri.path().to_owned(),
        version: parts.version,
        headers: parts.headers,
        body,
        at: Instant::now(),
    };
    let is_token = received.path == "/token";
    let answer = {
        let mut log = log.lock().unwrap();
        let count = log.tokens.len();
        if is_token {
            log.tokens.push(received);
            log.token_answers.pop_front().unwrap_or_else(|| {
                Answer::status(
                    StatusCode::OK,
                    json!({"access_token": format!("access-{}", count + 1),
                           "expires_in": 3600, "token_type": "Bearer"}),
                )
            })
        } else {
            log.messages.push(received);
            log.message_answers.pop_front().unwrap_or_else(|| {
                Answer::status(StatusCode::OK, json!({"name": "projects/x/messages/1"}))
            })
        }
    };
    tokio::time::sleep(answer.delay).await;
    let mut response = (answer.status, axum::Json(answer.body)).into_response();
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    response
}

// --- the server and its phone -------------------------------------------------------------------

/// The policy of these tests: retries a millisecond apart.
fn policy() -> Policy {
    Policy {
        push_retry_base_millis: 1,
        ..Policy::default()
    }
}

/// A service account key file for the stand-in `fcm` in `dir`.
fn service_account_file(dir: &tempfile::TempDir, fcm: &StandIn) -> PathBuf {
    let path = dir.path().join("service-account.json");
    let file = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": PRIVATE_KEY_ID,
        "private_key": SERVICE_ACCOUNT_KEY,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": format!("{}/token", fcm.url),
    });
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

/// FCM through the stand-in `fcm`, with the key file in `dir`.
fn fcm_config(dir: &tempfile::TempDir, fcm: &StandIn) -> FcmConfig {
    FcmConfig {
        api_base: Some(fcm.url.clone()),
        ..FcmConfig::new(service_account_file(dir, fcm))
    }
}

/// The APNs key of a test, written as a `.p8` file in `dir`.
fn apns_key(dir: &tempfile::TempDir) -> (SigningKey, PathBuf) {
    let key = SigningKey::generate();
    let path = dir.path().join("AuthKey_TESTKEY123.p8");
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    std::fs::write(&path, pem.as_bytes()).unwrap();
    (key, path)
}

/// APNs through the stand-in `apns`, with the key file `key_file`.
fn apns_config(apns: &StandIn, key_file: PathBuf) -> ApnsConfig {
    ApnsConfig {
        key_file,
        key_id: KEY_ID.into(),
        team_id: TEAM_ID.into(),
        topic: TOPIC.into(),
        environment: ApnsEnvironment::Production,
        endpoint: Some(apns.url.clone()),
    }
}

async fn server_pushing(policy: Policy, push: PushConfig) -> InProcessServer {
    InProcessServer::start_with_push(policy, vec![RelyingPartyConfig::demo()], push)
        .await
        .unwrap()
}

/// A server that pushes through the FCM stand-in, and that stand-in.
struct Fcm {
    server: InProcessServer,
    fcm: StandIn,
    _dir: tempfile::TempDir,
}

async fn with_fcm(policy: Policy) -> Fcm {
    let fcm = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let push = PushConfig {
        fcm: Some(fcm_config(&dir, &fcm)),
        apns: None,
    };
    Fcm {
        server: server_pushing(policy, push).await,
        fcm,
        _dir: dir,
    }
}

/// A server that pushes through the APNs stand-in, the stand-in, and the key it signs with.
struct Apns {
    server: InProcessServer,
    apns: StandIn,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

async fn with_apns() -> Apns {
    let apns = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, key_file) = apns_key(&dir);
    let push = PushConfig {
        fcm: None,
        apns: Some(apns_config(&apns, key_file)),
    };
    Apns {
        server: server_pushing(policy(), push).await,
        apns,
        key,
        _dir: dir,
    }
}

/// A phone enrolled with `number` whose device registered `token` for `platform`.
async fn phone_with_token(
    server: &InProcessServer,
    number: &str,
    platform: PushPlatform,
    token: &str,
) -> Enrolled {
    let e = enroll(server, number).await;
    let _: DeviceUpdated = ok(e.phone.register_push_token(platform, token).await).await;
    e
}

/// The token stored for `e`'s device, if any.
fn stored_token(server: &InProcessServer, e: &Enrolled) -> Option<String> {
    server
        .sql_value(
            "SELECT token FROM push_tokens WHERE device_jkt = ?1",
            &[e.phone.jwk.thumbprint().into()],
        )
        .unwrap()
}

/// Waits until `e`'s device has no token any more.
async fn wait_until_dropped(server: &InProcessServer, e: &Enrolled) {
    let deadline = Instant::now() + WAIT;
    while stored_token(server, e).is_some() {
        assert!(Instant::now() < deadline, "the token was not dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A login for `e`'s number that lives `secs` seconds.
async fn login_living(server: &InProcessServer, e: &Enrolled, secs: u32) {
    let _: BackchannelAuthResponse = ok(server
        .rp()
        .backchannel_authorize_raw(&[
            ("scope", "openid"),
            ("login_hint", e.number.as_str()),
            ("requested_expiry", secs.to_string().as_str()),
        ])
        .await)
    .await;
}

/// The parts of a compact JWT: header, claims, signing input and signature.
fn jwt_parts(jwt: &str) -> (Value, Value, String, Vec<u8>) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&jose::b64_decode(part, "jwt").unwrap()).unwrap()
    };
    (
        decode(parts[0]),
        decode(parts[1]),
        format!("{}.{}", parts[0], parts[1]),
        jose::b64_decode(parts[2], "jwt").unwrap(),
    )
}

/// The bearer token of a request.
fn bearer(received: &Received) -> String {
    let value = received.header("authorization");
    let (scheme, token) = value.split_once(' ').unwrap();
    assert!(scheme.eq_ignore_ascii_case("bearer"), "{value}");
    token.to_owned()
}

/// Whether `signature` is the test-only service account's RS256 signature over `input`.
fn signed_by_service_account(input: &str, signature: &[u8]) -> bool {
    let (label, der) = pem_rfc7468::decode_vec(SERVICE_ACCOUNT_PUBLIC_KEY.as_bytes()).unwrap();
    assert_eq!(label, "RSA PUBLIC KEY");
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, der)
        .verify(input.as_bytes(), signature)
        .is_ok()
}

fn unregistered() -> Value {
    json!({"error": {"code": 404, "message": "Requested entity was not found.",
        "status": "NOT_FOUND", "details": [{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "UNREGISTERED"}]}})
}

// --- FCM ----------------------------------------------------------------------------------------

#[tokio::test]
async fn a_device_with_an_fcm_token_is_pushed_through_fcm_and_not_the_outbox() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    let e = phone_with_token(&server, "+32470001001", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    let (request, _) = e.the_request().await;
    let message = fcm.wait_for_messages(1).await.remove(0);
    assert_eq!(
        message.path,
        format!("/v1/projects/{PROJECT}/messages:send")
    );
    assert_eq!(bearer(&message), "access-1");
    let body = message.json();
    assert_eq!(body["message"]["token"], FCM_TOKEN);
    assert_eq!(
        body["message"]["data"],
        json!({"account_id": e.completed.account_id, "request_id": request.jti})
    );
    assert_eq!(body["message"]["android"]["priority"], "HIGH");
    let ttl = body["message"]["android"]["ttl"].as_str().unwrap();
    let secs: i64 = ttl.strip_suffix('s').unwrap().parse().unwrap();
    assert!(secs > 0 && secs <= request.exp - request.iat, "{ttl}");
    // Nothing but the ids: no text, no name, no notification for FCM to show.
    assert_eq!(body["message"].as_object().unwrap().len(), 3, "{body}");
    let outbox = server
        .sim()
        .push_messages(&e.completed.account_id, 0)
        .await
        .unwrap();
    assert!(outbox.messages.is_empty());
}

#[tokio::test]
async fn the_access_token_comes_from_an_assertion_signed_by_the_service_account() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    let e = phone_with_token(&server, "+32470001002", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    fcm.wait_for_messages(1).await;
    let asked = fcm.tokens().remove(0);
    let form = asked.form();
    assert!(form.contains(&(
        "grant_type".into(),
        "urn:ietf:params:oauth:grant-type:jwt-bearer".into()
    )));
    let assertion = &form.iter().find(|(k, _)| k == "assertion").unwrap().1;
    let (header, claims, input, signature) = jwt_parts(assertion);
    assert!(signed_by_service_account(&input, &signature));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], PRIVATE_KEY_ID);
    assert_eq!(claims["iss"], CLIENT_EMAIL);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    assert_eq!(claims["aud"], format!("{}/token", fcm.url));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!((iat - now()).abs() <= 5, "{claims}");
    assert!(exp > iat && exp - iat <= 3600, "{claims}");
}

#[tokio::test]
async fn the_access_token_serves_every_push_until_shortly_before_it_expires() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    let e = phone_with_token(&server, "+32470001003", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();
    fcm.wait_for_messages(1).await;
    server.rp().start_login(&e.number).await.unwrap();

    let messages = fcm.wait_for_messages(2).await;
    assert_eq!(fcm.tokens().len(), 1);
    assert_eq!(bearer(&messages[1]), "access-1");
}

#[tokio::test]
async fn an_access_token_about_to_expire_is_replaced() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    // Five minutes is the margin kept before expiry: this token is due at once.
    fcm.answer_token(Answer::status(
        StatusCode::OK,
        json!({"access_token": "short-lived", "expires_in": 300, "token_type": "Bearer"}),
    ));
    let e = phone_with_token(&server, "+32470001004", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();
    fcm.wait_for_messages(1).await;
    server.rp().start_login(&e.number).await.unwrap();

    let messages = fcm.wait_for_messages(2).await;
    assert_eq!(fcm.tokens().len(), 2);
    assert_eq!(bearer(&messages[0]), "short-lived");
    assert_eq!(bearer(&messages[1]), "access-2");
}

#[tokio::test]
async fn an_access_token_said_to_live_for_ever_still_carries_the_push() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    fcm.answer_token(Answer::status(
        StatusCode::OK,
        json!({"access_token": "for-ever", "expires_in": u64::MAX, "token_type": "Bearer"}),
    ));
    let e = phone_with_token(&server, "+32470001017", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    let messages = fcm.wait_for_messages(1).await;
    assert_eq!(bearer(&messages[0]), "for-ever");
}

#[tokio::test]
async fn a_push_fcm_answers_429_is_sent_again_after_its_retry_after() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    fcm.answer_message(
        Answer::status(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}),
        )
        .retry_after(1),
    );
    let e = phone_with_token(&server, "+32470001005", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    let messages = fcm.wait_for_messages(2).await;
    assert!(messages[1].at - messages[0].at >= Duration::from_secs(1));
    // The same push, with the time left to the request as its TTL.
    let (first, second) = (messages[0].json(), messages[1].json());
    assert_eq!(second["message"]["data"], first["message"]["data"]);
    assert_eq!(second["message"]["token"], FCM_TOKEN);
}

#[tokio::test]
async fn a_push_fcm_fails_with_500_is_sent_again_until_it_is_delivered() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    for _ in 0..2 {
        fcm.answer_message(Answer::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"code": 500, "status": "INTERNAL"}}),
        ));
    }
    let e = phone_with_token(&server, "+32470001006", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    fcm.wait_for_messages(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fcm.messages().len(), 3, "delivered on the third attempt");
}

#[tokio::test]
async fn a_push_that_keeps_failing_is_given_up_after_the_last_attempt() {
    let Fcm { server, fcm, _dir } = with_fcm(Policy {
        push_max_attempts: 2,
        ..policy()
    })
    .await;
    for _ in 0..3 {
        fcm.answer_message(Answer::status(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": {"code": 503, "status": "UNAVAILABLE"}}),
        ));
    }
    let e = phone_with_token(&server, "+32470001007", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    fcm.wait_for_messages(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fcm.messages().len(), 2);
}

#[tokio::test]
async fn an_unregistered_fcm_token_is_dropped() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    fcm.answer_message(Answer::status(StatusCode::NOT_FOUND, unregistered()));
    let e = phone_with_token(&server, "+32470001008", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    wait_until_dropped(&server, &e).await;
    assert_eq!(fcm.messages().len(), 1);
}

/// The token addresses one app install; gone for one of its accounts, it is gone for all.
#[tokio::test]
async fn an_unregistered_fcm_token_is_dropped_from_every_account_of_the_install() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    fcm.answer_message(Answer::status(StatusCode::NOT_FOUND, unregistered()));
    let first = phone_with_token(&server, "+32470001030", PushPlatform::Fcm, FCM_TOKEN).await;
    let second = phone_with_token(&server, "+32470001031", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&first.number).await.unwrap();

    wait_until_dropped(&server, &first).await;
    assert_eq!(stored_token(&server, &second), None);
}

#[tokio::test]
async fn an_invalid_argument_is_not_sent_again_and_keeps_the_token() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    fcm.answer_message(Answer::status(
        StatusCode::BAD_REQUEST,
        json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "INVALID_ARGUMENT"}]}}),
    ));
    let e = phone_with_token(&server, "+32470001009", PushPlatform::Fcm, FCM_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    fcm.wait_for_messages(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fcm.messages().len(), 1);
    assert_eq!(stored_token(&server, &e).as_deref(), Some(FCM_TOKEN));
}

#[tokio::test]
async fn a_push_is_not_sent_again_once_its_request_has_expired() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    // The service asks for two seconds; the request lives one.
    fcm.answer_message(
        Answer::status(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": {"code": 503, "status": "UNAVAILABLE"}}),
        )
        .retry_after(2),
    );
    let e = phone_with_token(&server, "+32470001010", PushPlatform::Fcm, FCM_TOKEN).await;

    login_living(&server, &e, 1).await;

    fcm.wait_for_messages(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fcm.messages().len(), 1);
}

/// A 503 that asks for two seconds before the push is tried again: room for a test to change
/// something in between.
fn busy_for_two_seconds() -> Answer {
    Answer::status(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": {"code": 503, "status": "UNAVAILABLE"}}),
    )
    .retry_after(2)
}

#[tokio::test]
async fn a_push_is_not_sent_again_once_its_device_is_revoked() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    fcm.answer_message(busy_for_two_seconds());
    let e = phone_with_token(&server, "+32470001015", PushPlatform::Fcm, FCM_TOKEN).await;
    server.rp().start_login(&e.number).await.unwrap();
    fcm.wait_for_messages(1).await;

    let _: DeviceUpdated = ok(e
        .phone
        .send(
            reqwest::Method::POST,
            api::PATH_DEVICE_DEACTIVATE,
            Vec::new(),
        )
        .await)
    .await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fcm.messages().len(), 1);
}

#[tokio::test]
async fn a_push_is_not_sent_again_once_its_request_is_answered() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    fcm.answer_message(busy_for_two_seconds());
    let e = phone_with_token(&server, "+32470001016", PushPlatform::Fcm, FCM_TOKEN).await;
    server.rp().start_login(&e.number).await.unwrap();
    fcm.wait_for_messages(1).await;
    let (request, jws) = e.the_request().await;

    let _: ResponseAccepted = ok(e.answer(&request, &e.decline(&request, &jws)).await).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fcm.messages().len(), 1);
}

#[tokio::test]
async fn a_push_whose_request_expired_before_it_could_go_out_is_not_sent() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    // The access token takes longer to come than the request lives.
    fcm.answer_token(
        Answer::status(
            StatusCode::OK,
            json!({"access_token": "slow", "expires_in": 3600, "token_type": "Bearer"}),
        )
        .after(Duration::from_millis(2500)),
    );
    let e = phone_with_token(&server, "+32470001011", PushPlatform::Fcm, FCM_TOKEN).await;

    login_living(&server, &e, 1).await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fcm.tokens().len(), 1);
    assert!(fcm.messages().is_empty());
}

#[tokio::test]
async fn a_device_without_a_token_is_still_pushed_through_the_outbox() {
    let Fcm { server, fcm, _dir } = with_fcm(Policy {
        max_devices: 2,
        ..policy()
    })
    .await;
    let with_token = phone_with_token(&server, "+32470001012", PushPlatform::Fcm, FCM_TOKEN).await;
    let _without = enroll_again(&server, "+32470001013", &with_token.citizen).await;

    server.rp().start_login(&with_token.number).await.unwrap();

    fcm.wait_for_messages(1).await;
    let outbox = server
        .sim()
        .push_messages(&with_token.completed.account_id, 0)
        .await
        .unwrap();
    assert_eq!(outbox.messages.len(), 1);
}

#[tokio::test]
async fn a_token_of_a_platform_without_a_service_goes_to_the_outbox() {
    let Fcm { server, fcm, _dir } = with_fcm(policy()).await;
    let e = phone_with_token(&server, "+32470001014", PushPlatform::Apns, APNS_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    let outbox = server
        .sim()
        .push_messages(&e.completed.account_id, 0)
        .await
        .unwrap();
    assert_eq!(outbox.messages.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fcm.tokens().is_empty() && fcm.messages().is_empty());
}

// --- APNs ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_apns_push_goes_over_http2_with_apples_headers_and_a_generic_alert() {
    let Apns {
        server, apns, _dir, ..
    } = with_apns().await;
    let e = phone_with_token(&server, "+32470001020", PushPlatform::Apns, APNS_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    let (request, _) = e.the_request().await;
    let push = apns.wait_for_messages(1).await.remove(0);
    assert_eq!(push.version, Version::HTTP_2);
    assert_eq!(push.path, format!("/3/device/{APNS_TOKEN}"));
    assert_eq!(push.header("apns-topic"), TOPIC);
    assert_eq!(push.header("apns-push-type"), "alert");
    assert_eq!(push.header("apns-priority"), "10");
    assert_eq!(push.header("apns-expiration"), request.exp.to_string());
    assert_eq!(push.header("apns-collapse-id"), request.jti);
    let body = push.json();
    assert_eq!(body["account_id"], e.completed.account_id);
    assert_eq!(body["request_id"], request.jti);
    assert_eq!(body["aps"]["mutable-content"], 1);
    let alert = body["aps"]["alert"].to_string();
    // The alert is the app's, never the request's: nothing of who asks or what.
    assert!(!alert.contains(&request.rp.name) && !alert.contains(&request.text));
    assert!(body["aps"]["alert"]["title"].is_string() && body["aps"]["alert"]["body"].is_string());
    let outbox = server
        .sim()
        .push_messages(&e.completed.account_id, 0)
        .await
        .unwrap();
    assert!(outbox.messages.is_empty());
}

#[tokio::test]
async fn the_provider_token_is_signed_with_the_apns_key_for_the_team() {
    let Apns {
        server,
        apns,
        key,
        _dir,
    } = with_apns().await;
    let e = phone_with_token(&server, "+32470001021", PushPlatform::Apns, APNS_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    let push = apns.wait_for_messages(1).await.remove(0);
    let (header, claims, input, signature) = jwt_parts(&bearer(&push));
    let public = Jwk::from_verifying_key(key.verifying_key())
        .to_verifying_key()
        .unwrap();
    jose::verify_es256(&public, input.as_bytes(), &signature, "provider token").unwrap();
    assert_eq!(header, json!({"alg": "ES256", "kid": KEY_ID}));
    assert_eq!(claims["iss"], TEAM_ID);
    assert!(
        (claims["iat"].as_i64().unwrap() - now()).abs() <= 5,
        "{claims}"
    );
}

#[tokio::test]
async fn the_provider_token_serves_every_push_within_its_lifetime() {
    let Apns {
        server, apns, _dir, ..
    } = with_apns().await;
    let e = phone_with_token(&server, "+32470001022", PushPlatform::Apns, APNS_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();
    apns.wait_for_messages(1).await;
    // A token made a second later would differ (its iat), so reuse shows.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.rp().start_login(&e.number).await.unwrap();

    let pushes = apns.wait_for_messages(2).await;
    assert_eq!(bearer(&pushes[0]), bearer(&pushes[1]));
}

#[tokio::test]
async fn an_apns_token_apple_calls_unregistered_is_dropped() {
    let Apns {
        server, apns, _dir, ..
    } = with_apns().await;
    apns.answer_message(Answer::status(
        StatusCode::GONE,
        json!({"reason": "Unregistered", "timestamp": 1_700_000_000_000_i64}),
    ));
    let e = phone_with_token(&server, "+32470001023", PushPlatform::Apns, APNS_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    wait_until_dropped(&server, &e).await;
    assert_eq!(apns.messages().len(), 1);
}

#[tokio::test]
async fn a_bad_device_token_is_dropped() {
    let Apns {
        server, apns, _dir, ..
    } = with_apns().await;
    apns.answer_message(Answer::status(
        StatusCode::BAD_REQUEST,
        json!({"reason": "BadDeviceToken"}),
    ));
    let e = phone_with_token(&server, "+32470001024", PushPlatform::Apns, APNS_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    wait_until_dropped(&server, &e).await;
    assert_eq!(apns.messages().len(), 1);
}

#[tokio::test]
async fn a_push_apns_answers_503_is_sent_again() {
    let Apns {
        server, apns, _dir, ..
    } = with_apns().await;
    apns.answer_message(Answer::status(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"reason": "ServiceUnavailable"}),
    ));
    let e = phone_with_token(&server, "+32470001025", PushPlatform::Apns, APNS_TOKEN).await;

    server.rp().start_login(&e.number).await.unwrap();

    apns.wait_for_messages(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(apns.messages().len(), 2);
    assert_eq!(stored_token(&server, &e).as_deref(), Some(APNS_TOKEN));
}

// --- credentials at start -----------------------------------------------------------------------

/// Starts a server with `push` and returns why it did not start.
async fn start_error(push: PushConfig) -> StartError {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        db_path: dir.path().join("server.db"),
        database_url: None,
        notification_key_file: None,
        public_url: None,
        relying_parties: vec![RelyingPartyConfig::demo()],
        policy: Policy::default(),
        push,
        app_links: Default::default(),
    };
    match sleutel_server::start(config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_missing_service_account_file_stops_the_start_and_is_named() {
    let error = start_error(PushConfig {
        fcm: Some(FcmConfig::new("/nonexistent/service-account.json")),
        apns: None,
    })
    .await;

    assert!(
        matches!(error, StartError::PushCredentials { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("/nonexistent/service-account.json"),
        "{error}"
    );
}

#[tokio::test]
async fn a_service_account_file_with_an_unusable_key_stops_the_start_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service-account.json");
    let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA";
    let file = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key": format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"),
        "client_email": CLIENT_EMAIL,
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    std::fs::write(&path, file.to_string()).unwrap();

    let error = start_error(PushConfig {
        fcm: Some(FcmConfig::new(&path)),
        apns: None,
    })
    .await;

    let shown = error.to_string();
    assert!(
        matches!(error, StartError::PushCredentials { .. }),
        "{shown}"
    );
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(!shown.contains(secret), "{shown}");
}

#[tokio::test]
async fn a_service_account_file_that_is_not_json_stops_the_start_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service-account.json");
    std::fs::write(
        &path,
        r#"{"type": "service_account", "private_key": "s3cr3t" oops"#,
    )
    .unwrap();

    let error = start_error(PushConfig {
        fcm: Some(FcmConfig::new(&path)),
        apns: None,
    })
    .await;

    let shown = error.to_string();
    assert!(
        matches!(error, StartError::PushCredentials { .. }),
        "{shown}"
    );
    assert!(!shown.contains("s3cr3t"), "{shown}");
}

#[tokio::test]
async fn an_apns_key_file_that_holds_no_p256_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("AuthKey.p8");
    // An RSA key is a key, but not one APNs signs with.
    std::fs::write(&path, SERVICE_ACCOUNT_KEY).unwrap();
    let apns = StandIn::start().await;

    let error = start_error(PushConfig {
        fcm: None,
        apns: Some(apns_config(&apns, path.clone())),
    })
    .await;

    let shown = error.to_string();
    assert!(
        matches!(error, StartError::PushCredentials { .. }),
        "{shown}"
    );
    assert!(shown.contains(&path.display().to_string()), "{shown}");
}
