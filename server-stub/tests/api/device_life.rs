//! The phone's own device over HTTP: a code change and the biometric key (both authorised by the
//! current PIN key, a wrong one counted as a wrong code), biometric approvals and their refusal
//! under a code-only request, deactivation, and a revoked device that never answers again.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::{Method, StatusCode};
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::action::ActionRequest;
use sleutel_protocol::api::oidc::IdTokenClaims;
use sleutel_protocol::api::{
    self, ChangePin, CodeChangeOutcome, CodeChangeResolved, DeviceUpdated, RegisterBiometricKey,
    ResolveCodeChange, ResponseAccepted, codes,
};
use sleutel_protocol::jose::{self, Es256Signer, Jwk};
use sleutel_protocol::response::UvMethod;
use sleutel_server::Policy;

use crate::common::*;
use crate::sources::block_by_wrong_codes;

fn sign(key: &SigningKey, message: &str) -> String {
    jose::b64(key.sign_es256(message.as_bytes()).unwrap())
}

/// A code change of `e` to `new`, authorised by `current`.
pub fn pin_change(e: &Enrolled, current: &SigningKey, new: &SigningKey) -> ChangePin {
    let new_jwk = Jwk::from_verifying_key(new.verifying_key());
    let message = api::pin_change_message(&e.phone.jwk.thumbprint(), &new_jwk.thumbprint());
    ChangePin {
        new_pin_key: new_jwk,
        current_pin_signature: sign(current, &message),
        new_pin_pop: sign(new, &message),
    }
}

/// The registration of `bio` as `e`'s biometric key, authorised by `pin`.
fn biometric(e: &Enrolled, pin: &SigningKey, bio: &SigningKey) -> RegisterBiometricKey {
    let bio_jwk = Jwk::from_verifying_key(bio.verifying_key());
    let message = api::biometric_enable_message(&e.phone.jwk.thumbprint(), &bio_jwk.thumbprint());
    RegisterBiometricKey {
        biometric_key: bio_jwk,
        pin_signature: sign(pin, &message),
        biometric_pop: sign(bio, &message),
    }
}

pub async fn change_pin(e: &Enrolled, body: &ChangePin) -> reqwest::Response {
    e.phone.post(api::PATH_DEVICE_PIN, body).await
}

async fn enable_biometric(e: &Enrolled, body: &RegisterBiometricKey) -> reqwest::Response {
    e.phone.post(api::PATH_DEVICE_BIOMETRIC, body).await
}

/// `e` with its PIN key replaced by `pin`.
fn with_pin(e: Enrolled, pin: SigningKey) -> Enrolled {
    Enrolled { pin, ..e }
}

/// A login that accepts a biometric, and the request it put on `e`'s phone.
async fn biometric_login(
    server: &InProcessServer,
    e: &Enrolled,
) -> (String, ActionRequest, String) {
    let started: api::oidc::BackchannelAuthResponse = ok(server
        .rp()
        .backchannel_authorize_raw(&[
            ("scope", "openid"),
            ("login_hint", &e.number),
            ("acr_values", api::oidc::ACR_CODE_OR_BIOMETRIC),
        ])
        .await)
    .await;
    let (request, jws) = e.the_request().await;
    (started.auth_req_id, request, jws)
}

/// The error code of `response`.
async fn refusal(response: reqwest::Response) -> (StatusCode, api::ApiError) {
    err(response).await
}

// --- code change --------------------------------------------------------------------------------

