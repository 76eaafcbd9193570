//! Activation: bank handoff, identity token, SMS code, key registration, and every refusal.

use std::time::Duration;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::StatusCode;
use sleutel_harness::sim::minor;
use sleutel_protocol::api::sim::{Citizen, NewCitizen};
use sleutel_protocol::api::{self, EnrollmentStarted, SmsSent, codes};
use sleutel_protocol::clock::now;
use sleutel_protocol::identity::{
    Bank, Evidence, IDENTITY_AUDIENCE, IDENTITY_TYP, IdentityClaims, IdentitySource,
};
use sleutel_protocol::jose::{Header, sign_compact};
use sleutel_server::Policy;

use crate::common::*;

#[tokio::test]
async fn the_handoff_url_points_at_the_chosen_bank_with_the_enrollment_binding() {
    let server = server().await;
    let phone = Phone::new(&server.url());

    let started = phone.start_enrollment("+32470 12 34 56").await;

    let url = url::Url::parse(started.handoff_url.as_deref().unwrap()).unwrap();
    assert_eq!(url.path(), api::sim::path_bank_authorize(Bank::Kbc));
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("enrollment_id".into(), started.enrollment_id.clone())));
    assert!(pairs.contains(&("nonce".into(), started.nonce.clone())));
    assert!(pairs.contains(&("redirect_uri".into(), api::DEEP_LINK_BANK_RETURN.into())));
    assert!(
        started
            .handoff_url
            .as_deref()
            .unwrap()
            .contains("redirect_uri=sleutel%3A%2F%2Fenroll%2Fbank")
    );
    assert!(started.expires_at > now());
}

#[tokio::test]
async fn a_complete_activation_creates_an_account_with_the_persons_name() {
    let server = server().await;

    let e = enroll(&server, "+32470000101").await;

    assert_eq!(
        e.completed.display_name,
        format!("{} {}", e.citizen.given_name, e.citizen.family_name)
    );
    assert_eq!(e.completed.issuer, server.url());
    let jwks: sleutel_protocol::jose::Jwks = ok(server
        .http()
        .get(format!("{}{}", server.url(), api::PATH_SERVER_KEYS))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(e.completed.server_keys, jwks);
    let kid = jwks.keys[0].kid.clone().unwrap();
    assert_eq!(kid, jwks.keys[0].thumbprint());
}

#[tokio::test]
async fn the_sms_carries_a_dutch_text_and_the_answer_masks_the_number() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let phone = Phone::new(&server.url());
    let (started, token) = identity_token(&server, &phone, "+32470123456", &citizen).await;

    let sent: SmsSent = ok(phone.submit_identity(&started.enrollment_id, &token).await).await;

    assert_eq!(sent.phone_number_masked, "+32 4•• •• 34 56");
    let code = server.sim().last_sms_code("+32470123456").await.unwrap();
    let outbox = server.sim().sms_messages("+32470123456").await.unwrap();
    assert_eq!(
        outbox.messages[0].text,
        format!("Sleutel: uw controlecode is {code}. Geef deze code aan niemand door.")
    );
}

#[tokio::test]
async fn a_credit_card_cannot_prove_an_identity() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let started = Phone::new(&server.url())
        .start_enrollment("+32470000102")
        .await;

    let (status, error) = err(server
        .sim()
        .bank_authorize_raw(
            started.handoff_url.as_deref().unwrap(),
            &citizen.credit_card.number,
            &citizen.credit_card.pin,
        )
        .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::CREDIT_CARD_REFUSED);
}

#[tokio::test]
async fn wrong_card_pins_count_down_and_then_block_the_card() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let started = Phone::new(&server.url())
        .start_enrollment("+32470000103")
        .await;
    let wrong = if citizen.debit_card.pin == "0000" {
        "1111"
    } else {
        "0000"
    };
    let card = &citizen.debit_card.number;

    for left in [2, 1] {
        let (_, error) = err(server
            .sim()
            .bank_authorize_raw(started.handoff_url.as_deref().unwrap(), card, wrong)
            .await)
        .await;
        assert_eq!(error.error, codes::WRONG_CARD_PIN);
        assert_eq!(error.attempts_left, Some(left));
    }
    let (_, error) = err(server
        .sim()
        .bank_authorize_raw(started.handoff_url.as_deref().unwrap(), card, wrong)
        .await)
    .await;
    assert_eq!(error.error, codes::CARD_BLOCKED);
    let (_, error) = err(server
        .sim()
        .bank_authorize_raw(
            started.handoff_url.as_deref().unwrap(),
            card,
            &citizen.debit_card.pin,
        )
        .await)
    .await;
    assert_eq!(error.error, codes::CARD_BLOCKED);
}

