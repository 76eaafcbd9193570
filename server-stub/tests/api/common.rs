//! What the tests play: the server on a loopback port with a temporary database, a phone with
//! P-256 device and PIN keys speaking the protocol by hand, the simulated citizen at the bank,
//! and a relying party using CIBA.

use std::net::SocketAddr;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sleutel_protocol::action::{self, ActionRequest};
use sleutel_protocol::api::oidc::{BackchannelAuthResponse, TokenResponse};
use sleutel_protocol::api::sim::{Citizen, NewCitizen, SmsOutbox};
use sleutel_protocol::api::{
    self, ApiError, CompleteEnrollment, EnrollmentCompleted, EnrollmentStarted, StartEnrollment,
    SubmitIdentity, VerifySms,
};
use sleutel_protocol::clock::now;
use sleutel_protocol::dpop;
use sleutel_protocol::identity::{Bank, IdentitySource};
use sleutel_protocol::jose::{self, Es256Signer, GeneralJws, Jwk};
use sleutel_protocol::response::{ActionResponse, Decision, DeclineReason, UvMethod};
use sleutel_server::{Policy, RelyingPartyConfig, RunningServer, ServerConfig};

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A fresh random id for proofs.
pub fn jti() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    jose::b64(bytes)
}

/// The server with its database in a temporary directory.
pub struct TestServer {
    server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    policy: Policy,
    pub http: reqwest::Client,
}