#[tokio::test]
async fn a_code_change_replaces_the_pin_key() {
    let server = server().await;
    let e = enroll(&server, "+32470000601").await;
    let new = SigningKey::generate();

    let updated: DeviceUpdated = ok(change_pin(&e, &pin_change(&e, &e.pin, &new)).await).await;

    assert_eq!(updated.status, "pin_changed");
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let (_, old) = refusal(
        e.answer(&request, &e.approval(&request, &jws, &e.pin))
            .await,
    )
    .await;
    assert_eq!(old.error, codes::WRONG_PIN);
    let accepted: ResponseAccepted =
        ok(e.answer(&request, &e.approval(&request, &jws, &new)).await).await;
    assert_eq!(accepted.status, "approved");
    let history = crate::sources::events(&server, &e.completed.account_id);
    let events: Vec<&str> = history.iter().map(|(event, _)| event.as_str()).collect();
    assert_eq!(events, ["activated", "code_changed", "wrong_code"]);
}

#[tokio::test]
async fn a_code_change_signed_by_a_wrong_code_counts_and_blocks() {
    let server = server().await;
    let e = enroll(&server, "+32470000602").await;
    let wrong = SigningKey::generate();

    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, error) =
            refusal(change_pin(&e, &pin_change(&e, &wrong, &SigningKey::generate())).await).await;
        answers.push((status.as_u16(), error.error, error.attempts_left));
    }
    let (_, right) =
        refusal(change_pin(&e, &pin_change(&e, &e.pin, &SigningKey::generate())).await).await;

    assert_eq!(
        answers,
        [
            (400, codes::WRONG_PIN.to_owned(), Some(2)),
            (400, codes::WRONG_PIN.to_owned(), Some(1)),
            (403, codes::ACCOUNT_BLOCKED.to_owned(), Some(0)),
        ]
    );
    assert_eq!(right.error, codes::ACCOUNT_BLOCKED);
}

#[tokio::test]
async fn a_repeated_code_change_is_answered_again() {
    let server = server().await;
    let e = enroll(&server, "+32470000603").await;
    let new = SigningKey::generate();
    let body = pin_change(&e, &e.pin, &new);
    let _: DeviceUpdated = ok(change_pin(&e, &body).await).await;

    let again: DeviceUpdated = ok(change_pin(&e, &body).await).await;

    assert_eq!(again.status, "pin_changed");
    let e = with_pin(e, new);
    approved_login(&server.rp(), &e).await;
}

