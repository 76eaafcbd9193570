//! Enrollment through the bank-app handoff: every refusal on the way.

mod common;

use std::time::Duration;

use common::*;
use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_core::{Bank, CoreError};
use sleutel_harness::now;
use sleutel_harness::sim::SimClient;
use sleutel_protocol::api::{self, Citizen};
use sleutel_protocol::identity::{
    Evidence, IDENTITY_AUDIENCE, IDENTITY_TYP, IdentityClaims, IdentitySource,
};
use sleutel_protocol::jose::{Header, sign_compact};
use sleutel_server::Policy;
use url::Url;

/// Starts an enrollment and returns the handoff URL's enrollment id and nonce.
async fn started(
    phone: &sleutel_harness::phone::VirtualPhone,
    number: &str,
) -> (String, String, String) {
    let handoff = phone
        .authenticator()
        .start_bank_enrollment(number.into(), Bank::Kbc)
        .await
        .unwrap();
    let url = Url::parse(&handoff.handoff_url).unwrap();
    let param = |n: &str| {
        url.query_pairs()
            .find(|(k, _)| k == n)
            .unwrap()
            .1
            .into_owned()
    };
    (
        handoff.handoff_url.clone(),
        param("enrollment_id"),
        param("nonce"),
    )
}

fn deep_link(enrollment_id: &str, token: &str) -> String {
    let mut url = Url::parse(api::DEEP_LINK_BANK_RETURN).unwrap();
    url.query_pairs_mut()
        .append_pair("enrollment_id", enrollment_id)
        .append_pair("identity_token", token);
    url.to_string()
}

/// Goes through the bank with the debit card and returns the deep link.
async fn through_bank(url: &str, handoff_url: &str, citizen: &Citizen) -> String {
    SimClient::new(url)
        .unwrap()
        .bank_authorize(
            handoff_url,
            &citizen.debit_card.number,
            &citizen.debit_card.pin,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_credit_card_cannot_prove_an_identity() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let (handoff, _, _) = started(&phone, "+32471000001").await;

    let err = SimClient::new(&server.url())
        .unwrap()
        .bank_authorize(
            &handoff,
            &citizen.credit_card.number,
            &citizen.credit_card.pin,
        )
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("credit_card_refused"));
}

#[tokio::test]
async fn a_wrong_card_pin_is_refused() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let (handoff, _, _) = started(&phone, "+32471000002").await;
    let wrong_pin = if citizen.debit_card.pin == "0000" {
        "1111"
    } else {
        "0000"
    };

    let err = SimClient::new(&server.url())
        .unwrap()
        .bank_authorize(&handoff, &citizen.debit_card.number, wrong_pin)
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("wrong_card_pin"));
}

