//! Lost answers during enrollment: the server acted on a call but the phone never heard, or the
//! server failed. The phone must keep what it needs to retry, and a retry must finish the
//! enrollment; a server at another step must never make the app loop.

use std::sync::Arc;

use axum::http::StatusCode;
use sleutel_protocol::api::codes;

use crate::enrollment::salt_secret_name;
use crate::tests::fake_server::{
    BANK_RETURN, CODE, Call, Fault, OTHER_CODE, SMS_CODE, Shared, enroll_until_code,
    enroll_until_sms, new_request, serve, start_enrollment,
};
use crate::{Approval, Authenticator, CoreError, EnrollmentStep, Keystore, SoftwareKeystore};

struct Phone {
    auth: Authenticator,
    keystore: Arc<SoftwareKeystore>,
    fake: Shared,
    _dir: tempfile::TempDir,
}

impl Phone {
    async fn new() -> Self {
        let (url, fake) = serve().await;
        let dir = tempfile::tempdir().unwrap();
        let credentials = keyring_core::mock::Store::new().unwrap();
        let keystore = Arc::new(SoftwareKeystore::new(credentials, "recovery"));
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let auth = Authenticator::open(data_dir, url.clone(), keystore.clone(), None).unwrap();
        Self {
            auth,
            keystore,
            fake,
            _dir: dir,
        }
    }

    fn plant(&self, call: Call, fault: Fault) {
        self.fake.lock().unwrap().faults.insert(call, fault);
    }

    fn step(&self) -> Option<EnrollmentStep> {
        self.auth.enrollment_in_progress().unwrap().map(|p| p.step)
    }

    fn alias(&self) -> String {
        self.auth
            .ctx
            .store
            .enrollment()
            .unwrap()
            .unwrap()
            .device_alias
    }

    fn salt(&self, alias: &str) -> Option<Vec<u8>> {
        self.keystore.get_secret(salt_secret_name(alias)).unwrap()
    }

    fn has_key(&self, alias: &str) -> bool {
        self.keystore.public_key(alias.to_owned()).is_ok()
    }

    /// Approves a fresh request with `code`: proves which PIN key the server holds.
    async fn approve_with(&self, code: &str) -> Result<(), CoreError> {
        new_request(&mut self.fake.lock().unwrap(), "req-1");
        self.auth.refresh_pending().await?;
        self.auth
            .approve("req-1".into(), Approval::code(code))
            .await
    }
}

