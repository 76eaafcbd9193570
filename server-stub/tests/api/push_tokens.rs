//! The devices' push tokens over HTTP: one per device (a new one replaces it), within an
//! account one device per token (it moves to the device that registered it last; devices of
//! other accounts keep it), dropped with the device (deactivated,
//! replaced by a newer activation or an unblock) and with the account's block; malformed tokens
//! and calls without a device's proof are refused.

use reqwest::{Method, StatusCode};
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::sim::{BlockMyKey, KeyBlocked};
use sleutel_protocol::api::{self, DeviceUpdated, PushPlatform, codes};
use sleutel_protocol::identity::IdentitySource;
use sleutel_server::Policy;

use crate::common::*;
use crate::sources::block_by_wrong_codes;
use crate::unblock::unblock_with_a_new_key;

/// An FCM registration token of today's shape.
const FCM_TOKEN: &str = "cK3x9Qm1TfO:APA91bF-2x_Yq.9wZ";
/// Another one, as after the app was reinstalled.
const OTHER_FCM_TOKEN: &str = "eR7y2Lp0UaS:APA91bG-8k_Vd.1mN";
/// A 32-byte APNs device token.
const APNS_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// The push token stored for the device of `phone`: its platform and token.
fn token_of(server: &InProcessServer, phone: &Phone) -> Option<(String, String)> {
    let rows = server
        .sql_rows(
            "SELECT platform, token FROM push_tokens WHERE device_jkt = ?1",
            &[phone.jwk.thumbprint().into()],
        )
        .unwrap();
    rows.into_iter()
        .next()
        .map(|row| (row[0].clone().unwrap(), row[1].clone().unwrap()))
}

fn fcm(token: &str) -> Option<(String, String)> {
    Some(("fcm".into(), token.into()))
}

/// `e` registers `token` for FCM, which the server accepts.
async fn registered(e: &Enrolled, token: &str) {
    let updated: DeviceUpdated =
        ok(e.phone.register_push_token(PushPlatform::Fcm, token).await).await;
    assert_eq!(updated.status, "push_token_registered");
}

#[tokio::test]
async fn a_registered_token_is_kept_for_the_device() {
    let server = server().await;
    let e = enroll(&server, "+32470000970").await;

    registered(&e, FCM_TOKEN).await;

    assert_eq!(token_of(&server, &e.phone), fcm(FCM_TOKEN));
}

#[tokio::test]
async fn an_apns_token_is_kept_in_lowercase() {
    let server = server().await;
    let e = enroll(&server, "+32470000971").await;

    let _: DeviceUpdated = ok(e
        .phone
        .register_push_token(PushPlatform::Apns, &APNS_TOKEN.to_ascii_uppercase())
        .await)
    .await;

    assert_eq!(
        token_of(&server, &e.phone),
        Some(("apns".into(), APNS_TOKEN.into()))
    );
}

#[tokio::test]
async fn a_new_token_replaces_the_devices_earlier_one() {
    let server = server().await;
    let e = enroll(&server, "+32470000972").await;
    registered(&e, FCM_TOKEN).await;

    registered(&e, OTHER_FCM_TOKEN).await;

    assert_eq!(token_of(&server, &e.phone), fcm(OTHER_FCM_TOKEN));
    assert_eq!(server.rows("push_tokens").unwrap(), 1);
}

#[tokio::test]
async fn a_token_registered_by_another_device_of_the_account_moves_to_it() {
    let server = server_with(Policy {
        max_devices: 2,
        ..Policy::default()
    })
    .await;
    let first = enroll(&server, "+32470000973").await;
    let second = enroll_again(&server, "+32470000974", &first.citizen).await;
    registered(&first, FCM_TOKEN).await;

    registered(&second, FCM_TOKEN).await;

    assert_eq!(token_of(&server, &first.phone), None);
    assert_eq!(token_of(&server, &second.phone), fcm(FCM_TOKEN));
}

/// One app install with two accounts (two people sharing a phone, or a stranger who learnt the
/// token): each account's device keeps the token, and neither takes the other's pushes away.
#[tokio::test]
async fn a_token_registered_by_a_device_of_another_account_stays_with_both() {
    let server = server().await;
    let first = enroll(&server, "+32470000980").await;
    let second = enroll(&server, "+32470000981").await;
    registered(&first, FCM_TOKEN).await;

    registered(&second, FCM_TOKEN).await;

    assert_eq!(token_of(&server, &first.phone), fcm(FCM_TOKEN));
    assert_eq!(token_of(&server, &second.phone), fcm(FCM_TOKEN));
}

#[tokio::test]
async fn deactivation_drops_the_token() {
    let server = server().await;
    let e = enroll(&server, "+32470000975").await;
    registered(&e, FCM_TOKEN).await;

    let _: DeviceUpdated = ok(e
        .phone
        .send(Method::POST, api::PATH_DEVICE_DEACTIVATE, Vec::new())
        .await)
    .await;

    assert_eq!(server.rows("push_tokens").unwrap(), 0);
}

#[tokio::test]
async fn a_device_replaced_by_a_newer_activation_loses_its_token() {
    let server = server().await;
    let old = enroll(&server, "+32470000976").await;
    registered(&old, FCM_TOKEN).await;

    let new = enroll_again(&server, "+32470000977", &old.citizen).await;

    assert_eq!(token_of(&server, &old.phone), None);
    // The new phone starts without one, and registers its own.
    assert_eq!(token_of(&server, &new.phone), None);
    registered(&new, OTHER_FCM_TOKEN).await;
    assert_eq!(token_of(&server, &new.phone), fcm(OTHER_FCM_TOKEN));
}

