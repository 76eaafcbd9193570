//! What the person sees and decides: consent per claim, transaction confirmations and
//! signatures, each shown as the relying party asked and answered with exactly that.

use crate::common::*;
use sleutel_core::{Approval, CoreError, DeclineReason, SignDocument, Transaction};
use sleutel_harness::HarnessError;
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_protocol::action::MAX_TRANSACTION_TEXT_CHARS;
use sleutel_protocol::api::codes;
use sleutel_protocol::approval::{ApprovedTransaction, free_text_sha256};
use sleutel_protocol::claims;

#[tokio::test]
async fn leaving_out_an_optional_claim_keeps_it_out_of_the_id_token() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006001").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let request = LoginRequest::new(&e.phone_number)
        .openid_only()
        .requiring(claims::AGE_OVER_18)
        .optionally(claims::PHONE_NUMBER)
        .optionally(claims::BIRTHDATE);
    let started = rp.backchannel_authorize(&request).await.unwrap();
    let view = e.phone.next_request(WAIT).await.unwrap();

    e.phone
        .authenticator()
        .approve(
            view.request_id.clone(),
            Approval::code(CODE).sharing_only(vec![claims::PHONE_NUMBER.into()]),
        )
        .await
        .unwrap();

    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let got = rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(got.age_over_18, Some(true));
    assert_eq!(got.phone_number.as_deref(), Some(e.phone_number.as_str()));
    assert_eq!(got.birthdate, None);
}

#[tokio::test]
async fn refusing_a_required_claim_declines_and_the_relying_party_gets_access_denied() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006002").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let request = LoginRequest::new(&e.phone_number)
        .of_kind(sleutel_core::ActionKind::ShareData)
        .requiring(claims::NATIONAL_REGISTER_NUMBER);
    let started = rp.backchannel_authorize(&request).await.unwrap();
    let view = e.phone.next_request(WAIT).await.unwrap();
    assert_eq!(view.claims, vec!["national_register_number"]);

    // The app offers no way to approve without a required claim: refusing it is a decline.
    e.phone
        .authenticator()
        .decline(view.request_id.clone(), DeclineReason::Cancelled)
        .await
        .unwrap();

    let err = rp.wait_for_token(&started, WAIT).await.unwrap_err();
    assert_eq!(err.api_code(), Some(codes::ACCESS_DENIED));
}

#[tokio::test]
async fn consenting_to_a_claim_not_offered_as_optional_is_refused_and_nothing_is_sent() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006003").await;
    let (rp, started) = start_login(&server.url(), &e.phone_number).await;
    let view = e.phone.next_request(WAIT).await.unwrap();

    let err = e
        .phone
        .authenticator()
        .approve(
            view.request_id.clone(),
            Approval::code(CODE).sharing_only(vec![claims::NATIONAL_REGISTER_NUMBER.into()]),
        )
        .await
        .unwrap_err();

    assert!(matches!(err, CoreError::InvalidInput { .. }), "{err:?}");
    let polled = rp.poll_token(&started.auth_req_id).await.unwrap_err();
    assert_eq!(polled.api_code(), Some(codes::AUTHORIZATION_PENDING));
    assert_eq!(e.phone.authenticator().pending().unwrap().len(), 1);
}

#[tokio::test]
async fn a_share_data_request_without_claims_is_invalid_request() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470006004").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();

    let err = rp
        .backchannel_authorize(
            &LoginRequest::new(&e.phone_number)
                .openid_only()
                .of_kind(sleutel_core::ActionKind::ShareData),
        )
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
}

fn payment() -> Transaction {
    Transaction::Payment {
        amount: "125.50".into(),
        currency: "EUR".into(),
        payee: "Stad Gent".into(),
        iban: "BE68 5390 0754 7034".into(),
    }
}

#[tokio::test]
async fn a_payment_shows_amount_payee_and_iban_as_asked_and_is_approved() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006005").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let started = rp
        .backchannel_authorize(
            &LoginRequest::new(&e.phone_number)
                .openid_only()
                .confirming(payment()),
        )
        .await
        .unwrap();

    let view = e.phone.approve_next(CODE, WAIT).await.unwrap();

    assert_eq!(view.kind, sleutel_core::ActionKind::ConfirmTransaction);
    assert_eq!(view.transaction, Some(payment()));
    assert_eq!(view.text, "Ik betaal 125.50 EUR aan Stad Gent");
    assert!(rp.wait_for_token(&started, WAIT).await.is_ok());
}

#[tokio::test]
async fn a_payment_to_an_iban_failing_mod_97_is_invalid_request() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470006006").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let bad = Transaction::Payment {
        amount: "10".into(),
        currency: "EUR".into(),
        payee: "Stad Gent".into(),
        iban: "BE68 5390 0754 7035".into(),
    };

    let err = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).confirming(bad))
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
}

