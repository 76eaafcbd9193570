//! Rate limits against flooding and guessing: enrollment starts (per device key, per source
//! address, overall) that leave nothing behind when refused, proofs of unknown keys that are not
//! remembered, SMS texts per number, SMS codes whose tries a resend does not renew and that are
//! counted per person and number and per number, and failed client authentications counted per
//! address (a limit) and per client id (an alert).

use reqwest::StatusCode;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::{self, StartEnrollment, codes};
use sleutel_protocol::identity::{Bank, IdentitySource};
use sleutel_server::Policy;

use crate::common::*;

fn start_body(number: &str) -> StartEnrollment {
    StartEnrollment {
        phone_number: number.into(),
        source: IdentitySource::Bank,
        bank: Some(Bank::Kbc),
        replaces: None,
    }
}

/// Starts an enrollment of `phone` for `number`; returns the status and error code, if any.
async fn try_start(phone: &Phone, number: &str) -> Result<(), (StatusCode, api::ApiError)> {
    let response = phone.post(api::PATH_ENROLLMENTS, &start_body(number)).await;
    if response.status().is_success() {
        return Ok(());
    }
    Err(err(response).await)
}

fn proofs_of(server: &InProcessServer, phone: &Phone) -> i64 {
    server
        .sql_value(
            "SELECT count(*) FROM proof_jtis WHERE jkt = ?1",
            &[phone.jwk.thumbprint().into()],
        )
        .unwrap()
        .unwrap()
}

// --- enrollment starts ----------------------------------------------------------------------------

#[tokio::test]
async fn starts_from_one_address_beyond_the_per_minute_limit_are_refused_and_leave_nothing() {
    let server = server_with(Policy {
        max_enrollment_starts_per_source_per_minute: 2,
        ..Policy::default()
    })
    .await;
    for n in 0..2 {
        try_start(&Phone::new(&server.url()), &format!("+3247000100{n}"))
            .await
            .unwrap();
    }
    let refused = Phone::new(&server.url());

    let (status, error) = try_start(&refused, "+32470001009").await.unwrap_err();

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::RATE_LIMITED);
    assert!(error.retry_after.is_some_and(|secs| secs > 0 && secs <= 60));
    assert_eq!(server.rows("enrollments").unwrap(), 2);
    assert_eq!(proofs_of(&server, &refused), 0);
}

#[tokio::test]
async fn starts_for_one_number_alone_hold_up_nobody() {
    // A bare start sends nothing to the number, so a stranger who keeps starting enrollments
    // for someone's number must not keep its owner from activating.
    let server = server().await;
    let number = "+32470001005";
    for _ in 0..12 {
        try_start(&Phone::new(&server.url()), number).await.unwrap();
    }

    enroll(&server, number).await;
}

#[tokio::test]
async fn starts_with_one_device_key_beyond_the_hourly_limit_are_refused() {
    let server = server_with(Policy {
        max_enrollment_starts_per_key_per_hour: 2,
        ..Policy::default()
    })
    .await;
    let phone = Phone::new(&server.url());
    try_start(&phone, "+32470001011").await.unwrap();
    try_start(&phone, "+32470001012").await.unwrap();

    let (status, error) = try_start(&phone, "+32470001013").await.unwrap_err();

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::RATE_LIMITED);
    try_start(&Phone::new(&server.url()), "+32470001013")
        .await
        .unwrap();
}

#[tokio::test]
async fn starts_beyond_the_servers_rate_are_refused_whatever_the_key_and_number() {
    let server = server_with(Policy {
        max_enrollment_starts_per_minute: 3,
        ..Policy::default()
    })
    .await;
    for n in 0..3 {
        try_start(&Phone::new(&server.url()), &format!("+3247000102{n}"))
            .await
            .unwrap();
    }

    let (status, error) = try_start(&Phone::new(&server.url()), "+32470001029")
        .await
        .unwrap_err();

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::RATE_LIMITED);
    assert_eq!(server.rows("enrollments").unwrap(), 3);
    assert_eq!(server.rows("proof_jtis").unwrap(), 3);
}

