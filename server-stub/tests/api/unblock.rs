//! An unblock from the same phone over HTTP: the phone makes a new device key and names the
//! device it replaces, with that device's signature over both thumbprints. The named device
//! must be one of the proven person's phones, and it is revoked when the unblock completes, so
//! that a copy of the phone's files made before (it holds the old device key) is shut out.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::{Method, StatusCode};
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::{
    self, EnrollmentCompleted, EnrollmentStarted, ReplacedDevice, ResponseAccepted, SmsSent,
    SmsVerified, StartEnrollment, codes,
};
use sleutel_protocol::identity::{Bank, IdentitySource};
use sleutel_protocol::jose::{self, Es256Signer, Jwk};
use sleutel_server::Policy;

use crate::common::*;
use crate::device_life::pin_change;
use crate::sources::{block_by_wrong_codes, events};

/// The replacement of `old`'s device by `new`'s, signed by `signer`.
fn replacement(old: &Phone, signer: &SigningKey, new: &Phone) -> ReplacedDevice {
    let Ok(replaced) = ReplacedDevice::sign(old.jwk.clone(), signer, &new.jwk.thumbprint());
    replaced
}

/// `phone` starts a bank activation of `number` that replaces the device `replaces`.
async fn start_replacing(
    phone: &Phone,
    number: &str,
    replaces: Option<ReplacedDevice>,
) -> reqwest::Response {
    phone
        .post(
            api::PATH_ENROLLMENTS,
            &StartEnrollment {
                phone_number: number.into(),
                source: IdentitySource::Bank,
                bank: Some(Bank::Kbc),
                replaces,
            },
        )
        .await
}

/// `phone` proves `citizen`'s identity at the bank for the enrollment `started`.
async fn submit_identity_of(
    server: &InProcessServer,
    phone: &Phone,
    started: &EnrollmentStarted,
    citizen: &api::sim::Citizen,
) -> reqwest::Response {
    let link = server
        .sim()
        .bank_authorize(
            started.handoff_url.as_deref().unwrap(),
            &citizen.debit_card.number,
            &citizen.debit_card.pin,
        )
        .await
        .unwrap();
    phone
        .submit_identity(&started.enrollment_id, &token_in(&link))
        .await
}

/// `old`'s phone unblocks its account as the app does: a new device key replacing `old`'s,
/// the bank, the SMS code and a new PIN key.
pub async fn unblock_with_a_new_key(server: &InProcessServer, old: &Enrolled) -> Enrolled {
    let phone = Phone::new(&server.url());
    let replaces = replacement(&old.phone, &old.phone.device, &phone);
    let started: EnrollmentStarted =
        ok(start_replacing(&phone, &old.number, Some(replaces)).await).await;
    let _: SmsSent = ok(submit_identity_of(server, &phone, &started, &old.citizen).await).await;
    let sms = server.sim().last_sms_code(&old.number).await.unwrap();
    let _: SmsVerified = ok(phone.verify_sms(&started.enrollment_id, &sms).await).await;
    let pin = SigningKey::generate();
    let completed: EnrollmentCompleted = ok(phone.complete(&started, &pin).await).await;
    Enrolled {
        phone,
        pin,
        citizen: old.citizen.clone(),
        number: old.number.clone(),
        started,
        completed,
    }
}

/// The error code of `response`, which must be a refusal.
async fn code_of(response: reqwest::Response) -> String {
    err(response).await.1.error
}

