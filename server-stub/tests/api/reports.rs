//! After "this was not me": the reported relying party is refused new requests to the person
//! for the whole suspicious window, while the others share the throttle's one request per
//! interval; on the backchannel and through the sign-in page alike.

use reqwest::StatusCode;
use sleutel_harness::rp::RelyingParty;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::oidc::BackchannelAuthResponse;
use sleutel_protocol::api::{ApiError, ResponseAccepted};
use sleutel_protocol::response::{Decision, DeclineReason};
use sleutel_server::Policy;

use crate::authcode::{Browser, send_number, send_number_for};
use crate::common::*;
use crate::evidence::{payload, signed};

/// The policy's throttle interval and window (the defaults, named for the arithmetic below).
const THROTTLE: i64 = 300;
const WINDOW: i64 = 3600;

/// `rp` asks `e` for a login; the answer as it came.
async fn ask(rp: &RelyingParty, e: &Enrolled) -> reqwest::Response {
    rp.backchannel_authorize_raw(&[("scope", "openid"), ("login_hint", e.number.as_str())])
        .await
        .unwrap()
}

/// `rp` asks `e` and the person answers "this was not me".
async fn report(rp: &RelyingParty, e: &Enrolled) {
    let _: BackchannelAuthResponse = ok(ask(rp, e).await).await;
    let (request, jws) = e.the_request().await;
    let mut not_me = payload(&request, &jws, Decision::Decline);
    not_me.reason = Some(DeclineReason::NotMe);
    let _: ResponseAccepted = ok(e.answer(&request, &signed(e, &not_me, None)).await).await;
}

/// Moves every report and request `secs` into the past, as if that time had passed.
fn age(server: &InProcessServer, secs: i64) {
    server
        .sql_execute(
            "UPDATE account_events SET at = at - ?1",
            &[SqlValue::Integer(secs)],
        )
        .unwrap();
    server
        .sql_execute(
            "UPDATE action_requests SET created_at = created_at - ?1",
            &[SqlValue::Integer(secs)],
        )
        .unwrap();
}

/// The refusal a throttled or reported relying party gets.
async fn refused(answer: reqwest::Response) -> (StatusCode, ApiError) {
    let (status, error) = err(answer).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{error:?}");
    assert_eq!(error.error, "access_denied");
    (status, error)
}

fn default_policy() -> Policy {
    let policy = Policy::default();
    assert_eq!(
        (
            policy.suspicious_throttle_secs,
            policy.suspicious_window_secs
        ),
        (THROTTLE, WINDOW)
    );
    policy
}

#[tokio::test]
async fn the_reported_relying_party_is_refused_for_the_whole_window_and_heard_after_it() {
    let server = server_with(default_policy()).await;
    let e = enroll(&server, "+32470001901").await;
    let reported = server.rp();
    report(&reported, &e).await;

    // Past the throttle's interval, still inside the window: the throttle alone would let it.
    age(&server, THROTTLE + 1);
    refused(ask(&reported, &e).await).await;
    age(&server, WINDOW - THROTTLE - 10);
    refused(ask(&reported, &e).await).await;

    age(&server, 10);
    let _: BackchannelAuthResponse = ok(ask(&reported, &e).await).await;
    assert_eq!(e.pending().await.len(), 1);
}

#[tokio::test]
async fn another_relying_party_gets_the_throttle_not_the_refusal() {
    let server = server_with(default_policy()).await;
    let e = enroll(&server, "+32470001902").await;
    let reported = server.rp();
    let other = other_rp(&server, 1);
    let third = other_rp(&server, 2);
    report(&reported, &e).await;

    // Within the interval after the report everyone waits, as before.
    let throttled = refused(ask(&other, &e).await).await;
    age(&server, THROTTLE + 1);
    let _: BackchannelAuthResponse = ok(ask(&other, &e).await).await;
    // The one place of this interval is taken; the reported one was never in the running.
    let throttled_again = refused(ask(&third, &e).await).await;
    let reported_refusal = refused(ask(&reported, &e).await).await;

    // The reported relying party learns no more than a throttled one: one answer, word for word.
    assert_eq!(reported_refusal, throttled);
    assert_eq!(throttled_again, throttled);
    assert_eq!(e.pending().await.len(), 1);
}

#[tokio::test]
async fn each_relying_party_reported_in_the_window_is_refused() {
    let server = server_with(default_policy()).await;
    let e = enroll(&server, "+32470001903").await;
    let first = server.rp();
    let second = other_rp(&server, 1);
    let trusted = other_rp(&server, 2);
    report(&first, &e).await;
    age(&server, THROTTLE + 1);
    report(&second, &e).await;

    age(&server, THROTTLE + 1);
    refused(ask(&first, &e).await).await;
    refused(ask(&second, &e).await).await;
    let _: BackchannelAuthResponse = ok(ask(&trusted, &e).await).await;

    // The first report leaves the window before the second one does.
    age(&server, WINDOW - 2 * THROTTLE - 2);
    let _: BackchannelAuthResponse = ok(ask(&first, &e).await).await;
    refused(ask(&second, &e).await).await;
}

#[tokio::test]
async fn a_wrong_number_throttles_but_does_not_refuse_its_relying_party() {
    let server = server_with(default_policy()).await;
    let e = enroll(&server, "+32470001904").await;
    let rp = server.rp();
    let started: BackchannelAuthResponse = ok(rp
        .backchannel_authorize_raw(&[
            ("scope", "openid"),
            ("login_hint", e.number.as_str()),
            ("number_matching", "true"),
        ])
        .await)
    .await;
    let (request, jws) = e.the_request().await;
    let shown = started.match_number.unwrap();
    let wrong = *request
        .number_options
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| **n != shown)
        .unwrap();
    let mut pick = payload(&request, &jws, Decision::Approve);
    pick.number = Some(wrong);
    let _ = e.answer(&request, &signed(&e, &pick, Some(&e.pin))).await;

    // A wrong pick may be the person's own slip: only a "not me" names a relying party to refuse.
    refused(ask(&rp, &e).await).await;
    age(&server, THROTTLE + 1);
    let _: BackchannelAuthResponse = ok(ask(&rp, &e).await).await;
}

#[tokio::test]
async fn the_sign_in_page_of_the_reported_relying_party_starts_no_request() {
    let server = server_with(default_policy()).await;
    let e = enroll(&server, "+32470001905").await;
    let mut unknown = Browser::new(&server);
    let unknown_page = send_number(&mut unknown, "+32470001999").await;
    report(&server.rp(), &e).await;
    age(&server, THROTTLE + 1);

    // The demo site is the relying party reported: its page waits as for an unknown number.
    let mut browser = Browser::new(&server);
    let page = send_number(&mut browser, &e.number).await;
    assert_eq!(page.status, unknown_page.status);
    assert!(e.pending().await.is_empty());

    // Another relying party's sign-in page reaches the phone.
    let redirect = other_rp_redirect_uri(1);
    let mut other = Browser::new(&server);
    send_number_for(
        &mut other,
        &e.number,
        &[
            ("client_id", Some("rp-1")),
            ("redirect_uri", Some(&redirect)),
        ],
    )
    .await;
    let pending = e.pending().await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].0.rp.id, "rp-1");
}
