//! The three identity sources end to end: the eID website's identification code and the
//! counter's activation code (typed or as the e-mail's link) beside the bank, each refusal the
//! sources name, and the age policy every source enforces.

mod common;

use std::time::Duration;

use common::*;
use sleutel_core::{CoreError, EnrollmentStep, IdentitySource};
use sleutel_harness::HarnessError;
use sleutel_harness::phone::{VirtualPhone, silent};
use sleutel_protocol::api::{Citizen, NewCitizen, codes};
use sleutel_server::Policy;

fn email(citizen: &Citizen) -> String {
    VirtualPhone::email_of(citizen)
}

async fn identification_code(phone: &VirtualPhone, citizen: &Citizen, number: &str) -> String {
    phone
        .sim()
        .eid_identification(
            number,
            &email(citizen),
            &citizen.eid_card.serial,
            &citizen.eid_card.pin,
        )
        .await
        .expect("the eID website issues a code")
        .identification_code
}

fn api_code(result: sleutel_harness::Result<impl std::fmt::Debug>) -> Option<String> {
    match result {
        Err(HarnessError::Api(e)) => Some(e.error),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn eid_identification_code_activates_the_phone_and_the_login_works() {
    let server = server().await;
    let (mut phone, _dir) = new_phone(&server.url());

    let (citizen, account) = phone
        .enroll_new_citizen_with(IdentitySource::Eid, "+32470100001", CODE, &silent)
        .await
        .unwrap();
    let (rp, started) = start_login(&server.url(), "+32470100001").await;
    phone.approve_next(CODE, WAIT).await.unwrap();
    let token = rp.wait_for_token(&started, WAIT).await.unwrap();

    assert_eq!(
        account.display_name,
        format!("{} {}", citizen.given_name, citizen.family_name)
    );
    assert!(rp.verify_id_token(&token.id_token).await.is_ok());
    let events = server
        .running()
        .unwrap()
        .account_events(&account.account_id)
        .unwrap();
    assert_eq!(events[0].0, "activated");
    assert!(events[0].1.contains("source eid"), "{:?}", events[0]);
    assert!(
        events[0].1.contains(&citizen.eid_card.serial),
        "{:?}",
        events[0]
    );
}

#[tokio::test]
async fn counter_activation_link_activates_the_phone() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());

    let (citizen, account) = phone
        .enroll_new_citizen_with(IdentitySource::Counter, "+32470100002", CODE, &silent)
        .await
        .unwrap();

    let events = server
        .running()
        .unwrap()
        .account_events(&account.account_id)
        .unwrap();
    assert!(events[0].1.contains("source counter"), "{:?}", events[0]);
    let mail = phone.sim().email_messages(&email(&citizen)).await.unwrap();
    assert_eq!(mail.messages.len(), 1);
    assert!(mail.messages[0].text.contains("14 dagen"));
}

#[tokio::test]
async fn a_typed_activation_code_activates_the_phone() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let issued = phone
        .sim()
        .counter_activation(&citizen, &email(&citizen))
        .await
        .unwrap();

    // Typed in lower case with spaces, as a person might.
    let typed = issued.activation_code.replace('-', " ").to_lowercase();
    let sms = phone
        .authenticator()
        .start_counter_enrollment("+32470100003".into(), typed)
        .await
        .unwrap();
    let account = phone
        .finish_enrollment("+32470100003", 0, CODE, &silent)
        .await
        .unwrap();

    assert!(
        sms.phone_number_masked.ends_with("00 03"),
        "{}",
        sms.phone_number_masked
    );
    assert_eq!(account.phone_number, "+32470100003");
}

