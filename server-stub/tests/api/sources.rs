//! The eID and counter identity sources over HTTP: the simulated eID website and counter that
//! hand out codes, the phone's `POST /v1/enrollments/{id}/code`, and every refusal on the way
//! (card checks, wrong, expired, used and blocked codes, codes of another number), and the
//! "block my key" page.

use std::time::Duration;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::activation_link_in;
use sleutel_protocol::api::sim::{
    ActivationCodeIssued, BlockMyKey, Citizen, CounterActivation, EidIdentification, EmailOutbox,
    IdentificationCodeIssued, KeyBlocked, NewCitizen,
};
use sleutel_protocol::api::{
    self, EnrollmentCompleted, EnrollmentStarted, SmsSent, SmsVerified, StartEnrollment,
    SubmitIdentityCode, codes,
};
use sleutel_protocol::clock::now;
use sleutel_protocol::identity::{Bank, IdentitySource};
use sleutel_server::Policy;

use crate::common::*;

/// The e-mail address the tests give the eID website and the counter.
pub const EMAIL: &str = "jan.peeters@example.be";

/// A POST of `body` as JSON to a simulator page (no proof: the simulators stand in for the world).
pub async fn sim_post<T: Serialize>(
    server: &InProcessServer,
    path: &str,
    body: &T,
) -> reqwest::Response {
    server.sim().post_raw(path, body).await.unwrap()
}

/// The eID website's form for `citizen`'s card with `pin`, for `number`.
pub fn eid_form(number: &str, citizen: &Citizen, pin: &str) -> EidIdentification {
    EidIdentification {
        phone_number: number.into(),
        email: EMAIL.into(),
        card_serial: citizen.eid_card.serial.clone(),
        card_pin: pin.into(),
    }
}

/// An identification code for `number` from `citizen`'s eID.
pub async fn eid_code(server: &InProcessServer, number: &str, citizen: &Citizen) -> String {
    let form = eid_form(number, citizen, &citizen.eid_card.pin);
    let issued: IdentificationCodeIssued =
        ok(sim_post(server, api::sim::PATH_EID_IDENTIFICATION, &form).await).await;
    issued.identification_code
}

/// The counter's form for `citizen`.
pub fn counter_form(citizen: &Citizen) -> CounterActivation {
    CounterActivation {
        national_register_number: citizen.national_register_number.clone(),
        document_number: "592-1234567-89".into(),
        email: EMAIL.into(),
    }
}

/// What the counter hands out for `citizen`: the code (to the person, at the desk) and the
/// e-mail with the activation link.
pub struct CounterIssued {
    /// The activation code as the official shows it.
    pub code: String,
    /// The token of the e-mail's activation link.
    pub token: String,
    /// The e-mail's text.
    pub email_text: String,
}

/// The official at the counter checks `citizen`'s identity; returns the code and the e-mail.
pub async fn counter_issue(server: &InProcessServer, citizen: &Citizen) -> CounterIssued {
    let issued: ActivationCodeIssued = ok(sim_post(
        server,
        api::sim::PATH_COUNTER_ACTIVATION,
        &counter_form(citizen),
    )
    .await)
    .await;
    let outbox = server.sim().email_messages(EMAIL).await.unwrap();
    let email_text = outbox.messages.last().expect("an e-mail").text.clone();
    let link = activation_link_in(&email_text).expect("an activation link in the e-mail");
    CounterIssued {
        code: issued.activation_code,
        token: api::counter_activation_token(link).expect("a well-formed activation link"),
        email_text,
    }
}

/// `phone` starts an activation of `number` proven by `source` (no bank).
pub async fn start_with(phone: &Phone, number: &str, source: IdentitySource) -> EnrollmentStarted {
    ok(phone
        .post(
            api::PATH_ENROLLMENTS,
            &StartEnrollment {
                phone_number: number.into(),
                source,
                bank: None,
                replaces: None,
            },
        )
        .await)
    .await
}

/// `phone` types `code` into the enrollment `started` (no activation link).
pub async fn submit_code(
    phone: &Phone,
    started: &EnrollmentStarted,
    code: &str,
) -> reqwest::Response {
    submit_code_with_link(phone, started, None, code).await
}

/// `phone` types `code` into the enrollment `started`, opened with the activation link whose
/// token is `token`.
pub async fn submit_code_with_link(
    phone: &Phone,
    started: &EnrollmentStarted,
    token: Option<&str>,
    code: &str,
) -> reqwest::Response {
    phone
        .post(
            &api::path_enrollment_code(&started.enrollment_id),
            &SubmitIdentityCode {
                code: code.into(),
                activation_token: token.map(str::to_owned),
            },
        )
        .await
}