#[tokio::test]
async fn a_card_of_another_bank_is_unknown() {
    let server = server().await;
    let citizen = server
        .sim()
        .create_citizen(&NewCitizen {
            bank: Some(Bank::Ing),
            ..NewCitizen::default()
        })
        .await
        .unwrap();
    let started = Phone::new(&server.url())
        .start_enrollment("+32470000104")
        .await;

    let (_, error) = err(server
        .sim()
        .bank_authorize_raw(
            started.handoff_url.as_deref().unwrap(),
            &citizen.debit_card.number,
            &citizen.debit_card.pin,
        )
        .await)
    .await;

    assert_eq!(error.error, codes::UNKNOWN_CARD);
}

/// Valid identity claims of `citizen` for `started`, as issuer `iss` would vouch for them.
fn claims_for(citizen: &Citizen, started: &EnrollmentStarted, iss: &str) -> IdentityClaims {
    IdentityClaims {
        iss: iss.to_owned(),
        aud: IDENTITY_AUDIENCE.into(),
        enrollment_id: started.enrollment_id.clone(),
        nonce: started.nonce.clone(),
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
    }
}

async fn identity_error(phone: &Phone, enrollment_id: &str, token: &str) -> String {
    let (status, error) = err(phone.submit_identity(enrollment_id, token).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_IDENTITY_TOKEN);
    error.error_description
}

#[tokio::test]
async fn an_identity_token_with_another_nonce_is_refused() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let phone = Phone::new(&server.url());
    let started = phone.start_enrollment("+32470000105").await;
    let token = server
        .running()
        .mint_identity_token(
            Bank::Kbc,
            &citizen.citizen_id,
            &started.enrollment_id,
            "other",
            now(),
            now() + 300,
        )
        .unwrap();

    let description = identity_error(&phone, &started.enrollment_id, &token).await;

    assert!(description.contains("nonce"), "{description}");
}

#[tokio::test]
async fn an_expired_identity_token_is_refused() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let phone = Phone::new(&server.url());
    let started = phone.start_enrollment("+32470000106").await;
    let token = server
        .running()
        .mint_identity_token(
            Bank::Kbc,
            &citizen.citizen_id,
            &started.enrollment_id,
            &started.nonce,
            now() - 600,
            now() - 300,
        )
        .unwrap();

    let description = identity_error(&phone, &started.enrollment_id, &token).await;

    assert!(description.contains("expired"), "{description}");
}

#[tokio::test]
async fn an_identity_token_signed_by_an_untrusted_key_is_refused() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let phone = Phone::new(&server.url());
    let started = phone.start_enrollment("+32470000107").await;
    let claims = claims_for(&citizen, &started, &Bank::Kbc.issuer());
    let payload = serde_json::to_vec(&claims).unwrap();
    let forger = SigningKey::generate();
    let genuine = server
        .running()
        .mint_identity_token(
            Bank::Kbc,
            &citizen.citizen_id,
            &started.enrollment_id,
            &started.nonce,
            now(),
            now() + 300,
        )
        .unwrap();
    let kid = sleutel_protocol::jose::UnverifiedJws::parse(&genuine, "t")
        .unwrap()
        .header
        .kid
        .unwrap();
    // With the real bank's key id only the signature gives the forgery away.
    let forged_same_kid = sign_compact(
        &Header::es256(IDENTITY_TYP).with_kid(kid),
        &payload,
        &forger,
    )
    .unwrap();
    let forged_own_kid = sign_compact(
        &Header::es256(IDENTITY_TYP).with_kid("kbc"),
        &payload,
        &forger,
    )
    .unwrap();

    let bad_signature = identity_error(&phone, &started.enrollment_id, &forged_same_kid).await;
    let untrusted_key = identity_error(&phone, &started.enrollment_id, &forged_own_kid).await;

    assert!(bad_signature.contains("signature"), "{bad_signature}");
    assert!(untrusted_key.contains("untrusted key"), "{untrusted_key}");
    // The genuine token still works afterwards: refusals change nothing.
    let _: SmsSent = ok(phone
        .submit_identity(&started.enrollment_id, &genuine)
        .await)
    .await;
}