#[tokio::test]
async fn a_code_change_without_proof_of_the_new_key_is_invalid_and_not_counted() {
    let server = server().await;
    let e = enroll(&server, "+32470000604").await;
    let mut body = pin_change(&e, &e.pin, &SigningKey::generate());
    body.new_pin_pop = body.current_pin_signature.clone();
    let mut same_as_device = pin_change(&e, &e.pin, &e.phone.device);
    same_as_device.new_pin_key = e.phone.jwk.clone();

    let (status, error) = refusal(change_pin(&e, &body).await).await;
    let (_, device) = refusal(change_pin(&e, &same_as_device).await).await;
    let (_, wrong) = refusal(
        change_pin(
            &e,
            &pin_change(&e, &SigningKey::generate(), &SigningKey::generate()),
        )
        .await,
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
    assert_eq!(device.error, codes::INVALID_REQUEST);
    assert_eq!(
        wrong.attempts_left,
        Some(2),
        "the refusals before were not counted"
    );
}

#[tokio::test]
async fn device_calls_need_a_proof_by_an_enrolled_device() {
    let server = server().await;
    let e = enroll(&server, "+32470000605").await;
    let stranger = Phone::new(&server.url());
    let body = serde_json::to_vec(&pin_change(&e, &e.pin, &SigningKey::generate())).unwrap();
    let bio = serde_json::to_vec(&biometric(&e, &e.pin, &SigningKey::generate())).unwrap();

    let (no_proof_status, no_proof) = refusal(
        server
            .http()
            .post(format!("{}{}", server.url(), api::PATH_DEVICE_PIN))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mut unknown = Vec::new();
    for (method, path, body) in [
        (Method::POST, api::PATH_DEVICE_PIN, body.clone()),
        (Method::POST, api::PATH_DEVICE_BIOMETRIC, bio),
        (Method::DELETE, api::PATH_DEVICE_BIOMETRIC, Vec::new()),
        (Method::POST, api::PATH_DEVICE_DEACTIVATE, Vec::new()),
    ] {
        let (status, error) = refusal(stranger.send(method, path, body).await).await;
        unknown.push((status.as_u16(), error.error));
    }

    assert_eq!(no_proof_status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_proof.error, codes::INVALID_PROOF);
    assert_eq!(unknown, vec![(401, codes::UNKNOWN_DEVICE.to_owned()); 4]);
}

#[tokio::test]
async fn malformed_device_bodies_are_invalid_requests() {
    let server = server().await;
    let e = enroll(&server, "+32470000606").await;

    let mut answers = Vec::new();
    for path in [api::PATH_DEVICE_PIN, api::PATH_DEVICE_BIOMETRIC] {
        for body in [&b"{"[..], br#"{"new_pin_key":1}"#, b"[]"] {
            let (status, error) =
                refusal(e.phone.send(Method::POST, path, body.to_vec()).await).await;
            answers.push((status.as_u16(), error.error));
        }
    }

    assert_eq!(answers, vec![(400, codes::INVALID_REQUEST.to_owned()); 6]);
}

#[tokio::test]
async fn a_blocked_account_can_change_neither_code_nor_biometrics() {
    let server = server().await;
    let e = enroll(&server, "+32470000607").await;
    block_by_wrong_codes(&server, &e).await;

    let (_, pin) =
        refusal(change_pin(&e, &pin_change(&e, &e.pin, &SigningKey::generate())).await).await;
    let (status, bio) =
        refusal(enable_biometric(&e, &biometric(&e, &e.pin, &SigningKey::generate())).await).await;

    assert_eq!(pin.error, codes::ACCOUNT_BLOCKED);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(bio.error, codes::ACCOUNT_BLOCKED);
}

// --- a code change whose answer was lost ---------------------------------------------------------

/// `e` sends the code change `body` with the proof id `id`.
async fn change_pin_as(e: &Enrolled, body: &ChangePin, id: &str) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).unwrap();
    let proof = e
        .phone
        .proof_with_id("POST", api::PATH_DEVICE_PIN, &bytes, id);
    e.phone
        .send_with_proof(Method::POST, api::PATH_DEVICE_PIN, bytes, proof)
        .await
}

/// `e` asks what became of the code change with proof id `id`.
async fn resolve(e: &Enrolled, id: &str) -> reqwest::Response {
    e.phone
        .post(
            api::PATH_DEVICE_PIN_RESOLVE,
            &ResolveCodeChange {
                change_id: id.to_owned(),
            },
        )
        .await
}

async fn outcome(e: &Enrolled, id: &str) -> CodeChangeOutcome {
    let resolved: CodeChangeResolved = ok(resolve(e, id).await).await;
    resolved.outcome
}

/// The events of `e`'s account history, by name.
fn history(server: &InProcessServer, e: &Enrolled) -> Vec<String> {
    crate::sources::events(server, &e.completed.account_id)
        .into_iter()
        .map(|(event, _)| event)
        .collect()
}

#[tokio::test]
async fn an_applied_code_change_is_resolved_as_applied_with_no_code_checked() {
    let server = server().await;
    let e = enroll(&server, "+32470000641").await;
    let new = SigningKey::generate();
    let change_id = jti();
    let _: DeviceUpdated =
        ok(change_pin_as(&e, &pin_change(&e, &e.pin, &new), &change_id).await).await;

    assert_eq!(outcome(&e, &change_id).await, CodeChangeOutcome::Applied);
    assert_eq!(outcome(&e, &change_id).await, CodeChangeOutcome::Applied);
    assert_eq!(history(&server, &e), ["activated", "code_changed"]);
    approved_login(&server.rp(), &with_pin(e, new)).await;
}

