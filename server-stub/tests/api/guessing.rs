//! Guessing the person's code: every endpoint that compares something derived from the 5-digit
//! code counts a wrong one, and three wrong ones block the account. A copy of the phone's files
//! (device key, salt, enrollment id and nonce) lets an attacker derive the PIN key of any code
//! and prove possession of it, so a comparison that did not count would test codes for free.
//! The block page's card PINs are counted as well.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::sim::BlockMyKey;
use sleutel_protocol::api::{self, ChangePin, RegisterBiometricKey, codes};
use sleutel_protocol::clock::now;
use sleutel_protocol::identity::IdentitySource;
use sleutel_protocol::jose::{self, Es256Signer, Jwk};
use sleutel_server::Policy;

use crate::common::*;
use crate::sources::block_by_wrong_codes;

fn sign(key: &SigningKey, message: &str) -> String {
    jose::b64(key.sign_es256(message.as_bytes()).unwrap())
}

/// `(status, error, attempts_left)` of a refusal.
async fn refusal(response: reqwest::Response) -> (u16, String, Option<u32>) {
    let (status, error) = err(response).await;
    (status.as_u16(), error.error, error.attempts_left)
}

/// What three wrong guesses must be answered: two countdowns, then the block.
fn wrong_wrong_blocked() -> [(u16, String, Option<u32>); 3] {
    [
        (400, codes::WRONG_PIN.to_owned(), Some(2)),
        (400, codes::WRONG_PIN.to_owned(), Some(1)),
        (403, codes::ACCOUNT_BLOCKED.to_owned(), Some(0)),
    ]
}

/// Moves the expiry of `e`'s enrollment into the past, as if the phone came back late.
fn expire_enrollment(server: &InProcessServer, e: &Enrolled) {
    server
        .sql_execute(
            "UPDATE enrollments SET expires_at = expires_at - 100000 WHERE id = ?1",
            &[(&e.started.enrollment_id).into()],
        )
        .unwrap();
}

// --- the enrollment's completion, repeated ------------------------------------------------------

#[tokio::test]
async fn a_repeated_completion_with_another_pin_key_counts_as_a_wrong_code() {
    let server = server().await;
    let e = enroll(&server, "+32470000901").await;

    let answer = refusal(e.phone.complete(&e.started, &SigningKey::generate()).await).await;

    assert_eq!(answer, (400, codes::WRONG_PIN.to_owned(), Some(2)));
}

#[tokio::test]
async fn three_repeated_completions_with_guessed_pin_keys_block_the_account() {
    let server = server().await;
    let e = enroll(&server, "+32470000902").await;

    let mut answers = Vec::new();
    for _ in 0..3 {
        let guess = SigningKey::generate();
        answers.push(refusal(e.phone.complete(&e.started, &guess).await).await);
    }
    let right = refusal(e.phone.complete(&e.started, &e.pin).await).await;

    assert_eq!(answers, wrong_wrong_blocked());
    assert_eq!(right.1, codes::ACCOUNT_BLOCKED);
    assert_blocked(&server, &e).await;
}

#[tokio::test]
async fn a_repeated_completion_with_the_right_key_clears_the_wrong_codes() {
    let server = server().await;
    let e = enroll(&server, "+32470000903").await;
    let _ = refusal(e.phone.complete(&e.started, &SigningKey::generate()).await).await;

    let again: api::EnrollmentCompleted = ok(e.phone.complete(&e.started, &e.pin).await).await;
    let next = refusal(e.phone.complete(&e.started, &SigningKey::generate()).await).await;

    assert_eq!(again.account_id, e.completed.account_id);
    assert_eq!(next.2, Some(2));
}

#[tokio::test]
async fn after_the_enrollments_lifetime_a_repeated_completion_compares_nothing() {
    let server = server().await;
    let e = enroll(&server, "+32470000904").await;
    expire_enrollment(&server, &e);

    let guessed = refusal(e.phone.complete(&e.started, &SigningKey::generate()).await).await;
    let right = refusal(e.phone.complete(&e.started, &e.pin).await).await;

    // The same answer for the right key and a wrong one, and nothing counted.
    assert_eq!(guessed, (409, codes::WRONG_STEP.to_owned(), None));
    assert_eq!(right, guessed);
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let wrong = SigningKey::generate();
    let (_, error) = err(e
        .answer(&request, &e.approval(&request, &jws, &wrong))
        .await)
    .await;
    assert_eq!(error.attempts_left, Some(2));
}

