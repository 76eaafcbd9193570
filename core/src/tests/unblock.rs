//! An unblock from this phone against the fake server: it makes a new device key and names the
//! account's current key as the one it replaces, signed by that key. The account keeps its key
//! and salt (so its code) until the server has the new PIN key; then they are deleted. An
//! unblock that ends without completing deletes only its own new key.

use std::sync::Arc;

use axum::http::StatusCode;
use sleutel_protocol::api::codes;
use sleutel_protocol::jose::Jwk;

use crate::enrollment::salt_secret_name;
use crate::testing::TestKeystore;
use crate::tests::fake_server::{BANK_RETURN, Call, Fault, OTHER_CODE, SMS_CODE, Shared, enroll};
use crate::{Approval, Authenticator, Bank, CoreError, Keystore, SoftwareKeystore};

const ACCOUNT: &str = "acct-1";

struct Phone {
    auth: Authenticator,
    /// Records the alias of every key the phone generated: a key whose alias the phone never
    /// stored can still be looked for.
    keystore: TestKeystore,
    fake: Shared,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// A phone with the fake's account enrolled with [`CODE`].
    async fn enrolled() -> Self {
        let (url, fake) = crate::tests::fake_server::serve().await;
        let dir = tempfile::tempdir().unwrap();
        let credentials = keyring_core::mock::Store::new().unwrap();
        let keystore = TestKeystore::new(SoftwareKeystore::new(credentials, "unblock"));
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let auth =
            Authenticator::open(data_dir, url.clone(), Arc::new(keystore.clone()), None).unwrap();
        enroll(&auth).await;
        Self {
            auth,
            keystore,
            fake,
            _dir: dir,
        }
    }

    /// The device key alias the account uses.
    fn account_alias(&self) -> String {
        self.auth
            .ctx
            .store
            .account(ACCOUNT)
            .unwrap()
            .unwrap()
            .device_alias
    }

    /// The device key alias of the enrollment in progress.
    fn enrollment_alias(&self) -> String {
        self.auth
            .ctx
            .store
            .enrollment()
            .unwrap()
            .unwrap()
            .device_alias
    }

    fn has_key(&self, alias: &str) -> bool {
        self.keystore.has_key(alias).unwrap()
    }

    fn salt(&self, alias: &str) -> Option<Vec<u8>> {
        self.keystore.get_secret(salt_secret_name(alias)).unwrap()
    }

    fn thumbprint(&self, alias: &str) -> String {
        Jwk::from_sec1(&self.keystore.public_key(alias.to_owned()).unwrap())
            .unwrap()
            .thumbprint()
    }

    /// Runs an unblock through the bank up to the choice of the new code.
    async fn unblock_until_code(&self) {
        self.auth
            .unblock_with_bank(ACCOUNT.into(), Bank::Kbc)
            .await
            .unwrap();
        self.auth
            .complete_bank_handoff(BANK_RETURN.into())
            .await
            .unwrap();
        self.auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
    }