#[tokio::test]
async fn with_two_phones_revoking_one_keeps_the_others_token() {
    let server = server_with(Policy {
        max_devices: 2,
        ..Policy::default()
    })
    .await;
    let first = enroll(&server, "+32470000978").await;
    let second = enroll_again(&server, "+32470000979", &first.citizen).await;
    registered(&first, FCM_TOKEN).await;
    registered(&second, OTHER_FCM_TOKEN).await;

    let _: DeviceUpdated = ok(first
        .phone
        .send(Method::POST, api::PATH_DEVICE_DEACTIVATE, Vec::new())
        .await)
    .await;

    assert_eq!(token_of(&server, &first.phone), None);
    assert_eq!(token_of(&server, &second.phone), fcm(OTHER_FCM_TOKEN));
}

#[tokio::test]
async fn an_unblock_drops_the_token_of_the_device_it_replaces() {
    let server = server().await;
    let old = enroll(&server, "+32470000980").await;
    registered(&old, FCM_TOKEN).await;

    let new = unblock_with_a_new_key(&server, &old).await;

    assert_eq!(token_of(&server, &old.phone), None);
    registered(&new, FCM_TOKEN).await;
    assert_eq!(token_of(&server, &new.phone), fcm(FCM_TOKEN));
}

#[tokio::test]
async fn blocking_after_wrong_codes_drops_the_accounts_tokens() {
    let server = server().await;
    let e = enroll(&server, "+32470000981").await;
    registered(&e, FCM_TOKEN).await;

    block_by_wrong_codes(&server, &e).await;

    assert_eq!(server.rows("push_tokens").unwrap(), 0);
}

#[tokio::test]
async fn blocking_from_the_block_page_drops_the_accounts_tokens() {
    let server = server().await;
    let e = enroll(&server, "+32470000982").await;
    registered(&e, FCM_TOKEN).await;

    let _: KeyBlocked = server
        .sim()
        .block_my_key(&BlockMyKey {
            source: Some(IdentitySource::Bank),
            card_number: Some(e.citizen.debit_card.number.clone()),
            card_pin: Some(e.citizen.debit_card.pin.clone()),
            ..BlockMyKey::default()
        })
        .await
        .unwrap();

    assert_eq!(server.rows("push_tokens").unwrap(), 0);
}

#[tokio::test]
async fn a_blocked_account_registers_no_token() {
    let server = server().await;
    let e = enroll(&server, "+32470000983").await;
    block_by_wrong_codes(&server, &e).await;

    let (status, error) = err(e
        .phone
        .register_push_token(PushPlatform::Fcm, FCM_TOKEN)
        .await)
    .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
    assert_eq!(server.rows("push_tokens").unwrap(), 0);
}

#[tokio::test]
async fn a_revoked_device_registers_no_token() {
    let server = server().await;
    let old = enroll(&server, "+32470000984").await;
    let _new = enroll_again(&server, "+32470000985", &old.citizen).await;

    let (status, error) = err(old
        .phone
        .register_push_token(PushPlatform::Fcm, FCM_TOKEN)
        .await)
    .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::DEVICE_REVOKED);
    assert_eq!(server.rows("push_tokens").unwrap(), 0);
}

#[tokio::test]
async fn a_malformed_token_is_refused_as_an_invalid_push_token() {
    let server = server().await;
    let e = enroll(&server, "+32470000986").await;
    let too_long = "a".repeat(sleutel_protocol::limits::MAX_FCM_TOKEN_CHARS + 1);

    for (platform, token) in [
        (PushPlatform::Fcm, ""),
        (PushPlatform::Fcm, "not/a token"),
        (PushPlatform::Fcm, too_long.as_str()),
        (PushPlatform::Apns, "abc"),
        (PushPlatform::Apns, FCM_TOKEN),
    ] {
        let (status, error) = err(e.phone.register_push_token(platform, token).await).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{token:?}");
        assert_eq!(error.error, codes::INVALID_PUSH_TOKEN, "{token:?}");
        // The refusal explains, but never repeats the token.
        assert!(
            token.is_empty() || !error.error_description.contains(token),
            "{}",
            error.error_description
        );
    }
    assert_eq!(server.rows("push_tokens").unwrap(), 0);
}

#[tokio::test]
async fn an_unknown_platform_is_an_invalid_request() {
    let server = server().await;
    let e = enroll(&server, "+32470000987").await;
    let body = serde_json::json!({"platform": "wns", "token": FCM_TOKEN});

    let (status, error) = err(e
        .phone
        .send(
            Method::PUT,
            api::PATH_DEVICE_PUSH_TOKEN,
            serde_json::to_vec(&body).unwrap(),
        )
        .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_registration_without_a_proof_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000988").await;
    let body = serde_json::json!({"platform": "fcm", "token": FCM_TOKEN});

    let (status, error) = err(server
        .http()
        .put(format!("{}{}", server.url(), api::PATH_DEVICE_PUSH_TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::INVALID_PROOF);
    assert_eq!(token_of(&server, &e.phone), None);
}

#[tokio::test]
async fn a_registration_by_a_key_of_no_device_is_refused() {
    let server = server().await;
    let stranger = Phone::new(&server.url());

    let (status, error) = err(stranger
        .register_push_token(PushPlatform::Fcm, FCM_TOKEN)
        .await)
    .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::UNKNOWN_DEVICE);
    assert_eq!(server.rows("push_tokens").unwrap(), 0);
}