#[tokio::test]
async fn the_eid_website_refuses_a_wrong_pin_an_expired_card_and_a_revoked_card() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let sim = phone.sim();
    let valid = citizen(&server.url()).await;
    let expired = sim
        .create_citizen(&NewCitizen {
            eid_valid_until: Some("2020-01-31".into()),
            ..NewCitizen::default()
        })
        .await
        .unwrap();
    let revoked = citizen(&server.url()).await;
    sim.revoke_eid_card(&revoked.eid_card.serial).await.unwrap();
    let wrong_pin = if valid.eid_card.pin == "0000" {
        "1111"
    } else {
        "0000"
    };
    let number = "+32470100004";

    let wrong = sim
        .eid_identification(number, &email(&valid), &valid.eid_card.serial, wrong_pin)
        .await;
    let expired = sim
        .eid_identification(
            number,
            &email(&expired),
            &expired.eid_card.serial,
            &expired.eid_card.pin,
        )
        .await;
    let revoked = sim
        .eid_identification(
            number,
            &email(&revoked),
            &revoked.eid_card.serial,
            &revoked.eid_card.pin,
        )
        .await;

    match wrong {
        Err(HarnessError::Api(e)) => {
            assert_eq!(e.error, codes::WRONG_CARD_PIN);
            assert_eq!(e.attempts_left, Some(2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(api_code(expired).as_deref(), Some(codes::EID_CARD_EXPIRED));
    assert_eq!(api_code(revoked).as_deref(), Some(codes::EID_CARD_REVOKED));
}

#[tokio::test]
async fn an_identification_code_works_once() {
    let server = server().await;
    let (first, _d1) = new_phone(&server.url());
    let (second, _d2) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let code = identification_code(&first, &citizen, "+32470100005").await;

    first
        .authenticator()
        .start_eid_enrollment("+32470100005".into(), code.clone())
        .await
        .unwrap();
    let again = second
        .authenticator()
        .start_eid_enrollment("+32470100005".into(), code)
        .await;

    assert_eq!(again, Err(CoreError::IdentityCodeUsed));
}

#[tokio::test]
async fn an_identification_code_is_bound_to_its_phone_number() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let code = identification_code(&phone, &citizen, "+32470100006").await;

    let elsewhere = phone
        .authenticator()
        .start_eid_enrollment("+32470100007".into(), code)
        .await;

    assert!(
        matches!(elsewhere, Err(CoreError::WrongIdentityCode { .. })),
        "{elsewhere:?}"
    );
}

#[tokio::test]
async fn an_identification_code_expires() {
    let server = server_with(Policy {
        identification_code_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let code = identification_code(&phone, &citizen, "+32470100008").await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = phone
        .authenticator()
        .start_eid_enrollment("+32470100008".into(), code)
        .await;

    assert_eq!(late, Err(CoreError::IdentityCodeExpired));
}

#[tokio::test]
async fn wrong_identification_codes_are_counted_and_the_code_then_stops_working() {
    let server = server_with(Policy {
        identity_code_max_failures: 2,
        ..Policy::default()
    })
    .await;
    let (phone, _dir) = new_phone(&server.url());
    let auth = phone.authenticator();
    let citizen = citizen(&server.url()).await;
    let code = identification_code(&phone, &citizen, "+32470100009").await;
    let wrong = if code.starts_with('A') {
        "CCCC-CCCC"
    } else {
        "AAAA-AAAA"
    };

    let first = auth
        .start_eid_enrollment("+32470100009".into(), wrong.into())
        .await;
    let step = auth.enrollment_in_progress().unwrap().map(|p| p.step);
    let second = auth.submit_identity_code(wrong.into()).await;
    let right_after = auth.start_eid_enrollment("+32470100009".into(), code).await;

    assert_eq!(
        first,
        Err(CoreError::WrongIdentityCode { attempts_left: 1 })
    );
    assert_eq!(step, Some(EnrollmentStep::IdentityCode));
    assert_eq!(second, Err(CoreError::TooManyAttempts));
    assert_eq!(right_after, Err(CoreError::IdentityCodeBlocked));
}

#[tokio::test]
async fn a_wrong_code_can_be_typed_again() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let auth = phone.authenticator();
    let citizen = citizen(&server.url()).await;
    let code = identification_code(&phone, &citizen, "+32470100010").await;
    let wrong = if code.starts_with('A') {
        "CCCCCCCC"
    } else {
        "AAAAAAAA"
    };

    let first = auth
        .start_eid_enrollment("+32470100010".into(), wrong.into())
        .await;
    let sms = auth.submit_identity_code(code).await;

    assert!(matches!(first, Err(CoreError::WrongIdentityCode { .. })));
    assert!(sms.is_ok(), "{sms:?}");
    assert_eq!(
        auth.enrollment_in_progress().unwrap().map(|p| p.step),
        Some(EnrollmentStep::SmsCode)
    );
}

#[tokio::test]
async fn look_alike_characters_and_foreign_links_are_refused_before_anything_is_sent() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let auth = phone.authenticator();

    let eid = auth
        .start_eid_enrollment("+32470100011".into(), "ACDE-FGH0".into())
        .await;
    let counter = auth
        .start_counter_enrollment(
            "+32470100011".into(),
            "https://evil.example/?activation_code=ACDEFGHJKMNP".into(),
        )
        .await;

    assert!(
        matches!(eid, Err(CoreError::InvalidInput { ref field, .. }) if field == "identification_code"),
        "{eid:?}"
    );
    assert!(
        matches!(counter, Err(CoreError::InvalidInput { ref field, .. }) if field == "activation_code"),
        "{counter:?}"
    );
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);
}

#[tokio::test]
async fn an_activation_code_expires_after_its_lifetime() {
    let server = server_with(Policy {
        activation_code_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    phone
        .sim()
        .counter_activation(&citizen, &email(&citizen))
        .await
        .unwrap();
    let link = phone.sim().activation_link(&email(&citizen)).await.unwrap();

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = phone
        .authenticator()
        .start_counter_enrollment("+32470100012".into(), link)
        .await;

    assert_eq!(late, Err(CoreError::IdentityCodeExpired));
}

#[tokio::test]
async fn an_activation_code_works_once() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    phone
        .enroll_at_counter(&citizen, "+32470100013", CODE, &silent)
        .await
        .unwrap();
    let link = phone.sim().activation_link(&email(&citizen)).await.unwrap();
    let (other, _d2) = new_phone(&server.url());

    let again = other
        .authenticator()
        .start_counter_enrollment("+32470100014".into(), link)
        .await;

    assert_eq!(again, Err(CoreError::IdentityCodeUsed));
}

#[tokio::test]
async fn every_source_refuses_a_person_under_18() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let today = sleutel_protocol::identity::Date::from_unix(sleutel_harness::now());
    let minor = phone
        .sim()
        .create_citizen(&NewCitizen {
            birthdate: Some(format!("{:04}-01-01", today.year - 17)),
            ..NewCitizen::default()
        })
        .await
        .unwrap();

    let code = identification_code(&phone, &minor, "+32470100015").await;
    let eid = phone
        .authenticator()
        .start_eid_enrollment("+32470100015".into(), code)
        .await;
    let issued = phone
        .sim()
        .counter_activation(&minor, &email(&minor))
        .await
        .unwrap();
    let counter = phone
        .authenticator()
        .start_counter_enrollment("+32470100015".into(), issued.activation_code)
        .await;
    let bank = phone
        .enroll_at_bank(&minor, "+32470100015", CODE, &silent)
        .await;

    assert!(
        matches!(eid, Err(CoreError::IdentityRefused { .. })),
        "{eid:?}"
    );
    assert!(
        matches!(counter, Err(CoreError::IdentityRefused { .. })),
        "{counter:?}"
    );
    assert!(
        matches!(
            bank,
            Err(HarnessError::Core(CoreError::IdentityRefused { .. }))
        ),
        "{:?}",
        bank.err()
    );
}