    async fn choose(&self, code: &str) -> Result<crate::Account, CoreError> {
        self.auth.choose_code(code.into(), code.into()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unblock_starts_with_a_new_key_that_the_accounts_key_hands_its_place_to() {
    let phone = Phone::enrolled().await;
    let old = phone.account_alias();

    phone
        .auth
        .unblock_with_bank(ACCOUNT.into(), Bank::Kbc)
        .await
        .unwrap();

    let new = phone.enrollment_alias();
    assert_ne!(new, old);
    let fake = phone.fake.lock().unwrap();
    // The fake verified the account key's signature over both thumbprints.
    assert_eq!(fake.replaced, Some(phone.thumbprint(&old)));
    assert_eq!(fake.device_jkt, Some(phone.thumbprint(&new)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_unblock_deletes_the_old_key_and_salt_and_the_new_key_approves() {
    let phone = Phone::enrolled().await;
    let old = phone.account_alias();
    phone.unblock_until_code().await;
    let new = phone.enrollment_alias();

    phone.choose(OTHER_CODE).await.unwrap();

    assert_eq!(phone.account_alias(), new);
    assert!(!phone.has_key(&old));
    assert_eq!(phone.salt(&old), None);
    assert!(phone.has_key(&new));
    assert!(phone.salt(&new).is_some());
    crate::tests::fake_server::new_request(&mut phone.fake.lock().unwrap(), "req-1");
    phone.auth.refresh_pending().await.unwrap();
    phone
        .auth
        .approve("req-1".into(), Approval::code(OTHER_CODE))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_the_server_has_the_new_pin_key_the_account_keeps_its_key_and_salt() {
    let phone = Phone::enrolled().await;
    let old = phone.account_alias();
    let old_salt = phone.salt(&old);
    phone.unblock_until_code().await;
    phone
        .fake
        .lock()
        .unwrap()
        .faults
        .insert(Call::Complete, Fault::FailUnchanged);

    let failed = phone.choose(OTHER_CODE).await;

    assert!(
        matches!(failed, Err(CoreError::ServerUnavailable { .. })),
        "{failed:?}"
    );
    assert_eq!(phone.account_alias(), old);
    assert!(phone.has_key(&old));
    assert_eq!(phone.salt(&old), old_salt);
    // The retry finishes the unblock.
    phone.choose(OTHER_CODE).await.unwrap();
    assert!(!phone.has_key(&old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_unblock_deletes_its_new_key_and_salt_and_keeps_the_accounts() {
    let phone = Phone::enrolled().await;
    let old = phone.account_alias();
    let old_salt = phone.salt(&old);
    phone.unblock_until_code().await;
    let new = phone.enrollment_alias();
    phone
        .fake
        .lock()
        .unwrap()
        .faults
        .insert(Call::Complete, Fault::FailUnchanged);
    assert!(phone.choose(OTHER_CODE).await.is_err());
    assert!(phone.salt(&new).is_some());
    let mut row = phone.auth.ctx.store.enrollment().unwrap().unwrap();
    row.expires_at = 0;
    phone.auth.ctx.store.replace_enrollment(&row).unwrap();

    let in_progress = phone.auth.enrollment_in_progress().unwrap();

    assert_eq!(in_progress, None);
    assert!(!phone.has_key(&new));
    assert_eq!(phone.salt(&new), None);
    assert_eq!(phone.account_alias(), old);
    assert!(phone.has_key(&old));
    assert_eq!(phone.salt(&old), old_salt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unblock_replaced_by_another_enrollment_deletes_its_new_key() {
    let phone = Phone::enrolled().await;
    let old = phone.account_alias();
    phone
        .auth
        .unblock_with_bank(ACCOUNT.into(), Bank::Kbc)
        .await
        .unwrap();
    let new = phone.enrollment_alias();

    crate::tests::fake_server::start_enrollment(&phone.auth).await;

    assert!(!phone.has_key(&new));
    assert!(phone.has_key(&old));
    assert!(phone.salt(&old).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unblock_refused_at_the_start_deletes_its_new_key_and_keeps_the_accounts() {
    let phone = Phone::enrolled().await;
    let old = phone.account_alias();
    phone
        .fake
        .lock()
        .unwrap()
        .refuse_start
        .replace((StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED));

    let result = phone
        .auth
        .unblock_with_bank(ACCOUNT.into(), Bank::Kbc)
        .await;

    assert!(result.is_err());
    assert_eq!(phone.auth.enrollment_in_progress().unwrap(), None);
    assert!(!phone.has_key(&phone.keystore.last_generated_alias().unwrap()));
    assert!(phone.has_key(&old));
    assert!(phone.salt(&old).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unblock_left_by_an_earlier_version_ends_without_touching_the_accounts_key() {
    let phone = Phone::enrolled().await;
    let old = phone.account_alias();
    let old_salt = phone.salt(&old);
    // An earlier version signed unblocks with the account's own key and kept the new code's
    // salt under a name of its own.
    phone
        .auth
        .unblock_with_bank(ACCOUNT.into(), Bank::Kbc)
        .await
        .unwrap();
    let mut row = phone.auth.ctx.store.enrollment().unwrap().unwrap();
    phone.keystore.delete_key(row.device_alias.clone()).unwrap();
    row.device_alias = old.clone();
    phone.auth.ctx.store.replace_enrollment(&row).unwrap();
    let own_salt = format!("{}/{}", salt_secret_name(&old), row.enrollment_id);
    phone
        .keystore
        .put_secret(own_salt.clone(), vec![7; 16])
        .unwrap();

    let handoff = phone.auth.complete_bank_handoff(BANK_RETURN.into()).await;

    assert_eq!(handoff, Err(CoreError::EnrollmentExpired));
    assert_eq!(phone.auth.enrollment_in_progress().unwrap(), None);
    assert!(phone.has_key(&old));
    assert_eq!(phone.salt(&old), old_salt);
    assert_eq!(phone.keystore.get_secret(own_salt), Ok(None));
    assert_eq!(phone.auth.accounts().unwrap().len(), 1);
}
