//! The account's life on the phone against the in-process fake server: code change, biometrics
//! (with a keystore that plays the platform's biometric gate), key invalidation, deactivation,
//! the errors the server's refusals map to, and answers lost on the way back.

use std::sync::Arc;

use sleutel_protocol::action::UserVerification;

use crate::testing::TestKeystore;
use crate::tests::fake_server::{
    CODE, Call, Fault, OTHER_CODE, Shared, add_request, deliver_held_pin_change, enroll,
    login_request, new_request, serve,
};
use crate::{
    AccountEventKind, AccountStatus, Approval, Authenticator, CoreError, SoftwareKeystore,
};

/// A third acceptable code.
const THIRD_CODE: &str = "31415";

struct Phone {
    auth: Authenticator,
    /// Plays the platform's biometric gate, which a new fingerprint invalidates.
    keystore: TestKeystore,
    fake: Shared,
    /// The fake server's address.
    url: String,
    account_id: String,
    _dir: tempfile::TempDir,
}

impl Phone {
    /// A phone with one account enrolled with [`CODE`].
    async fn enrolled() -> Self {
        let (url, fake) = serve().await;
        let dir = tempfile::tempdir().unwrap();
        let credentials = keyring_core::mock::Store::new().unwrap();
        let keystore = TestKeystore::new(SoftwareKeystore::new(credentials, "life"));
        let data_dir = dir.path().to_str().unwrap().to_owned();
        let auth =
            Authenticator::open(data_dir, url.clone(), Arc::new(keystore.clone()), None).unwrap();
        let account_id = enroll(&auth).await.account_id;
        Self {
            auth,
            keystore,
            fake,
            url,
            account_id,
            _dir: dir,
        }
    }

    /// The app is killed and started again: a new authenticator on the same store and keystore.
    fn reopen(&mut self) {
        let data_dir = self._dir.path().to_str().unwrap().to_owned();
        self.auth = Authenticator::open(
            data_dir,
            self.url.clone(),
            Arc::new(self.keystore.clone()),
            None,
        )
        .unwrap();
    }

    /// The wrong codes the server has left before it blocks the account (3 after a right one).
    fn attempts_left(&self) -> u32 {
        self.fake.lock().unwrap().attempts_left
    }

    /// The account's row on the phone.
    fn row(&self) -> crate::store::AccountRow {
        self.auth
            .ctx
            .store
            .account(&self.account_id)
            .unwrap()
            .unwrap()
    }

    fn plant(&self, call: Call, fault: Fault) {
        self.fake.lock().unwrap().faults.insert(call, fault);
    }

    async fn change(&self, current: &str, new: &str) -> Result<(), CoreError> {
        self.auth
            .change_code(
                self.account_id.clone(),
                current.into(),
                new.into(),
                new.into(),
            )
            .await
    }

    async fn enable_biometrics(&self, code: &str) -> Result<(), CoreError> {
        self.auth
            .enable_biometrics(self.account_id.clone(), code.into())
            .await
    }

    /// Puts a fresh request `id` on the phone; `biometric` allows a biometric answer.
    async fn request(&self, id: &str, biometric: bool) {
        {
            let mut fake = self.fake.lock().unwrap();
            let mut request = login_request(&fake.issuer, &fake.account_id, id, crate::now());
            if biometric {
                request.uv = UserVerification::PinOrBiometric;
            }
            add_request(&mut fake, id, &request);
        }
        self.auth.refresh_pending().await.unwrap();
    }

    /// Approves a fresh code-only request with `code`: proves which PIN key the server holds.
    async fn approve_with(&self, code: &str) -> Result<(), CoreError> {
        // A request of its own each time: one id issued again a second later would be another
        // request under an id the phone already holds, which it answers by the first.
        static ISSUED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = ISSUED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("req-code-{n}");
        new_request(&mut self.fake.lock().unwrap(), &id);
        self.auth.refresh_pending().await?;
        self.auth.approve(id, Approval::code(code)).await
    }

    fn biometrics_enabled(&self) -> bool {
        self.auth.accounts().unwrap()[0].biometrics_enabled
    }

    fn events(&self) -> Vec<AccountEventKind> {
        self.auth
            .account_events()
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    fn biometric_keys(&self) -> usize {
        self.keystore.biometric_aliases().len()
    }
}

// --- code change --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_code_approves_and_the_old_one_no_longer_does() {
    let phone = Phone::enrolled().await;

