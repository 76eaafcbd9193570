//! A relying party logs an enrolled citizen in: approvals, wrong codes, blocking, declines,
//! expiry, and the server's CIBA errors.

use std::time::Duration;

use crate::common::*;
use sleutel_core::{Approval, CoreError, DeclineReason};
use sleutel_harness::HarnessError;
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_server::Policy;

#[tokio::test]
async fn approved_login_gives_the_relying_party_a_verified_id_token_with_the_name() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000001").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;

    let view = e.phone.next_request(WAIT).await.unwrap();
    assert_eq!(view.rp_name, "Online overheid");
    assert_eq!(view.text, "Ik log in op de online overheid");
    assert_eq!(view.binding_message.as_deref(), Some("TEST-1"));
    e.phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await
        .unwrap();

    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let claims = rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(
        claims.name.as_deref(),
        Some(format!("{} {}", e.citizen.given_name, e.citizen.family_name).as_str())
    );
    assert_eq!(claims.aud, "online-overheid");
    assert!(claims.amr.contains(&"pin".to_string()));
    let history = e.phone.authenticator().history().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].request_id, view.request_id);
    assert!(e.phone.authenticator().pending().unwrap().is_empty());
}

#[tokio::test]
async fn the_id_token_of_a_login_says_login_and_echoes_the_binding_message() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000012").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let request = LoginRequest::new(&e.phone_number).with_message("TEST-2");
    let started = rp.backchannel_authorize(&request).await.unwrap();
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();

    let claims = rp.verify_approval(&token.id_token, &request).await.unwrap();

    let action = claims.sleutel_action;
    assert_eq!(action.kind, sleutel_core::ActionKind::Login);
    assert_eq!(action.binding_message.as_deref(), Some("TEST-2"));
    assert_eq!(action.transaction, None);
    assert_eq!(action.document, None);
}

#[tokio::test]
async fn the_id_token_of_a_login_fails_the_check_of_a_relying_party_that_asked_a_payment() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000013").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let login = LoginRequest::new(&e.phone_number);
    let started = rp.backchannel_authorize(&login).await.unwrap();
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let payment =
        LoginRequest::new(&e.phone_number).confirming(sleutel_core::Transaction::Payment {
            amount: "125.50".into(),
            currency: "EUR".into(),
            payee: "Stad Gent".into(),
            iban: "BE68 5390 0754 7034".into(),
        });

    let err = rp
        .verify_approval(&token.id_token, &payment)
        .await
        .unwrap_err();

    assert!(
        matches!(&err, HarnessError::Verification(why) if why.contains("sleutel_action.kind")),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_code_answers_with_attempts_left_and_the_request_stays_open() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000002").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    let auth = e.phone.authenticator();

    let err = auth
        .approve(view.request_id.clone(), Approval::code(WRONG_CODE))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CoreError::WrongCode { attempts_left: 2 }),
        "{err:?}"
    );
    assert_eq!(auth.pending().unwrap().len(), 1);
    assert_eq!(
        rp.poll_token(&started.auth_req_id)
            .await
            .unwrap_err()
            .api_code(),
        Some("authorization_pending")
    );

    auth.approve(view.request_id.clone(), Approval::code(CODE))
        .await
        .unwrap();
    assert!(rp.wait_for_token(&started, WAIT).await.is_ok());
}

#[tokio::test]
async fn third_wrong_code_blocks_the_account_and_the_right_code_is_then_refused() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000003").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    let auth = e.phone.authenticator();
    let id = view.request_id.clone();

    for expected_left in [2, 1] {
        let err = auth
            .approve(id.clone(), Approval::code(WRONG_CODE))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CoreError::WrongCode { attempts_left } if attempts_left == expected_left),
            "{err:?}"
        );
    }
    let err = auth
        .approve(id.clone(), Approval::code(WRONG_CODE))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::AccountBlocked), "{err:?}");

    let err = auth
        .approve(id.clone(), Approval::code(CODE))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::AccountBlocked), "{err:?}");
    let err = rp.wait_for_token(&started, WAIT).await.unwrap_err();
    assert_eq!(err.api_code(), Some("access_denied"));
}

