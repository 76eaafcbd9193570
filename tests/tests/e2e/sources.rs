//! The three identity sources end to end: the eID website's identification code and the
//! counter's two factors (the e-mail's activation link and the code handed out there) beside the
//! bank, each refusal the sources name, and the age policy every source enforces.

use std::time::Duration;

use crate::common::*;
use sleutel_core::{CoreError, EnrollmentStep, IdentitySource};
use sleutel_harness::HarnessError;
use sleutel_harness::phone::{VirtualPhone, silent};
use sleutel_harness::sim::minor;
use sleutel_protocol::api::sim::{ActivationCodeIssued, Citizen, NewCitizen};
use sleutel_protocol::api::{self, codes};
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

/// The counter's two factors for `citizen`: the code the official hands out, and the activation
/// link of the e-mail that follows.
async fn at_the_counter(phone: &VirtualPhone, citizen: &Citizen) -> (ActivationCodeIssued, String) {
    let issued = phone
        .sim()
        .counter_activation(citizen, &email(citizen))
        .await
        .expect("the counter issues a code");
    let link = phone
        .sim()
        .activation_link(&email(citizen))
        .await
        .expect("an activation e-mail");
    (issued, link)
}

/// A well-formed activation code other than `code`.
fn other_code(code: &str) -> String {
    if code.starts_with('A') {
        "CCCC-CCCC-CCCC".into()
    } else {
        "AAAA-AAAA-AAAA".into()
    }
}

/// Whether the phone's keystore still keeps the token of `link`.
fn keeps_link(phone: &VirtualPhone, link: &str) -> bool {
    let token = api::counter_activation_token(link).expect("a counter link");
    phone
        .keystore()
        .holds_secret(token.as_bytes())
        .expect("the keystore answers")
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
async fn the_counters_link_and_code_activate_the_phone() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());

    let (citizen, account) = phone
        .enroll_new_citizen_with(IdentitySource::Counter, "+32470100002", CODE, &silent)
        .await
        .unwrap();

    let events = server
        .running()
        .account_events(&account.account_id)
        .unwrap();
    assert!(events[0].1.contains("source counter"), "{:?}", events[0]);
    let mail = phone.sim().email_messages(&email(&citizen)).await.unwrap();
    assert_eq!(mail.messages.len(), 1);
    assert!(mail.messages[0].text.contains("14 dagen"));
}

#[tokio::test]
async fn the_activation_code_is_typed_in_any_case_with_spaces() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let (issued, link) = at_the_counter(&phone, &citizen).await;

    // Typed in lower case with spaces, as a person might.
    let typed = issued.activation_code.replace('-', " ").to_lowercase();
    let sms = phone
        .authenticator()
        .start_counter_enrollment("+32470100003".into(), link, typed)
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
async fn the_activation_link_with_a_wrong_code_activates_nothing() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let (issued, link) = at_the_counter(&phone, &citizen).await;

    let refused = phone
        .authenticator()
        .start_counter_enrollment(
            "+32470100016".into(),
            link,
            other_code(&issued.activation_code),
        )
        .await;

    assert_eq!(
        refused,
        Err(CoreError::WrongIdentityCode { attempts_left: 4 })
    );
    let sms = phone.sim().sms_messages("+32470100016").await.unwrap();
    assert!(sms.messages.is_empty());
}

#[tokio::test]
async fn the_activation_code_with_another_persons_link_activates_nothing() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let stranger = sleutel_harness::sim::SimClient::new(&server.url())
        .unwrap()
        .create_citizen(&NewCitizen::default())
        .await
        .unwrap();
    let (mine, _) = at_the_counter(&phone, &citizen).await;
    let (_, theirs) = at_the_counter(&phone, &stranger).await;

    let refused = phone
        .authenticator()
        .start_counter_enrollment("+32470100017".into(), theirs, mine.activation_code)
        .await;

    assert!(
        matches!(refused, Err(CoreError::WrongIdentityCode { .. })),
        "{refused:?}"
    );
    let sms = phone.sim().sms_messages("+32470100017").await.unwrap();
    assert!(sms.messages.is_empty());
}

#[tokio::test]
async fn the_activation_code_without_the_link_is_refused_before_anything_is_sent() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let (issued, _) = at_the_counter(&phone, &citizen).await;

    let refused = phone
        .authenticator()
        .start_counter_enrollment("+32470100018".into(), String::new(), issued.activation_code)
        .await;

    assert!(
        matches!(refused, Err(CoreError::InvalidInput { ref field, .. }) if field == "activation_link"),
        "{refused:?}"
    );
    assert_eq!(
        phone.authenticator().enrollment_in_progress().unwrap(),
        None
    );
}

#[tokio::test]
async fn a_code_typed_again_goes_with_the_kept_link_which_is_then_deleted() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let auth = phone.authenticator();
    let citizen = citizen(&server.url()).await;
    let (issued, link) = at_the_counter(&phone, &citizen).await;

    let first = auth
        .start_counter_enrollment(
            "+32470100019".into(),
            link.clone(),
            other_code(&issued.activation_code),
        )
        .await;
    let kept_while_waiting = keeps_link(&phone, &link);
    let sms = auth.submit_identity_code(issued.activation_code).await;
    let kept_after_the_code = keeps_link(&phone, &link);
    phone
        .finish_enrollment("+32470100019", 0, CODE, &silent)
        .await
        .unwrap();

    assert!(matches!(first, Err(CoreError::WrongIdentityCode { .. })));
    assert!(kept_while_waiting);
    assert!(sms.is_ok(), "{sms:?}");
    assert!(!kept_after_the_code);
    assert!(!keeps_link(&phone, &link));
}

