//! What the tests play: the server on a loopback port with a temporary database, a phone with
//! P-256 device and PIN keys speaking the protocol by hand, the simulated citizen at the bank,
//! and a relying party using CIBA. The server, the simulators and the relying party are the
//! harness's ([`sleutel_harness`]); the phone is these tests' own, since it crafts raw proofs and
//! bodies that the real phone core would never send.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sleutel_harness::rp::RelyingParty;
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::SimClient;
use sleutel_harness::sim::query_param;
use sleutel_protocol::action::{self, ActionRequest};
use sleutel_protocol::api::oidc::{BackchannelAuthResponse, TokenResponse};
use sleutel_protocol::api::sim::{Citizen, NewCitizen};
use sleutel_protocol::api::{
    self, ApiError, CompleteEnrollment, EnrollmentCompleted, EnrollmentStarted, PushPlatform,
    RegisterPushToken, StartEnrollment, SubmitIdentity, VerifySms,
};
use sleutel_protocol::clock::now;
use sleutel_protocol::dpop;
use sleutel_protocol::identity::{Bank, IdentitySource};
use sleutel_protocol::jose::{self, Es256Signer, GeneralJws, Jwk};
use sleutel_protocol::response::{ActionResponse, Decision, DeclineReason, UvMethod};
use sleutel_server::{Policy, RelyingPartyConfig};
pub use sleutel_server::{ServerError, SqlValue};

/// A fresh random id for proofs.
pub fn jti() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    jose::b64(bytes)
}

/// Relying parties registered besides the demo one.
pub const OTHER_RPS: usize = 6;

/// The relying parties of a test server: the demo one and `rp-1` to `rp-`[`OTHER_RPS`].
pub fn relying_parties() -> Vec<RelyingPartyConfig> {
    std::iter::once(RelyingPartyConfig::demo())
        .chain((1..=OTHER_RPS).map(|n| {
            RelyingPartyConfig::new(
                &format!("rp-{n}"),
                &format!("secret-{n}"),
                &format!("Dienst {n}"),
            )
            .with_redirect_uris(&[&other_rp_redirect_uri(n)])
        }))
        .collect()
}

/// The redirect URI registered for `rp-n`.
pub fn other_rp_redirect_uri(n: usize) -> String {
    format!("http://127.0.0.1:9/rp-{n}/callback")
}

/// A server of its own for one test, with its database in a temporary directory.
pub async fn server() -> InProcessServer {
    server_with(Policy::default()).await
}

/// A server of its own for one test, with `policy`.
pub async fn server_with(policy: Policy) -> InProcessServer {
    InProcessServer::start_with(policy, relying_parties())
        .await
        .unwrap()
}

/// Relying party `rp-n` (1 to [`OTHER_RPS`]): a newer request of one relying party supersedes
/// its older one, so tests of several open requests use several.
pub fn other_rp(server: &InProcessServer, n: usize) -> RelyingParty {
    server.relying_party(&format!("rp-{n}"), &format!("secret-{n}"))
}

/// The error code of `rp`'s token request for `auth_req_id`, which must be refused.
pub async fn token_error(rp: &RelyingParty, auth_req_id: &str) -> String {
    err(rp.token_raw(auth_req_id).await).await.1.error
}

/// An answer as a test holds it: a response from the hand-made phone or client, or the result
/// of one of the kit's `_raw` calls, which fails only when nothing was answered.
pub trait Answer {
    /// The response; a call that got none fails the test.
    fn response(self) -> reqwest::Response;
}

impl Answer for reqwest::Response {
    fn response(self) -> reqwest::Response {
        self
    }
}

impl Answer for sleutel_harness::Result<reqwest::Response> {
    fn response(self) -> reqwest::Response {
        self.unwrap()
    }
}

/// Asserts success and decodes the JSON body.
pub async fn ok<T: DeserializeOwned>(answer: impl Answer) -> T {
    let response = answer.response();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "HTTP {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Asserts failure and decodes the JSON error body.
pub async fn err(answer: impl Answer) -> (StatusCode, ApiError) {
    let response = answer.response();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        !status.is_success(),
        "expected an error, got HTTP {status}: {body}"
    );
    let error = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, error)
}