/// How an enrollment proves the identity without a bank.
pub enum Proof<'a> {
    /// An identification code of the eID website.
    Eid(&'a str),
    /// The counter's activation link and code.
    Counter(&'a CounterIssued),
}

/// `phone` activates `number` for the identity `proof` proves, through the SMS code to the
/// registration of a fresh PIN key.
pub async fn enroll_with_code(
    server: &InProcessServer,
    phone: Phone,
    number: &str,
    proof: Proof<'_>,
    citizen: &Citizen,
) -> Enrolled {
    let started = match proof {
        Proof::Eid(code) => {
            let started = start_with(&phone, number, IdentitySource::Eid).await;
            let _: SmsSent = ok(submit_code(&phone, &started, code).await).await;
            started
        }
        Proof::Counter(issued) => {
            let started = start_with(&phone, number, IdentitySource::Counter).await;
            let _: SmsSent =
                ok(
                    submit_code_with_link(&phone, &started, Some(&issued.token), &issued.code)
                        .await,
                )
                .await;
            started
        }
    };
    let sms = server.sim().last_sms_code(number).await.unwrap();
    let _: SmsVerified = ok(phone.verify_sms(&started.enrollment_id, &sms).await).await;
    let pin = SigningKey::generate();
    let completed: EnrollmentCompleted = ok(phone.complete(&started, &pin).await).await;
    Enrolled {
        phone,
        pin,
        citizen: citizen.clone(),
        number: number.to_owned(),
        started,
        completed,
    }
}

/// The account's history on the server, as event names.
pub fn events(server: &InProcessServer, account_id: &str) -> Vec<(String, String)> {
    server
        .running()
        .account_events(account_id)
        .unwrap()
        .into_iter()
        .map(|(event, detail, _)| (event, detail))
        .collect()
}

// --- eID ----------------------------------------------------------------------------------------

#[tokio::test]
async fn an_eid_identification_code_activates_and_the_history_names_the_source() {
    let server = server().await;
    let person = citizen(&server).await;
    let number = "+32470000501";
    let code = eid_code(&server, number, &person).await;

    let enrolled = enroll_with_code(
        &server,
        Phone::new(&server.url()),
        number,
        Proof::Eid(&code),
        &person,
    )
    .await;

    let history = events(&server, &enrolled.completed.account_id);
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].0, "activated");
    assert!(history[0].1.contains("source eid"), "{history:?}");
    assert!(
        history[0].1.contains(&person.eid_card.serial),
        "{history:?}"
    );
    approved_login(&server.rp(), &enrolled).await;
}

#[tokio::test]
async fn an_identification_code_is_typed_in_any_case_with_spaces() {
    let server = server().await;
    let person = citizen(&server).await;
    let number = "+32470000502";
    let code = eid_code(&server, number, &person).await;
    let typed = format!(" {} ", code.replace('-', " ").to_lowercase());
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;

    let sent: SmsSent = ok(submit_code(&phone, &started, &typed).await).await;

    assert!(
        sent.phone_number_masked.ends_with("05 02"),
        "{}",
        sent.phone_number_masked
    );
}