/// Relying parties registered besides the demo one.
pub const OTHER_RPS: usize = 6;

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Policy::default()).await
    }

    pub async fn start_with(policy: Policy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut this = Self {
            server: None,
            dir,
            policy,
            http: http(),
        };
        this.server = Some(this.launch(0).await);
        this
    }

    async fn launch(&self, port: u16) -> RunningServer {
        sleutel_server::start(ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            db_path: self.dir.path().join("server.db"),
            public_url: None,
            relying_parties: std::iter::once(RelyingPartyConfig::demo())
                .chain((1..=OTHER_RPS).map(|n| {
                    RelyingPartyConfig::new(
                        &format!("rp-{n}"),
                        &format!("secret-{n}"),
                        &format!("Dienst {n}"),
                    )
                }))
                .collect(),
            policy: self.policy.clone(),
        })
        .await
        .unwrap()
    }

    pub fn url(&self) -> String {
        self.running().url()
    }

    /// A connection to the server's database file, for what no HTTP call shows (rows left
    /// behind) or can do (moving a stored time into the past).
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.dir.path().join("server.db")).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn
    }

    /// The number of rows of `table` (a name from this test, never from input).
    pub fn rows(&self, table: &str) -> i64 {
        self.db()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    /// Stops the server and starts it again on the same port and database.
    pub async fn restart(&mut self) {
        let policy = self.policy.clone();
        self.restart_with(policy).await;
    }

    /// Stops the server and starts it again on the same port and database with another policy,
    /// as an operator changing a value does.
    pub async fn restart_with(&mut self, policy: Policy) {
        let server = self.server.take().unwrap();
        let port = server.local_addr().port();
        server.shutdown().await;
        self.policy = policy;
        self.server = Some(self.launch(port).await);
    }

    pub async fn citizen(&self, new: NewCitizen) -> Citizen {
        ok(self
            .http
            .post(format!("{}{}", self.url(), api::sim::PATH_CITIZENS))
            .json(&new)
            .send()
            .await
            .unwrap())
        .await
    }

    /// Plays the person at the bank: opens the handoff page, submits card and PIN. Returns the
    /// deep link of the 303 answer, or the error.
    pub async fn bank_authorize(
        &self,
        handoff_url: &str,
        card_number: &str,
        card_pin: &str,
    ) -> Result<String, (StatusCode, ApiError)> {
        let page = self.http.get(handoff_url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let url = url::Url::parse(handoff_url).unwrap();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let mut post_url = url.clone();
        post_url.set_query(None);
        let response = self
            .http
            .post(post_url)
            .form(&[
                ("enrollment_id", param("enrollment_id")),
                ("nonce", param("nonce")),
                ("redirect_uri", param("redirect_uri")),
                ("card_number", card_number.to_owned()),
                ("card_pin", card_pin.to_owned()),
            ])
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::SEE_OTHER {
            return Ok(response.headers()["location"].to_str().unwrap().to_owned());
        }
        Err(err(response).await)
    }

    /// Every SMS sent to `number`, oldest first.
    pub async fn sms_outbox(&self, number: &str) -> SmsOutbox {
        ok(self
            .http
            .get(format!("{}{}", self.url(), api::sim::PATH_SMS))
            .query(&[("phone_number", number)])
            .send()
            .await
            .unwrap())
        .await
    }

    /// The control code of the newest SMS to `number`.
    pub async fn last_sms_code(&self, number: &str) -> String {
        let outbox = self.sms_outbox(number).await;
        let text = &outbox.messages.last().expect("an SMS").text;
        text.split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .expect("a 6-digit code")
            .to_owned()
    }

    /// Relying party `rp-n` (1 to [`OTHER_RPS`]): a newer request of one relying party
    /// supersedes its older one, so tests of several open requests use several.
    pub fn other_rp(&self, n: usize) -> Rp {
        Rp {
            http: self.http.clone(),
            base: self.url(),
            client_id: format!("rp-{n}"),
            secret: format!("secret-{n}"),
        }
    }

    pub fn rp(&self) -> Rp {
        Rp {
            http: self.http.clone(),
            base: self.url(),
            client_id: RelyingPartyConfig::DEMO_CLIENT_ID.into(),
            secret: RelyingPartyConfig::DEMO_SECRET.into(),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Asserts success and decodes the JSON body.
pub async fn ok<T: DeserializeOwned>(response: reqwest::Response) -> T {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "HTTP {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Asserts failure and decodes the JSON error body.
pub async fn err(response: reqwest::Response) -> (StatusCode, ApiError) {
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
        let device = SigningKey::generate();
        Self {
            base: base.to_owned(),
            http: http(),
            jwk: Jwk::from_verifying_key(device.verifying_key()),
            device,
        }
    }

    pub fn proof(&self, method: &str, path: &str, body: &[u8]) -> String {
        dpop::make_proof(
            &self.device,
            &self.jwk,
            method,
            &format!("{}{path}", self.base),
            body,
            &jti(),
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
    url.query_pairs()
        .find(|(k, _)| k == "identity_token")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// A phone that went as far as the SMS step.
pub struct AtSms {
    pub phone: Phone,
    pub started: EnrollmentStarted,
    pub citizen: Citizen,
}

pub async fn enroll_to_sms(server: &TestServer, number: &str) -> AtSms {
    let citizen = server.citizen(NewCitizen::default()).await;
    enroll_to_sms_as(server, number, citizen).await
}

/// `phone` starts an activation for `number` and `citizen` walks through the bank with the
/// debit card. Returns the started enrollment and the bank's identity token, not yet submitted.
pub async fn identity_token(
    server: &TestServer,
    phone: &Phone,
    number: &str,
    citizen: &Citizen,
) -> (EnrollmentStarted, String) {
    let started = phone.start_enrollment(number).await;
    let link = server
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
pub async fn enroll_to_sms_as(server: &TestServer, number: &str, citizen: Citizen) -> AtSms {
    let phone = Phone::new(&server.url());
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

pub async fn enroll(server: &TestServer, number: &str) -> Enrolled {
    let at = enroll_to_sms(server, number).await;
    finish_enrollment(server, number, at).await
}

/// Another phone activated for the same person (the same bank card).
pub async fn enroll_again(server: &TestServer, number: &str, citizen: &Citizen) -> Enrolled {
    let at = enroll_to_sms_as(server, number, citizen.clone()).await;
    finish_enrollment(server, number, at).await
}

/// A phone that verified its SMS code and is ready to register its keys.
pub async fn at_keys(server: &TestServer, number: &str) -> AtSms {
    let at = enroll_to_sms(server, number).await;
    sms_verified(server, number, at).await
}

/// `at` after it verified the newest code sent to `number`.
async fn sms_verified(server: &TestServer, number: &str, at: AtSms) -> AtSms {
    let code = server.last_sms_code(number).await;
    let _: api::SmsVerified = ok(at.phone.verify_sms(&at.started.enrollment_id, &code).await).await;
    at
}

async fn finish_enrollment(server: &TestServer, number: &str, at: AtSms) -> Enrolled {
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

/// The demo relying party.
pub struct Rp {
    http: reqwest::Client,
    base: String,
    pub client_id: String,
    pub secret: String,
}

impl Rp {
    /// The same server's endpoints called with another client id and secret.
    pub fn with_credentials(&self, client_id: &str, secret: &str) -> Rp {
        Rp {
            http: self.http.clone(),
            base: self.base.clone(),
            client_id: client_id.into(),
            secret: secret.into(),
        }
    }

    pub async fn bc_authorize_raw(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, api::oidc::PATH_BC_AUTHORIZE))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, number: &str) -> BackchannelAuthResponse {
        ok(self
            .bc_authorize_raw(&[
                ("scope", "openid profile"),
                ("login_hint", number),
                ("binding_message", "TEST-1"),
            ])
            .await)
        .await
    }

    /// A login that expires after `secs` seconds (`requested_expiry`).
    pub async fn login_expiring(&self, number: &str, secs: i64) -> BackchannelAuthResponse {
        ok(self
            .bc_authorize_raw(&[
                ("scope", "openid"),
                ("login_hint", number),
                ("requested_expiry", &secs.to_string()),
            ])
            .await)
        .await
    }

    pub async fn token(&self, auth_req_id: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, api::oidc::PATH_TOKEN))
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&[
                ("grant_type", api::oidc::CIBA_GRANT_TYPE),
                ("auth_req_id", auth_req_id),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn token_error(&self, auth_req_id: &str) -> String {
        err(self.token(auth_req_id).await).await.1.error
    }
}

/// A whole login: `rp` asks, `e` approves with its code, `rp` collects the token. Returns the
/// backchannel answer and the token.
pub async fn approved_login(rp: &Rp, e: &Enrolled) -> (BackchannelAuthResponse, TokenResponse) {
    let started = rp.login(&e.number).await;
    let (request, jws) = e.the_request().await;
    let accepted: api::ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
    let token: TokenResponse = ok(rp.token(&started.auth_req_id).await).await;
    (started, token)
}
