//! [`Authenticator`] as the apps see it: every method of the core's authenticator, unchanged in
//! meaning, with the argument types uniffi can carry (paths as strings, keystores as `Arc`).

use std::path::PathBuf;
use std::sync::Arc;

use sleutel_core::{
    Account, AccountEvent, ActionView, Bank, BankHandoff, CoreError, DeclineReason,
    EnrollmentProgress, HistoryEntry, Keystore, KeystoreError, SmsSent, SoftwareKeystore,
};

/// The keyring service under which [`Authenticator::open_with_software_keystore`] keeps its
/// keys and secrets.
const SOFTWARE_KEYSTORE_SERVICE: &str = "be.sleutel.core";

/// The phone-side authenticator: enrolls the phone for a person, receives and shows the
/// requests of online services, and answers them with the device key and the 5-digit code.
///
/// Open one per app and keep it: every method may be called from any thread. The async
/// methods may block their thread on the keystore (a biometric prompt, a hardware round trip):
/// call them from a background dispatcher, not the UI thread.
#[derive(uniffi::Object)]
pub struct Authenticator {
    core: sleutel_core::Authenticator,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.fmt(f)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Authenticator {
    /// Opens the authenticator with its store in `data_dir` (created if needed) for the server
    /// at `server_url` (`https`, or plain `http` to a loopback address for development),
    /// signing with the platform `keystore`. When `server_key_thumbprint` is given (the
    /// base64url RFC 7638 thumbprint of the server's signing key, shipped with the app), an
    /// enrollment pins only that key. A file that is not a Sleutel store gives
    /// `CoreError.CorruptStore`.
    #[uniffi::constructor(default(server_key_thumbprint = None))]
    pub fn open(
        data_dir: String,
        server_url: String,
        keystore: Arc<dyn Keystore>,
        server_key_thumbprint: Option<String>,
    ) -> Result<Arc<Self>, CoreError> {
        let core = sleutel_core::Authenticator::open_with_server_key(
            &PathBuf::from(data_dir),
            &server_url,
            keystore,
            server_key_thumbprint,
        )?;
        Ok(Arc::new(Self { core }))
    }

    /// Like [`Authenticator::open`], with the core's software keystore instead of a platform
    /// one: P-256 keys kept as secrets in the default keyring-core credential store that the
    /// embedding app registered. It cannot gate keys on biometrics. Without a registered store
    /// the answer is `CoreError.Keystore` with `KeystoreError.Unavailable`.
    #[uniffi::constructor(default(server_key_thumbprint = None))]
    pub fn open_with_software_keystore(
        data_dir: String,
        server_url: String,
        server_key_thumbprint: Option<String>,
    ) -> Result<Arc<Self>, CoreError> {
        let store =
            keyring_core::get_default_store().ok_or_else(|| KeystoreError::Unavailable {
                detail: "no default keyring-core credential store is registered".into(),
            })?;
        let keystore = Arc::new(SoftwareKeystore::new(store, SOFTWARE_KEYSTORE_SERVICE));
        Self::open(data_dir, server_url, keystore, server_key_thumbprint)
    }

    /// The server this authenticator enrolls with.
    pub fn server_url(&self) -> String {
        self.core.server_url()
    }

    // --- Enrollment (bank, eID or counter; then the SMS code and the 5-digit code) ---

    /// Starts an enrollment through a bank for `phone_number` (a Belgian mobile number): makes
    /// a new device key and returns where to send the person. Replaces any enrollment in
    /// progress.
    pub async fn start_bank_enrollment(
        &self,
        phone_number: String,
        bank: Bank,
    ) -> Result<BankHandoff, CoreError> {
        self.core.start_bank_enrollment(phone_number, bank).await
    }

    /// Starts an enrollment with the identification code the eID website gave for
    /// `phone_number` (after the person read the eID with its PIN); the server then sends the
    /// SMS control code. Refusals: `CoreError.WrongIdentityCode` with the attempts left,
    /// `IdentityCodeExpired`, `IdentityCodeUsed`, `IdentityCodeBlocked`, `IdentityRefused`.
    pub async fn start_eid_enrollment(
        &self,
        phone_number: String,
        identification_code: String,
    ) -> Result<SmsSent, CoreError> {
        self.core
            .start_eid_enrollment(phone_number, identification_code)
            .await
    }

    /// Starts an enrollment through the town-hall counter, with both of its factors: the
    /// e-mail's `activation_link` the app was opened with (`sleutel://enroll/counter?...`) and
    /// the `activation_code` the official handed out, typed by the person (valid together 14
    /// days, once). A link that is not the counter's is `CoreError.InvalidInput` on
    /// `activation_link`; a code of the wrong shape, or a link typed as the code, on
    /// `activation_code`. Refusals as for the eID; wrong codes also count on the link's code.
    pub async fn start_counter_enrollment(
        &self,
        phone_number: String,
        activation_link: String,
        activation_code: String,
    ) -> Result<SmsSent, CoreError> {
        self.core
            .start_counter_enrollment(phone_number, activation_link, activation_code)
            .await
    }

    /// Types the identification or activation code again for the enrollment in progress,
    /// after a wrong code or a network error (for the counter, with the link it was started
    /// with).
    pub async fn submit_identity_code(&self, code: String) -> Result<SmsSent, CoreError> {
        self.core.submit_identity_code(code).await
    }

    /// Takes the link the bank's app returned to (`sleutel://enroll/bank?...`), hands the
    /// identity to the server and has it send the SMS control code. After `CoreError.Network`
    /// or `CoreError.ServerUnavailable`, call it again with the same link.
    pub async fn complete_bank_handoff(&self, deep_link: String) -> Result<SmsSent, CoreError> {
        self.core.complete_bank_handoff(deep_link).await
    }

    /// Asks for a new SMS control code (throttled: `CoreError.ResendTooSoon` says how long to
    /// wait).
    pub async fn resend_sms_code(&self) -> Result<SmsSent, CoreError> {
        self.core.resend_sms_code().await
    }

    /// Checks the 6-digit SMS control code. A wrong code gives `CoreError.WrongSmsCode` with
    /// the attempts left.
    pub async fn verify_sms_code(&self, code: String) -> Result<(), CoreError> {
        self.core.verify_sms_code(code).await
    }

    /// Sets the 5-digit code (typed twice), registers the device and PIN keys, and returns the
    /// new account. Trivial codes are refused with `CoreError.WeakCode`.
    pub async fn choose_code(
        &self,
        code: String,
        confirmation: String,
    ) -> Result<Account, CoreError> {
        self.core.choose_code(code, confirmation).await
    }

    /// The enrollment in progress, if any: the app resumes it after a restart.
    pub fn enrollment_in_progress(&self) -> Result<Option<EnrollmentProgress>, CoreError> {
        self.core.enrollment_in_progress()
    }

    // --- Accounts and their life ---

    /// The accounts enrolled on this phone, oldest first.
    pub fn accounts(&self) -> Result<Vec<Account>, CoreError> {
        self.core.accounts()
    }

    /// Starts unblocking a blocked account from this phone through its bank; then
    /// `verify_sms_code` and `choose_code` as in an enrollment. The unblock makes a new device
    /// key: once the new code is chosen, the server revokes the old key (and any copy of it) and
    /// the old code stops working; until then the account keeps both.
    pub async fn unblock_with_bank(
        &self,
        account_id: String,
        bank: Bank,
    ) -> Result<BankHandoff, CoreError> {
        self.core.unblock_with_bank(account_id, bank).await
    }

    /// Starts unblocking a blocked account with an identification code of the eID website.
    pub async fn unblock_with_eid(
        &self,
        account_id: String,
        identification_code: String,
    ) -> Result<SmsSent, CoreError> {
        self.core
            .unblock_with_eid(account_id, identification_code)
            .await
    }

    /// Starts unblocking a blocked account through the counter: the e-mail's activation link
    /// and the activation code handed out there, as in `start_counter_enrollment`.
    pub async fn unblock_with_counter(
        &self,
        account_id: String,
        activation_link: String,
        activation_code: String,
    ) -> Result<SmsSent, CoreError> {
        self.core
            .unblock_with_counter(account_id, activation_link, activation_code)
            .await
    }

    /// Changes the account's code, authorised by the current one (a wrong current code counts
    /// as a wrong code: `CoreError.WrongCode`, then `AccountBlocked`). The new code is typed
    /// twice.
    pub async fn change_code(
        &self,
        account_id: String,
        current_code: String,
        new_code: String,
        confirmation: String,
    ) -> Result<(), CoreError> {
        self.core
            .change_code(account_id, current_code, new_code, confirmation)
            .await
    }

    /// Enables biometrics for the account: the keystore creates a biometric-gated key
    /// (`KeyProtection.Biometric`), registered with the server under the authority of the code.
    /// Also how biometrics come back after `CoreError.BiometricKeyInvalidated`.
    pub async fn enable_biometrics(
        &self,
        account_id: String,
        code: String,
    ) -> Result<(), CoreError> {
        self.core.enable_biometrics(account_id, code).await
    }

    /// Disables biometrics for the account; the biometric key is deleted.
    pub async fn disable_biometrics(&self, account_id: String) -> Result<(), CoreError> {
        self.core.disable_biometrics(account_id).await
    }

    /// Deactivates the account on this phone: the server revokes this device for good and the
    /// phone forgets the account and its keys (the history stays).
    pub async fn deactivate(&self, account_id: String) -> Result<(), CoreError> {
        self.core.deactivate(account_id).await
    }

    /// What happened to the accounts on this phone (activations, unblocks, code changes,
    /// biometrics, blocks, revocations, deactivations), newest first.
    pub fn account_events(&self) -> Result<Vec<AccountEvent>, CoreError> {
        self.core.account_events()
    }

    // --- Requests from online services ---

    /// Handles a push message (JSON with `account_id` and `request_id`): fetches the request,
    /// verifies it against the pinned server keys, keeps it, and returns what to show.
    pub async fn handle_push(&self, payload: String) -> Result<ActionView, CoreError> {
        self.core.handle_push(payload).await
    }

    /// Asks the server for the pending requests of every account and returns those that
    /// verify. An account whose server cannot be reached keeps its stored requests.
    pub async fn refresh_pending(&self) -> Result<Vec<ActionView>, CoreError> {
        self.core.refresh_pending().await
    }

    /// The pending requests kept on this phone that have not expired, oldest first.
    pub fn pending(&self) -> Result<Vec<ActionView>, CoreError> {
        self.core.pending()
    }

    /// One pending request, to show.
    pub fn show(&self, request_id: String) -> Result<ActionView, CoreError> {
        self.core.show(request_id)
    }

    /// Approves a request with the 5-digit code. A wrong code gives `CoreError.WrongCode` with
    /// the attempts left, and the request stays pending; after the last one the account is
    /// blocked (`CoreError.AccountBlocked`).
    pub async fn approve_with_code(
        &self,
        request_id: String,
        code: String,
    ) -> Result<(), CoreError> {
        self.core.approve_with_code(request_id, code).await
    }

    /// Approves a number-matching request with the 5-digit code and the number the person
    /// picked among [`ActionView::number_options`].
    pub async fn approve_with_code_and_number(
        &self,
        request_id: String,
        code: String,
        number: u8,
    ) -> Result<(), CoreError> {
        self.core
            .approve_with_code_and_number(request_id, code, number)
            .await
    }

    /// Approves with the 5-digit code, sharing every required claim (`ActionView.claims`) and,
    /// of the optional ones (`ActionView.optionalClaims`), only `optional_claims`; `number` is
    /// the number picked under number matching (null when none is offered). A claim not offered
    /// as optional gives `CoreError.InvalidInput` and nothing is sent; a person who refuses a
    /// required claim declines instead. A number other than the one the service shows gives
    /// `CoreError.WrongNumber`: the server declined the request.
    pub async fn approve_with_code_and_consent(
        &self,
        request_id: String,
        code: String,
        number: Option<u8>,
        optional_claims: Vec<String>,
    ) -> Result<(), CoreError> {
        self.core
            .approve_with_code_and_consent(request_id, code, number, optional_claims)
            .await
    }

    /// Approves with the biometric key, with consent and number as in
    /// `approveWithCodeAndConsent` and the biometric rules of `approveWithBiometric`.
    pub async fn approve_with_biometric_and_consent(
        &self,
        request_id: String,
        number: Option<u8>,
        optional_claims: Vec<String>,
    ) -> Result<(), CoreError> {
        self.core
            .approve_with_biometric_and_consent(request_id, number, optional_claims)
            .await
    }

    /// Approves a request with the biometric key; the platform shows its prompt with the
    /// request's text. A request that demands the code gives `CoreError.CodeRequired`; a key
    /// the platform invalidated gives `CoreError.BiometricKeyInvalidated`, biometrics are
    /// turned off, and the request stays pending for the code.
    pub async fn approve_with_biometric(&self, request_id: String) -> Result<(), CoreError> {
        self.core.approve_with_biometric(request_id).await
    }

    /// Approves a number-matching request with the biometric key and the number picked.
    pub async fn approve_with_biometric_and_number(
        &self,
        request_id: String,
        number: u8,
    ) -> Result<(), CoreError> {
        self.core
            .approve_with_biometric_and_number(request_id, number)
            .await
    }

    /// Declines a request; no code is needed. `DeclineReason.NotMe` tells the server the
    /// person did not start it.
    pub async fn decline(
        &self,
        request_id: String,
        reason: DeclineReason,
    ) -> Result<(), CoreError> {
        self.core.decline(request_id, reason).await
    }

    /// The decisions taken on this phone, newest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, CoreError> {
        self.core.history()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        (dir, path)
    }

