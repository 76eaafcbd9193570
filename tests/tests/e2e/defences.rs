//! The person's defences: number matching, "this was not me", spoofed display text, expired
//! and duplicate requests, and the bound on open requests.

use std::time::Duration;

use crate::common::*;
use sleutel_core::{Approval, CoreError, DeclineReason, SignDocument, Transaction};
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::SimClient;
use sleutel_protocol::api::codes;
use sleutel_server::{Policy, RelyingPartyConfig};

#[tokio::test]
async fn number_matching_with_the_number_shown_approves() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470007001").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let started = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).with_number_matching())
        .await
        .unwrap();
    let shown = started
        .match_number
        .expect("the relying party gets a number");
    let view = e.phone.next_request(WAIT).await.unwrap();
    let options = view.number_options.clone().expect("three options");
    assert_eq!(options.len(), 3);
    assert!(options.contains(&shown) && (10..=99).contains(&shown));

    e.phone
        .authenticator()
        .approve(
            view.request_id.clone(),
            Approval::code(CODE).with_number(shown),
        )
        .await
        .unwrap();

    assert!(rp.wait_for_token(&started, WAIT).await.is_ok());
}

#[tokio::test]
async fn a_wrong_number_declines_and_is_recorded_as_suspicious() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470007002").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let started = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).with_number_matching())
        .await
        .unwrap();
    let shown = started.match_number.unwrap();
    let view = e.phone.next_request(WAIT).await.unwrap();
    let wrong = view
        .number_options
        .clone()
        .unwrap()
        .into_iter()
        .find(|n| *n != shown)
        .unwrap();

    let err = e
        .phone
        .authenticator()
        .approve(
            view.request_id.clone(),
            Approval::code(CODE).with_number(wrong),
        )
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::WrongNumber);
    assert!(e.phone.authenticator().pending().unwrap().is_empty());
    let denied = rp.wait_for_token(&started, WAIT).await.unwrap_err();
    assert_eq!(denied.api_code(), Some(codes::ACCESS_DENIED));
    let events = server
        .running()
        .account_events(&e.account.account_id)
        .unwrap();
    assert!(events.iter().any(|(event, _, _)| event == "wrong_number"));
}

#[tokio::test]
async fn not_me_gives_access_denied_alerts_the_holder_and_throttles_new_requests() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470007003").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();

    e.phone
        .authenticator()
        .decline(view.request_id.clone(), DeclineReason::NotMe)
        .await
        .unwrap();

    let denied = rp.wait_for_token(&started, WAIT).await.unwrap_err();
    assert_eq!(denied.api_code(), Some(codes::ACCESS_DENIED));
    let sms = SimClient::new(&server.url())
        .unwrap()
        .sms_messages(&e.phone_number)
        .await
        .unwrap();
    let alert = &sms.messages.last().unwrap().text;
    assert!(alert.contains("niet van u"), "{alert}");
    let again = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number))
        .await
        .unwrap_err();
    assert_eq!(again.api_code(), Some(codes::ACCESS_DENIED));
    let events = server
        .running()
        .account_events(&e.account.account_id)
        .unwrap();
    assert!(
        events
            .iter()
            .any(|(event, _, _)| event == "not_me_reported")
    );
}

#[tokio::test]
async fn not_me_blocks_the_account_when_the_policy_says_so() {
    let server = server_with(Policy {
        block_on_not_me: true,
        ..Policy::default()
    })
    .await;
    let mut e = enrolled(&server.url(), "+32470007004").await;
    let (_rp, _started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();

    e.phone
        .authenticator()
        .decline(view.request_id.clone(), DeclineReason::NotMe)
        .await
        .unwrap();

    let events = server
        .running()
        .account_events(&e.account.account_id)
        .unwrap();
    assert!(events.iter().any(|(event, _, _)| event == "blocked"));
}

#[tokio::test]
async fn the_throttle_lets_one_request_through_per_interval_but_none_of_the_reported_party() {
    let server = InProcessServer::start_with(
        Policy {
            suspicious_throttle_secs: 1,
            ..Policy::default()
        },
        vec![
            RelyingPartyConfig::demo(),
            RelyingPartyConfig::new("rp-1", "s-1", "Dienst 1"),
        ],
    )
    .await
    .unwrap();
    let mut e = enrolled(&server.url(), "+32470007005").await;
    let (reported, _) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();
    e.phone
        .authenticator()
        .decline(view.request_id.clone(), DeclineReason::NotMe)
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(2100)).await;

    let other = RelyingParty::new(&server.url(), "rp-1", "s-1").unwrap();
    assert!(
        other
            .backchannel_authorize(&LoginRequest::new(&e.phone_number))
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = reported
        .backchannel_authorize(&LoginRequest::new(&e.phone_number))
        .await
        .unwrap_err();
    assert_eq!(refused.api_code(), Some(codes::ACCESS_DENIED));
}

#[tokio::test]
async fn a_binding_message_with_a_right_to_left_override_and_zero_width_characters_is_refused() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470007006").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let spoof = "Log in op gro.\u{202E}nigol\u{200B}.be";

    let err = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).with_message(spoof))
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::INVALID_BINDING_MESSAGE));
}