#[tokio::test]
async fn the_kept_link_is_not_written_to_the_phones_database() {
    let server = server().await;
    let (phone, dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let (issued, link) = at_the_counter(&phone, &citizen).await;
    let token = api::counter_activation_token(&link).unwrap();

    phone
        .authenticator()
        .start_counter_enrollment(
            "+32470100022".into(),
            link.clone(),
            other_code(&issued.activation_code),
        )
        .await
        .unwrap_err();

    assert!(keeps_link(&phone, &link));
    // The store (with its write-ahead log) never sees the token; only the keystore keeps it.
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("sleutel.db") {
            checked += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(token.len())
                    .any(|window| window == token.as_bytes()),
                "{name}"
            );
        }
    }
    assert!(checked > 0, "the store was not found");
}

#[tokio::test]
async fn the_kept_link_is_deleted_when_the_server_ends_the_enrollment() {
    let server = server_with(Policy {
        identity_code_max_failures: 2,
        ..Policy::default()
    })
    .await;
    let (phone, _dir) = new_phone(&server.url());
    let auth = phone.authenticator();
    let citizen = citizen(&server.url()).await;
    let (issued, link) = at_the_counter(&phone, &citizen).await;
    let wrong = other_code(&issued.activation_code);

    let first = auth
        .start_counter_enrollment("+32470100020".into(), link.clone(), wrong.clone())
        .await;
    let kept_while_waiting = keeps_link(&phone, &link);
    let second = auth.submit_identity_code(wrong).await;

    assert_eq!(
        first,
        Err(CoreError::WrongIdentityCode { attempts_left: 1 })
    );
    assert!(kept_while_waiting);
    assert_eq!(second, Err(CoreError::TooManyAttempts));
    assert_eq!(auth.enrollment_in_progress().unwrap(), None);
    assert!(!keeps_link(&phone, &link));
}

#[tokio::test]
async fn the_kept_link_is_deleted_when_another_enrollment_replaces_it() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let auth = phone.authenticator();
    let citizen = citizen(&server.url()).await;
    let (issued, link) = at_the_counter(&phone, &citizen).await;
    auth.start_counter_enrollment(
        "+32470100021".into(),
        link.clone(),
        other_code(&issued.activation_code),
    )
    .await
    .unwrap_err();
    let kept_while_waiting = keeps_link(&phone, &link);

    auth.start_bank_enrollment("+32470100021".into(), sleutel_core::Bank::Kbc)
        .await
        .unwrap();

    assert!(kept_while_waiting);
    assert!(!keeps_link(&phone, &link));
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
    let token = "Q2xpY2sgdGhlIGxpbmsgYW5kIHR5cGUgdGhlIGNvZGU";
    let link = api::counter_activation_link(token);
    let code = "ACDE-FGHJ-KMNP";

    let eid = auth
        .start_eid_enrollment("+32470100011".into(), "ACDE-FGH0".into())
        .await;
    let mut counter = Vec::new();
    for (link, code) in [
        (
            format!("https://evil.example/?activation={token}"),
            code.to_owned(),
        ),
        (format!("{link}&activation={token}"), code.to_owned()),
        (
            format!(
                "{}?activation_code=ACDEFGHJKMNP",
                api::DEEP_LINK_COUNTER_ACTIVATION
            ),
            code.to_owned(),
        ),
        (link.clone(), link.clone()),
        (link.clone(), "ACDE-FGHJ-KMN0".to_owned()),
    ] {
        let refused = auth
            .start_counter_enrollment("+32470100011".into(), link, code)
            .await;
        counter.push(match refused {
            Err(CoreError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        });
    }

    assert!(
        matches!(eid, Err(CoreError::InvalidInput { ref field, .. }) if field == "identification_code"),
        "{eid:?}"
    );
    assert_eq!(
        counter,
        [
            "activation_link",
            "activation_link",
            "activation_link",
            "activation_code",
            "activation_code"
        ]
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
    let (issued, link) = at_the_counter(&phone, &citizen).await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = phone
        .authenticator()
        .start_counter_enrollment("+32470100012".into(), link, issued.activation_code)
        .await;

    assert_eq!(late, Err(CoreError::IdentityCodeExpired));
}

#[tokio::test]
async fn an_activation_code_works_once() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let citizen = citizen(&server.url()).await;
    let (issued, link) = at_the_counter(&phone, &citizen).await;
    phone
        .authenticator()
        .start_counter_enrollment(
            "+32470100013".into(),
            link.clone(),
            issued.activation_code.clone(),
        )
        .await
        .unwrap();
    let (other, _d2) = new_phone(&server.url());

    let again = other
        .authenticator()
        .start_counter_enrollment("+32470100014".into(), link, issued.activation_code)
        .await;

    assert_eq!(again, Err(CoreError::IdentityCodeUsed));
}

#[tokio::test]
async fn every_source_refuses_a_person_under_18() {
    let server = server().await;
    let (phone, _dir) = new_phone(&server.url());
    let minor = phone.sim().create_citizen(&minor()).await.unwrap();

    let code = identification_code(&phone, &minor, "+32470100015").await;
    let eid = phone
        .authenticator()
        .start_eid_enrollment("+32470100015".into(), code)
        .await;
    let (issued, link) = at_the_counter(&phone, &minor).await;
    let counter = phone
        .authenticator()
        .start_counter_enrollment("+32470100015".into(), link, issued.activation_code)
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