#[tokio::test]
async fn an_identity_token_with_a_wrong_nonce_is_refused() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let (_, enrollment_id, _) = started(&phone, "+32471000003").await;
    let token = server
        .running()
        .unwrap()
        .mint_identity_token(
            Bank::Kbc,
            &citizen.citizen_id,
            &enrollment_id,
            "another-nonce",
            now(),
            now() + 300,
        )
        .unwrap();

    let err = phone
        .authenticator()
        .complete_bank_handoff(deep_link(&enrollment_id, &token))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::IdentityRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn an_expired_identity_token_is_refused() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let (_, enrollment_id, nonce) = started(&phone, "+32471000004").await;
    let token = server
        .running()
        .unwrap()
        .mint_identity_token(
            Bank::Kbc,
            &citizen.citizen_id,
            &enrollment_id,
            &nonce,
            now() - 600,
            now() - 300,
        )
        .unwrap();

    let err = phone
        .authenticator()
        .complete_bank_handoff(deep_link(&enrollment_id, &token))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::IdentityRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn an_identity_token_from_an_untrusted_key_is_refused() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let (_, enrollment_id, nonce) = started(&phone, "+32471000005").await;
    let claims = IdentityClaims {
        iss: Bank::Kbc.issuer(),
        aud: IDENTITY_AUDIENCE.into(),
        enrollment_id: enrollment_id.clone(),
        nonce,
        iat: now(),
        exp: now() + 300,
        source: IdentitySource::Bank,
        evidence: Evidence {
            kind: "bank_debit_card".into(),
            reference: "•••• 0000".into(),
        },
        given_name: citizen.given_name.clone(),
        family_name: citizen.family_name.clone(),
        birthdate: citizen.birthdate.clone(),
        national_register_number: citizen.national_register_number.clone(),
    };
    let forger = SigningKey::generate();
    let token = sign_compact(
        &Header::es256(IDENTITY_TYP).with_kid("kbc"),
        &serde_json::to_vec(&claims).unwrap(),
        &forger,
    )
    .unwrap();

    let err = phone
        .authenticator()
        .complete_bank_handoff(deep_link(&enrollment_id, &token))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::IdentityRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn a_deep_link_for_another_enrollment_is_refused_locally() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    started(&phone, "+32471000006").await;

    let err = phone
        .authenticator()
        .complete_bank_handoff(deep_link("someone-elses-enrollment", "x.y.z"))
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::HandoffRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_sms_codes_are_refused_with_attempts_left_and_then_end_the_enrollment() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let number = "+32471000007";
    let (handoff, _, _) = started(&phone, number).await;
    let link = through_bank(&server.url(), &handoff, &citizen).await;
    phone
        .authenticator()
        .complete_bank_handoff(link)
        .await
        .unwrap();
    let real = SimClient::new(&server.url())
        .unwrap()
        .wait_for_sms_code(number, 0, WAIT)
        .await
        .unwrap();
    let wrong = if real == "000000" { "111111" } else { "000000" };

    for expected_left in [2, 1] {
        let err = phone
            .authenticator()
            .verify_sms_code(wrong.into())
            .await
            .unwrap_err();
        assert!(
            matches!(err, CoreError::WrongSmsCode { attempts_left } if attempts_left == expected_left),
            "{err:?}"
        );
    }
    let err = phone
        .authenticator()
        .verify_sms_code(wrong.into())
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::TooManyAttempts), "{err:?}");
    let err = phone
        .authenticator()
        .verify_sms_code(real)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::TooManyAttempts | CoreError::NoEnrollmentInProgress
        ),
        "{err:?}"
    );
    assert!(phone.authenticator().accounts().unwrap().is_empty());
}

#[tokio::test]
async fn an_expired_sms_code_is_refused() {
    let server = server_with(Policy {
        sms_code_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let number = "+32471000008";
    let (handoff, _, _) = started(&phone, number).await;
    let link = through_bank(&server.url(), &handoff, &citizen).await;
    phone
        .authenticator()
        .complete_bank_handoff(link)
        .await
        .unwrap();
    let code = SimClient::new(&server.url())
        .unwrap()
        .wait_for_sms_code(number, 0, WAIT)
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_secs(2)).await;

    let err = phone
        .authenticator()
        .verify_sms_code(code)
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::SmsCodeExpired), "{err:?}");
}

#[tokio::test]
async fn a_new_sms_code_cannot_be_asked_for_at_once() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let (handoff, _, _) = started(&phone, "+32471000009").await;
    let link = through_bank(&server.url(), &handoff, &citizen).await;
    phone
        .authenticator()
        .complete_bank_handoff(link)
        .await
        .unwrap();

    let err = phone.authenticator().resend_sms_code().await.unwrap_err();
    assert!(matches!(err, CoreError::ResendTooSoon { .. }), "{err:?}");
}

#[tokio::test]
async fn trivial_and_mismatched_codes_are_refused_when_chosen() {
    let server = server().await;
    let citizen = citizen(&server.url()).await;
    let (phone, _dir) = new_phone(&server.url());
    let number = "+32471000010";
    let (handoff, _, _) = started(&phone, number).await;
    let link = through_bank(&server.url(), &handoff, &citizen).await;
    let auth = phone.authenticator();
    auth.complete_bank_handoff(link).await.unwrap();
    let code = SimClient::new(&server.url())
        .unwrap()
        .wait_for_sms_code(number, 0, WAIT)
        .await
        .unwrap();
    auth.verify_sms_code(code).await.unwrap();

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
        format!("{} {}", citizen.given_name, citizen.family_name)
    );
}

#[tokio::test]
async fn a_landline_or_foreign_number_is_refused_before_anything_is_sent() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    for number in ["+3223456789", "+31612345678", "0470 12 34 56"] {
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
        .get(format!("{}{}", server.url(), api::PATH_OIDC_JWKS))
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
    let refused = rp
        .backchannel_authorize(&sleutel_harness::rp::LoginRequest::new("+32471000012"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.api_code(),
        Some("unknown_user_id"),
        "no device was registered"
    );
}