#[tokio::test]
async fn free_text_of_7500_characters_is_shown_whole() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006007").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let text = "a".repeat(MAX_TRANSACTION_TEXT_CHARS);
    rp.backchannel_authorize(
        &LoginRequest::new(&e.phone_number)
            .confirming(Transaction::FreeText { text: text.clone() }),
    )
    .await
    .unwrap();

    let view = e.phone.next_request(WAIT).await.unwrap();

    assert_eq!(view.transaction, Some(Transaction::FreeText { text }));
}

#[tokio::test]
async fn free_text_over_7500_characters_is_invalid_request() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470006008").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let text = "a".repeat(MAX_TRANSACTION_TEXT_CHARS + 1);

    let err = rp
        .backchannel_authorize(
            &LoginRequest::new(&e.phone_number).confirming(Transaction::FreeText { text }),
        )
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
}

#[tokio::test]
async fn a_signature_request_shows_the_document_name_and_digest() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006009").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let document = SignDocument {
        name: "Huurcontract Kerkstraat 12.pdf".into(),
        sha256: "3f".repeat(32),
    };
    let started = rp
        .backchannel_authorize(
            &LoginRequest::new(&e.phone_number)
                .openid_only()
                .signing(document.clone()),
        )
        .await
        .unwrap();

    let view = e.phone.approve_next(CODE, WAIT).await.unwrap();

    assert_eq!(view.kind, sleutel_core::ActionKind::Sign);
    assert_eq!(view.document, Some(document));
    assert_eq!(view.text, "Ik onderteken Huurcontract Kerkstraat 12.pdf");
    assert!(rp.wait_for_token(&started, WAIT).await.is_ok());
}

#[tokio::test]
async fn a_signature_request_with_a_malformed_digest_is_invalid_request() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470006010").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let document = SignDocument {
        name: "Contract.pdf".into(),
        sha256: "not-a-digest".into(),
    };

    let err = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).signing(document))
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
}

#[tokio::test]
async fn the_id_token_of_a_payment_says_what_was_paid_and_passes_the_relying_partys_check() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006011").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let request = LoginRequest::new(&e.phone_number)
        .openid_only()
        .with_message("Factuur 2024-117")
        .confirming(payment());
    let started = rp.backchannel_authorize(&request).await.unwrap();
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();

    let claims = rp.verify_approval(&token.id_token, &request).await.unwrap();

    let action = claims.sleutel_action;
    assert_eq!(action.kind, sleutel_core::ActionKind::ConfirmTransaction);
    assert_eq!(
        action.transaction,
        Some(ApprovedTransaction::Payment {
            amount: "125.50".into(),
            currency: "EUR".into(),
            payee: "Stad Gent".into(),
            iban: "BE68 5390 0754 7034".into(),
        })
    );
    assert_eq!(action.binding_message.as_deref(), Some("Factuur 2024-117"));
}

#[tokio::test]
async fn the_id_token_of_a_payment_fails_the_check_of_a_relying_party_that_asked_another_iban() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006012").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let request = LoginRequest::new(&e.phone_number)
        .openid_only()
        .confirming(payment());
    let started = rp.backchannel_authorize(&request).await.unwrap();
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let other = LoginRequest::new(&e.phone_number)
        .openid_only()
        .confirming(Transaction::Payment {
            amount: "125.50".into(),
            currency: "EUR".into(),
            payee: "Stad Gent".into(),
            iban: "BE71 0961 2345 6769".into(),
        });

    let err = rp
        .verify_approval(&token.id_token, &other)
        .await
        .unwrap_err();

    assert!(
        matches!(&err, HarnessError::Verification(why) if why.contains("sleutel_action.transaction")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_id_token_of_free_text_carries_the_digest_of_the_text_as_shown() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006013").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let request =
        LoginRequest::new(&e.phone_number)
            .openid_only()
            .confirming(Transaction::FreeText {
                text: "Huur mei\nKerkstraat 12".into(),
            });
    let started = rp.backchannel_authorize(&request).await.unwrap();
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();

    let claims = rp.verify_approval(&token.id_token, &request).await.unwrap();

    assert_eq!(
        claims.sleutel_action.transaction,
        Some(ApprovedTransaction::FreeText {
            text_sha256: free_text_sha256("Huur mei Kerkstraat 12")
        })
    );
}

#[tokio::test]
async fn the_id_token_of_a_signature_carries_the_document_name_and_digest() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470006014").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let document = SignDocument {
        name: "Huurcontract Kerkstraat 12.pdf".into(),
        sha256: "3f".repeat(32),
    };
    let request = LoginRequest::new(&e.phone_number)
        .openid_only()
        .signing(document.clone());
    let started = rp.backchannel_authorize(&request).await.unwrap();
    e.phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();

    let claims = rp.verify_approval(&token.id_token, &request).await.unwrap();

    assert_eq!(claims.sleutel_action.kind, sleutel_core::ActionKind::Sign);
    assert_eq!(claims.sleutel_action.document, Some(document));
}