#[tokio::test]
async fn spoofed_payee_free_text_and_document_name_are_refused() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470007007").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let requests = [
        LoginRequest::new(&e.phone_number).confirming(Transaction::Payment {
            amount: "10".into(),
            currency: "EUR".into(),
            payee: "Stad\u{202E}tneG\u{200B}".into(),
            iban: "BE68 5390 0754 7034".into(),
        }),
        LoginRequest::new(&e.phone_number).confirming(Transaction::FreeText {
            text: "Betaal\u{200B} \u{202E}0001".into(),
        }),
        LoginRequest::new(&e.phone_number).signing(SignDocument {
            name: "contract\u{202E}fdp.exe".into(),
            sha256: "ab".repeat(32),
        }),
    ];

    for request in &requests {
        let err = rp.backchannel_authorize(request).await.unwrap_err();
        assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
    }
}

#[tokio::test]
async fn free_text_with_line_breaks_is_shown_folded() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470007008").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    rp.backchannel_authorize(&LoginRequest::new(&e.phone_number).confirming(
        Transaction::FreeText {
            text: "Regel een\n\nRegel\ttwee".into(),
        },
    ))
    .await
    .unwrap();

    let view = e.phone.next_request(WAIT).await.unwrap();

    assert_eq!(
        view.transaction,
        Some(Transaction::FreeText {
            text: "Regel een Regel twee".into()
        })
    );
}

#[tokio::test]
async fn an_expired_request_leaves_the_pending_list() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470007009").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    // Three seconds: the phone must fetch the request before it expires, which on a loaded
    // machine one second did not always leave time for.
    let started = std::time::Instant::now();
    rp.backchannel_authorize(&LoginRequest::new(&e.phone_number).expiring_in(3))
        .await
        .unwrap();
    e.phone.next_request(WAIT).await.unwrap();
    assert_eq!(e.phone.authenticator().pending().unwrap().len(), 1);

    // Past the expiry (whole seconds, so up to a second later) wherever the fetch left us.
    tokio::time::sleep(Duration::from_millis(4100).saturating_sub(started.elapsed())).await;

    assert!(e.phone.authenticator().pending().unwrap().is_empty());
    assert!(
        e.phone
            .authenticator()
            .refresh_pending()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_push_delivered_twice_shows_once() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470007010").await;
    start_login(&server.url(), &e.phone_number).await;
    let pushes = SimClient::new(&server.url())
        .unwrap()
        .push_messages(&e.account.account_id, 0)
        .await
        .unwrap();
    let payload = serde_json::to_string(&pushes.messages[0].message).unwrap();
    let auth = e.phone.authenticator();

    let first = auth.handle_push(payload.clone()).await.unwrap();
    let second = auth.handle_push(payload).await.unwrap();

    assert_eq!(first.request_id, second.request_id);
    assert_eq!(auth.pending().unwrap().len(), 1);
}

#[tokio::test]
async fn open_requests_per_person_are_bounded_across_relying_parties() {
    let relying_parties = std::iter::once(RelyingPartyConfig::demo())
        .chain((1..=2).map(|n| {
            RelyingPartyConfig::new(
                &format!("rp-{n}"),
                &format!("s-{n}"),
                &format!("Dienst {n}"),
            )
        }))
        .collect();
    let server = InProcessServer::start_with(
        Policy {
            max_pending_per_account: 2,
            ..Policy::default()
        },
        relying_parties,
    )
    .await
    .unwrap();
    let e = enrolled(&server.url(), "+32470007011").await;
    for n in 1..=2 {
        RelyingParty::new(&server.url(), &format!("rp-{n}"), &format!("s-{n}"))
            .unwrap()
            .backchannel_authorize(&LoginRequest::new(&e.phone_number))
            .await
            .unwrap();
    }

    let err = RelyingParty::demo(&server.url())
        .unwrap()
        .backchannel_authorize(&LoginRequest::new(&e.phone_number))
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::ACCESS_DENIED));
}