#[tokio::test]
async fn decline_gives_the_relying_party_access_denied() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000004").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();

    e.phone
        .authenticator()
        .decline(view.request_id.clone(), DeclineReason::Cancelled)
        .await
        .unwrap();

    let err = rp.wait_for_token(&started, WAIT).await.unwrap_err();
    assert_eq!(err.api_code(), Some("access_denied"));
    let history = e.phone.authenticator().history().unwrap();
    assert_eq!(history[0].reason, Some(DeclineReason::Cancelled));
}

#[tokio::test]
async fn expired_request_gives_expired_token_and_cannot_be_answered() {
    let server = server_with(Policy {
        request_ttl_secs: 2,
        ..Policy::default()
    })
    .await;
    let mut e = enrolled(&server.url(), "+32470000005").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;

    let err = e
        .phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(CODE))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::RequestExpired), "{err:?}");
    assert_eq!(
        rp.poll_token(&started.auth_req_id)
            .await
            .unwrap_err()
            .api_code(),
        Some("expired_token")
    );
    assert!(e.phone.authenticator().pending().unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_phone_number_gets_a_request_that_stays_pending() {
    let server = server().await;
    let rp = RelyingParty::demo(&server.url()).unwrap();

    let started = rp
        .backchannel_authorize(&LoginRequest::new("+32479999999"))
        .await
        .unwrap();
    let polled = rp.poll_token(&started.auth_req_id).await.unwrap_err();

    assert_eq!(started.expires_in, 300);
    assert_eq!(polled.api_code(), Some("authorization_pending"));
}

#[tokio::test]
async fn wrong_client_secret_gives_invalid_client() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470000006").await;
    let rp = RelyingParty::new(&server.url(), "online-overheid", "not-the-secret").unwrap();
    let err = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("invalid_client"));
}

#[tokio::test]
async fn polling_faster_than_the_interval_gives_slow_down() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470000007").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;

    let first = rp.poll_token(&started.auth_req_id).await.unwrap_err();
    let second = rp.poll_token(&started.auth_req_id).await.unwrap_err();

    assert!(matches!(
        first.api_code(),
        Some("authorization_pending") | Some("slow_down")
    ));
    assert_eq!(second.api_code(), Some("slow_down"));
}

#[tokio::test]
async fn the_token_is_issued_once() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000008").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    rp.wait_for_token(&started, WAIT).await.unwrap();

    tokio::time::sleep(Duration::from_secs(started.interval as u64)).await;
    let err = rp.poll_token(&started.auth_req_id).await.unwrap_err();
    assert_eq!(err.api_code(), Some("invalid_grant"));
}

#[tokio::test]
async fn a_restarted_server_keeps_enrolled_phones_working() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000009").await;
    let before = RelyingParty::demo(&server.url()).unwrap();
    let (issuer_before, jwks_before) = (
        before.discovery().await.unwrap().issuer.clone(),
        before.jwks().await.unwrap(),
    );

    let server = server.restart().await.unwrap();

    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(rp.discovery().await.unwrap().issuer, issuer_before);
    assert_eq!(
        rp.jwks().await.unwrap(),
        jwks_before,
        "the signing key survives a restart"
    );
}

#[tokio::test]
async fn a_reopened_phone_finds_its_account_and_answers() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470000010").await;
    let dir = e.dir;
    drop(e.phone);

    let mut phone = sleutel_harness::phone::VirtualPhone::open(&server.url(), dir.path()).unwrap();
    assert_eq!(
        phone.account().unwrap().unwrap().account_id,
        e.account.account_id
    );
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    phone.approve_next(CODE, WAIT).await.unwrap();
    assert!(rp.wait_for_token(&started, WAIT).await.is_ok());
}