#[tokio::test]
async fn a_replayed_start_is_refused_and_starts_nothing() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let body = serde_json::to_vec(&start_body("+32470001031")).unwrap();
    let proof = phone.proof("POST", api::PATH_ENROLLMENTS, &body);
    let first = phone
        .send_with_proof(
            reqwest::Method::POST,
            api::PATH_ENROLLMENTS,
            body.clone(),
            proof.clone(),
        )
        .await;
    assert!(first.status().is_success());

    let (_, error) = err(phone
        .send_with_proof(reqwest::Method::POST, api::PATH_ENROLLMENTS, body, proof)
        .await)
    .await;

    assert_eq!(error.error, codes::PROOF_REPLAYED);
    assert_eq!(server.rows("enrollments").unwrap(), 1);
}

#[tokio::test]
async fn proofs_of_keys_the_server_does_not_know_are_not_remembered() {
    let server = server().await;
    let stranger = Phone::new(&server.url());

    for _ in 0..5 {
        let (status, error) = err(stranger.get(api::PATH_REQUESTS).await).await;
        assert_eq!(
            (status, error.error.as_str()),
            (StatusCode::UNAUTHORIZED, codes::UNKNOWN_DEVICE)
        );
    }

    assert_eq!(server.rows("proof_jtis").unwrap(), 0);
}

#[tokio::test]
async fn proofs_of_an_enrolled_device_are_remembered() {
    let server = server().await;
    let e = enroll(&server, "+32470001041").await;
    let before = proofs_of(&server, &e.phone);

    let _: api::PendingRequests = ok(e.phone.get(api::PATH_REQUESTS).await).await;

    assert_eq!(proofs_of(&server, &e.phone), before + 1);
}

// --- SMS codes ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_resent_sms_code_gives_no_new_tries() {
    let server = server_with(Policy {
        sms_resend_after_secs: 1,
        ..Policy::default()
    })
    .await;
    let number = "+32470001051";
    let at = enroll_to_sms(&server, number).await;
    let id = &at.started.enrollment_id;
    let wrong = |code: String| if code == "000000" { "111111" } else { "000000" }.to_owned();
    let first_code = server.sim().last_sms_code(number).await.unwrap();
    let (_, one) = err(at.phone.verify_sms(id, &wrong(first_code.clone())).await).await;
    let (_, two) = err(at.phone.verify_sms(id, &wrong(first_code)).await).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let _: api::SmsSent = ok(at
        .phone
        .post(&api::path_enrollment_sms_resend(id), &serde_json::json!({}))
        .await)
    .await;
    let second_code = server.sim().last_sms_code(number).await.unwrap();

    let (_, three) = err(at.phone.verify_sms(id, &wrong(second_code.clone())).await).await;
    let (_, after) = err(at.phone.verify_sms(id, &second_code).await).await;

    assert_eq!([one.attempts_left, two.attempts_left], [Some(2), Some(1)]);
    assert_eq!(three.error, codes::TOO_MANY_ATTEMPTS);
    assert_eq!(after.error, codes::TOO_MANY_ATTEMPTS);
}

#[tokio::test]
async fn sms_codes_to_one_number_beyond_the_hourly_limit_are_refused_and_use_nothing() {
    let server = server_with(Policy {
        max_sms_per_number_per_hour: 2,
        ..Policy::default()
    })
    .await;
    let number = "+32470001071";
    enroll_to_sms(&server, number).await;
    enroll_to_sms(&server, number).await;
    let phone = Phone::new(&server.url());
    let person = server
        .sim()
        .create_citizen(&api::sim::NewCitizen::default())
        .await
        .unwrap();
    let (started, token) = identity_token(&server, &phone, number, &person).await;

    let (status, error) = err(phone.submit_identity(&started.enrollment_id, &token).await).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::RATE_LIMITED);
    assert_eq!(
        server
            .sim()
            .sms_messages(number)
            .await
            .unwrap()
            .messages
            .len(),
        2
    );
    // Nothing was used up: the enrollment still waits for its identity.
    let (_, again) = err(phone.submit_identity(&started.enrollment_id, &token).await).await;
    assert_eq!(again.error, codes::RATE_LIMITED);
}