#[tokio::test]
async fn an_identification_code_for_another_number_is_a_wrong_code() {
    let server = server().await;
    let person = citizen(&server).await;
    let code = eid_code(&server, "+32470000503", &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000504", IdentitySource::Eid).await;

    let (status, error) = err(submit_code(&phone, &started, &code).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    assert_eq!(error.attempts_left, Some(4));
}

#[tokio::test]
async fn wrong_identification_codes_end_the_enrollment_and_block_the_numbers_code() {
    let server = server().await;
    let person = citizen(&server).await;
    let number = "+32470000505";
    let code = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;

    let mut left = Vec::new();
    for _ in 0..4 {
        let (_, error) = err(submit_code(&phone, &started, "ACDE-FGHJ").await).await;
        assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
        left.push(error.attempts_left);
    }
    let (status, last) = err(submit_code(&phone, &started, "ACDE-FGHJ").await).await;
    let (_, after) = err(submit_code(&phone, &started, &code).await).await;
    // A new enrollment (a new key is free) finds the number's code blocked, right or not.
    let other = Phone::new(&server.url());
    let again = start_with(&other, number, IdentitySource::Eid).await;
    let (blocked_status, blocked) = err(submit_code(&other, &again, &code).await).await;

    assert_eq!(left, [Some(4), Some(3), Some(2), Some(1)]);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(last.error, codes::TOO_MANY_ATTEMPTS);
    assert_eq!(after.error, codes::TOO_MANY_ATTEMPTS);
    assert_eq!(blocked_status, StatusCode::FORBIDDEN);
    assert_eq!(blocked.error, codes::IDENTITY_CODE_BLOCKED);
}

#[tokio::test]
async fn a_used_identification_code_is_refused_as_used() {
    let server = server().await;
    let person = citizen(&server).await;
    let number = "+32470000506";
    let code = eid_code(&server, number, &person).await;
    enroll_with_code(
        &server,
        Phone::new(&server.url()),
        number,
        Proof::Eid(&code),
        &person,
    )
    .await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;

    let (status, error) = err(submit_code(&phone, &started, &code).await).await;

    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error.error, codes::IDENTITY_CODE_USED);
}

#[tokio::test]
async fn a_new_identification_code_replaces_the_earlier_one() {
    let server = server().await;
    let person = citizen(&server).await;
    let number = "+32470000507";
    let first = eid_code(&server, number, &person).await;
    let _second = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;

    let (_, error) = err(submit_code(&phone, &started, &first).await).await;

    assert_eq!(error.error, codes::IDENTITY_CODE_USED);
}

#[tokio::test]
async fn an_expired_identification_code_is_refused_as_expired() {
    let server = server_with(Policy {
        identification_code_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let person = citizen(&server).await;
    let number = "+32470000508";
    let code = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let (status, error) = err(submit_code(&phone, &started, &code).await).await;

    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error.error, codes::IDENTITY_CODE_EXPIRED);
}

#[tokio::test]
async fn a_code_with_a_look_alike_character_is_malformed_and_not_counted() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000509", IdentitySource::Eid).await;

    let (status, malformed) = err(submit_code(&phone, &started, "ACDE-FGH0").await).await;
    let (_, wrong) = err(submit_code(&phone, &started, "ACDE-FGHJ").await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.error, codes::INVALID_REQUEST);
    assert_eq!(wrong.attempts_left, Some(4));
}

#[tokio::test]
async fn an_underage_person_is_refused_and_the_code_stays_unused() {
    let server = server().await;
    let today = time_now_date();
    let person = server
        .sim()
        .create_citizen(&NewCitizen {
            birthdate: Some(format!("{}-01-01", today - 17)),
            ..NewCitizen::default()
        })
        .await
        .unwrap();
    let number = "+32470000510";
    let code = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;

    let (status, error) = err(submit_code(&phone, &started, &code).await).await;
    let (_, again) = err(submit_code(&phone, &started, &code).await).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::IDENTITY_REFUSED);
    assert_eq!(
        again.error,
        codes::IDENTITY_REFUSED,
        "not identity_code_used"
    );
}

/// This year, from the clock.
fn time_now_date() -> i64 {
    1970 + now() / 31_556_952
}

#[tokio::test]
async fn a_code_needs_the_enrollments_own_device_key() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000511", IdentitySource::Eid).await;
    let stranger = Phone::new(&server.url());
    let path = api::path_enrollment_code(&started.enrollment_id);
    let body = serde_json::to_vec(&SubmitIdentityCode {
        code: "ACDE-FGHJ".into(),
        activation_token: None,
    })
    .unwrap();

    let (other_status, other) = err(submit_code(&stranger, &started, "ACDE-FGHJ").await).await;
    let (no_proof_status, no_proof) = err(server
        .http()
        .post(format!("{}{path}", server.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(other_status, StatusCode::NOT_FOUND);
    assert_eq!(other.error, codes::UNKNOWN_ENROLLMENT);
    assert_eq!(no_proof_status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_proof.error, codes::INVALID_PROOF);
}

#[tokio::test]
async fn a_code_body_of_another_shape_is_invalid() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000512", IdentitySource::Eid).await;
    let path = api::path_enrollment_code(&started.enrollment_id);

    let (status, error) = err(phone
        .send(
            Method::POST,
            &path,
            br#"{"code":"ACDEFGHJ","extra":1}"#.to_vec(),
        )
        .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_code_on_a_bank_activation_is_the_wrong_step() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let started = phone.start_enrollment("+32470000513").await;

    let (status, error) = err(submit_code(&phone, &started, "ACDE-FGHJ").await).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error.error, codes::WRONG_STEP);
}

#[tokio::test]
async fn a_bank_token_on_a_code_activation_is_the_wrong_step() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000514", IdentitySource::Counter).await;

    let (_, error) = err(phone.submit_identity(&started.enrollment_id, "a.b.c").await).await;

    assert_eq!(error.error, codes::WRONG_STEP);
}

#[tokio::test]
async fn a_source_and_a_bank_must_agree_at_the_start() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let mut refusals = Vec::new();
    for (source, bank) in [
        (IdentitySource::Eid, Some(Bank::Kbc)),
        (IdentitySource::Counter, Some(Bank::Ing)),
        (IdentitySource::Bank, None),
    ] {
        let response = phone
            .post(
                api::PATH_ENROLLMENTS,
                &StartEnrollment {
                    phone_number: "+32470000515".into(),
                    source,
                    bank,
                    replaces: None,
                },
            )
            .await;
        refusals.push(err(response).await.1.error);
    }

    assert_eq!(refusals, [codes::INVALID_REQUEST; 3]);
}

