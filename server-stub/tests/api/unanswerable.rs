//! Every valid Belgian mobile number gets the same answer at the backchannel endpoint, whether
//! a person with a usable key holds it or not (unknown, blocked, without an active phone): a
//! request nobody can answer is recorded, and it is polled, superseded, limited and purged as a
//! request of a person who never answers (decision 0030).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sleutel_protocol::api::{self, codes};
use sleutel_server::Policy;

use crate::common::*;

/// A number nobody enrolled.
const UNKNOWN: &str = "+32479999901";

/// What the relying party gets, with the one part that differs per request (the id) left out:
/// the status and the body's members other than `auth_req_id`.
async fn answer_shape(response: reqwest::Response) -> (StatusCode, serde_json::Value, String) {
    let status = response.status();
    let mut body: serde_json::Value = response.json().await.unwrap();
    let id = body
        .as_object_mut()
        .and_then(|o| o.remove("auth_req_id"))
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, body, id)
}

async fn ask(
    server: &sleutel_harness::server::InProcessServer,
    number: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, serde_json::Value, String) {
    let mut form = vec![("scope", "openid"), ("login_hint", number)];
    form.extend_from_slice(extra);
    answer_shape(server.rp().backchannel_authorize_raw(&form).await.unwrap()).await
}

async fn poll(
    server: &sleutel_harness::server::InProcessServer,
    auth_req_id: &str,
) -> (StatusCode, serde_json::Value) {
    let response = server.rp().token_raw(auth_req_id).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Numbers of each kind: an active key, a blocked key, an account without an active phone, and
/// a number nobody enrolled.
async fn numbers(server: &sleutel_harness::server::InProcessServer) -> Vec<String> {
    let active = enroll(server, "+32470300001").await;
    let blocked = enroll(server, "+32470300002").await;
    server
        .sql_execute(
            "UPDATE accounts SET blocked_at = 1 WHERE id = ?1",
            &[blocked.completed.account_id.clone().into()],
        )
        .unwrap();
    let deviceless = enroll(server, "+32470300003").await;
    let deactivated = deviceless
        .phone
        .send(Method::POST, api::PATH_DEVICE_DEACTIVATE, Vec::new())
        .await;
    assert!(deactivated.status().is_success());
    vec![
        active.number,
        blocked.number,
        deviceless.number,
        UNKNOWN.to_owned(),
    ]
}

#[tokio::test]
async fn every_valid_number_gets_the_same_answer_and_the_same_polls() {
    let server = server().await;
    let numbers = numbers(&server).await;
    let mut seen = Vec::new();
    for number in &numbers {
        let (status, body, id) = ask(&server, number, &[]).await;
        let first = poll(&server, &id).await;
        let too_soon = poll(&server, &id).await;
        seen.push((status, body, first, too_soon));
    }

    let (status, body, first, too_soon) = &seen[0];
    assert_eq!(*status, StatusCode::OK);
    assert_eq!(*body, serde_json::json!({"expires_in": 300, "interval": 2}));
    assert_eq!(first.1["error"], codes::AUTHORIZATION_PENDING);
    assert_eq!(too_soon.1["error"], codes::SLOW_DOWN);
    for (number, answers) in numbers.iter().zip(&seen).skip(1) {
        assert_eq!(answers, &seen[0], "{number}");
    }
}

#[tokio::test]
async fn under_number_matching_every_number_gets_a_number_to_show() {
    let server = server().await;
    let numbers = numbers(&server).await;

    for number in &numbers {
        let (status, body, _) = ask(&server, number, &[("number_matching", "true")]).await;
        assert_eq!(status, StatusCode::OK, "{number}");
        let shown = body["match_number"].as_u64().unwrap();
        assert!((10..=99).contains(&shown), "{number}: {shown}");
    }
}

#[tokio::test]
async fn a_request_nobody_can_answer_expires_as_one_nobody_answers() {
    let server = server().await;
    let numbers = numbers(&server).await;
    let mut ids = Vec::new();
    for number in &numbers {
        ids.push(ask(&server, number, &[("requested_expiry", "1")]).await.2);
    }

    tokio::time::sleep(Duration::from_millis(2100)).await;

    for (number, id) in numbers.iter().zip(&ids) {
        let (status, body) = poll(&server, id).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{number}");
        assert_eq!(body["error"], codes::EXPIRED_TOKEN, "{number}");
    }
}

#[tokio::test]
async fn a_newer_request_supersedes_the_older_whatever_the_number() {
    let server = server().await;
    let numbers = numbers(&server).await;
    let mut answers = Vec::new();
    for number in &numbers {
        let older = ask(&server, number, &[]).await.2;
        let newer = ask(&server, number, &[]).await.2;
        answers.push((poll(&server, &older).await, poll(&server, &newer).await));
    }

    let ((older_status, older), (_, newer)) = &answers[0];
    assert_eq!(*older_status, StatusCode::BAD_REQUEST);
    assert_eq!(older["error"], codes::ACCESS_DENIED);
    assert_eq!(newer["error"], codes::AUTHORIZATION_PENDING);
    for (number, seen) in numbers.iter().zip(&answers).skip(1) {
        assert_eq!(seen, &answers[0], "{number}");
    }
}

#[tokio::test]
async fn the_limits_per_person_refuse_every_number_alike() {
    let server = server().await;
    let numbers = numbers(&server).await;
    let max = Policy::default().max_pending_per_account;
    let mut refusals = Vec::new();
    for number in &numbers {
        for _ in 0..max {
            assert_eq!(
                ask(&server, number, &[]).await.0,
                StatusCode::OK,
                "{number}"
            );
        }
        refusals.push(ask(&server, number, &[]).await);
    }

    let (status, body, _) = &refusals[0];
    assert_eq!(*status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], codes::ACCESS_DENIED);
    for (number, refusal) in numbers.iter().zip(&refusals).skip(1) {
        assert_eq!(refusal, &refusals[0], "{number}");
    }
}