    // One test for both cases: the default credential store is process-wide.
    #[test]
    fn software_keystore_needs_a_registered_credential_store() {
        let (_dir, path) = data_dir();
        keyring_core::unset_default_store();
        let refused = Authenticator::open_with_software_keystore(
            path.clone(),
            "http://127.0.0.1:9".into(),
            None,
        );
        assert!(matches!(
            refused,
            Err(CoreError::Keystore {
                error: KeystoreError::Unavailable { .. }
            })
        ));

        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        let auth =
            Authenticator::open_with_software_keystore(path, "http://127.0.0.1:9/".into(), None)
                .unwrap();
        keyring_core::unset_default_store();
        assert_eq!(auth.server_url(), "http://127.0.0.1:9");
        assert_eq!(auth.accounts().unwrap(), vec![]);
    }

    #[test]
    fn open_passes_the_core_errors_through() {
        let (_dir, path) = data_dir();
        let keystore = Arc::new(SoftwareKeystore::new(
            keyring_core::mock::Store::new().unwrap(),
            "test",
        ));
        let refused = Authenticator::open(path, "http://example.org".into(), keystore, None);
        assert!(matches!(
            refused,
            Err(CoreError::InvalidInput { field, .. }) if field == "server_url"
        ));
    }

    #[tokio::test]
    async fn async_methods_run_and_fail_typed_without_an_enrollment() {
        let (_dir, path) = data_dir();
        let keystore = Arc::new(SoftwareKeystore::new(
            keyring_core::mock::Store::new().unwrap(),
            "test",
        ));
        let auth = Authenticator::open(path, "http://127.0.0.1:9".into(), keystore, None).unwrap();
        assert_eq!(
            auth.verify_sms_code("123456".into()).await,
            Err(CoreError::NoEnrollmentInProgress)
        );
        assert_eq!(auth.enrollment_in_progress().unwrap(), None);
        assert_eq!(auth.pending().unwrap(), vec![]);
        assert_eq!(auth.history().unwrap(), vec![]);
        assert_eq!(auth.show("r1".into()), Err(CoreError::UnknownRequest));
    }
}
