//! Concurrent requests: served in parallel, and counted without lost updates.

use std::sync::Arc;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_protocol::api::codes;
use tokio::task::JoinSet;

use crate::common::*;

#[tokio::test]
async fn concurrent_activations_all_succeed() {
    let server = Arc::new(server().await);
    let mut tasks = JoinSet::new();
    for i in 0..6 {
        let server = server.clone();
        tasks.spawn(async move { enroll(&server, &format!("+3247000030{i}")).await.completed });
    }

    let mut accounts = Vec::new();
    while let Some(done) = tasks.join_next().await {
        accounts.push(done.unwrap().account_id);
    }

    accounts.sort();
    accounts.dedup();
    assert_eq!(accounts.len(), 6);
}

#[tokio::test]
async fn concurrent_wrong_codes_are_each_counted_once() {
    let server = server().await;
    let e = Arc::new(enroll(&server, "+32470000310").await);
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let mut tasks = JoinSet::new();
    for _ in 0..3 {
        let (e, request, jws) = (e.clone(), request.clone(), jws.clone());
        tasks.spawn(async move {
            let wrong = SigningKey::generate();
            err(e
                .answer(&request, &e.approval(&request, &jws, &wrong))
                .await)
            .await
            .1
        });
    }

    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let error = done.unwrap();
        outcomes.push((error.error, error.attempts_left));
    }

    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![
            (codes::ACCOUNT_BLOCKED.to_string(), Some(0)),
            (codes::WRONG_PIN.to_string(), Some(1)),
            (codes::WRONG_PIN.to_string(), Some(2)),
        ]
    );
}