#[tokio::test]
async fn an_identity_token_from_another_bank_than_the_chosen_one_is_refused() {
    let server = server().await;
    let citizen = server
        .sim()
        .create_citizen(&NewCitizen {
            bank: Some(Bank::Ing),
            ..NewCitizen::default()
        })
        .await
        .unwrap();
    let phone = Phone::new(&server.url());
    // The phone chose KBC; ING's token is genuine, bound to this enrollment, and still refused.
    let started = phone.start_enrollment("+32470000127").await;
    let token = server
        .running()
        .mint_identity_token(
            Bank::Ing,
            &citizen.citizen_id,
            &started.enrollment_id,
            &started.nonce,
            now(),
            now() + 300,
        )
        .unwrap();

    let description = identity_error(&phone, &started.enrollment_id, &token).await;

    assert!(
        description.contains("bank:ing") && description.contains("bank:kbc"),
        "{description}"
    );
}

#[tokio::test]
async fn an_identity_token_from_an_unknown_issuer_is_refused() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let phone = Phone::new(&server.url());
    let started = phone.start_enrollment("+32470000108").await;
    let claims = claims_for(&citizen, &started, "bank:evil");
    let token = sign_compact(
        &Header::es256(IDENTITY_TYP).with_kid("x"),
        &serde_json::to_vec(&claims).unwrap(),
        &SigningKey::generate(),
    )
    .unwrap();

    let description = identity_error(&phone, &started.enrollment_id, &token).await;

    assert!(description.contains("untrusted issuer"), "{description}");
}

#[tokio::test]
async fn a_minor_cannot_activate() {
    let server = server().await;
    let citizen = server.sim().create_citizen(&minor()).await.unwrap();
    let phone = Phone::new(&server.url());
    let (started, token) = identity_token(&server, &phone, "+32470000109", &citizen).await;

    let (status, error) = err(phone.submit_identity(&started.enrollment_id, &token).await).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::IDENTITY_REFUSED);
}

#[tokio::test]
async fn another_phone_cannot_see_or_use_an_enrollment() {
    let server = server().await;
    let citizen = citizen(&server).await;
    let owner = Phone::new(&server.url());
    let (started, token) = identity_token(&server, &owner, "+32470000110", &citizen).await;
    let thief = Phone::new(&server.url());

    let (status, error) = err(thief.submit_identity(&started.enrollment_id, &token).await).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error.error, codes::UNKNOWN_ENROLLMENT);
}

#[tokio::test]
async fn wrong_sms_codes_count_down_and_then_end_the_enrollment() {
    let server = server().await;
    let at = enroll_to_sms(&server, "+32470000111").await;
    let real = server.sim().last_sms_code("+32470000111").await.unwrap();
    let wrong = if real == "000000" { "111111" } else { "000000" };
    let id = &at.started.enrollment_id;

    for left in [2, 1] {
        let (_, error) = err(at.phone.verify_sms(id, wrong).await).await;
        assert_eq!(error.error, codes::WRONG_SMS_CODE);
        assert_eq!(error.attempts_left, Some(left));
    }
    let (_, error) = err(at.phone.verify_sms(id, wrong).await).await;
    assert_eq!(error.error, codes::TOO_MANY_ATTEMPTS);
    let (_, error) = err(at.phone.verify_sms(id, &real).await).await;
    assert_eq!(error.error, codes::TOO_MANY_ATTEMPTS);
}

#[tokio::test]
async fn a_code_that_is_not_six_digits_is_a_bad_request_and_costs_no_attempt() {
    let server = server().await;
    let at = enroll_to_sms(&server, "+32470000112").await;
    let id = &at.started.enrollment_id;

    for bad in ["12345", "1234567", "12a456"] {
        let (status, error) = err(at.phone.verify_sms(id, bad).await).await;
        assert_eq!(
            (status, error.error.as_str()),
            (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST)
        );
    }
    let code = server.sim().last_sms_code("+32470000112").await.unwrap();
    let _: api::SmsVerified = ok(at.phone.verify_sms(id, &code).await).await;
}

