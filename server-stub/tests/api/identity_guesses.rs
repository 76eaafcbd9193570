//! The limits on wrong identity codes per source address and on the whole server: on the
//! phone's counter activation (link and code), its eID identification code, and the block
//! page. A guess beyond a limit is refused before any code is compared, so it costs no code a
//! try and even the right code waits.

use reqwest::StatusCode;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::sim::{BlockMyKey, KeyBlocked};
use sleutel_protocol::api::{self, SmsSent, codes};
use sleutel_protocol::identity::IdentitySource;
use sleutel_server::Policy;

use crate::common::*;
use crate::sources::{
    counter_issue, eid_code, other_code, start_with, submit_code, submit_code_with_link,
};

/// A second address of the test machine: the server on 127.0.0.1 sees its calls come from
/// another source.
const OTHER_ADDRESS: &str = "127.0.0.2";

/// An HTTP client whose calls leave from [`OTHER_ADDRESS`].
fn from_other_address() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(OTHER_ADDRESS.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A well-formed identification code other than `code`.
fn other_eid_code(code: &str) -> &'static str {
    if code.starts_with('A') {
        "CDEF-GHJK"
    } else {
        "ACDE-FGHJ"
    }
}

/// A policy with `per_source` wrong identity codes an hour per address and `overall` a minute.
fn limits(per_source: u32, overall: u32) -> Policy {
    Policy {
        max_wrong_identity_codes_per_source_per_hour: per_source,
        max_wrong_identity_codes_per_minute: overall,
        ..Policy::default()
    }
}

/// The refusal of a guess over a limit: 429, `rate_limited`, and when to try again.
async fn assert_rate_limited(answer: reqwest::Response) {
    let retry_after = answer.headers().get("retry-after").cloned();
    let (status, error) = err(answer).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{error:?}");
    assert_eq!(error.error, codes::RATE_LIMITED);
    assert!(retry_after.is_some(), "a 429 says when to try again");
}

/// The wrong tries counted on every identity code, and on every enrollment.
fn tries_counted(server: &InProcessServer) -> (i64, i64) {
    let codes: i64 = server
        .sql_value(
            "SELECT CAST(coalesce(sum(failures), 0) AS BIGINT) FROM identity_codes",
            &[],
        )
        .unwrap()
        .unwrap();
    let enrollments: i64 = server
        .sql_value(
            "SELECT CAST(coalesce(sum(code_failures), 0) AS BIGINT) FROM enrollments",
            &[],
        )
        .unwrap()
        .unwrap();
    (codes, enrollments)
}

/// Moves every rate count `secs` into the past, as if that time had passed.
fn age_counts(server: &InProcessServer, secs: i64) {
    server
        .sql_execute(
            "UPDATE rate_counts SET at = at - ?1, expires_at = expires_at - ?1",
            &[SqlValue::Integer(secs)],
        )
        .unwrap();
}

#[tokio::test]
async fn counter_codes_beyond_the_per_source_limit_are_refused_uncompared_while_another_address_goes_on()
 {
    let server = server_with(limits(2, 100)).await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470002001", IdentitySource::Counter).await;
    let wrong = other_code(&issued.code);
    for _ in 0..2 {
        let (_, error) =
            err(submit_code_with_link(&phone, &started, Some(&issued.token), wrong).await).await;
        assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    }
    let counted = tries_counted(&server);

    // The right code from the same address is not even compared.
    assert_rate_limited(
        submit_code_with_link(&phone, &started, Some(&issued.token), &issued.code).await,
    )
    .await;
    assert_eq!(tries_counted(&server), counted);
    // So is an unknown link.
    let unknown = "A".repeat(issued.token.len());
    assert_rate_limited(submit_code_with_link(&phone, &started, Some(&unknown), wrong).await).await;

    // The code lost nothing: from another address it activates.
    let elsewhere = Phone::with_http(&server.url(), from_other_address());
    let theirs = start_with(&elsewhere, "+32470002001", IdentitySource::Counter).await;
    let _: SmsSent =
        ok(submit_code_with_link(&elsewhere, &theirs, Some(&issued.token), &issued.code).await)
            .await;
}