#[tokio::test]
async fn a_repeated_unblock_completion_with_a_guessed_pin_key_counts_as_a_wrong_code() {
    let server = server().await;
    let e = enroll(&server, "+32470000905").await;
    block_by_wrong_codes(&server, &e).await;
    // The person unblocks from the same phone: a new identity proof, SMS and a new code.
    let (started, token) = identity_token(&server, &e.phone, &e.number, &e.citizen).await;
    let _: api::SmsSent = ok(e
        .phone
        .submit_identity(&started.enrollment_id, &token)
        .await)
    .await;
    let sms = server.sim().last_sms_code(&e.number).await.unwrap();
    let _: api::SmsVerified = ok(e.phone.verify_sms(&started.enrollment_id, &sms).await).await;
    let new_pin = SigningKey::generate();
    let _: api::EnrollmentCompleted = ok(e.phone.complete(&started, &new_pin).await).await;

    let mut answers = Vec::new();
    for _ in 0..3 {
        let guess = SigningKey::generate();
        answers.push(refusal(e.phone.complete(&started, &guess).await).await);
    }

    assert_eq!(answers, wrong_wrong_blocked());
}

// --- the code change and the biometric key -----------------------------------------------------

/// A code change to `new` that whoever holds `guess` can make: the new key is the guess itself
/// (what a repeat of an applied change looks like), and the guess signs for the current code.
fn guessed_code_change(e: &Enrolled, guess: &SigningKey) -> ChangePin {
    let jwk = Jwk::from_verifying_key(guess.verifying_key());
    let message = api::pin_change_message(&e.phone.jwk.thumbprint(), &jwk.thumbprint());
    ChangePin {
        new_pin_key: jwk,
        current_pin_signature: sign(guess, &message),
        new_pin_pop: sign(guess, &message),
    }
}

#[tokio::test]
async fn three_code_changes_with_a_guessed_code_block_the_account() {
    let server = server().await;
    let e = enroll(&server, "+32470000906").await;

    let mut answers = Vec::new();
    for _ in 0..3 {
        let body = guessed_code_change(&e, &SigningKey::generate());
        answers.push(refusal(e.phone.post(api::PATH_DEVICE_PIN, &body).await).await);
    }

    assert_eq!(answers, wrong_wrong_blocked());
    assert_blocked(&server, &e).await;
}

#[tokio::test]
async fn three_biometric_registrations_with_a_guessed_code_block_the_account() {
    let server = server().await;
    let e = enroll(&server, "+32470000907").await;

    let mut answers = Vec::new();
    for _ in 0..3 {
        let (guess, bio) = (SigningKey::generate(), SigningKey::generate());
        let bio_jwk = Jwk::from_verifying_key(bio.verifying_key());
        let message =
            api::biometric_enable_message(&e.phone.jwk.thumbprint(), &bio_jwk.thumbprint());
        let body = RegisterBiometricKey {
            biometric_key: bio_jwk,
            pin_signature: sign(&guess, &message),
            biometric_pop: sign(&bio, &message),
        };
        answers.push(refusal(e.phone.post(api::PATH_DEVICE_BIOMETRIC, &body).await).await);
    }

    assert_eq!(answers, wrong_wrong_blocked());
    assert_blocked(&server, &e).await;
}

#[tokio::test]
async fn three_approvals_with_a_guessed_code_block_the_account() {
    let server = server().await;
    let e = enroll(&server, "+32470000908").await;
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;

    let mut answers = Vec::new();
    for _ in 0..3 {
        let guess = SigningKey::generate();
        let response = e.approval(&request, &jws, &guess);
        answers.push(refusal(e.answer(&request, &response).await).await);
    }

    assert_eq!(answers, wrong_wrong_blocked());
    assert_blocked(&server, &e).await;
}

// --- the block page ------------------------------------------------------------------------------

async fn block_page(server: &InProcessServer, form: &BlockMyKey) -> reqwest::Response {
    server
        .sim()
        .post_raw(api::sim::PATH_BLOCK, form)
        .await
        .unwrap()
}