/// A phone: a device key that signs every request's proof.
pub struct Phone {
    pub base: String,
    http: reqwest::Client,
    pub device: SigningKey,
    pub jwk: Jwk,
}

impl Phone {
    pub fn new(base: &str) -> Self {
        Self::with_http(base, sleutel_harness::http_client().unwrap())
    }

    /// A new phone that reaches `base` through `http` (a client that resolves the server's
    /// public name to one instance).
    pub fn with_http(base: &str, http: reqwest::Client) -> Self {
        let device = SigningKey::generate();
        Self {
            base: base.to_owned(),
            http,
            jwk: Jwk::from_verifying_key(device.verifying_key()),
            device,
        }
    }

    /// This phone (the same device key), reaching the server through `http` instead: the same
    /// phone behind a load balancer that sent it to another instance.
    pub fn via(&self, http: reqwest::Client) -> Self {
        Self {
            base: self.base.clone(),
            http,
            device: self.device.clone(),
            jwk: self.jwk.clone(),
        }
    }

    pub fn proof(&self, method: &str, path: &str, body: &[u8]) -> String {
        self.proof_with_id(method, path, body, &jti())
    }

    /// A proof with the proof id `id` (a code change is known by it).
    pub fn proof_with_id(&self, method: &str, path: &str, body: &[u8], id: &str) -> String {
        dpop::make_proof(
            &self.device,
            &self.jwk,
            method,
            &format!("{}{path}", self.base),
            body,
            id,
            now(),
        )
        .unwrap()
    }

    pub async fn send_with_proof(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        proof: String,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(dpop::PROOF_HEADER, proof);
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        request.send().await.unwrap()
    }

    pub async fn send(&self, method: Method, path: &str, body: Vec<u8>) -> reqwest::Response {
        let proof = self.proof(method.as_str(), path, &body);
        self.send_with_proof(method, path, body, proof).await
    }

    pub async fn post<T: Serialize>(&self, path: &str, body: &T) -> reqwest::Response {
        self.send(Method::POST, path, serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(Method::GET, path, Vec::new()).await
    }

    /// Registers `token` as this phone's push token for `platform`.
    pub async fn register_push_token(
        &self,
        platform: PushPlatform,
        token: &str,
    ) -> reqwest::Response {
        let body = RegisterPushToken {
            platform,
            token: token.into(),
        };
        self.send(
            Method::PUT,
            api::PATH_DEVICE_PUSH_TOKEN,
            serde_json::to_vec(&body).unwrap(),
        )
        .await
    }

    pub async fn start_enrollment(&self, number: &str) -> EnrollmentStarted {
        ok(self
            .post(
                api::PATH_ENROLLMENTS,
                &StartEnrollment {
                    phone_number: number.into(),
                    source: IdentitySource::Bank,
                    bank: Some(Bank::Kbc),
                    replaces: None,
                },
            )
            .await)
        .await
    }

    pub async fn submit_identity(&self, enrollment_id: &str, token: &str) -> reqwest::Response {
        self.post(
            &api::path_enrollment_identity(enrollment_id),
            &SubmitIdentity {
                identity_token: token.into(),
            },
        )
        .await
    }

    pub async fn verify_sms(&self, enrollment_id: &str, code: &str) -> reqwest::Response {
        self.post(
            &api::path_enrollment_sms(enrollment_id),
            &VerifySms { code: code.into() },
        )
        .await
    }

    /// The completion body for this phone's device key and `pin`, with both proofs of
    /// possession.
    pub fn completion(&self, started: &EnrollmentStarted, pin: &SigningKey) -> CompleteEnrollment {
        CompleteEnrollment {
            device_key: self.jwk.clone(),
            pin_key: Jwk::from_verifying_key(pin.verifying_key()),
            device_pop: pop(started, "device", &self.device),
            pin_pop: pop(started, "pin", pin),
            device_key_in_hardware: false,
        }
    }

    pub async fn complete(
        &self,
        started: &EnrollmentStarted,
        pin: &SigningKey,
    ) -> reqwest::Response {
        self.complete_with(started, &self.completion(started, pin))
            .await
    }

    pub async fn complete_with(
        &self,
        started: &EnrollmentStarted,
        body: &CompleteEnrollment,
    ) -> reqwest::Response {
        self.post(&api::path_enrollment_complete(&started.enrollment_id), body)
            .await
    }
}

/// A proof of possession by `key` in the role `role` for the enrollment `started`.
pub fn pop(started: &EnrollmentStarted, role: &str, key: &SigningKey) -> String {
    let message = api::enrollment_pop_message(role, &started.enrollment_id, &started.nonce);
    jose::b64(key.sign_es256(message.as_bytes()).unwrap())
}

/// The identity token in a bank's deep link.
pub fn token_in(deep_link: &str) -> String {
    let url = url::Url::parse(deep_link).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.path()
        ),
        api::DEEP_LINK_BANK_RETURN
    );
    query_param(&url, "identity_token").unwrap()
}