#[tokio::test]
async fn a_code_source_start_has_no_handoff() {
    let server = server().await;
    let phone = Phone::new(&server.url());

    let started = start_with(&phone, "+32470000516", IdentitySource::Eid).await;

    assert_eq!(started.handoff_url, None);
}

// --- the eID website ----------------------------------------------------------------------------

async fn eid_refusal(server: &InProcessServer, form: &EidIdentification) -> (StatusCode, String) {
    let (status, error) =
        err(sim_post(server, api::sim::PATH_EID_IDENTIFICATION, form).await).await;
    (status, error.error)
}

#[tokio::test]
async fn the_eid_website_refuses_an_unknown_card() {
    let server = server().await;
    let person = citizen(&server).await;
    let mut form = eid_form("+32470000520", &person, &person.eid_card.pin);
    form.card_serial = "000000000000".into();

    let refusal = eid_refusal(&server, &form).await;

    assert_eq!(
        refusal,
        (StatusCode::BAD_REQUEST, codes::UNKNOWN_CARD.into())
    );
}

#[tokio::test]
async fn three_wrong_eid_pins_block_the_card() {
    let server = server().await;
    let person = citizen(&server).await;
    let wrong = if person.eid_card.pin == "0000" {
        "1111"
    } else {
        "0000"
    };
    let form = eid_form("+32470000521", &person, wrong);

    let mut left = Vec::new();
    for _ in 0..2 {
        let (_, error) =
            err(sim_post(&server, api::sim::PATH_EID_IDENTIFICATION, &form).await).await;
        assert_eq!(error.error, codes::WRONG_CARD_PIN);
        left.push(error.attempts_left);
    }
    let third = eid_refusal(&server, &form).await;
    let right = eid_refusal(
        &server,
        &eid_form("+32470000521", &person, &person.eid_card.pin),
    )
    .await;

    assert_eq!(left, [Some(2), Some(1)]);
    assert_eq!(third, (StatusCode::FORBIDDEN, codes::CARD_BLOCKED.into()));
    assert_eq!(right, (StatusCode::FORBIDDEN, codes::CARD_BLOCKED.into()));
}

#[tokio::test]
async fn the_eid_website_refuses_an_expired_card() {
    let server = server().await;
    let person = server
        .sim()
        .create_citizen(&NewCitizen {
            eid_valid_until: Some("2020-01-31".into()),
            ..NewCitizen::default()
        })
        .await
        .unwrap();

    let refusal = eid_refusal(
        &server,
        &eid_form("+32470000522", &person, &person.eid_card.pin),
    )
    .await;

    assert_eq!(
        refusal,
        (StatusCode::FORBIDDEN, codes::EID_CARD_EXPIRED.into())
    );
}

#[tokio::test]
async fn a_revoked_card_is_refused_and_revoking_an_unknown_card_is_not_found() {
    let server = server().await;
    let person = citizen(&server).await;
    let revoke = |serial: &str| {
        server
            .http()
            .post(format!(
                "{}{}",
                server.url(),
                api::sim::path_eid_card_revoke(serial)
            ))
            .send()
    };

    let revoked = revoke(&person.eid_card.serial).await.unwrap();
    let status = revoked.status();
    let refusal = eid_refusal(
        &server,
        &eid_form("+32470000523", &person, &person.eid_card.pin),
    )
    .await;
    let (unknown_status, unknown) = err(revoke("000000000000").await.unwrap()).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        refusal,
        (StatusCode::FORBIDDEN, codes::EID_CARD_REVOKED.into())
    );
    assert_eq!(unknown_status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error, codes::NOT_FOUND);
}

#[tokio::test]
async fn the_eid_website_refuses_malformed_forms() {
    let server = server().await;
    let person = citizen(&server).await;
    let good = eid_form("+32470000524", &person, &person.eid_card.pin);
    let mut bad_email = good.clone();
    bad_email.email = "not an address".into();
    let mut bad_number = good.clone();
    bad_number.phone_number = "+31612345678".into();
    let mut bad_pin = good.clone();
    bad_pin.card_pin = "12a4".into();

    let mut refusals = Vec::new();
    for form in [&bad_email, &bad_number, &bad_pin] {
        refusals.push(eid_refusal(&server, form).await);
    }
    let (status, garbage) = err(server
        .http()
        .post(format!(
            "{}{}",
            server.url(),
            api::sim::PATH_EID_IDENTIFICATION
        ))
        .header("content-type", "application/json")
        .body("{\"phone_number\":")
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(
        refusals,
        vec![(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST.to_owned()); 3]
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.error, codes::INVALID_REQUEST);
}

// --- the counter --------------------------------------------------------------------------------

/// A token of the right shape that no counter issued.
const UNKNOWN_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A well-formed activation code other than `code`.
pub(crate) fn other_code(code: &str) -> &'static str {
    if code.starts_with('A') {
        "CCCC-CCCC-CCCC"
    } else {
        "AAAA-AAAA-AAAA"
    }
}

