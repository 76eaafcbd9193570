//! Liveness (`/healthz`, the process serves) and readiness (`/readyz`, the database answers
//! and the instance is not shutting down), for orchestrators and load balancers.

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn liveness_answers_without_asking_the_database() {
    let server = server().await;

    let answer = server
        .http()
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "alive");
}

#[tokio::test]
async fn readiness_says_ready_when_the_database_answers() {
    let server = server().await;

    let answer = server
        .http()
        .get(format!("{}/readyz", server.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn readiness_waits_for_a_database_held_by_long_work_and_then_says_ready() {
    let server = std::sync::Arc::new(server().await);
    let holder = {
        let server = server.clone();
        std::thread::spawn(move || {
            server
                .running()
                .hold_database(std::time::Duration::from_millis(800))
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));

    let answer = server
        .http()
        .get(format!("{}/readyz", server.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), StatusCode::OK);
    holder.join().unwrap().unwrap();
}