/// What the enrollment helpers need of a server: its public URL and an HTTP client that reaches
/// it (an in-process server, or one instance of several behind one public name).
pub trait Serves {
    fn url(&self) -> String;
    fn http(&self) -> reqwest::Client;
    fn sim(&self) -> SimClient {
        SimClient::with_client(self.http(), &self.url())
    }
}

impl<T: Serves> Serves for std::sync::Arc<T> {
    fn url(&self) -> String {
        (**self).url()
    }
    fn http(&self) -> reqwest::Client {
        (**self).http()
    }
}

impl Serves for InProcessServer {
    fn url(&self) -> String {
        InProcessServer::url(self)
    }
    fn http(&self) -> reqwest::Client {
        InProcessServer::http(self).clone()
    }
}

/// A new citizen with a debit and a credit card at KBC.
pub async fn citizen(server: &impl Serves) -> Citizen {
    server
        .sim()
        .create_citizen(&NewCitizen::default())
        .await
        .unwrap()
}

/// A phone that went as far as the SMS step.
pub struct AtSms {
    pub phone: Phone,
    pub started: EnrollmentStarted,
    pub citizen: Citizen,
}

pub async fn enroll_to_sms(server: &impl Serves, number: &str) -> AtSms {
    let citizen = citizen(server).await;
    enroll_to_sms_as(server, number, citizen).await
}

/// `phone` starts an activation for `number` and `citizen` walks through the bank with the
/// debit card. Returns the started enrollment and the bank's identity token, not yet submitted.
pub async fn identity_token(
    server: &impl Serves,
    phone: &Phone,
    number: &str,
    citizen: &Citizen,
) -> (EnrollmentStarted, String) {
    let started = phone.start_enrollment(number).await;
    let link = server
        .sim()
        .bank_authorize(
            started.handoff_url.as_deref().unwrap(),
            &citizen.debit_card.number,
            &citizen.debit_card.pin,
        )
        .await
        .unwrap();
    (started, token_in(&link))
}

/// A new phone of `citizen` that went as far as the SMS step.
pub async fn enroll_to_sms_as(server: &impl Serves, number: &str, citizen: Citizen) -> AtSms {
    let phone = Phone::with_http(&server.url(), server.http());
    let (started, token) = identity_token(server, &phone, number, &citizen).await;
    let response = phone.submit_identity(&started.enrollment_id, &token).await;
    let _: api::SmsSent = ok(response).await;
    AtSms {
        phone,
        started,
        citizen,
    }
}

/// An enrolled phone.
pub struct Enrolled {
    pub phone: Phone,
    pub pin: SigningKey,
    pub citizen: Citizen,
    pub number: String,
    /// The enrollment that activated the phone.
    pub started: EnrollmentStarted,
    pub completed: EnrollmentCompleted,
}

pub async fn enroll(server: &impl Serves, number: &str) -> Enrolled {
    let at = enroll_to_sms(server, number).await;
    finish_enrollment(server, number, at).await
}