#[tokio::test]
async fn a_repeat_of_an_applied_code_change_is_resolved_as_applied_under_its_own_id() {
    let server = server().await;
    let e = enroll(&server, "+32470000648").await;
    let new = SigningKey::generate();
    let body = pin_change(&e, &e.pin, &new);
    let (first, repeat) = (jti(), jti());
    let _: DeviceUpdated = ok(change_pin_as(&e, &body, &first).await).await;

    // The phone lost the first answer and repeats the change with the same key under a new id,
    // and loses that answer too.
    let _: DeviceUpdated = ok(change_pin_as(&e, &body, &repeat).await).await;

    assert_eq!(outcome(&e, &repeat).await, CodeChangeOutcome::Applied);
    assert_eq!(history(&server, &e), ["activated", "code_changed"]);
    approved_login(&server.rp(), &with_pin(e, new)).await;
}

#[tokio::test]
async fn a_code_change_resolved_void_is_refused_when_it_arrives_late_and_counts_nothing() {
    let server = server().await;
    let e = enroll(&server, "+32470000642").await;
    let change_id = jti();
    let body = pin_change(&e, &e.pin, &SigningKey::generate());

    assert_eq!(outcome(&e, &change_id).await, CodeChangeOutcome::Void);
    assert_eq!(outcome(&e, &change_id).await, CodeChangeOutcome::Void);
    let (status, late) = refusal(change_pin_as(&e, &body, &change_id).await).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(late.error, codes::CODE_CHANGE_VOID);
    assert_eq!(history(&server, &e), ["activated"]);
    approved_login(&server.rp(), &e).await;
}

#[tokio::test]
async fn a_void_code_change_signed_with_a_wrong_code_is_refused_uncounted() {
    let server = server().await;
    let e = enroll(&server, "+32470000643").await;
    let change_id = jti();
    let guess = pin_change(&e, &SigningKey::generate(), &SigningKey::generate());
    assert_eq!(outcome(&e, &change_id).await, CodeChangeOutcome::Void);

    let (_, late) = refusal(change_pin_as(&e, &guess, &change_id).await).await;

    assert_eq!(late.error, codes::CODE_CHANGE_VOID);
    assert!(!history(&server, &e).contains(&"wrong_code".to_owned()));
}

#[tokio::test]
async fn the_void_mark_lasts_as_long_as_a_proof_could_be_accepted() {
    let server = server().await;
    let e = enroll(&server, "+32470000644").await;
    let change_id = jti();
    let before = sleutel_protocol::clock::now();
    assert_eq!(outcome(&e, &change_id).await, CodeChangeOutcome::Void);

    let forget_at: i64 = server
        .sql_value(
            "SELECT forget_at FROM void_code_changes WHERE change_id = ?1",
            &[SqlValue::Text(change_id.clone())],
        )
        .unwrap()
        .unwrap();
    let remember = sleutel_protocol::limits::PROOF_REMEMBER_SECS;
    assert!(forget_at >= before + remember && forget_at <= before + remember + 5);
}

#[tokio::test]
async fn a_device_can_have_at_most_eight_code_changes_declared_void_at_once() {
    let server = server().await;
    let e = enroll(&server, "+32470000646").await;
    let made_up: Vec<String> = (0..8).map(|_| jti()).collect();
    for id in &made_up {
        assert_eq!(outcome(&e, id).await, CodeChangeOutcome::Void);
    }

    let (status, ninth) = refusal(resolve(&e, &jti()).await).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(ninth.error, codes::RATE_LIMITED);
    // An id already declared void is still answered, and the limit counts marks, not asks.
    assert_eq!(outcome(&e, &made_up[0]).await, CodeChangeOutcome::Void);
    let marks: i64 = server
        .sql_value("SELECT count(*) FROM void_code_changes", &[])
        .unwrap()
        .unwrap();
    assert_eq!(marks, 8);
    // Another device has a limit of its own.
    let other = enroll(&server, "+32470000647").await;
    assert_eq!(outcome(&other, &jti()).await, CodeChangeOutcome::Void);
}