#[tokio::test]
async fn only_a_keyed_hash_of_a_number_without_a_key_is_stored() {
    let server = server().await;

    ask(&server, UNKNOWN, &[]).await;

    let rows = server
        .sql_rows(
            "SELECT client_id, length(number_hash) FROM unanswerable_requests",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1].as_deref(), Some("32"));
    let digits = UNKNOWN.trim_start_matches('+');
    let anywhere: i64 = server
        .sql_value(
            "SELECT count(*) FROM unanswerable_requests
             WHERE auth_req_id LIKE ?1 OR client_id LIKE ?1",
            &[format!("%{digits}%").into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(anywhere, 0);
}

#[tokio::test]
async fn requests_nobody_can_answer_are_purged_after_the_retention_like_requests() {
    let server = server().await;
    let old = ask(&server, UNKNOWN, &[]).await.2;
    let recent = ask(&server, "+32479999902", &[]).await.2;
    let retention = Policy::default().request_retention_secs;
    let now = sleutel_protocol::clock::now();
    server
        .sql_execute(
            "UPDATE unanswerable_requests SET expires_at = ?2 WHERE auth_req_id = ?1",
            &[old.clone().into(), (now - retention - 10).into()],
        )
        .unwrap();

    let server = server.restart().await.unwrap();

    let left: Vec<Option<String>> = server
        .sql_rows("SELECT auth_req_id FROM unanswerable_requests", &[])
        .unwrap()
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(left, vec![Some(recent)]);
}

#[tokio::test]
async fn a_number_is_answered_no_sooner_than_the_policys_floor() {
    let server = server_with(Policy {
        min_number_answer_millis: 300,
        ..Policy::default()
    })
    .await;
    let registered = enroll(&server, "+32470300009").await;

    for number in [registered.number.as_str(), UNKNOWN] {
        let at = Instant::now();
        let (status, _, _) = ask(&server, number, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(at.elapsed() >= Duration::from_millis(300), "{number}");
    }
}