/// Asserts that `e`'s device key is refused as revoked on every call a device makes, each one
/// well formed and signed with `e`'s keys (the request `request` with its JWS `jws` is pending).
async fn assert_revoked_everywhere(e: &Enrolled, request: &str, jws: &str) {
    let action = e.verify(jws);
    let phone = &e.phone;
    let bio = SigningKey::generate();
    let bio_jwk = Jwk::from_verifying_key(bio.verifying_key());
    let bio_message = api::biometric_enable_message(&phone.jwk.thumbprint(), &bio_jwk.thumbprint());
    let sign = |key: &SigningKey| jose::b64(key.sign_es256(bio_message.as_bytes()).unwrap());
    let calls = [
        ("list", phone.get(api::PATH_REQUESTS).await),
        ("fetch", phone.get(&api::path_request(request)).await),
        (
            "approve",
            e.answer(&action, &e.approval(&action, jws, &e.pin)).await,
        ),
        ("decline", e.answer(&action, &e.decline(&action, jws)).await),
        (
            "change code",
            phone
                .post(
                    api::PATH_DEVICE_PIN,
                    &pin_change(e, &e.pin, &SigningKey::generate()),
                )
                .await,
        ),
        (
            "enable biometrics",
            phone
                .post(
                    api::PATH_DEVICE_BIOMETRIC,
                    &api::RegisterBiometricKey {
                        pin_signature: sign(&e.pin),
                        biometric_pop: sign(&bio),
                        biometric_key: bio_jwk,
                    },
                )
                .await,
        ),
        (
            "disable biometrics",
            phone
                .send(Method::DELETE, api::PATH_DEVICE_BIOMETRIC, Vec::new())
                .await,
        ),
        (
            "deactivate",
            phone
                .send(Method::POST, api::PATH_DEVICE_DEACTIVATE, Vec::new())
                .await,
        ),
    ];
    for (what, response) in calls {
        assert_eq!(code_of(response).await, codes::DEVICE_REVOKED, "{what}");
    }
}

// --- the replacement ----------------------------------------------------------------------------