    phone.change(CODE, OTHER_CODE).await.unwrap();

    phone.approve_with(OTHER_CODE).await.unwrap();
    assert!(matches!(
        phone.approve_with(CODE).await,
        Err(CoreError::WrongCode { .. })
    ));
    assert!(phone.events().contains(&AccountEventKind::CodeChanged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_current_code_is_a_wrong_code_and_keeps_the_code() {
    let phone = Phone::enrolled().await;

    let err = phone.change(THIRD_CODE, OTHER_CODE).await.unwrap_err();

    assert_eq!(err, CoreError::WrongCode { attempts_left: 2 });
    phone.approve_with(CODE).await.unwrap();
    assert!(!phone.events().contains(&AccountEventKind::CodeChanged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_change_at_the_last_attempt_marks_the_account_blocked() {
    let phone = Phone::enrolled().await;
    phone.fake.lock().unwrap().attempts_left = 1;

    let err = phone.change(THIRD_CODE, OTHER_CODE).await.unwrap_err();
    let again = phone.change(CODE, OTHER_CODE).await.unwrap_err();

    assert_eq!(err, CoreError::AccountBlocked);
    assert_eq!(again, CoreError::AccountBlocked);
    assert_eq!(
        phone.auth.accounts().unwrap()[0].status,
        AccountStatus::Blocked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_code_must_be_strong_confirmed_and_new() {
    let phone = Phone::enrolled().await;

    let weak = phone.change(CODE, "11111").await.unwrap_err();
    let same = phone.change(CODE, CODE).await.unwrap_err();
    let unconfirmed = phone
        .auth
        .change_code(
            phone.account_id.clone(),
            CODE.into(),
            OTHER_CODE.into(),
            THIRD_CODE.into(),
        )
        .await
        .unwrap_err();
    let unknown = phone
        .auth
        .change_code(
            "acct-x".into(),
            CODE.into(),
            OTHER_CODE.into(),
            OTHER_CODE.into(),
        )
        .await
        .unwrap_err();

    assert_eq!(weak, CoreError::WeakCode);
    assert!(matches!(same, CoreError::InvalidInput { .. }), "{same:?}");
    assert_eq!(unconfirmed, CoreError::CodesDoNotMatch);
    assert_eq!(unknown, CoreError::NoAccount);
    assert_eq!(phone.fake.lock().unwrap().attempts_left, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lost_code_change_answer_the_next_approval_learns_the_new_code_uncharged() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    let lost = phone.change(CODE, OTHER_CODE).await.unwrap_err();
    assert!(matches!(lost, CoreError::Network { .. }), "{lost:?}");

    // The old code is not sent: the server holds the new key and would count it wrong.
    let err = phone.approve_with(CODE).await.unwrap_err();

    assert_eq!(err, CoreError::EarlierCodeChangeRegistered);
    assert_eq!(phone.attempts_left(), 3);
    assert!(phone.fake.lock().unwrap().answers.is_empty());
    assert_eq!(phone.row().pending_code_change, None);
    phone.approve_with(OTHER_CODE).await.unwrap();
    assert_eq!(phone.fake.lock().unwrap().resolves, 1);
    let changes = phone
        .events()
        .into_iter()
        .filter(|e| *e == AccountEventKind::CodeChanged)
        .count();
    assert_eq!(changes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lost_code_change_answer_a_change_to_another_code_is_not_charged() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();

    let err = phone.change(CODE, THIRD_CODE).await.unwrap_err();

    assert_eq!(err, CoreError::EarlierCodeChangeRegistered);
    assert_eq!(phone.attempts_left(), 3);
    phone.change(OTHER_CODE, THIRD_CODE).await.unwrap();
    phone.approve_with(THIRD_CODE).await.unwrap();
}

/// An approval and a code change typed with the old code while another call of the account
/// settles a lost code change: they wait for it, and since the change took effect meanwhile,
/// neither sends its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_with_a_code_waiting_while_a_lost_change_is_adopted_send_no_code() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();
    phone.request("req-race", false).await;
    let ctx = &phone.auth.ctx;
    // Another call of the account is at work: it holds the lock and settles the change.
    let held = ctx.account_locks.lock(&phone.account_id).await;
    let settling = async {
        let settled = crate::life::settle_code_change(ctx, &phone.row()).await;
        drop(held);
        settled
    };

    // Each waiting call noted the salt's changes when it was first polled, before `settling`
    // could run; none can pass the lock before `settling` lets go of it.
    let (approved, changed, settled) = tokio::join!(
        phone.auth.approve("req-race".into(), Approval::code(CODE)),
        phone.change(CODE, THIRD_CODE),
        settling,
    );

    assert_eq!(settled, Err(CoreError::EarlierCodeChangeRegistered));
    assert_eq!(approved, Err(CoreError::EarlierCodeChangeRegistered));
    assert_eq!(changed, Err(CoreError::EarlierCodeChangeRegistered));
    assert_eq!(phone.attempts_left(), 3, "no wrong code was counted");
    assert_eq!(phone.fake.lock().unwrap().resolves, 1, "asked about once");
    assert!(phone.fake.lock().unwrap().answers.is_empty());
    phone
        .auth
        .approve("req-race".into(), Approval::code(OTHER_CODE))
        .await
        .unwrap();
}

/// An earlier version of the core lost a code change's answer and kept its salt under the
/// pending name without a change id to ask about. Repeating the change with the same new code
/// completes it, as that version did, without a wrong code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_lost_by_an_earlier_version_completes_when_repeated() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();
    // What the earlier version left: the new salt, and no pending change.
    let id = phone.row().pending_code_change.unwrap();
    assert!(
        phone
            .auth
            .ctx
            .store
            .finish_code_change(&phone.account_id, &id, false)
            .unwrap()
    );

    phone.change(CODE, OTHER_CODE).await.unwrap();

    assert_eq!(phone.attempts_left(), 3, "no wrong code was counted");
    phone.approve_with(OTHER_CODE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_biometrics_after_a_lost_code_change_answer_uses_no_code_until_settled() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();

    let err = phone.enable_biometrics(CODE).await.unwrap_err();

    assert_eq!(err, CoreError::EarlierCodeChangeRegistered);
    assert_eq!(phone.attempts_left(), 3);
    assert_eq!(phone.biometric_keys(), 0);
    phone.enable_biometrics(OTHER_CODE).await.unwrap();
    assert!(phone.biometrics_enabled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_change_that_never_arrived_is_void_and_its_late_arrival_is_refused() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::HoldRequest);
    let lost = phone.change(CODE, OTHER_CODE).await.unwrap_err();
    assert!(matches!(lost, CoreError::Network { .. }), "{lost:?}");

    phone.approve_with(CODE).await.unwrap();
    let late = deliver_held_pin_change(&phone.url, &phone.fake).await;

    assert_eq!(
        late,
        (
            axum::http::StatusCode::CONFLICT,
            sleutel_protocol::api::codes::CODE_CHANGE_VOID.to_owned()
        )
    );
    assert_eq!(phone.row().pending_code_change, None);
    phone.approve_with(CODE).await.unwrap();
    assert!(matches!(
        phone.approve_with(OTHER_CODE).await,
        Err(CoreError::WrongCode { .. })
    ));
    assert!(!phone.events().contains(&AccountEventKind::CodeChanged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_killed_after_sending_a_code_change_asks_about_it_when_started_again() {
    let mut phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();

    phone.reopen();

    assert_eq!(
        phone.approve_with(CODE).await,
        Err(CoreError::EarlierCodeChangeRegistered)
    );
    phone.approve_with(OTHER_CODE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_killed_while_adopting_the_new_salt_finishes_on_the_next_start() {
    use crate::keystore::Keystore;
    let mut phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();
    // Killed after the new salt was made the account's, before the change was recorded done.
    let alias = phone.row().device_alias;
    let salt_name = crate::enrollment::salt_secret_name(&alias);
    let next = phone
        .keystore
        .get_secret(format!("{salt_name}/next"))
        .unwrap()
        .unwrap();
    phone.keystore.put_secret(salt_name, next).unwrap();

    phone.reopen();

    assert_eq!(
        phone.approve_with(OTHER_CODE).await,
        Err(CoreError::EarlierCodeChangeRegistered)
    );
    assert_eq!(phone.attempts_left(), 3);
    phone.approve_with(OTHER_CODE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salt_left_by_a_change_killed_before_it_was_sent_is_replaced_by_the_next_change() {
    use crate::keystore::Keystore;
    let mut phone = Phone::enrolled().await;
    // Killed after the new salt was stored, before the change was recorded or sent.
    let alias = phone.row().device_alias;
    let next_name = format!("{}/next", crate::enrollment::salt_secret_name(&alias));
    phone.keystore.put_secret(next_name, vec![7; 16]).unwrap();

    phone.reopen();

    phone.approve_with(CODE).await.unwrap();
    assert_eq!(phone.fake.lock().unwrap().resolves, 0);
    phone.change(CODE, OTHER_CODE).await.unwrap();
    phone.approve_with(OTHER_CODE).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_code_change_is_asked_about_once() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::HoldRequest);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();

    phone.approve_with(CODE).await.unwrap();
    phone.approve_with(CODE).await.unwrap();
    phone.enable_biometrics(CODE).await.unwrap();

    assert_eq!(phone.fake.lock().unwrap().resolves, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_answer_about_a_lost_code_change_no_code_is_sent() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::DropAnswer);
    phone.change(CODE, OTHER_CODE).await.unwrap_err();
    phone.plant(Call::Resolve, Fault::FailUnchanged);

    let err = phone.approve_with(CODE).await.unwrap_err();

    assert!(
        matches!(err, CoreError::ServerUnavailable { .. }),
        "{err:?}"
    );
    assert_eq!(phone.attempts_left(), 3);
    assert!(phone.fake.lock().unwrap().answers.is_empty());
    assert!(phone.row().pending_code_change.is_some());
    assert_eq!(
        phone.approve_with(CODE).await,
        Err(CoreError::EarlierCodeChangeRegistered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_change_the_server_failed_keeps_the_code() {
    let phone = Phone::enrolled().await;
    phone.plant(Call::Pin, Fault::FailUnchanged);

    let err = phone.change(CODE, OTHER_CODE).await.unwrap_err();

    assert!(
        matches!(err, CoreError::ServerUnavailable { .. }),
        "{err:?}"
    );
    phone.approve_with(CODE).await.unwrap();
}

// --- biometrics ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_biometrics_approve_where_the_request_allows_it() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();
    phone.request("req-bio", true).await;

    phone
        .auth
        .approve("req-bio".into(), Approval::biometric())
        .await
        .unwrap();

    assert!(phone.biometrics_enabled());
    let answers = phone.fake.lock().unwrap().answers.clone();
    assert_eq!(
        answers.last().unwrap().1,
        Some(sleutel_protocol::response::UvMethod::Biometric)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_killed_after_the_server_took_a_new_biometric_key_shows_biometrics_off() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();
    // Enabling again: the server takes the new key, and the app dies before the answer (the
    // call's future is dropped where it waits, so no more of it runs, as after a SIGKILL).
    phone.plant(Call::Biometric, Fault::ActThenHang);
    let taken = async {
        while phone.fake.lock().unwrap().biometric_registrations < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = phone.enable_biometrics(CODE) => panic!("the server never answers"),
        () = taken => {}
    }

    // The phone cannot know which key the server holds: it shows biometrics off rather than
    // offer a fingerprint the server may refuse, and turns them off at the server too.
    assert!(!phone.biometrics_enabled());
    phone.request("req-bio", true).await;
    let err = phone
        .auth
        .approve("req-bio".into(), Approval::biometric())
        .await
        .unwrap_err();
    assert_eq!(err, CoreError::BiometricsNotEnabled);
    assert!(phone.fake.lock().unwrap().biometric_key.is_none());
    assert_eq!(phone.biometric_keys(), 0);

    // The person goes on: enabling again works, and the fingerprint approves.
    phone.enable_biometrics(CODE).await.unwrap();
    phone
        .auth
        .approve("req-bio".into(), Approval::biometric())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_only_request_refuses_a_biometric_before_anything_is_sent() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();
    phone.request("req-code-only", false).await;

    let err = phone
        .auth
        .approve("req-code-only".into(), Approval::biometric())
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::CodeRequired);
    assert!(phone.fake.lock().unwrap().answers.is_empty());
    phone
        .auth
        .approve("req-code-only".into(), Approval::code(CODE))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_biometric_approval_without_biometrics_enabled_is_refused() {
    let phone = Phone::enrolled().await;
    phone.request("req-bio", true).await;

    let err = phone
        .auth
        .approve("req-bio".into(), Approval::biometric())
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::BiometricsNotEnabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_biometrics_with_a_wrong_code_leaves_no_key() {
    let phone = Phone::enrolled().await;

    let err = phone.enable_biometrics(OTHER_CODE).await.unwrap_err();

    assert_eq!(err, CoreError::WrongCode { attempts_left: 2 });
    assert!(!phone.biometrics_enabled());
    assert_eq!(phone.biometric_keys(), 0);
    assert!(phone.fake.lock().unwrap().biometric_key.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidated_key_turns_biometrics_off_and_the_code_still_approves() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();
    phone.request("req-bio", true).await;
    phone.keystore.enroll_new_biometric().unwrap();

    let err = phone
        .auth
        .approve("req-bio".into(), Approval::biometric())
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::BiometricKeyInvalidated);
    assert!(!phone.biometrics_enabled());
    assert_eq!(phone.biometric_keys(), 0);
    assert!(phone.fake.lock().unwrap().biometric_key.is_none());
    assert!(
        phone
            .events()
            .contains(&AccountEventKind::BiometricsInvalidated)
    );
    phone
        .auth
        .approve("req-bio".into(), Approval::code(CODE))
        .await
        .unwrap();
    // Enabling again makes a new key that the platform accepts.
    phone.enable_biometrics(CODE).await.unwrap();
    phone.request("req-bio-2", true).await;
    phone
        .auth
        .approve("req-bio-2".into(), Approval::biometric())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_biometrics_leave_server_and_keystore() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();

    phone
        .auth
        .disable_biometrics(phone.account_id.clone())
        .await
        .unwrap();
    let again = phone
        .auth
        .disable_biometrics(phone.account_id.clone())
        .await
        .unwrap_err();

    assert_eq!(again, CoreError::BiometricsNotEnabled);
    assert!(!phone.biometrics_enabled());
    assert_eq!(phone.biometric_keys(), 0);
    assert!(phone.fake.lock().unwrap().biometric_key.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_biometric_the_server_does_not_know_turns_biometrics_off() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();
    phone.fake.lock().unwrap().biometric_key = None;
    phone.request("req-bio", true).await;

    let err = phone
        .auth
        .approve("req-bio".into(), Approval::biometric())
        .await
        .unwrap_err();

    assert_eq!(err, CoreError::CodeRequired);
    assert!(!phone.biometrics_enabled());
}

// --- deactivation and revocation ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_forgets_the_account_but_keeps_the_history() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();

    phone
        .auth
        .deactivate(phone.account_id.clone())
        .await
        .unwrap();

    assert!(phone.fake.lock().unwrap().revoked);
    assert!(phone.auth.accounts().unwrap().is_empty());
    assert_eq!(phone.biometric_keys(), 0);
    assert!(phone.events().contains(&AccountEventKind::Deactivated));
    let again = phone.auth.deactivate(phone.account_id.clone()).await;
    assert_eq!(again, Err(CoreError::NoAccount));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_marked_and_changes_nothing() {
    let phone = Phone::enrolled().await;
    phone.fake.lock().unwrap().revoked = true;

    let err = phone.change(CODE, OTHER_CODE).await.unwrap_err();
    let bio = phone.enable_biometrics(CODE).await.unwrap_err();

    assert_eq!(err, CoreError::DeviceRevoked);
    assert_eq!(bio, CoreError::DeviceRevoked);
    assert_eq!(
        phone.auth.accounts().unwrap()[0].status,
        AccountStatus::Revoked
    );
    assert_eq!(phone.biometric_keys(), 0);
    // A revoked account is forgotten on deactivation without asking the server again.
    phone
        .auth
        .deactivate(phone.account_id.clone())
        .await
        .unwrap();
    assert!(phone.auth.accounts().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_biometric_registration_turns_biometrics_off_on_both_sides() {
    let phone = Phone::enrolled().await;
    phone.enable_biometrics(CODE).await.unwrap();
    phone.plant(Call::Biometric, Fault::DropAnswer);

    // The server registers the new key and replaces the earlier one, but the answer is lost.
    let err = phone.enable_biometrics(CODE).await.unwrap_err();

    assert!(matches!(err, CoreError::Network { .. }), "{err:?}");
    // The phone cannot tell which key the server holds: no key stays behind on either side.
    assert!(phone.fake.lock().unwrap().biometric_key.is_none());
    assert!(!phone.biometrics_enabled());
    assert_eq!(phone.biometric_keys(), 0);
    phone.enable_biometrics(CODE).await.unwrap();
    phone.request("req-bio", true).await;
    phone
        .auth
        .approve("req-bio".into(), Approval::biometric())
        .await
        .unwrap();
}