/// Three wrong PINs for the card `form` names, then its right PIN `right`.
async fn three_wrong_pins_then_the_right_one(
    server: &InProcessServer,
    form: BlockMyKey,
    right: &str,
) -> Vec<(u16, String, Option<u32>)> {
    let wrong = if right == "0000" { "1111" } else { "0000" };
    let mut answers = Vec::new();
    for pin in [wrong, wrong, wrong, right] {
        let form = BlockMyKey {
            card_pin: Some(pin.into()),
            ..form.clone()
        };
        answers.push(refusal(block_page(server, &form).await).await);
    }
    answers
}

fn card_countdown() -> Vec<(u16, String, Option<u32>)> {
    vec![
        (400, codes::WRONG_CARD_PIN.to_owned(), Some(2)),
        (400, codes::WRONG_CARD_PIN.to_owned(), Some(1)),
        (403, codes::CARD_BLOCKED.to_owned(), Some(0)),
        (403, codes::CARD_BLOCKED.to_owned(), Some(0)),
    ]
}

#[tokio::test]
async fn three_wrong_bank_card_pins_on_the_block_page_block_the_card() {
    let server = server().await;
    let e = enroll(&server, "+32470000909").await;
    let form = BlockMyKey {
        source: Some(IdentitySource::Bank),
        card_number: Some(e.citizen.debit_card.number.clone()),
        ..BlockMyKey::default()
    };

    let answers =
        three_wrong_pins_then_the_right_one(&server, form, &e.citizen.debit_card.pin).await;

    assert_eq!(answers, card_countdown());
    approved_login(&server.rp(), &e).await;
}

#[tokio::test]
async fn three_wrong_eid_pins_on_the_block_page_block_the_card() {
    let server = server().await;
    let e = enroll(&server, "+32470000910").await;
    let form = BlockMyKey {
        source: Some(IdentitySource::Eid),
        card_serial: Some(e.citizen.eid_card.serial.clone()),
        ..BlockMyKey::default()
    };

    let answers = three_wrong_pins_then_the_right_one(&server, form, &e.citizen.eid_card.pin).await;

    assert_eq!(answers, card_countdown());
    approved_login(&server.rp(), &e).await;
}

// --- a copy of the person's own phone -----------------------------------------------------------

#[tokio::test]
async fn the_persons_right_codes_give_a_copy_of_the_phone_no_fresh_guesses_beyond_a_month() {
    // A copy of the phone shares its device key: the consecutive counts, which the person's right
    // code clears, would give it two guesses after every use of the phone. The device's wrong
    // codes of the last 30 days count all the same, and block at their limit.
    let server = server_with(Policy {
        max_wrong_codes_per_device_per_month: 5,
        ..Policy::default()
    })
    .await;
    let e = enroll(&server, "+32470000911").await;
    let mut answers = Vec::new();
    for _ in 0..2 {
        for _ in 0..2 {
            let body = guessed_code_change(&e, &SigningKey::generate());
            answers.push(refusal(e.phone.post(api::PATH_DEVICE_PIN, &body).await).await);
        }
        approved_login(&server.rp(), &e).await;
    }

    let body = guessed_code_change(&e, &SigningKey::generate());
    let fifth = refusal(e.phone.post(api::PATH_DEVICE_PIN, &body).await).await;

    let left: Vec<Option<u32>> = answers.iter().map(|answer| answer.2).collect();
    assert_eq!(left, [Some(2), Some(1), Some(2), Some(1)]);
    assert_eq!(fifth, (403, codes::ACCOUNT_BLOCKED.to_owned(), Some(0)));
    let wrong_codes = crate::sources::events(&server, &e.completed.account_id)
        .into_iter()
        .filter(|(event, _)| event == "wrong_code")
        .count();
    assert_eq!(wrong_codes, 5);
}

#[tokio::test]
async fn a_completion_late_in_the_lifetime_can_still_be_repeated_for_minutes() {
    let server = server().await;
    let at = at_keys(&server, "+32470000912").await;
    // The person chooses the code in the enrollment's last seconds.
    server
        .sql_execute(
            "UPDATE enrollments SET expires_at = ?2 WHERE id = ?1",
            &[(&at.started.enrollment_id).into(), (now() + 2).into()],
        )
        .unwrap();
    let pin = SigningKey::generate();
    let first: api::EnrollmentCompleted = ok(at.phone.complete(&at.started, &pin).await).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let again: api::EnrollmentCompleted = ok(at.phone.complete(&at.started, &pin).await).await;

    assert_eq!(again, first);
}
