//! Enrollment through the bank-app handoff: every refusal on the way.

use std::time::Duration;

use crate::common::*;
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_core::{Bank, CoreError};
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api;
use sleutel_protocol::clock::now;
use sleutel_protocol::identity::{
    Evidence, IDENTITY_AUDIENCE, IDENTITY_TYP, IdentityClaims, IdentitySource,
};
use sleutel_protocol::jose::{Header, sign_compact};
use sleutel_server::Policy;

/// An identity token for the activation's citizen, signed by the simulated KBC's trusted key.
fn minted(server: &InProcessServer, a: &Activation, nonce: &str, iat: i64, exp: i64) -> String {
    server
        .running()
        .mint_identity_token(
            Bank::Kbc,
            &a.citizen.citizen_id,
            &a.enrollment_id,
            nonce,
            iat,
            exp,
        )
        .unwrap()
}

/// Hands `token` to the phone as the bank's deep link and returns the refusal.
async fn refused(a: &Activation, token: &str) -> CoreError {
    a.auth()
        .complete_bank_handoff(a.deep_link(token))
        .await
        .expect_err("the identity token is refused")
}

#[tokio::test]
async fn a_credit_card_cannot_prove_an_identity() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000001").await;

    let err = a
        .at_the_bank(&a.citizen.credit_card.number, &a.citizen.credit_card.pin)
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("credit_card_refused"));
}

#[tokio::test]
async fn a_wrong_card_pin_is_refused() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000002").await;
    let wrong_pin = if a.citizen.debit_card.pin == "0000" {
        "1111"
    } else {
        "0000"
    };

    let err = a
        .at_the_bank(&a.citizen.debit_card.number, wrong_pin)
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("wrong_card_pin"));
}

#[tokio::test]
async fn an_identity_token_with_a_wrong_nonce_is_refused() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000003").await;
    let token = minted(&server, &a, "another-nonce", now(), now() + 300);

    let err = refused(&a, &token).await;
    assert!(matches!(err, CoreError::IdentityRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn an_expired_identity_token_is_refused() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000004").await;
    let token = minted(&server, &a, &a.nonce, now() - 600, now() - 300);

    let err = refused(&a, &token).await;
    assert!(matches!(err, CoreError::IdentityRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn an_identity_token_from_an_untrusted_key_is_refused() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000005").await;
    let claims = IdentityClaims {
        iss: Bank::Kbc.issuer(),
        aud: IDENTITY_AUDIENCE.into(),
        enrollment_id: a.enrollment_id.clone(),
        nonce: a.nonce.clone(),
        iat: now(),
        exp: now() + 300,
        source: IdentitySource::Bank,
        evidence: Evidence {
            kind: "bank_debit_card".into(),
            reference: "•••• 0000".into(),
        },
        given_name: a.citizen.given_name.clone(),
        family_name: a.citizen.family_name.clone(),
        birthdate: a.citizen.birthdate.clone(),
        national_register_number: a.citizen.national_register_number.clone(),
    };
    let forger = SigningKey::generate();
    let token = sign_compact(
        &Header::es256(IDENTITY_TYP).with_kid("kbc"),
        &serde_json::to_vec(&claims).unwrap(),
        &forger,
    )
    .unwrap();

    let err = refused(&a, &token).await;
    assert!(matches!(err, CoreError::IdentityRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn a_deep_link_for_another_enrollment_is_refused_locally() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000006").await;

    let err = a
        .auth()
        .complete_bank_handoff(deep_link("someone-elses-enrollment", "x.y.z"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::HandoffRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_sms_codes_are_refused_with_attempts_left_and_then_end_the_enrollment() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000007").await;
    let real = a.to_the_sms_step().await;
    let wrong = if real == "000000" { "111111" } else { "000000" };

    for expected_left in [2, 1] {
        let err = a.auth().verify_sms_code(wrong.into()).await.unwrap_err();
        assert!(
            matches!(err, CoreError::WrongSmsCode { attempts_left } if attempts_left == expected_left),
            "{err:?}"
        );
    }
    let err = a.auth().verify_sms_code(wrong.into()).await.unwrap_err();
    assert!(matches!(err, CoreError::TooManyAttempts), "{err:?}");
    let err = a.auth().verify_sms_code(real).await.unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::TooManyAttempts | CoreError::NoEnrollmentInProgress
        ),
        "{err:?}"
    );
    assert!(a.auth().accounts().unwrap().is_empty());
}

#[tokio::test]
async fn an_expired_sms_code_is_refused() {
    let server = server_with(Policy {
        sms_code_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000008").await;
    let code = a.to_the_sms_step().await;

    tokio::time::sleep(Duration::from_secs(2)).await;

    let err = a.auth().verify_sms_code(code).await.unwrap_err();
    assert!(matches!(err, CoreError::SmsCodeExpired), "{err:?}");
}

#[tokio::test]
async fn a_new_sms_code_cannot_be_asked_for_at_once() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000009").await;
    a.to_the_sms_step().await;

    let err = a.auth().resend_sms_code().await.unwrap_err();
    assert!(matches!(err, CoreError::ResendTooSoon { .. }), "{err:?}");
}

#[tokio::test]
async fn trivial_and_mismatched_codes_are_refused_when_chosen() {
    let server = server().await;
    let a = begin_activation(&server.url(), &server.url(), "+32471000010").await;
    let auth = a.auth();
    auth.verify_sms_code(a.to_the_sms_step().await)
        .await
        .unwrap();

    for trivial in ["11111", "12345", "54321"] {
        let err = auth
            .choose_code(trivial.into(), trivial.into())
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::WeakCode), "{trivial}: {err:?}");
    }
    let err = auth
        .choose_code(CODE.into(), "97531".into())
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::CodesDoNotMatch), "{err:?}");
    let err = auth
        .choose_code("1234".into(), "1234".into())
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::CodeFormat), "{err:?}");
    assert!(auth.accounts().unwrap().is_empty());

    let account = auth.choose_code(CODE.into(), CODE.into()).await.unwrap();
    assert_eq!(
        account.display_name,
        format!("{} {}", a.citizen.given_name, a.citizen.family_name)
    );
}