/// Types two wrong SMS codes in a new enrollment of `person` for `number`.
async fn two_wrong_sms_codes(server: &InProcessServer, number: &str, person: &api::sim::Citizen) {
    let at = enroll_to_sms_as(server, number, person.clone()).await;
    let code = server.sim().last_sms_code(number).await.unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        let (_, error) = err(at.phone.verify_sms(&at.started.enrollment_id, wrong).await).await;
        assert_eq!(error.error, codes::WRONG_SMS_CODE);
    }
}

#[tokio::test]
async fn wrong_sms_codes_of_one_person_for_one_number_count_across_enrollments() {
    let server = server_with(Policy {
        max_sms_failures_per_person_and_number_per_day: 4,
        ..Policy::default()
    })
    .await;
    let number = "+32470001061";
    let person = server
        .sim()
        .create_citizen(&api::sim::NewCitizen::default())
        .await
        .unwrap();
    two_wrong_sms_codes(&server, number, &person).await;
    two_wrong_sms_codes(&server, number, &person).await;
    let third = enroll_to_sms_as(&server, number, person.clone()).await;
    let code = server.sim().last_sms_code(number).await.unwrap();

    let (status, error) = err(third
        .phone
        .verify_sms(&third.started.enrollment_id, &code)
        .await)
    .await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::RATE_LIMITED);
    // Another person activating this number is not held up by them.
    enroll(&server, number).await;
}

#[tokio::test]
async fn wrong_sms_codes_of_several_people_for_one_number_meet_the_numbers_own_limit() {
    let server = server_with(Policy {
        max_sms_failures_per_number_per_day: 4,
        ..Policy::default()
    })
    .await;
    let number = "+32470001065";
    for _ in 0..2 {
        let stranger = server
            .sim()
            .create_citizen(&api::sim::NewCitizen::default())
            .await
            .unwrap();
        two_wrong_sms_codes(&server, number, &stranger).await;
    }
    let at = enroll_to_sms(&server, number).await;
    let code = server.sim().last_sms_code(number).await.unwrap();

    let (_, error) = err(at.phone.verify_sms(&at.started.enrollment_id, &code).await).await;

    assert_eq!(error.error, codes::RATE_LIMITED);
    enroll(&server, "+32470001066").await;
}

// --- client authentication -----------------------------------------------------------------------

#[tokio::test]
async fn failed_client_authentications_from_one_address_hold_it_up_even_with_the_right_secret() {
    let server = server_with(Policy {
        max_client_auth_failures_per_source_per_minute: 3,
        ..Policy::default()
    })
    .await;
    let guesser = server.rp().with_credentials("online-overheid", "guess");
    let mut failures = Vec::new();
    for n in 0..3 {
        // The token endpoint and the backchannel endpoint count together.
        let response = if n % 2 == 0 {
            guesser.token_raw("unknown-request").await.unwrap()
        } else {
            guesser
                .backchannel_authorize_raw(&[("scope", "openid")])
                .await
                .unwrap()
        };
        failures.push(err(response).await.1.error);
    }

    let response = server.rp().token_raw("unknown-request").await.unwrap();
    let retry_after = response.headers().get("retry-after").cloned();
    let (status, held) = err(response).await;

    assert_eq!(failures, vec![codes::INVALID_CLIENT.to_owned(); 3]);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(held.error, codes::SLOW_DOWN);
    assert!(retry_after.is_some());
}

#[tokio::test]
async fn failed_authentications_of_one_client_id_hold_up_nobody_and_tell_nothing() {
    // Per client id the failures only alert the operator: a refusal would let anyone hold the
    // relying party up, and answering a registered id otherwise than a made-up one would tell
    // which ids exist.
    let server = server_with(Policy {
        alert_client_auth_failures_per_client_per_minute: 2,
        max_client_auth_failures_per_source_per_minute: 100,
        ..Policy::default()
    })
    .await;
    let registered = server.rp().with_credentials("online-overheid", "guess");
    let made_up = server.rp().with_credentials("made-up", "guess");
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(token_error(&registered, "unknown-request").await);
        answers.push(token_error(&made_up, "unknown-request").await);
    }

    let right = token_error(&server.rp(), "unknown-request").await;

    assert_eq!(answers, vec![codes::INVALID_CLIENT.to_owned(); 8]);
    assert_eq!(right, codes::INVALID_GRANT);
}