#[tokio::test]
async fn a_resolve_needs_a_well_formed_id_and_an_active_device_and_answers_a_blocked_one() {
    let server = server().await;
    let e = enroll(&server, "+32470000645").await;
    let (empty, _) = refusal(resolve(&e, "").await).await;
    let (long, _) = refusal(resolve(&e, &"x".repeat(10_000)).await).await;
    assert_eq!(
        (empty, long),
        (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST)
    );

    block_by_wrong_codes(&server, &e).await;
    assert_eq!(outcome(&e, &jti()).await, CodeChangeOutcome::Void);

    let stranger = Phone::new(&server.url());
    let (status, error) = refusal(
        stranger
            .post(
                api::PATH_DEVICE_PIN_RESOLVE,
                &ResolveCodeChange { change_id: jti() },
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::UNKNOWN_DEVICE);
}

// --- biometrics ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_biometric_approval_is_accepted_where_the_relying_party_allows_it() {
    let server = server().await;
    let e = enroll(&server, "+32470000610").await;
    let bio = SigningKey::generate();
    let updated: DeviceUpdated = ok(enable_biometric(&e, &biometric(&e, &e.pin, &bio)).await).await;
    let (auth_req_id, request, jws) = biometric_login(&server, &e).await;

    let accepted: ResponseAccepted = ok(e
        .answer(
            &request,
            &e.approval_by(&request, &jws, UvMethod::Biometric, &bio),
        )
        .await)
    .await;

    assert_eq!(updated.status, "biometric_enabled");
    assert_eq!(accepted.status, "approved");
    let token: api::oidc::TokenResponse = ok(server.rp().token_raw(&auth_req_id).await).await;
    let payload = jose::b64_decode(token.id_token.split('.').nth(1).unwrap(), "id token").unwrap();
    let claims: IdTokenClaims = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims.acr, api::oidc::ACR_CODE_OR_BIOMETRIC);
    assert!(claims.amr.contains(&"user".to_owned()), "{:?}", claims.amr);
}

#[tokio::test]
async fn a_biometric_answer_to_a_code_only_request_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000611").await;
    let bio = SigningKey::generate();
    let _: DeviceUpdated = ok(enable_biometric(&e, &biometric(&e, &e.pin, &bio)).await).await;
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;

    let (status, error) = refusal(
        e.answer(
            &request,
            &e.approval_by(&request, &jws, UvMethod::Biometric, &bio),
        )
        .await,
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::METHOD_NOT_ALLOWED);
    // Still open for the code.
    let accepted: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
}

#[tokio::test]
async fn a_biometric_answer_without_a_registered_key_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000612").await;
    let (_, request, jws) = biometric_login(&server, &e).await;

    let (_, error) = refusal(
        e.answer(
            &request,
            &e.approval_by(&request, &jws, UvMethod::Biometric, &SigningKey::generate()),
        )
        .await,
    )
    .await;

    assert_eq!(error.error, codes::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_biometric_signature_by_another_key_is_invalid_and_not_counted() {
    let server = server().await;
    let e = enroll(&server, "+32470000613").await;
    let _: DeviceUpdated =
        ok(enable_biometric(&e, &biometric(&e, &e.pin, &SigningKey::generate())).await).await;
    let (_, request, jws) = biometric_login(&server, &e).await;

    let (_, error) = refusal(
        e.answer(
            &request,
            &e.approval_by(&request, &jws, UvMethod::Biometric, &SigningKey::generate()),
        )
        .await,
    )
    .await;
    let (_, wrong) = refusal(
        e.answer(
            &request,
            &e.approval(&request, &jws, &SigningKey::generate()),
        )
        .await,
    )
    .await;

    assert_eq!(error.error, codes::INVALID_RESPONSE);
    assert_eq!(wrong.attempts_left, Some(2));
}

#[tokio::test]
async fn enabling_biometrics_with_a_wrong_code_counts_as_a_wrong_code() {
    let server = server().await;
    let e = enroll(&server, "+32470000614").await;

    let (status, error) = refusal(
        enable_biometric(
            &e,
            &biometric(&e, &SigningKey::generate(), &SigningKey::generate()),
        )
        .await,
    )
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::WRONG_PIN);
    assert_eq!(error.attempts_left, Some(2));
}