/// A phone whose keystore says its device key is in secure hardware.
pub async fn enroll_with_hardware_key(server: &impl Serves, number: &str) -> Enrolled {
    let at = at_keys(server, number).await;
    let pin = SigningKey::generate();
    let body = CompleteEnrollment {
        device_key_in_hardware: true,
        ..at.phone.completion(&at.started, &pin)
    };
    let completed: EnrollmentCompleted = ok(at.phone.complete_with(&at.started, &body).await).await;
    Enrolled {
        phone: at.phone,
        pin,
        citizen: at.citizen,
        number: number.to_owned(),
        started: at.started,
        completed,
    }
}

/// Another phone activated for the same person (the same bank card).
pub async fn enroll_again(server: &impl Serves, number: &str, citizen: &Citizen) -> Enrolled {
    let at = enroll_to_sms_as(server, number, citizen.clone()).await;
    finish_enrollment(server, number, at).await
}

/// A phone that verified its SMS code and is ready to register its keys.
pub async fn at_keys(server: &impl Serves, number: &str) -> AtSms {
    let at = enroll_to_sms(server, number).await;
    sms_verified(server, number, at).await
}

/// `at` after it verified the newest code sent to `number`.
async fn sms_verified(server: &impl Serves, number: &str, at: AtSms) -> AtSms {
    let code = server.sim().last_sms_code(number).await.unwrap();
    let _: api::SmsVerified = ok(at.phone.verify_sms(&at.started.enrollment_id, &code).await).await;
    at
}

async fn finish_enrollment(server: &impl Serves, number: &str, at: AtSms) -> Enrolled {
    let at = sms_verified(server, number, at).await;
    let pin = SigningKey::generate();
    let completed: EnrollmentCompleted = ok(at.phone.complete(&at.started, &pin).await).await;
    Enrolled {
        phone: at.phone,
        pin,
        citizen: at.citizen,
        number: number.to_owned(),
        started: at.started,
        completed,
    }
}

impl Enrolled {
    /// The pending requests, verified with the pinned server key.
    pub async fn pending(&self) -> Vec<(ActionRequest, String)> {
        let pending: api::PendingRequests = ok(self.phone.get(api::PATH_REQUESTS).await).await;
        pending
            .requests
            .into_iter()
            .map(|jws| (self.verify(&jws), jws))
            .collect()
    }

    pub fn verify(&self, jws: &str) -> ActionRequest {
        let kid = action::action_kid(jws).unwrap().unwrap();
        let key = self
            .completed
            .server_keys
            .find(&kid)
            .unwrap()
            .to_verifying_key()
            .unwrap();
        action::verify_action(
            jws,
            &key,
            &self.completed.issuer,
            &self.completed.account_id,
            now(),
        )
        .unwrap()
        .request
    }

    /// The one pending request.
    pub async fn the_request(&self) -> (ActionRequest, String) {
        let mut pending = self.pending().await;
        assert_eq!(pending.len(), 1, "one pending request");
        pending.remove(0)
    }

    /// An approval signed by the device key and `pin`.
    pub fn approval(&self, request: &ActionRequest, jws: &str, pin: &SigningKey) -> GeneralJws {
        self.approval_by(request, jws, UvMethod::Pin, pin)
    }

    /// An approval with `method`, signed by the device key and `uv_key`.
    pub fn approval_by(
        &self,
        request: &ActionRequest,
        jws: &str,
        method: UvMethod,
        uv_key: &SigningKey,
    ) -> GeneralJws {
        let payload = ActionResponse {
            request_id: request.jti.clone(),
            request_hash: jose::sha256_b64(jws),
            decision: Decision::Approve,
            reason: None,
            method: Some(method),
            claims: request.all_claims(),
            number: None,
            iat: now(),
        };
        let mut response = GeneralJws::new(&payload.to_payload());
        response
            .add_signature(&ActionResponse::device_header(), &self.phone.device)
            .unwrap();
        response
            .add_signature(&ActionResponse::uv_header(method), uv_key)
            .unwrap();
        response
    }