#[tokio::test]
async fn a_landline_or_foreign_number_is_refused_before_anything_is_sent() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    for number in ["+3223456789", "+31612345678", "02 345 67 89"] {
        let err = phone
            .authenticator()
            .start_bank_enrollment(number.into(), Bank::Kbc)
            .await
            .unwrap_err();
        assert!(
            matches!(err, CoreError::InvalidPhoneNumber),
            "{number}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_phone_pinned_to_the_servers_key_thumbprint_enrolls() {
    let server = server().await;
    let jwks: sleutel_protocol::jose::Jwks = sleutel_harness::http_client()
        .unwrap()
        .get(format!("{}{}", server.url(), api::oidc::PATH_JWKS))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let thumbprint = jwks.keys[0].thumbprint();
    let dir = tempfile::tempdir().unwrap();
    let phone = sleutel_harness::phone::VirtualPhone::open_pinned(
        &server.url(),
        dir.path(),
        Some(thumbprint),
    )
    .unwrap();

    let (_, account) = phone
        .enroll_new_citizen(
            Bank::Kbc,
            "+32471000011",
            CODE,
            &sleutel_harness::phone::silent,
        )
        .await
        .unwrap();
    assert!(!account.account_id.is_empty());
}

#[tokio::test]
async fn a_phone_pinned_to_another_key_refuses_the_server_before_registering_anything() {
    let server = server().await;
    let other =
        sleutel_protocol::jose::Jwk::from_verifying_key(SigningKey::generate().verifying_key());
    let dir = tempfile::tempdir().unwrap();
    let phone = sleutel_harness::phone::VirtualPhone::open_pinned(
        &server.url(),
        dir.path(),
        Some(other.thumbprint()),
    )
    .unwrap();

    let err = phone
        .enroll_new_citizen(
            Bank::Kbc,
            "+32471000012",
            CODE,
            &sleutel_harness::phone::silent,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            sleutel_harness::HarnessError::Core(CoreError::ServerUntrusted { .. })
        ),
        "{err:?}"
    );
    assert!(phone.authenticator().accounts().unwrap().is_empty());
    let rp = sleutel_harness::rp::RelyingParty::demo(&server.url()).unwrap();
    let started = rp
        .backchannel_authorize(&sleutel_harness::rp::LoginRequest::new("+32471000012"))
        .await
        .unwrap();
    // No device was registered: nothing reaches a phone, and the request stays pending.
    assert_eq!(
        rp.poll_token(&started.auth_req_id)
            .await
            .unwrap_err()
            .api_code(),
        Some("authorization_pending"),
    );
    let nobody: i64 = server
        .sql_rows(
            "SELECT count(*) FROM phone_numbers WHERE phone_number = '+32471000012'",
            &[],
        )
        .unwrap()[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(nobody, 0, "no device was registered");
}