#[tokio::test]
async fn identification_codes_beyond_the_per_source_limit_are_refused_uncompared() {
    let server = server_with(limits(2, 100)).await;
    let person = citizen(&server).await;
    let number = "+32470002002";
    let code = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;
    for _ in 0..2 {
        let (_, error) = err(submit_code(&phone, &started, other_eid_code(&code)).await).await;
        assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    }
    let counted = tries_counted(&server);

    assert_rate_limited(submit_code(&phone, &started, &code).await).await;
    assert_eq!(tries_counted(&server), counted);

    let elsewhere = Phone::with_http(&server.url(), from_other_address());
    let theirs = start_with(&elsewhere, number, IdentitySource::Eid).await;
    let _: SmsSent = ok(submit_code(&elsewhere, &theirs, &code).await).await;
}

/// The block page's counter form.
fn counter_block(code: &str, token: &str) -> BlockMyKey {
    BlockMyKey {
        source: Some(IdentitySource::Counter),
        activation_code: Some(code.to_owned()),
        activation_token: Some(token.to_owned()),
        ..BlockMyKey::default()
    }
}

/// The block page's answer to `form`, sent through `http`.
async fn block_from(
    http: &reqwest::Client,
    server: &InProcessServer,
    form: &BlockMyKey,
) -> reqwest::Response {
    http.post(format!("{}{}", server.url(), api::sim::PATH_BLOCK))
        .json(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_block_page_refuses_guesses_beyond_the_per_source_limit_uncompared() {
    let server = server_with(limits(2, 100)).await;
    let e = enroll(&server, "+32470002003").await;
    let issued = counter_issue(&server, &e.citizen).await;
    let here = reqwest::Client::new();
    let wrong = counter_block(other_code(&issued.code), &issued.token);
    let (_, error) = err(block_from(&here, &server, &wrong).await).await;
    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    // An unknown link is a guess too, and counts.
    let unknown = counter_block(&issued.code, &"A".repeat(issued.token.len()));
    let (status, _) = err(block_from(&here, &server, &unknown).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let counted = tries_counted(&server);

    let right = counter_block(&issued.code, &issued.token);
    assert_rate_limited(block_from(&here, &server, &right).await).await;
    assert_eq!(tries_counted(&server), counted);
    approved_login(&server.rp(), &e).await;

    let blocked: KeyBlocked = ok(block_from(&from_other_address(), &server, &right).await).await;
    assert_eq!(blocked.status, "blocked");
}

#[tokio::test]
async fn wrong_codes_from_every_address_together_meet_the_overall_limit() {
    let server = server_with(limits(100, 2)).await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470002004", IdentitySource::Counter).await;
    let wrong = other_code(&issued.code);
    let (_, error) =
        err(submit_code_with_link(&phone, &started, Some(&issued.token), wrong).await).await;
    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    let (_, error) = err(block_from(
        &from_other_address(),
        &server,
        &counter_block(wrong, &issued.token),
    )
    .await)
    .await;
    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);

    // A third address, the right code: the server takes no more guesses this minute.
    let third = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let elsewhere = Phone::with_http(&server.url(), third);
    let theirs = start_with(&elsewhere, "+32470002004", IdentitySource::Counter).await;
    assert_rate_limited(
        submit_code_with_link(&elsewhere, &theirs, Some(&issued.token), &issued.code).await,
    )
    .await;

    // The minute passes.
    age_counts(&server, 60);
    let _: SmsSent =
        ok(submit_code_with_link(&elsewhere, &theirs, Some(&issued.token), &issued.code).await)
            .await;
}

#[tokio::test]
async fn the_per_source_limit_lifts_when_its_hour_has_passed() {
    let server = server_with(limits(1, 100)).await;
    let person = citizen(&server).await;
    let number = "+32470002005";
    let code = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;
    let (_, error) = err(submit_code(&phone, &started, other_eid_code(&code)).await).await;
    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    assert_rate_limited(submit_code(&phone, &started, &code).await).await;

    age_counts(&server, 59 * 60);
    assert_rate_limited(submit_code(&phone, &started, &code).await).await;
    age_counts(&server, 60);
    let _: SmsSent = ok(submit_code(&phone, &started, &code).await).await;
}
