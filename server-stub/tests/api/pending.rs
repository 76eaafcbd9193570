//! The bound on open requests per person (`max_pending_per_account`): relying parties cannot
//! flood a phone, and the phone's list stays short.

use std::time::Duration;

use reqwest::StatusCode;
use sleutel_harness::rp::LoginRequest;
use sleutel_protocol::api::{ResponseAccepted, codes};
use sleutel_server::Policy;

use crate::common::*;

#[tokio::test]
async fn a_login_beyond_five_open_requests_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000501").await;
    for n in 1..=5 {
        other_rp(&server, n).start_login(&e.number).await.unwrap();
    }

    let (status, error) = err(other_rp(&server, 6)
        .backchannel_authorize_raw(&[("scope", "openid"), ("login_hint", &e.number)])
        .await)
    .await;

    // CIBA §13: `access_denied` at the backchannel endpoint is 403.
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::ACCESS_DENIED);
    assert!(
        error
            .error_description
            .contains("too many open requests for this user"),
        "{}",
        error.error_description
    );
    assert_eq!(e.pending().await.len(), 5);
}

#[tokio::test]
async fn an_answered_request_frees_a_place() {
    let server = server_with(Policy {
        max_pending_per_account: 2,
        ..Policy::default()
    })
    .await;
    let e = enroll(&server, "+32470000502").await;
    other_rp(&server, 1).start_login(&e.number).await.unwrap();
    other_rp(&server, 2).start_login(&e.number).await.unwrap();
    let (request, jws) = e.pending().await.remove(0);

    let _: ResponseAccepted = ok(e.answer(&request, &e.decline(&request, &jws)).await).await;

    other_rp(&server, 3).start_login(&e.number).await.unwrap();
    assert_eq!(e.pending().await.len(), 2);
}

#[tokio::test]
async fn expired_requests_do_not_count() {
    let server = server_with(Policy {
        max_pending_per_account: 2,
        ..Policy::default()
    })
    .await;
    let e = enroll(&server, "+32470000503").await;
    for n in 1..=2 {
        other_rp(&server, n)
            .backchannel_authorize(&LoginRequest::new(&e.number).openid_only().expiring_in(1))
            .await
            .unwrap();
    }

    tokio::time::sleep(Duration::from_millis(2100)).await;

    other_rp(&server, 3).start_login(&e.number).await.unwrap();
    assert_eq!(e.pending().await.len(), 1);
}

#[tokio::test]
async fn the_phone_gets_at_most_the_bound_oldest_first() {
    let server = server_with(Policy {
        max_pending_per_account: 3,
        ..Policy::default()
    })
    .await;
    let e = enroll(&server, "+32470000504").await;
    for n in 1..=3 {
        other_rp(&server, n).start_login(&e.number).await.unwrap();
    }
    let all: Vec<String> = e.pending().await.into_iter().map(|(r, _)| r.jti).collect();

    // The operator lowers the bound while three requests are open.
    let server = server
        .restart_with(Policy {
            max_pending_per_account: 2,
            ..Policy::default()
        })
        .await
        .unwrap();

    let listed: Vec<String> = e.pending().await.into_iter().map(|(r, _)| r.jti).collect();
    assert_eq!(listed, all[..2]);
    server.shutdown().await;
}
