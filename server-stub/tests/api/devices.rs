//! A person with more than one active phone (`max_devices > 1`): each phone has its own code;
//! wrong codes on any of them count toward the one limit of the person, and each phone also
//! keeps a count of its own that only its own right code clears.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::StatusCode;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::{ResponseAccepted, codes};
use sleutel_server::Policy;

use crate::common::*;

async fn two_phones_server() -> InProcessServer {
    server_with(Policy {
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
        rp.start_login(&second.number).await.unwrap();
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
    server.rp().start_login(&second.number).await.unwrap();
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
    let started = rp.start_login(&second.number).await.unwrap();
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
        token_error(&rp, &started.auth_req_id).await,
        codes::ACCESS_DENIED
    );
}

#[tokio::test]
async fn a_right_code_on_one_phone_gives_the_other_phone_no_new_guesses() {
    // A thief with the person's second phone guesses twice; the person then approves with the
    // right code on the first phone. The thief's phone keeps its own count: one guess left.
    let server = two_phones_server().await;
    let person = enroll(&server, "+32470000407").await;
    let thief = enroll_again(&server, "+32470000408", &person.citizen).await;
    let rp = server.rp();
    let wrong = SigningKey::generate();
    rp.start_login(&person.number).await.unwrap();
    let (request, jws) = person.the_request().await;
    for _ in 0..2 {
        let _ = err(thief
            .answer(&request, &thief.approval(&request, &jws, &wrong))
            .await)
        .await;
    }
    let _: ResponseAccepted = ok(person
        .answer(&request, &person.approval(&request, &jws, &person.pin))
        .await)
    .await;

    rp.start_login(&person.number).await.unwrap();
    let (request, jws) = thief.the_request().await;
    let (_, error) = err(thief
        .answer(&request, &thief.approval(&request, &jws, &wrong))
        .await)
    .await;

    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
}

#[tokio::test]
async fn a_right_code_on_one_phone_clears_its_own_count_and_the_accounts() {
    let server = two_phones_server().await;
    let first = enroll(&server, "+32470000409").await;
    let second = enroll_again(&server, "+32470000410", &first.citizen).await;
    let rp = server.rp();
    let wrong = SigningKey::generate();
    rp.start_login(&first.number).await.unwrap();
    let (request, jws) = first.the_request().await;
    let _ = err(first
        .answer(&request, &first.approval(&request, &jws, &wrong))
        .await)
    .await;
    let _: ResponseAccepted = ok(first
        .answer(&request, &first.approval(&request, &jws, &first.pin))
        .await)
    .await;

    rp.start_login(&first.number).await.unwrap();
    let (request, jws) = second.the_request().await;
    let (_, error) = err(second
        .answer(&request, &second.approval(&request, &jws, &wrong))
        .await)
    .await;

    assert_eq!(error.attempts_left, Some(2));
}