fn is_network(e: &CoreError) -> bool {
    matches!(e, CoreError::Network { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_completion_answer_keeps_the_salt_and_the_same_code_completes_on_retry() {
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let alias = phone.alias();
    phone.plant(Call::Complete, Fault::DropAnswer);

    let err = phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap_err();

    assert!(is_network(&err), "{err:?}");
    assert_eq!(phone.fake.lock().unwrap().registrations, 1);
    assert_eq!(phone.step(), Some(EnrollmentStep::ChooseCode));
    assert!(phone.auth.accounts().unwrap().is_empty());
    let salt = phone.salt(&alias).expect("the salt is kept");
    assert!(phone.has_key(&alias));

    let account = phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap();

    assert_eq!(account.account_id, "acct-1");
    assert_eq!(phone.step(), None);
    assert_eq!(phone.salt(&alias), Some(salt));
    assert_eq!(phone.fake.lock().unwrap().registrations, 1);
    phone.approve_with(CODE).await.unwrap();
}

/// Moves the enrollment's expiry, as seen by this phone, into the past.
fn expire_locally(phone: &Phone) {
    let store = &phone.auth.ctx.store;
    let mut row = store.enrollment().unwrap().unwrap();
    row.expires_at = crate::now() - 3600;
    store.replace_enrollment(&row).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_sent_late_keeps_the_enrollment_for_the_repeat_window() {
    // The server keeps a completion repeatable for COMPLETION_REPEAT_SECS after it completes;
    // the phone, which cannot know whether its call arrived, gives itself as long.
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let store = &phone.auth.ctx.store;
    let mut row = store.enrollment().unwrap().unwrap();
    row.expires_at = crate::now() + 1;
    store.replace_enrollment(&row).unwrap();
    phone.plant(Call::Complete, Fault::DropAnswer);
    let sent_at = crate::now();
    assert!(
        phone
            .auth
            .choose_code(CODE.into(), CODE.into())
            .await
            .is_err()
    );

    let kept = store.enrollment().unwrap().unwrap();

    assert!(kept.expires_at >= sent_at + sleutel_protocol::limits::COMPLETION_REPEAT_SECS);
    phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_whose_completion_answer_was_lost_ends_at_its_expiry() {
    // The server answers a repeated completion only within the enrollment's lifetime (after
    // it, a repeat would be a way to test codes), so past it the phone gives up too.
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let alias = phone.alias();
    phone.plant(Call::Complete, Fault::DropAnswer);
    assert!(
        phone
            .auth
            .choose_code(CODE.into(), CODE.into())
            .await
            .is_err()
    );
    expire_locally(&phone);

    assert_eq!(
        phone.auth.choose_code(CODE.into(), CODE.into()).await,
        Err(CoreError::EnrollmentExpired)
    );
    assert_eq!(phone.step(), None);
    assert!(!phone.has_key(&alias));
    assert!(phone.salt(&alias).is_none());
    assert!(phone.auth.accounts().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_enrollment_with_nothing_sent_is_abandoned() {
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let alias = phone.alias();
    expire_locally(&phone);

    assert_eq!(
        phone.auth.choose_code(CODE.into(), CODE.into()).await,
        Err(CoreError::EnrollmentExpired)
    );
    assert_eq!(phone.step(), None);
    assert!(!phone.has_key(&alias));
    assert_eq!(phone.fake.lock().unwrap().registrations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_code_after_a_lost_completion_answer_is_told_the_earlier_code_was_registered() {
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let alias = phone.alias();
    phone.plant(Call::Complete, Fault::BadGateway);
    let err = phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CoreError::ServerUnavailable {
            status: Some(502),
            detail: "Bad Gateway".into()
        }
    );

    assert_eq!(
        phone
            .auth
            .choose_code(OTHER_CODE.into(), OTHER_CODE.into())
            .await,
        Err(CoreError::EarlierCodeRegistered { attempts_left: 2 })
    );

    // Nothing was lost: the person types the first code and the enrollment finishes.
    assert_eq!(phone.step(), Some(EnrollmentStep::ChooseCode));
    assert!(phone.salt(&alias).is_some());
    assert!(phone.has_key(&alias));
    phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap();
    phone.approve_with(CODE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_failure_that_changed_nothing_another_code_is_accepted() {
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let alias = phone.alias();
    phone.plant(Call::Complete, Fault::FailUnchanged);
    let err = phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CoreError::ServerUnavailable {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
    let salt = phone.salt(&alias).expect("the salt is kept");

    phone
        .auth
        .choose_code(OTHER_CODE.into(), OTHER_CODE.into())
        .await
        .unwrap();

    assert_eq!(phone.salt(&alias), Some(salt));
    phone.approve_with(OTHER_CODE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_the_server_deletes_the_salt_and_keeps_the_code_step() {
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let alias = phone.alias();
    phone.fake.lock().unwrap().refuse_completion =
        Some((StatusCode::BAD_REQUEST, codes::INVALID_REQUEST));

    let err = phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap_err();

    assert!(
        matches!(&err, CoreError::Server { code, .. } if code == codes::INVALID_REQUEST),
        "{err:?}"
    );
    assert_eq!(phone.salt(&alias), None);
    assert_eq!(phone.step(), Some(EnrollmentStep::ChooseCode));
    assert!(phone.has_key(&alias));
    // The next attempt starts from a fresh salt and can succeed.
    phone.fake.lock().unwrap().refuse_completion = None;
    phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap();
    phone.approve_with(CODE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_after_a_lost_answer_keeps_the_salt_the_server_may_hold() {
    let phone = Phone::new().await;
    enroll_until_code(&phone.auth).await;
    let alias = phone.alias();
    phone.plant(Call::Complete, Fault::DropAnswer);
    assert!(
        phone
            .auth
            .choose_code(CODE.into(), CODE.into())
            .await
            .is_err()
    );
    phone.fake.lock().unwrap().refuse_completion =
        Some((StatusCode::UNAUTHORIZED, codes::PROOF_REPLAYED));

    assert!(
        phone
            .auth
            .choose_code(CODE.into(), CODE.into())
            .await
            .is_err()
    );

    assert!(phone.salt(&alias).is_some());
    phone.fake.lock().unwrap().refuse_completion = None;
    phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_step_out_of_line_with_the_server_ends_the_enrollment() {
    let phone = Phone::new().await;
    enroll_until_sms(&phone.auth).await;
    let alias = phone.alias();
    // This phone believes the SMS step is done; the server does not.
    phone
        .auth
        .ctx
        .store
        .set_enrollment_step("enr-1", EnrollmentStep::ChooseCode, None)
        .unwrap();

    assert_eq!(
        phone.auth.choose_code(CODE.into(), CODE.into()).await,
        Err(CoreError::EnrollmentExpired)
    );
    assert_eq!(phone.step(), None);
    assert!(!phone.has_key(&alias));
    assert_eq!(phone.salt(&alias), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_identity_answer_moves_on_to_the_sms_step_on_retry() {
    let phone = Phone::new().await;
    start_enrollment(&phone.auth).await;
    phone.plant(Call::Identity, Fault::DropAnswer);

    let err = phone
        .auth
        .complete_bank_handoff(BANK_RETURN.into())
        .await
        .unwrap_err();
    assert!(is_network(&err), "{err:?}");
    assert_eq!(phone.step(), Some(EnrollmentStep::BankHandoff));

    assert_eq!(
        phone.auth.complete_bank_handoff(BANK_RETURN.into()).await,
        Err(CoreError::WrongStep {
            expected: EnrollmentStep::SmsCode
        })
    );
    assert_eq!(phone.step(), Some(EnrollmentStep::SmsCode));
    phone.auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
    phone
        .auth
        .choose_code(CODE.into(), CODE.into())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_call_that_failed_unchanged_is_simply_retried() {
    let phone = Phone::new().await;
    start_enrollment(&phone.auth).await;
    phone.plant(Call::Identity, Fault::FailUnchanged);
    assert!(
        phone
            .auth
            .complete_bank_handoff(BANK_RETURN.into())
            .await
            .is_err()
    );
    assert_eq!(phone.step(), Some(EnrollmentStep::BankHandoff));

    phone
        .auth
        .complete_bank_handoff(BANK_RETURN.into())
        .await
        .unwrap();

    assert_eq!(phone.step(), Some(EnrollmentStep::SmsCode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_sms_answer_is_settled_by_verifying_again() {
    for fault in [Fault::DropAnswer, Fault::BadGateway] {
        let phone = Phone::new().await;
        enroll_until_sms(&phone.auth).await;
        phone.plant(Call::Sms, fault);

        assert!(phone.auth.verify_sms_code(SMS_CODE.into()).await.is_err());
        assert_eq!(phone.step(), Some(EnrollmentStep::SmsCode), "{fault:?}");

        phone.auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
        let progress = phone.auth.enrollment_in_progress().unwrap().unwrap();
        assert_eq!(progress.step, EnrollmentStep::ChooseCode);
        assert_eq!(progress.display_name.as_deref(), Some("Jan Peeters"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_a_lost_sms_answer_points_back_to_verifying() {
    let phone = Phone::new().await;
    enroll_until_sms(&phone.auth).await;
    phone.auth.resend_sms_code().await.unwrap();
    phone.plant(Call::Sms, Fault::DropAnswer);
    assert!(phone.auth.verify_sms_code(SMS_CODE.into()).await.is_err());

    assert_eq!(
        phone.auth.resend_sms_code().await,
        Err(CoreError::WrongStep {
            expected: EnrollmentStep::SmsCode
        })
    );

    phone.auth.verify_sms_code(SMS_CODE.into()).await.unwrap();
    assert_eq!(phone.step(), Some(EnrollmentStep::ChooseCode));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_step_out_of_line_with_the_server_ends_the_enrollment() {
    let phone = Phone::new().await;
    start_enrollment(&phone.auth).await;
    let alias = phone.alias();
    // This phone believes the identity was accepted; the server does not.
    phone
        .auth
        .ctx
        .store
        .set_enrollment_step("enr-1", EnrollmentStep::SmsCode, None)
        .unwrap();

    assert_eq!(
        phone.auth.verify_sms_code(SMS_CODE.into()).await,
        Err(CoreError::EnrollmentExpired)
    );
    assert_eq!(phone.step(), None);
    assert!(!phone.has_key(&alias));
}
