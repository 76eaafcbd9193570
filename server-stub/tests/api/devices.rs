//! A person with more than one active phone (`max_devices > 1`): each phone has its own code,
//! and wrong codes on any of them count toward the one limit of the person.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::StatusCode;
use sleutel_protocol::api::{ResponseAccepted, codes};
use sleutel_server::Policy;

use crate::common::*;

async fn two_phones_server() -> TestServer {
    TestServer::start_with(Policy {
        max_devices: 2,
        ..Policy::default()
    })
    .await
}

#[tokio::test]
async fn two_phones_of_one_person_each_approve_with_their_own_code() {
    let server = two_phones_server().await;
    let first = enroll(&server, "+32470000401").await;
    let second = enroll_again(&server, "+32470000402", &first.citizen).await;
    assert_eq!(second.completed.account_id, first.completed.account_id);
    let rp = server.rp();

    let mut statuses = Vec::new();
    for phone in [&first, &second, &first] {
        rp.login(&second.number).await;
        let (request, jws) = phone.the_request().await;
        let accepted: ResponseAccepted = ok(phone
            .answer(&request, &phone.approval(&request, &jws, &phone.pin))
            .await)
        .await;
        statuses.push(accepted.status);
    }

    assert_eq!(statuses, ["approved"; 3]);
}

#[tokio::test]
async fn the_other_phones_code_is_a_wrong_code() {
    let server = two_phones_server().await;
    let first = enroll(&server, "+32470000403").await;
    let second = enroll_again(&server, "+32470000404", &first.citizen).await;
    server.rp().login(&second.number).await;
    let (request, jws) = first.the_request().await;

    let (status, error) = err(first
        .answer(&request, &first.approval(&request, &jws, &second.pin))
        .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::WRONG_PIN);
    assert_eq!(error.attempts_left, Some(2));
}

#[tokio::test]
async fn wrong_codes_on_either_phone_count_toward_one_limit() {
    let server = two_phones_server().await;
    let first = enroll(&server, "+32470000405").await;
    let second = enroll_again(&server, "+32470000406", &first.citizen).await;
    let rp = server.rp();
    let started = rp.login(&second.number).await;
    let (request, jws) = first.the_request().await;
    let wrong = SigningKey::generate();

    let mut outcomes = Vec::new();
    for phone in [&first, &second, &first] {
        let (_, error) = err(phone
            .answer(&request, &phone.approval(&request, &jws, &wrong))
            .await)
        .await;
        outcomes.push((error.error, error.attempts_left));
    }

    assert_eq!(
        outcomes,
        vec![
            (codes::WRONG_PIN.to_string(), Some(2)),
            (codes::WRONG_PIN.to_string(), Some(1)),
            (codes::ACCOUNT_BLOCKED.to_string(), Some(0)),
        ]
    );
    let (_, error) = err(second
        .answer(&request, &second.approval(&request, &jws, &second.pin))
        .await)
    .await;
    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
    assert_eq!(
        rp.token_error(&started.auth_req_id).await,
        codes::ACCESS_DENIED
    );
}

#[tokio::test]
async fn a_right_code_on_one_phone_resets_the_count_of_the_other() {
    let server = two_phones_server().await;
    let first = enroll(&server, "+32470000407").await;
    let second = enroll_again(&server, "+32470000408", &first.citizen).await;
    let rp = server.rp();
    let wrong = SigningKey::generate();
    rp.login(&second.number).await;
    let (request, jws) = first.the_request().await;
    let _ = err(first
        .answer(&request, &first.approval(&request, &jws, &wrong))
        .await)
    .await;
    let _ = err(second
        .answer(&request, &second.approval(&request, &jws, &wrong))
        .await)
    .await;

    let _: ResponseAccepted = ok(second
        .answer(&request, &second.approval(&request, &jws, &second.pin))
        .await)
    .await;

    rp.login(&second.number).await;
    let (request, jws) = first.the_request().await;
    let (_, error) = err(first
        .answer(&request, &first.approval(&request, &jws, &wrong))
        .await)
    .await;
    assert_eq!(error.attempts_left, Some(2));
}
