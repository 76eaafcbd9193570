//! What an attacker on the network or a hostile client can try: tampered and misdirected action
//! requests (through a proxy between phone and server), replayed responses, oversize and
//! malformed bodies; and what a bad network does to a code change: its answer lost, or the
//! request itself held back and delivered late.

use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_core::{Approval, CoreError};
use sleutel_harness::http_client;
use sleutel_harness::sim::SimClient;
use sleutel_protocol::api::{self, ApiError};
use sleutel_protocol::clock::now;
use sleutel_protocol::dpop;
use sleutel_protocol::jose::{Jwk, b64, b64_decode};

/// What the proxy does to action requests on their way to the phone.
#[derive(Clone)]
enum Tamper {
    Nothing,
    /// Change the text to show, keeping the server's signature.
    RewriteText,
    /// Answer with this (validly signed) request of another account instead.
    Substitute(String),
    /// Let the server carry out calls to paths ending with this, then lose its answer (the
    /// connection broke on the way back), once.
    LoseAnswerTo(&'static str),
    /// Keep the next call to a path ending with this from the server ([`Proxy::held`]) and
    /// answer as a broken connection would, once: the request arrives only when the test
    /// delivers it.
    HoldCallTo(&'static str),
}

/// A phone's answer as it crossed the proxy: path, proof header, body.
#[derive(Clone)]
struct CapturedAnswer {
    path: String,
    proof: String,
    body: Vec<u8>,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    tamper: Arc<Mutex<Tamper>>,
    seen_requests: Arc<Mutex<Vec<String>>>,
    answers: Arc<Mutex<Vec<CapturedAnswer>>>,
    /// The call a [`Tamper::HoldCallTo`] kept back.
    held: Arc<Mutex<Option<CapturedAnswer>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> (Proxy, String) {
        let proxy = Proxy {
            upstream: upstream.to_owned(),
            http: http_client().unwrap(),
            tamper: Arc::new(Mutex::new(Tamper::Nothing)),
            seen_requests: Arc::default(),
            answers: Arc::default(),
            held: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (proxy, url)
    }

    fn set(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap() = tamper;
    }

    fn rewrite(&self, jws: &str) -> String {
        self.seen_requests.lock().unwrap().push(jws.to_owned());
        match &*self.tamper.lock().unwrap() {
            Tamper::Nothing | Tamper::LoseAnswerTo(_) | Tamper::HoldCallTo(_) => jws.to_owned(),
            Tamper::Substitute(other) => other.clone(),
            Tamper::RewriteText => {
                let parts: Vec<&str> = jws.split('.').collect();
                let mut claims: serde_json::Value =
                    serde_json::from_slice(&b64_decode(parts[1], "payload").unwrap()).unwrap();
                claims["text"] = "Ik schenk 5000 euro aan de aanvaller".into();
                format!(
                    "{}.{}.{}",
                    parts[0],
                    b64(serde_json::to_vec(&claims).unwrap()),
                    parts[2]
                )
            }
        }
    }
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let mut request = proxy
        .http
        .request(method.clone(), format!("{}{}", proxy.upstream, target));
    for name in ["dpop", "authorization", "content-type"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    if method == Method::POST && target.ends_with("/response") {
        let dpop = headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        proxy.answers.lock().unwrap().push(CapturedAnswer {
            path: target.clone(),
            proof: dpop,
            body: body.to_vec(),
        });
    }
    let hold = matches!(&*proxy.tamper.lock().unwrap(), Tamper::HoldCallTo(suffix) if target.ends_with(suffix));
    if hold {
        proxy.set(Tamper::Nothing);
        *proxy.held.lock().unwrap() = Some(CapturedAnswer {
            path: target,
            proof: headers
                .get("dpop")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: body.to_vec(),
        });
        return (StatusCode::BAD_GATEWAY, "upstream connection lost").into_response();
    }
    let upstream = request.body(body).send().await.unwrap();
    let lose = matches!(&*proxy.tamper.lock().unwrap(), Tamper::LoseAnswerTo(suffix) if target.ends_with(suffix));
    if lose {
        proxy.set(Tamper::Nothing);
        return (StatusCode::BAD_GATEWAY, "upstream connection lost").into_response();
    }
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap();
    let mut body = upstream.bytes().await.unwrap().to_vec();
    if method == Method::GET && target.starts_with(api::PATH_REQUESTS) && status.is_success() {
        let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if let Some(list) = value.get_mut("requests").and_then(|v| v.as_array_mut()) {
            for item in list.iter_mut() {
                *item = proxy.rewrite(item.as_str().unwrap()).into();
            }
        }
        if let Some(one) = value.get_mut("request") {
            *one = proxy.rewrite(one.as_str().unwrap()).into();
        }
        body = serde_json::to_vec(&value).unwrap();
    }
    (status, [("content-type", "application/json")], body).into_response()
}

async fn push_for(url: &str, account_id: &str) -> String {
    let outbox = SimClient::new(url)
        .unwrap()
        .push_messages(account_id, 0)
        .await
        .unwrap();
    serde_json::to_string(&outbox.messages.last().expect("a push").message).unwrap()
}

#[tokio::test]
async fn a_request_whose_signature_does_not_verify_is_never_shown() {
    let server = server().await;
    let (proxy, proxy_url) = Proxy::start(&server.url()).await;
    // The phone reaches the server (and its simulators) only through the proxy.
    let Enrolled {
        phone,
        account,
        dir: _dir,
        ..
    } = enrolled(&proxy_url, "+32472000001").await;
    proxy.set(Tamper::RewriteText);
    start_login(&server.url(), "+32472000001").await;

    let err = phone
        .authenticator()
        .handle_push(push_for(&server.url(), &account.account_id).await)
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::ServerUntrusted { .. }), "{err:?}");
    let refreshed = phone.authenticator().refresh_pending().await;
    assert!(
        matches!(&refreshed, Ok(list) if list.is_empty())
            || matches!(&refreshed, Err(CoreError::ServerUntrusted { .. })),
        "{refreshed:?}"
    );
    assert!(phone.authenticator().pending().unwrap().is_empty());
    assert!(
        !proxy.seen_requests.lock().unwrap().is_empty(),
        "the proxy saw the request"
    );
}

#[tokio::test]
async fn a_request_for_another_account_is_never_shown() {
    let server = server().await;
    let (proxy, proxy_url) = Proxy::start(&server.url()).await;
    let victim = enrolled(&proxy_url, "+32472000002").await;
    let other = enrolled(&proxy_url, "+32472000003").await;
    start_login(&server.url(), "+32472000003").await;
    let others = other.phone.authenticator().refresh_pending().await.unwrap();
    assert_eq!(others.len(), 1);
    let other_jws = proxy.seen_requests.lock().unwrap().last().unwrap().clone();

    proxy.set(Tamper::Substitute(other_jws));
    start_login(&server.url(), "+32472000002").await;
    let err = victim
        .phone
        .authenticator()
        .handle_push(push_for(&server.url(), &victim.account.account_id).await)
        .await
        .unwrap_err();

    assert!(matches!(err, CoreError::ServerUntrusted { .. }), "{err:?}");
    assert!(victim.phone.authenticator().pending().unwrap().is_empty());
}

#[tokio::test]
async fn a_replayed_response_is_refused() {
    let server = server().await;
    let (proxy, proxy_url) = Proxy::start(&server.url()).await;
    let Enrolled {
        mut phone,
        dir: _dir,
        ..
    } = enrolled(&proxy_url, "+32472000004").await;
    let (rp, started) = start_login(&server.url(), "+32472000004").await;
    phone.approve_next(CODE, WAIT).await.unwrap();
    rp.wait_for_token(&started, WAIT).await.unwrap();

    let CapturedAnswer { path, proof, body } =
        proxy.answers.lock().unwrap().last().unwrap().clone();
    let replay = http_client()
        .unwrap()
        .post(format!("{}{path}", server.url()))
        .header("DPoP", proof)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(replay.status().as_u16(), 401);
    let error: ApiError = replay.json().await.unwrap();
    assert_eq!(error.error, api::codes::PROOF_REPLAYED);
}

#[tokio::test]
async fn oversize_and_malformed_bodies_get_json_errors_and_the_server_keeps_serving() {
    let server = server().await;
    let http = http_client().unwrap();
    let url = server.url();
    let key = SigningKey::generate();
    let jwk = Jwk::from_verifying_key(key.verifying_key());
    let proof = |path: &str, body: &[u8], id: &str| {
        dpop::make_proof(&key, &jwk, "POST", &format!("{url}{path}"), body, id, now()).unwrap()
    };

    let huge = vec![b' '; sleutel_protocol::limits::MAX_BODY_BYTES + 1];
    let response = http
        .post(format!("{url}{}", api::PATH_ENROLLMENTS))
        .header("DPoP", proof(api::PATH_ENROLLMENTS, &huge, "p1"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        response.json::<ApiError>().await.unwrap().error,
        api::codes::BODY_TOO_LARGE
    );

    let broken = b"{\"phone_number\": ".to_vec();
    let response = http
        .post(format!("{url}{}", api::PATH_ENROLLMENTS))
        .header("DPoP", proof(api::PATH_ENROLLMENTS, &broken, "p2"))
        .header("content-type", "application/json")
        .body(broken)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.json::<ApiError>().await.unwrap().error,
        api::codes::INVALID_REQUEST
    );

    let response = http
        .post(format!("{url}{}", api::PATH_ENROLLMENTS))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.json::<ApiError>().await.unwrap().error,
        api::codes::INVALID_PROOF
    );

    let response = http
        .post(format!("{url}{}", api::oidc::PATH_BC_AUTHORIZE))
        .basic_auth("online-overheid", Some("demo-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("scope=%%%")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    assert!(response.json::<ApiError>().await.is_ok());

    let response = http
        .get(format!("{url}/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert!(response.json::<ApiError>().await.is_ok());

    let response = http
        .get(format!("{url}{}", api::oidc::PATH_DISCOVERY))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test]
async fn a_lost_answer_to_the_sms_code_or_the_completion_can_be_retried() {
    let number = "+32472000005";
    let (server, proxy, activation, sms) = at_the_sms_step(number).await;
    let auth = activation.auth();

    proxy.set(Tamper::LoseAnswerTo("/sms"));
    assert!(
        auth.verify_sms_code(sms.clone()).await.is_err(),
        "the answer was lost"
    );
    auth.verify_sms_code(sms).await.unwrap();

    proxy.set(Tamper::LoseAnswerTo("/complete"));
    assert!(
        auth.choose_code(CODE.into(), CODE.into()).await.is_err(),
        "the answer was lost"
    );
    let account = auth.choose_code(CODE.into(), CODE.into()).await.unwrap();

    // The code registered on the lost first try is the one that works.
    start_login(&server.url(), number).await;
    let mut phone = activation.phone;
    let view = phone.next_request(WAIT).await.unwrap();
    assert_eq!(view.account_id, account.account_id);
    phone
        .authenticator()
        .approve(view.request_id, Approval::code(CODE))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_flood_of_login_requests_from_one_relying_party_is_capped_and_leaves_one_open() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32472000006").await;
    let rp = sleutel_harness::rp::RelyingParty::demo(&server.url()).unwrap();
    let request = sleutel_harness::rp::LoginRequest::new(&e.phone_number);
    let mut started = Vec::new();
    let mut refused = None;
    for _ in 0..10 {
        match rp.backchannel_authorize(&request).await {
            Ok(s) => started.push(s),
            Err(err) => {
                refused = Some(err);
                break;
            }
        }
    }

    // Each request supersedes the one before, but superseding does not give the relying party
    // an endless supply of pushes: unanswered requests per relying party and person are capped
    // like open requests (the bound across relying parties is tested in defences.rs).
    let err = refused.expect("the server stops pushing one relying party's requests");
    assert_eq!(err.api_code(), Some("access_denied"));
    assert!(
        !started.is_empty() && started.len() <= 5,
        "{}",
        started.len()
    );
    let pending = e.phone.authenticator().refresh_pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    let first = rp.poll_token(&started[0].auth_req_id).await.unwrap_err();
    assert_eq!(first.api_code(), Some("access_denied"));
}

#[tokio::test]
async fn after_a_lost_completion_only_the_code_that_reached_the_server_is_accepted() {
    let (_server, proxy, activation, sms) = at_the_sms_step("+32472000007").await;
    let auth = activation.auth();
    auth.verify_sms_code(sms).await.unwrap();
    proxy.set(Tamper::LoseAnswerTo("/complete"));
    assert!(auth.choose_code(CODE.into(), CODE.into()).await.is_err());

    let err = auth
        .choose_code("97531".into(), "97531".into())
        .await
        .unwrap_err();
    assert_eq!(err, CoreError::EarlierCodeRegistered { attempts_left: 2 });
    assert!(auth.accounts().unwrap().is_empty());

    auth.choose_code(CODE.into(), CODE.into()).await.unwrap();
    assert_eq!(auth.accounts().unwrap().len(), 1);
}

/// A phone behind a proxy, enrolling a new KBC citizen, right before the SMS code is typed: the
/// server, the proxy, the activation and the SMS code.
async fn at_the_sms_step(
    number: &str,
) -> (
    sleutel_harness::server::InProcessServer,
    Proxy,
    Activation,
    String,
) {
    let server = server().await;
    let (proxy, proxy_url) = Proxy::start(&server.url()).await;
    let activation = begin_activation(&server.url(), &proxy_url, number).await;
    let sms = activation.to_the_sms_step().await;
    (server, proxy, activation, sms)
}

/// The code the person chooses in a change.
const NEW_CODE: &str = "86420";

/// A person enrolled through a proxy that then does `tamper` (losing or holding back the
/// exchange) while the phone changes its code from [`CODE`] to [`NEW_CODE`]: the phone sees no
/// answer. The server, the proxy and the person.
async fn change_code_through(
    number: &str,
    tamper: Tamper,
) -> (sleutel_harness::server::InProcessServer, Proxy, Enrolled) {
    let server = server().await;
    let (proxy, proxy_url) = Proxy::start(&server.url()).await;
    let e = enrolled(&proxy_url, number).await;
    proxy.set(tamper);
    let err = e
        .phone
        .authenticator()
        .change_code(
            e.account.account_id.clone(),
            CODE.into(),
            NEW_CODE.into(),
            NEW_CODE.into(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CoreError::ServerUnavailable { .. }),
        "{err:?}"
    );
    (server, proxy, e)
}

#[tokio::test]
async fn a_lost_code_change_answer_costs_no_wrong_code_and_the_new_code_approves() {
    let (server, _proxy, e) =
        change_code_through("+32472000021", Tamper::LoseAnswerTo(api::PATH_DEVICE_PIN)).await;
    let Enrolled {
        mut phone,
        account,
        dir: _dir,
        ..
    } = e;

    let (rp, started) = start_login(&server.url(), "+32472000021").await;
    let view = phone.next_request(WAIT).await.unwrap();
    let err = phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::EarlierCodeChangeRegistered);
    assert!(!server_events(&server, &account.account_id).contains(&"wrong_code".into()));
    phone
        .authenticator()
        .approve(view.request_id, Approval::code(NEW_CODE))
        .await
        .unwrap();
    rp.wait_for_token(&started, WAIT).await.unwrap();
}

#[tokio::test]
async fn a_code_change_held_back_is_void_for_the_old_code_and_refused_when_it_arrives() {
    let (server, proxy, e) =
        change_code_through("+32472000022", Tamper::HoldCallTo(api::PATH_DEVICE_PIN)).await;
    let Enrolled {
        mut phone,
        account,
        dir: _dir,
        ..
    } = e;

    let (rp, started) = start_login(&server.url(), "+32472000022").await;
    phone.approve_next(CODE, WAIT).await.unwrap();
    rp.wait_for_token(&started, WAIT).await.unwrap();
    let CapturedAnswer { path, proof, body } = proxy.held.lock().unwrap().take().unwrap();
    let late = http_client()
        .unwrap()
        .post(format!("{}{path}", server.url()))
        .header("DPoP", proof)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(late.status(), StatusCode::CONFLICT);
    let refusal: ApiError = late.json().await.unwrap();
    assert_eq!(refusal.error, api::codes::CODE_CHANGE_VOID);
    let events = server_events(&server, &account.account_id);
    assert!(!events.contains(&"code_changed".into()), "{events:?}");
    let (rp, started) = start_login(&server.url(), "+32472000022").await;
    phone.approve_next(CODE, WAIT).await.unwrap();
    rp.wait_for_token(&started, WAIT).await.unwrap();
}