#[tokio::test]
async fn enabling_biometrics_needs_proof_of_the_biometric_key() {
    let server = server().await;
    let e = enroll(&server, "+32470000615").await;
    let mut body = biometric(&e, &e.pin, &SigningKey::generate());
    body.biometric_pop = body.pin_signature.clone();
    let mut device = biometric(&e, &e.pin, &e.phone.device);
    device.biometric_key = e.phone.jwk.clone();

    let (_, error) = refusal(enable_biometric(&e, &body).await).await;
    let (_, same) = refusal(enable_biometric(&e, &device).await).await;

    assert_eq!(error.error, codes::INVALID_REQUEST);
    assert_eq!(same.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn disabled_biometrics_no_longer_approve() {
    let server = server().await;
    let e = enroll(&server, "+32470000616").await;
    let bio = SigningKey::generate();
    let _: DeviceUpdated = ok(enable_biometric(&e, &biometric(&e, &e.pin, &bio)).await).await;

    let first: DeviceUpdated = ok(e
        .phone
        .send(Method::DELETE, api::PATH_DEVICE_BIOMETRIC, Vec::new())
        .await)
    .await;
    let again: DeviceUpdated = ok(e
        .phone
        .send(Method::DELETE, api::PATH_DEVICE_BIOMETRIC, Vec::new())
        .await)
    .await;

    assert_eq!(first.status, "biometric_disabled");
    assert_eq!(again.status, "biometric_disabled");
    let (_, request, jws) = biometric_login(&server, &e).await;
    let (_, error) = refusal(
        e.answer(
            &request,
            &e.approval_by(&request, &jws, UvMethod::Biometric, &bio),
        )
        .await,
    )
    .await;
    assert_eq!(error.error, codes::METHOD_NOT_ALLOWED);
    let history: Vec<String> = crate::sources::events(&server, &e.completed.account_id)
        .into_iter()
        .map(|(event, _)| event)
        .collect();
    assert_eq!(
        history,
        ["activated", "biometric_enabled", "biometric_disabled"]
    );
}

#[tokio::test]
async fn a_code_change_keeps_the_biometric_key() {
    let server = server().await;
    let e = enroll(&server, "+32470000617").await;
    let bio = SigningKey::generate();
    let _: DeviceUpdated = ok(enable_biometric(&e, &biometric(&e, &e.pin, &bio)).await).await;
    let _: DeviceUpdated =
        ok(change_pin(&e, &pin_change(&e, &e.pin, &SigningKey::generate())).await).await;
    let (_, request, jws) = biometric_login(&server, &e).await;

    let accepted: ResponseAccepted = ok(e
        .answer(
            &request,
            &e.approval_by(&request, &jws, UvMethod::Biometric, &bio),
        )
        .await)
    .await;

    assert_eq!(accepted.status, "approved");
}

// --- deactivation and revocation ----------------------------------------------------------------

#[tokio::test]
async fn a_deactivated_phone_never_answers_again() {
    let server = server().await;
    let e = enroll(&server, "+32470000620").await;

    let updated: DeviceUpdated = ok(e
        .phone
        .send(Method::POST, api::PATH_DEVICE_DEACTIVATE, Vec::new())
        .await)
    .await;

    assert_eq!(updated.status, "deactivated");
    assert_revoked_everywhere(&e).await;
    let history = crate::sources::events(&server, &e.completed.account_id);
    assert_eq!(history.last().unwrap().0, "deactivated");
}

#[tokio::test]
async fn a_phone_replaced_by_a_new_activation_never_answers_again() {
    let server = server().await;
    let old = enroll(&server, "+32470000621").await;
    server.rp().start_login(&old.number).await.unwrap();
    let (request, jws) = old.the_request().await;

    let new = enroll_again(&server, "+32470000622", &old.citizen).await;

    let (status, error) = refusal(
        old.answer(&request, &old.approval(&request, &jws, &old.pin))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::DEVICE_REVOKED);
    assert_revoked_everywhere(&old).await;
    // The open request is the person's, and the new phone answers it.
    let accepted: ResponseAccepted = ok(new
        .answer(&request, &new.approval(&request, &jws, &new.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
    let history: Vec<String> = crate::sources::events(&server, &old.completed.account_id)
        .into_iter()
        .map(|(event, _)| event)
        .collect();
    assert_eq!(history, ["activated", "reactivated", "device_revoked"]);
}

/// Every call of `e`'s device is refused with `device_revoked`.
async fn assert_revoked_everywhere(e: &Enrolled) {
    let change = serde_json::to_vec(&pin_change(e, &e.pin, &SigningKey::generate())).unwrap();
    let bio = serde_json::to_vec(&biometric(e, &e.pin, &SigningKey::generate())).unwrap();
    let mut answers = Vec::new();
    for (method, path, body) in [
        (Method::GET, api::PATH_REQUESTS.to_owned(), Vec::new()),
        (Method::POST, api::PATH_DEVICE_PIN.to_owned(), change),
        (Method::POST, api::PATH_DEVICE_BIOMETRIC.to_owned(), bio),
        (
            Method::DELETE,
            api::PATH_DEVICE_BIOMETRIC.to_owned(),
            Vec::new(),
        ),
        (
            Method::POST,
            api::PATH_DEVICE_DEACTIVATE.to_owned(),
            Vec::new(),
        ),
    ] {
        let (status, error) = refusal(e.phone.send(method, &path, body).await).await;
        answers.push((status.as_u16(), error.error));
    }
    assert_eq!(answers, vec![(401, codes::DEVICE_REVOKED.to_owned()); 5]);
}

#[tokio::test]
async fn with_two_phones_deactivating_one_keeps_the_other() {
    let server = server_with(Policy {
        max_devices: 2,
        ..Policy::default()
    })
    .await;
    let first = enroll(&server, "+32470000623").await;
    let second = enroll_again(&server, "+32470000624", &first.citizen).await;

    let _: DeviceUpdated = ok(first
        .phone
        .send(Method::POST, api::PATH_DEVICE_DEACTIVATE, Vec::new())
        .await)
    .await;

    approved_login(&server.rp(), &second).await;
}

#[tokio::test]
async fn a_biometric_approval_does_not_reset_the_wrong_code_count() {
    let server = server().await;
    let e = enroll(&server, "+32470000618").await;
    let bio = SigningKey::generate();
    let _: DeviceUpdated = ok(enable_biometric(&e, &biometric(&e, &e.pin, &bio)).await).await;
    let wrong = SigningKey::generate();
    let (_, first, first_jws) = biometric_login(&server, &e).await;
    for _ in 0..2 {
        let _ = e
            .answer(&first, &e.approval(&first, &first_jws, &wrong))
            .await;
    }

    // The person approves with a fingerprint: that proves presence, not knowledge of the code.
    let _: ResponseAccepted = ok(e
        .answer(
            &first,
            &e.approval_by(&first, &first_jws, UvMethod::Biometric, &bio),
        )
        .await)
    .await;
    let (_, second, second_jws) = biometric_login(&server, &e).await;
    let (status, error) = refusal(
        e.answer(&second, &e.approval(&second, &second_jws, &wrong))
            .await,
    )
    .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
}