#[tokio::test]
async fn an_expired_sms_code_is_refused() {
    let server = server_with(Policy {
        sms_code_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let at = enroll_to_sms(&server, "+32470000113").await;
    let code = server.sim().last_sms_code("+32470000113").await.unwrap();

    tokio::time::sleep(Duration::from_secs(2)).await;

    let (_, error) = err(at.phone.verify_sms(&at.started.enrollment_id, &code).await).await;
    assert_eq!(error.error, codes::SMS_CODE_EXPIRED);
}

#[tokio::test]
async fn a_new_sms_code_cannot_be_asked_for_at_once() {
    let server = server().await;
    let at = enroll_to_sms(&server, "+32470000114").await;

    let response = at
        .phone
        .send(
            reqwest::Method::POST,
            &api::path_enrollment_sms_resend(&at.started.enrollment_id),
            Vec::new(),
        )
        .await;

    let (status, error) = err(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::RESEND_TOO_SOON);
    assert!(error.retry_after.is_some_and(|s| s > 0 && s <= 30));
}

#[tokio::test]
async fn a_resent_code_replaces_the_old_one() {
    let server = server_with(Policy {
        sms_resend_after_secs: 1,
        ..Policy::default()
    })
    .await;
    let at = enroll_to_sms(&server, "+32470000115").await;
    let old = server.sim().last_sms_code("+32470000115").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let path = api::path_enrollment_sms_resend(&at.started.enrollment_id);
    let mut new = old.clone();
    // A fresh code can by chance equal the old one; ask again (after the wait) until it differs.
    for _ in 0..3 {
        let _: SmsSent = ok(at
            .phone
            .send(reqwest::Method::POST, &path, Vec::new())
            .await)
        .await;
        new = server.sim().last_sms_code("+32470000115").await.unwrap();
        if new != old {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_ne!(new, old);

    let (_, error) = err(at.phone.verify_sms(&at.started.enrollment_id, &old).await).await;
    assert_eq!(error.error, codes::WRONG_SMS_CODE);
    let _: api::SmsVerified = ok(at.phone.verify_sms(&at.started.enrollment_id, &new).await).await;
}

#[tokio::test]
async fn a_repeated_completion_gives_the_same_account_again() {
    let server = server().await;
    let at = at_keys(&server, "+32470000116").await;
    let pin = SigningKey::generate();
    let first: api::EnrollmentCompleted = ok(at.phone.complete(&at.started, &pin).await).await;

    // The answer to the first call was lost; the phone asks again with the same keys.
    let again: api::EnrollmentCompleted = ok(at.phone.complete(&at.started, &pin).await).await;

    assert_eq!(again, first);
    let _: api::PendingRequests = ok(at.phone.get(api::PATH_REQUESTS).await).await;
}

#[tokio::test]
async fn a_repeated_completion_for_a_revoked_device_is_the_wrong_step() {
    let server = server().await;
    let at = at_keys(&server, "+32470000123").await;
    let pin = SigningKey::generate();
    let _: api::EnrollmentCompleted = ok(at.phone.complete(&at.started, &pin).await).await;
    // The person activates another phone, which revokes this one (one device per person).
    enroll_again(&server, "+32470000124", &at.citizen).await;

    let (_, error) = err(at.phone.complete(&at.started, &pin).await).await;

    assert_eq!(error.error, codes::WRONG_STEP);
}

#[tokio::test]
async fn a_repeated_sms_verification_after_success_is_answered_again() {
    let server = server().await;
    let at = enroll_to_sms(&server, "+32470000125").await;
    let code = server.sim().last_sms_code("+32470000125").await.unwrap();
    let id = &at.started.enrollment_id;
    let first: api::SmsVerified = ok(at.phone.verify_sms(id, &code).await).await;

    let again: api::SmsVerified = ok(at.phone.verify_sms(id, &code).await).await;

    assert_eq!(again, first);
    // The enrollment is still at the key step: completion works as usual.
    let _: api::EnrollmentCompleted = ok(at
        .phone
        .complete(&at.started, &SigningKey::generate())
        .await)
    .await;
}

#[tokio::test]
async fn an_sms_verification_after_completion_is_the_wrong_step() {
    let server = server().await;
    let at = at_keys(&server, "+32470000126").await;
    let _: api::EnrollmentCompleted = ok(at
        .phone
        .complete(&at.started, &SigningKey::generate())
        .await)
    .await;

    let (_, error) = err(at
        .phone
        .verify_sms(&at.started.enrollment_id, "123456")
        .await)
    .await;

    assert_eq!(error.error, codes::WRONG_STEP);
}

#[tokio::test]
async fn completion_before_the_sms_code_is_the_wrong_step() {
    let server = server().await;
    let at = enroll_to_sms(&server, "+32470000117").await;

    let (_, error) = err(at
        .phone
        .complete(&at.started, &SigningKey::generate())
        .await)
    .await;

    assert_eq!(error.error, codes::WRONG_STEP);
}

#[tokio::test]
async fn a_pin_key_equal_to_the_device_key_is_refused() {
    let server = server().await;
    let at = at_keys(&server, "+32470000118").await;
    let same = at.phone.device.clone();

    let (_, error) = err(at.phone.complete(&at.started, &same).await).await;

    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn an_eid_enrollment_has_no_handoff_and_takes_no_bank() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let start = |bank: Option<Bank>| api::StartEnrollment {
        phone_number: "+32470000119".into(),
        source: IdentitySource::Eid,
        bank,
        replaces: None,
    };

    let started: EnrollmentStarted = phone
        .post(api::PATH_ENROLLMENTS, &start(None))
        .await
        .json()
        .await
        .unwrap();
    let (_, error) = err(phone
        .post(api::PATH_ENROLLMENTS, &start(Some(Bank::Kbc)))
        .await)
    .await;

    assert_eq!(started.handoff_url, None);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_landline_is_refused() {
    let server = server().await;
    let phone = Phone::new(&server.url());

    let response = phone
        .post(
            api::PATH_ENROLLMENTS,
            &api::StartEnrollment {
                phone_number: "+3223456789".into(),
                source: IdentitySource::Bank,
                bank: Some(Bank::Kbc),
                replaces: None,
            },
        )
        .await;

    assert_eq!(err(response).await.1.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_new_activation_revokes_the_earlier_phone() {
    let server = server().await;
    let first = enroll(&server, "+32470000120").await;

    let second = enroll_again(&server, "+32470000121", &first.citizen)
        .await
        .completed;

    assert_eq!(
        second.account_id, first.completed.account_id,
        "one account per person"
    );
    let (status, error) = err(first.phone.get(api::PATH_REQUESTS).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::DEVICE_REVOKED);
}

#[tokio::test]
async fn an_enrollment_past_its_lifetime_is_expired() {
    let server = server_with(Policy {
        enrollment_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let citizen = citizen(&server).await;
    let phone = Phone::new(&server.url());
    let (started, token) = identity_token(&server, &phone, "+32470000128", &citizen).await;

    tokio::time::sleep(Duration::from_secs(2)).await;

    let (status, error) = err(phone.submit_identity(&started.enrollment_id, &token).await).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error.error, codes::ENROLLMENT_EXPIRED);
}

#[tokio::test]
async fn a_resend_beyond_the_last_allowed_code_is_too_soon_and_the_code_still_works() {
    let server = server_with(Policy {
        sms_resend_after_secs: 1,
        sms_max_sends: 1,
        ..Policy::default()
    })
    .await;
    let at = enroll_to_sms(&server, "+32470000129").await;
    let code = server.sim().last_sms_code("+32470000129").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (status, error) = err(at
        .phone
        .send(
            reqwest::Method::POST,
            &api::path_enrollment_sms_resend(&at.started.enrollment_id),
            Vec::new(),
        )
        .await)
    .await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::RESEND_TOO_SOON);
    // The wait is the rest of the enrollment's lifetime, not the resend interval.
    let left = at.started.expires_at - now();
    assert!(
        error
            .retry_after
            .is_some_and(|s| s > 1 && s as i64 <= left + 1),
        "{:?}",
        error.retry_after
    );
    let _: api::SmsVerified = ok(at.phone.verify_sms(&at.started.enrollment_id, &code).await).await;
}

#[tokio::test]
async fn a_pin_pop_by_another_key_is_refused_and_the_real_completion_still_works() {
    let server = server().await;
    let at = at_keys(&server, "+32470000130").await;
    let pin = SigningKey::generate();
    let mut forged = at.phone.completion(&at.started, &pin);
    forged.pin_pop = pop(&at.started, "pin", &SigningKey::generate());

    let (status, error) = err(at.phone.complete_with(&at.started, &forged).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
    assert!(error.error_description.contains("pin_pop"), "{error:?}");
    let _: api::EnrollmentCompleted = ok(at.phone.complete(&at.started, &pin).await).await;
}

#[tokio::test]
async fn a_second_identity_submission_is_the_wrong_step() {
    let server = server().await;
    let at = enroll_to_sms(&server, "+32470000131").await;
    let token = server
        .running()
        .mint_identity_token(
            Bank::Kbc,
            &at.citizen.citizen_id,
            &at.started.enrollment_id,
            &at.started.nonce,
            now(),
            now() + 300,
        )
        .unwrap();

    let (status, error) = err(at
        .phone
        .submit_identity(&at.started.enrollment_id, &token)
        .await)
    .await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error.error, codes::WRONG_STEP);
}
