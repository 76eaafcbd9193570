//! The push token on the phone against the in-process fake server: what reaches the server, and
//! the refusals (a malformed token before anything is sent, an unknown account, a revoked device,
//! a blocked account).

use std::sync::Arc;

use crate::tests::fake_server::{Shared, enroll, serve};
use crate::{AccountStatus, Authenticator, CoreError, PushPlatform, SoftwareKeystore};

/// A 32-byte APNs device token, as iOS hands it to the app.
const APNS_TOKEN: &str = "6A1F0E5C2B9D4E8F7A3C1B0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B3C2D1E0F";
/// An FCM registration token of today's shape.
const FCM_TOKEN: &str = "dQw4w9WgXcQ:APA91bH-7Xk_e1.Zq";

struct Phone {
    auth: Authenticator,
    fake: Shared,
    account_id: String,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// A phone with one account enrolled.
    async fn enrolled() -> Self {
        let (url, fake) = serve().await;
        let dir = tempfile::tempdir().unwrap();
        let keystore = SoftwareKeystore::new(keyring_core::mock::Store::new().unwrap(), "push");
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let auth = Authenticator::open(data_dir, url, Arc::new(keystore), None).unwrap();
        let account_id = enroll(&auth).await.account_id;
        Self {
            auth,
            fake,
            account_id,
            _dir: dir,
        }
    }

    async fn register(&self, platform: PushPlatform, token: &str) -> Result<(), CoreError> {
        self.auth
            .register_push_token(self.account_id.clone(), platform, token.into())
            .await
    }

    fn registered(&self) -> Option<(PushPlatform, String)> {
        self.fake.lock().unwrap().push_token.clone()
    }

    fn calls(&self) -> u32 {
        self.fake.lock().unwrap().push_token_calls
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_fcm_token_reaches_the_server_as_given() {
    let phone = Phone::enrolled().await;

    phone.register(PushPlatform::Fcm, FCM_TOKEN).await.unwrap();

    assert_eq!(
        phone.registered(),
        Some((PushPlatform::Fcm, FCM_TOKEN.to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apns_token_reaches_the_server_in_lowercase() {
    let phone = Phone::enrolled().await;

    phone
        .register(PushPlatform::Apns, APNS_TOKEN)
        .await
        .unwrap();

    assert_eq!(
        phone.registered(),
        Some((PushPlatform::Apns, APNS_TOKEN.to_ascii_lowercase()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_token_replaces_the_registered_one() {
    let phone = Phone::enrolled().await;
    phone.register(PushPlatform::Fcm, FCM_TOKEN).await.unwrap();

    phone
        .register(PushPlatform::Apns, APNS_TOKEN)
        .await
        .unwrap();

    assert_eq!(
        phone.registered().map(|(platform, _)| platform),
        Some(PushPlatform::Apns)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_token_is_refused_before_anything_is_sent() {
    let phone = Phone::enrolled().await;

    for (platform, token) in [
        (PushPlatform::Fcm, ""),
        (PushPlatform::Fcm, "a token/with?stuff"),
        (PushPlatform::Apns, "abc"),
        (PushPlatform::Apns, FCM_TOKEN),
    ] {
        let refused = phone.register(platform, token).await;

        assert!(
            matches!(&refused, Err(CoreError::InvalidInput { field, .. }) if field == "token"),
            "{token:?}: {refused:?}"
        );
    }
    assert_eq!(phone.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_an_account_not_on_this_phone_is_no_account() {
    let phone = Phone::enrolled().await;

    let refused = phone
        .auth
        .register_push_token("acct-x".into(), PushPlatform::Fcm, FCM_TOKEN.into())
        .await;

    assert_eq!(refused, Err(CoreError::NoAccount));
    assert_eq!(phone.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_registers_no_token_and_is_marked_revoked() {
    let phone = Phone::enrolled().await;
    phone.fake.lock().unwrap().revoked = true;

    let refused = phone.register(PushPlatform::Fcm, FCM_TOKEN).await;
    let again = phone.register(PushPlatform::Fcm, FCM_TOKEN).await;

    assert_eq!(refused, Err(CoreError::DeviceRevoked));
    assert_eq!(again, Err(CoreError::DeviceRevoked));
    // The second refusal came from the phone's own record, without a call.
    assert_eq!(phone.calls(), 1);
    assert_eq!(
        phone.auth.accounts().unwrap()[0].status,
        AccountStatus::Revoked
    );
    assert_eq!(phone.registered(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_account_registers_no_token() {
    let phone = Phone::enrolled().await;
    phone.fake.lock().unwrap().attempts_left = 0;

    let refused = phone.register(PushPlatform::Fcm, FCM_TOKEN).await;

    assert_eq!(refused, Err(CoreError::AccountBlocked));
    assert_eq!(
        phone.auth.accounts().unwrap()[0].status,
        AccountStatus::Blocked
    );
    assert_eq!(phone.registered(), None);
}