#[tokio::test]
async fn the_activation_link_with_its_code_activates_and_the_history_names_the_counter() {
    let server = server().await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;

    let enrolled = enroll_with_code(
        &server,
        Phone::new(&server.url()),
        "+32470000530",
        Proof::Counter(&issued),
        &person,
    )
    .await;

    let history = events(&server, &enrolled.completed.account_id);
    assert!(history[0].1.contains("source counter"), "{history:?}");
    approved_login(&server.rp(), &enrolled).await;
}

#[tokio::test]
async fn the_activation_email_carries_the_link_but_never_the_code() {
    let server = server().await;
    let person = citizen(&server).await;

    let issued = counter_issue(&server, &person).await;

    let canonical = issued.code.replace('-', "");
    assert!(
        issued
            .email_text
            .contains(&api::counter_activation_link(&issued.token)),
        "{}",
        issued.email_text
    );
    assert!(!issued.email_text.contains(&issued.code));
    assert!(!issued.email_text.contains(&canonical));
    assert!(!issued.email_text.contains(&canonical.to_lowercase()));
}

#[tokio::test]
async fn the_activation_link_with_a_wrong_code_activates_nothing() {
    let server = server().await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000535", IdentitySource::Counter).await;

    let (status, error) = err(submit_code_with_link(
        &phone,
        &started,
        Some(&issued.token),
        other_code(&issued.code),
    )
    .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    assert_eq!(error.attempts_left, Some(4));
    assert!(
        server
            .sim()
            .sms_messages("+32470000535")
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

#[tokio::test]
async fn the_activation_code_without_its_link_is_refused() {
    let server = server().await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000536", IdentitySource::Counter).await;

    let (status, error) = err(submit_code(&phone, &started, &issued.code).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
    assert!(
        server
            .sim()
            .sms_messages("+32470000536")
            .await
            .unwrap()
            .messages
            .is_empty()
    );
}

#[tokio::test]
async fn the_activation_code_with_another_persons_link_is_a_wrong_code_and_stays_usable() {
    let server = server().await;
    let person = citizen(&server).await;
    let other = citizen(&server).await;
    let mine = counter_issue(&server, &person).await;
    let theirs = counter_issue(&server, &other).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000537", IdentitySource::Counter).await;

    let (_, error) =
        err(submit_code_with_link(&phone, &started, Some(&theirs.token), &mine.code).await).await;
    let sent: SmsSent =
        ok(submit_code_with_link(&phone, &started, Some(&mine.token), &mine.code).await).await;

    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
    assert!(sent.phone_number_masked.ends_with("05 37"));
}

#[tokio::test]
async fn an_unknown_activation_link_is_a_wrong_code_counted_on_the_enrollment() {
    let server = server().await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000538", IdentitySource::Counter).await;

    let (_, first) =
        err(submit_code_with_link(&phone, &started, Some(UNKNOWN_TOKEN), &issued.code).await).await;
    let (_, second) =
        err(submit_code_with_link(&phone, &started, Some(UNKNOWN_TOKEN), &issued.code).await).await;

    assert_eq!(first.error, codes::WRONG_IDENTITY_CODE);
    assert_eq!(first.attempts_left, Some(4));
    assert_eq!(second.attempts_left, Some(3));
}

#[tokio::test]
async fn a_malformed_activation_link_token_is_invalid_and_not_counted() {
    let server = server().await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000539", IdentitySource::Counter).await;

    let (status, malformed) =
        err(submit_code_with_link(&phone, &started, Some("short"), &issued.code).await).await;
    let (_, wrong) = err(submit_code_with_link(
        &phone,
        &started,
        Some(&issued.token),
        other_code(&issued.code),
    )
    .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.error, codes::INVALID_REQUEST);
    assert_eq!(wrong.attempts_left, Some(4));
}

#[tokio::test]
async fn wrong_codes_on_an_activation_link_block_it_even_for_the_right_code() {
    let server = server_with(Policy {
        identity_code_max_failures: 3,
        ..Policy::default()
    })
    .await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;

    // Each wrong code in a new enrollment (a new key is free): only the link's count stops it.
    let mut left = Vec::new();
    for _ in 0..3 {
        let phone = Phone::new(&server.url());
        let started = start_with(&phone, "+32470000543", IdentitySource::Counter).await;
        let (_, error) = err(submit_code_with_link(
            &phone,
            &started,
            Some(&issued.token),
            other_code(&issued.code),
        )
        .await)
        .await;
        assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
        left.push(error.attempts_left);
    }
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000543", IdentitySource::Counter).await;
    let (status, blocked) =
        err(submit_code_with_link(&phone, &started, Some(&issued.token), &issued.code).await).await;

    assert_eq!(left, [Some(2), Some(1), Some(0)]);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(blocked.error, codes::IDENTITY_CODE_BLOCKED);
}

#[tokio::test]
async fn an_activation_link_token_on_an_eid_activation_is_invalid() {
    let server = server().await;
    let person = citizen(&server).await;
    let number = "+32470000544";
    let code = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Eid).await;

    let (status, error) =
        err(submit_code_with_link(&phone, &started, Some(UNKNOWN_TOKEN), &code).await).await;
    let sent: SmsSent = ok(submit_code(&phone, &started, &code).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
    assert!(sent.phone_number_masked.ends_with("05 44"));
}

#[tokio::test]
async fn an_activation_code_works_for_any_number_but_only_once() {
    let server = server().await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    enroll_with_code(
        &server,
        Phone::new(&server.url()),
        "+32470000531",
        Proof::Counter(&issued),
        &person,
    )
    .await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000532", IdentitySource::Counter).await;

    let (status, error) =
        err(submit_code_with_link(&phone, &started, Some(&issued.token), &issued.code).await).await;

    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error.error, codes::IDENTITY_CODE_USED);
}

#[tokio::test]
async fn an_expired_activation_code_is_refused_as_expired() {
    let server = server_with(Policy {
        activation_code_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let person = citizen(&server).await;
    let issued = counter_issue(&server, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, "+32470000533", IdentitySource::Counter).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let (_, error) =
        err(submit_code_with_link(&phone, &started, Some(&issued.token), &issued.code).await).await;

    assert_eq!(error.error, codes::IDENTITY_CODE_EXPIRED);
}

#[tokio::test]
async fn an_identification_code_is_no_activation_code() {
    let server = server().await;
    let person = citizen(&server).await;
    let number = "+32470000534";
    let issued = counter_issue(&server, &person).await;
    let eid = eid_code(&server, number, &person).await;
    let phone = Phone::new(&server.url());
    let started = start_with(&phone, number, IdentitySource::Counter).await;

    let (_, error) =
        err(
            submit_code_with_link(&phone, &started, Some(&issued.token), &format!("{eid}AAAA"))
                .await,
        )
        .await;

    assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
}

#[tokio::test]
async fn the_counter_refuses_an_unknown_person_and_malformed_forms() {
    let server = server().await;
    let person = citizen(&server).await;
    let mut unknown = counter_form(&person);
    unknown.national_register_number = "00000000000".into();
    let mut bad_document = counter_form(&person);
    bad_document.document_number = "x".repeat(33);
    let mut bad_email = counter_form(&person);
    bad_email.email = "@example.be".into();

    let mut refusals = Vec::new();
    for form in [&unknown, &bad_document, &bad_email] {
        let (status, error) =
            err(sim_post(&server, api::sim::PATH_COUNTER_ACTIVATION, form).await).await;
        refusals.push((status, error.error));
    }

    assert_eq!(
        refusals,
        [
            (StatusCode::NOT_FOUND, codes::NOT_FOUND.to_owned()),
            (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST.to_owned()),
            (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST.to_owned()),
        ]
    );
}

#[tokio::test]
async fn the_email_outbox_needs_an_address_and_keeps_mail_apart() {
    let server = server().await;
    let get = |query: Vec<(&'static str, &'static str)>| {
        server
            .http()
            .get(format!("{}{}", server.url(), api::sim::PATH_EMAIL))
            .query(&query)
            .send()
    };

    let (missing_status, missing) = err(get(vec![]).await.unwrap()).await;
    let (bad_status, bad) = err(get(vec![("email", "nobody")]).await.unwrap()).await;
    let empty: EmailOutbox = ok(get(vec![("email", "someone@example.be")]).await.unwrap()).await;

    assert_eq!(missing_status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error, codes::INVALID_REQUEST);
    assert_eq!(bad_status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error, codes::INVALID_REQUEST);
    assert!(empty.messages.is_empty());
}

// --- unblock from the same phone ----------------------------------------------------------------

#[tokio::test]
async fn the_accounts_own_phone_cannot_prove_another_persons_identity() {
    let server = server().await;
    let owner = enroll(&server, "+32470000540").await;
    let stranger = citizen(&server).await;
    let issued = counter_issue(&server, &stranger).await;
    let started = start_with(&owner.phone, "+32470000540", IdentitySource::Counter).await;

    let (status, error) =
        err(submit_code_with_link(&owner.phone, &started, Some(&issued.token), &issued.code).await)
            .await;
    // The code was not spent on the refusal: its owner can still use it.
    let theirs = enroll_with_code(
        &server,
        Phone::new(&server.url()),
        "+32470000541",
        Proof::Counter(&issued),
        &stranger,
    )
    .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::IDENTITY_REFUSED);
    assert_ne!(theirs.completed.account_id, owner.completed.account_id);
}

#[tokio::test]
async fn an_unblock_with_an_eid_code_lifts_the_block_and_replaces_the_pin_key() {
    let server = server().await;
    let number = "+32470000542";
    let owner = enroll(&server, number).await;
    block_by_wrong_codes(&server, &owner).await;
    let code = eid_code(&server, number, &owner.citizen).await;
    let phone = clone_phone(&owner.phone);

    let unblocked =
        enroll_with_code(&server, phone, number, Proof::Eid(&code), &owner.citizen).await;

    assert_eq!(unblocked.completed.account_id, owner.completed.account_id);
    let history: Vec<String> = events(&server, &owner.completed.account_id)
        .into_iter()
        .map(|(event, _)| event)
        .collect();
    assert_eq!(
        history,
        [
            "activated",
            "wrong_code",
            "wrong_code",
            "wrong_code",
            "blocked",
            "unblocked",
            "reactivated"
        ]
    );
    server.rp().start_login(number).await.unwrap();
    let (request, jws) = unblocked.the_request().await;
    let (_, old) = err(unblocked
        .answer(&request, &unblocked.approval(&request, &jws, &owner.pin))
        .await)
    .await;
    assert_eq!(old.error, codes::WRONG_PIN);
    approved_login_after(&unblocked, &request, &jws).await;
}

async fn approved_login_after(
    e: &Enrolled,
    request: &sleutel_protocol::action::ActionRequest,
    jws: &str,
) {
    let accepted: api::ResponseAccepted =
        ok(e.answer(request, &e.approval(request, jws, &e.pin)).await).await;
    assert_eq!(accepted.status, "approved");
}

/// The same device key as `phone`, for a second enrollment by that phone.
pub fn clone_phone(phone: &Phone) -> Phone {
    let mut copy = Phone::new(&phone.base);
    copy.device = phone.device.clone();
    copy.jwk = phone.jwk.clone();
    copy
}

/// Three wrong codes on a login block `e`'s account.
pub async fn block_by_wrong_codes(server: &InProcessServer, e: &Enrolled) {
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let wrong = SigningKey::generate();
    for _ in 0..3 {
        let _ = e
            .answer(&request, &e.approval(&request, &jws, &wrong))
            .await;
    }
    let (_, error) = err(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
}

// --- block my key -------------------------------------------------------------------------------

async fn block(server: &InProcessServer, form: &BlockMyKey) -> reqwest::Response {
    sim_post(server, api::sim::PATH_BLOCK, form).await
}

#[tokio::test]
async fn the_block_page_blocks_with_an_eid_and_closes_open_requests() {
    let server = server().await;
    let e = enroll(&server, "+32470000550").await;
    let login = server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;

    let blocked: KeyBlocked = ok(block(
        &server,
        &BlockMyKey {
            source: Some(IdentitySource::Eid),
            card_serial: Some(e.citizen.eid_card.serial.clone()),
            card_pin: Some(e.citizen.eid_card.pin.clone()),
            ..BlockMyKey::default()
        },
    )
    .await)
    .await;

    assert_eq!(blocked.status, "blocked");
    assert_blocked(&server, &e).await;
    assert_eq!(
        token_error(&server.rp(), &login.auth_req_id).await,
        codes::ACCESS_DENIED
    );
    let (_, answer) = err(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(answer.error, codes::ACCOUNT_BLOCKED);
    let history = events(&server, &e.completed.account_id);
    assert_eq!(history.last().unwrap().0, "blocked");
    assert!(
        history.last().unwrap().1.contains("block-my-key"),
        "{history:?}"
    );
}

#[tokio::test]
async fn the_block_page_blocks_with_a_bank_card_or_an_activation_link_and_its_code() {
    let server = server().await;
    let by_bank = enroll(&server, "+32470000551").await;
    let by_code = enroll(&server, "+32470000552").await;
    let issued = counter_issue(&server, &by_code.citizen).await;

    let _: KeyBlocked = ok(block(
        &server,
        &BlockMyKey {
            source: Some(IdentitySource::Bank),
            card_number: Some(by_bank.citizen.debit_card.number.clone()),
            card_pin: Some(by_bank.citizen.debit_card.pin.clone()),
            ..BlockMyKey::default()
        },
    )
    .await)
    .await;
    let form = BlockMyKey {
        source: Some(IdentitySource::Counter),
        activation_code: Some(issued.code),
        activation_token: Some(issued.token),
        ..BlockMyKey::default()
    };
    let _: KeyBlocked = ok(block(&server, &form).await).await;
    let (reused_status, reused) = err(block(&server, &form).await).await;

    assert_blocked(&server, &by_bank).await;
    assert_blocked(&server, &by_code).await;
    assert_eq!(reused_status, StatusCode::GONE);
    assert_eq!(reused.error, codes::IDENTITY_CODE_USED);
}

#[tokio::test]
async fn the_block_page_refuses_wrong_proofs_and_people_without_a_key() {
    let server = server().await;
    let e = enroll(&server, "+32470000553").await;
    let nobody = citizen(&server).await;
    let wrong_pin = if e.citizen.eid_card.pin == "0000" {
        "1111"
    } else {
        "0000"
    };
    let cases = [
        BlockMyKey::default(),
        BlockMyKey {
            source: Some(IdentitySource::Eid),
            card_serial: Some(e.citizen.eid_card.serial.clone()),
            ..BlockMyKey::default()
        },
        BlockMyKey {
            source: Some(IdentitySource::Eid),
            card_serial: Some(e.citizen.eid_card.serial.clone()),
            card_pin: Some(wrong_pin.into()),
            ..BlockMyKey::default()
        },
        BlockMyKey {
            source: Some(IdentitySource::Bank),
            card_number: Some(e.citizen.credit_card.number.clone()),
            card_pin: Some(e.citizen.credit_card.pin.clone()),
            ..BlockMyKey::default()
        },
        BlockMyKey {
            source: Some(IdentitySource::Counter),
            activation_code: Some("ACDE-FGHJ-KMNP".into()),
            activation_token: Some(UNKNOWN_TOKEN.into()),
            ..BlockMyKey::default()
        },
        BlockMyKey {
            source: Some(IdentitySource::Eid),
            card_serial: Some(nobody.eid_card.serial.clone()),
            card_pin: Some(nobody.eid_card.pin.clone()),
            ..BlockMyKey::default()
        },
    ];

    let mut refusals = Vec::new();
    for form in &cases {
        let (status, error) = err(block(&server, form).await).await;
        refusals.push((status.as_u16(), error.error));
    }

    assert_eq!(
        refusals,
        [
            (400, codes::INVALID_REQUEST.to_owned()),
            (400, codes::INVALID_REQUEST.to_owned()),
            (400, codes::WRONG_CARD_PIN.to_owned()),
            (400, codes::CREDIT_CARD_REFUSED.to_owned()),
            (404, codes::NOT_FOUND.to_owned()),
            (404, codes::NOT_FOUND.to_owned()),
        ]
    );
    // None of it blocked the account.
    approved_login(&server.rp(), &e).await;
}

/// The block page's counter form.
fn counter_block(code: Option<&str>, token: Option<&str>) -> BlockMyKey {
    BlockMyKey {
        source: Some(IdentitySource::Counter),
        activation_code: code.map(str::to_owned),
        activation_token: token.map(str::to_owned),
        ..BlockMyKey::default()
    }
}

#[tokio::test]
async fn the_block_page_needs_both_the_activation_link_and_its_code() {
    let server = server().await;
    let e = enroll(&server, "+32470000554").await;
    let stranger = citizen(&server).await;
    let issued = counter_issue(&server, &e.citizen).await;
    let theirs = counter_issue(&server, &stranger).await;
    let cases = [
        counter_block(Some(&issued.code), None),
        counter_block(None, Some(&issued.token)),
        counter_block(Some(other_code(&issued.code)), Some(&issued.token)),
        counter_block(Some(&issued.code), Some(&theirs.token)),
    ];

    let mut refusals = Vec::new();
    for form in &cases {
        let (status, error) = err(block(&server, form).await).await;
        refusals.push((status.as_u16(), error.error));
    }

    assert_eq!(
        refusals,
        [
            (400, codes::INVALID_REQUEST.to_owned()),
            (400, codes::INVALID_REQUEST.to_owned()),
            (400, codes::WRONG_IDENTITY_CODE.to_owned()),
            (400, codes::WRONG_IDENTITY_CODE.to_owned()),
        ]
    );
    approved_login(&server.rp(), &e).await;
}

#[tokio::test]
async fn wrong_codes_on_the_block_page_block_the_activation_code() {
    let server = server_with(Policy {
        identity_code_max_failures: 3,
        ..Policy::default()
    })
    .await;
    let e = enroll(&server, "+32470000555").await;
    let issued = counter_issue(&server, &e.citizen).await;
    let wrong = counter_block(Some(other_code(&issued.code)), Some(&issued.token));

    let mut left = Vec::new();
    for _ in 0..3 {
        let (_, error) = err(block(&server, &wrong).await).await;
        assert_eq!(error.error, codes::WRONG_IDENTITY_CODE);
        left.push(error.attempts_left);
    }
    let right = counter_block(Some(&issued.code), Some(&issued.token));
    let (status, blocked) = err(block(&server, &right).await).await;

    assert_eq!(left, [Some(2), Some(1), Some(0)]);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(blocked.error, codes::IDENTITY_CODE_BLOCKED);
    approved_login(&server.rp(), &e).await;
}