#[tokio::test]
async fn an_unblock_revokes_the_device_it_replaces_and_its_key_is_refused_on_every_call() {
    let server = server().await;
    let old = enroll(&server, "+32470000950").await;
    block_by_wrong_codes(&server, &old).await;

    let new = unblock_with_a_new_key(&server, &old).await;
    server.rp().start_login(&old.number).await.unwrap();
    let (request, jws) = new.the_request().await;

    assert_eq!(new.completed.account_id, old.completed.account_id);
    assert_revoked_everywhere(&old, &request.jti, &jws).await;
    let accepted: ResponseAccepted = ok(new
        .answer(&request, &new.approval(&request, &jws, &new.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
    let history = events(&server, &old.completed.account_id);
    assert!(
        history
            .iter()
            .any(|(event, detail)| event == "device_revoked" && detail.contains("unblock")),
        "{history:?}"
    );
}

#[tokio::test]
async fn with_two_phones_an_unblock_revokes_only_the_device_it_replaces() {
    let server = server_with(Policy {
        max_devices: 2,
        ..Policy::default()
    })
    .await;
    // The other phone is the older one: a newest-first limit alone would revoke it.
    let other = enroll(&server, "+32470000951").await;
    let this = enroll_again(&server, "+32470000952", &other.citizen).await;
    block_by_wrong_codes(&server, &this).await;

    let new = unblock_with_a_new_key(&server, &this).await;
    server.rp().start_login(&this.number).await.unwrap();
    let (request, jws) = new.the_request().await;

    let (_, listed) = err(this.phone.get(api::PATH_REQUESTS).await).await;
    assert_eq!(listed.error, codes::DEVICE_REVOKED);
    let others: api::PendingRequests = ok(other.phone.get(api::PATH_REQUESTS).await).await;
    assert_eq!(others.requests, vec![jws.clone()]);
    let accepted: ResponseAccepted = ok(other
        .answer(&request, &other.approval(&request, &jws, &other.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
    let revoked: i64 = server
        .sql_value(
            "SELECT count(*) FROM devices WHERE account_id = ?1 AND revoked_at IS NOT NULL",
            &[(&this.completed.account_id).into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(revoked, 1);
}

// --- refusals at the start ----------------------------------------------------------------------

#[tokio::test]
async fn a_replacement_not_signed_by_the_named_device_is_refused_and_nothing_is_written() {
    let server = server().await;
    let victim = enroll(&server, "+32470000953").await;
    let phone = Phone::new(&server.url());
    let enrollments = server.rows("enrollments").unwrap();

    // Naming a device without its key: the only signature at hand is the new key's own.
    let forged = replacement(&victim.phone, &phone.device, &phone);
    let (status, error) = err(start_replacing(&phone, &victim.number, Some(forged)).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
    assert_eq!(server.rows("enrollments").unwrap(), enrollments);
    server.rp().start_login(&victim.number).await.unwrap();
    assert!(
        victim
            .phone
            .get(api::PATH_REQUESTS)
            .await
            .status()
            .is_success()
    );
}

#[tokio::test]
async fn a_replacement_signed_for_another_new_key_is_refused() {
    let server = server().await;
    let old = enroll(&server, "+32470000954").await;
    let (intended, other) = (Phone::new(&server.url()), Phone::new(&server.url()));
    let enrollments = server.rows("enrollments").unwrap();

    let replayed = replacement(&old.phone, &old.phone.device, &intended);
    let (status, error) = err(start_replacing(&other, &old.number, Some(replayed)).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
    assert_eq!(server.rows("enrollments").unwrap(), enrollments);
}

#[tokio::test]
async fn a_malformed_replacement_is_refused() {
    let server = server().await;
    let old = enroll(&server, "+32470000955").await;
    let phone = Phone::new(&server.url());
    let good = replacement(&old.phone, &old.phone.device, &phone);
    let mut off_curve = good.clone();
    off_curve.device_key.y = off_curve.device_key.x.clone();
    let mut not_base64 = good.clone();
    not_base64.signature = "not base64!".into();
    let itself = replacement(&phone, &phone.device, &phone);
    let enrollments = server.rows("enrollments").unwrap();

    let mut answers = Vec::new();
    for replaces in [off_curve, not_base64, itself] {
        let (status, error) = err(start_replacing(&phone, &old.number, Some(replaces)).await).await;
        answers.push((status, error.error));
    }
    let mut extra = serde_json::to_value(StartEnrollment {
        phone_number: old.number.clone(),
        source: IdentitySource::Bank,
        bank: Some(Bank::Kbc),
        replaces: Some(good),
    })
    .unwrap();
    extra["replaces"]["kid"] = "x".into();
    let (status, error) = err(phone.post(api::PATH_ENROLLMENTS, &extra).await).await;
    answers.push((status, error.error));

    assert_eq!(
        answers,
        vec![(StatusCode::BAD_REQUEST, codes::INVALID_REQUEST.to_owned()); 4]
    );
    assert_eq!(server.rows("enrollments").unwrap(), enrollments);
}

// --- refusals at the identity -------------------------------------------------------------------

#[tokio::test]
async fn an_unblock_naming_a_device_of_another_persons_account_is_refused() {
    let server = server().await;
    // The attacker copied the victim's phone files (device key) and proves their own identity.
    let victim = enroll(&server, "+32470000956").await;
    let attacker = server
        .sim()
        .create_citizen(&api::sim::NewCitizen::default())
        .await
        .unwrap();
    let phone = Phone::new(&server.url());
    let replaces = replacement(&victim.phone, &victim.phone.device, &phone);
    let started: EnrollmentStarted =
        ok(start_replacing(&phone, "+32470000957", Some(replaces)).await).await;

    let (status, error) = err(submit_identity_of(&server, &phone, &started, &attacker).await).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::IDENTITY_REFUSED);
    let step: String = server
        .sql_value(
            "SELECT step FROM enrollments WHERE id = ?1",
            &[(&started.enrollment_id).into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(step, "identity");
    assert!(
        server
            .sim()
            .sms_messages("+32470000957")
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    server.rp().start_login(&victim.number).await.unwrap();
    let (request, jws) = victim.the_request().await;
    let accepted: ResponseAccepted = ok(victim
        .answer(&request, &victim.approval(&request, &jws, &victim.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
}

#[tokio::test]
async fn an_unblock_naming_a_device_the_server_does_not_know_is_refused() {
    let server = server().await;
    let person = enroll(&server, "+32470000958").await;
    let (unknown, phone) = (Phone::new(&server.url()), Phone::new(&server.url()));
    let replaces = replacement(&unknown, &unknown.device, &phone);
    let started: EnrollmentStarted =
        ok(start_replacing(&phone, &person.number, Some(replaces)).await).await;

    let (status, error) =
        err(submit_identity_of(&server, &phone, &started, &person.citizen).await).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::IDENTITY_REFUSED);
}