    /// A decline signed by the device key alone.
    pub fn decline(&self, request: &ActionRequest, jws: &str) -> GeneralJws {
        let payload = ActionResponse {
            request_id: request.jti.clone(),
            request_hash: jose::sha256_b64(jws),
            decision: Decision::Decline,
            reason: Some(DeclineReason::Cancelled),
            method: None,
            claims: Vec::new(),
            number: None,
            iat: now(),
        };
        let mut response = GeneralJws::new(&payload.to_payload());
        response
            .add_signature(&ActionResponse::device_header(), &self.phone.device)
            .unwrap();
        response
    }

    pub async fn answer(
        &self,
        request: &ActionRequest,
        response: &GeneralJws,
    ) -> reqwest::Response {
        self.phone
            .post(&api::path_request_response(&request.jti), response)
            .await
    }
}

/// A whole login: `rp` asks, `e` approves with its code, `rp` collects the token. Returns the
/// backchannel answer and the token.
pub async fn approved_login(
    rp: &RelyingParty,
    e: &Enrolled,
) -> (BackchannelAuthResponse, TokenResponse) {
    let started = rp.start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let accepted: api::ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
    let token: TokenResponse = ok(rp.token_raw(&started.auth_req_id).await).await;
    (started, token)
}

/// The server's database, whichever store it is (SQLite or PostgreSQL), for tests that set up
/// or look at what no route shows. Runs through the server's `testing` hooks.
pub trait DatabaseAccess {
    /// Runs the statement `sql` (portable SQL, `?N` parameters); the rows it changed.
    fn sql_execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize, ServerError>;
    /// The rows of the query `sql`, every column as text (`None` for NULL).
    fn sql_rows(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<Option<String>>>, ServerError>;
    /// The first column of the first row of `sql`, parsed; `None` without a row or for NULL.
    fn sql_value<T: std::str::FromStr>(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Option<T>, ServerError> {
        let first = self
            .sql_rows(sql, params)?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .flatten();
        first
            .map(|text| {
                text.parse()
                    .map_err(|_| ServerError::Internal(format!("unexpected value {text:?}")))
            })
            .transpose()
    }
    /// The number of rows of `table` (a name from the test itself, never from input).
    fn rows(&self, table: &str) -> Result<i64, ServerError> {
        Ok(self
            .sql_value(&format!("SELECT count(*) FROM {table}"), &[])?
            .unwrap_or(0))
    }
}

impl DatabaseAccess for InProcessServer {
    fn sql_execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize, ServerError> {
        self.running().sql_execute(sql, params)
    }
    fn sql_rows(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<Option<String>>>, ServerError> {
        self.running().sql(sql, params)
    }
}

/// Asserts that `e`'s account is blocked: the account says so, and a relying party's new
/// request for the number reaches no phone. It is answered as for any number and recorded as a
/// request nobody can answer (decision 0030).
pub async fn assert_blocked(server: &InProcessServer, e: &Enrolled) {
    let blocked: i64 = server
        .sql_value(
            "SELECT count(*) FROM accounts WHERE id = ?1 AND blocked_at IS NOT NULL",
            &[e.completed.account_id.clone().into()],
        )
        .unwrap()
        .unwrap();
    let nobody_before: i64 = server
        .sql_value("SELECT count(*) FROM unanswerable_requests", &[])
        .unwrap()
        .unwrap();
    let started: sleutel_protocol::api::oidc::BackchannelAuthResponse = ok(server
        .rp()
        .backchannel_authorize_raw(&[("scope", "openid"), ("login_hint", &e.number)])
        .await)
    .await;
    let nobody_after: i64 = server
        .sql_value("SELECT count(*) FROM unanswerable_requests", &[])
        .unwrap()
        .unwrap();
    assert_eq!(blocked, 1);
    assert_eq!(nobody_after, nobody_before + 1);
    assert_eq!(
        token_error(&server.rp(), &started.auth_req_id).await,
        sleutel_protocol::api::codes::AUTHORIZATION_PENDING
    );
}
