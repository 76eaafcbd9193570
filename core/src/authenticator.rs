//! The façade the apps call: one [`Authenticator`] per app, over one local store, one keystore
//! and one server.

use std::path::Path;
use std::sync::Arc;

use sleutel_protocol::api::{PushPlatform, SmsSent};
use sleutel_protocol::identity::Bank;
use sleutel_protocol::response::DeclineReason;
use zeroize::Zeroizing;

use crate::account::{Account, AccountEvent};
use crate::account_locks::AccountLocks;
use crate::actions::{self, ActionView, Approval, HistoryEntry};
use crate::client::Client;
use crate::enrollment::{self, BankHandoff, EnrollmentProgress, Start};
use crate::error::CoreError;
use crate::keystore::{Keystore, KeystoreError};
use crate::life;
use crate::sign_in::{self, SignInRequest};
use crate::software_keystore::SoftwareKeystore;
use crate::store::Store;

/// The keyring service under which [`Authenticator::open_with_software_keystore`] keeps its
/// keys and secrets.
const SOFTWARE_KEYSTORE_SERVICE: &str = "be.sleutel.core";

/// What every operation works with.
pub(crate) struct Context {
    pub(crate) store: Store,
    pub(crate) keystore: Arc<dyn Keystore>,
    pub(crate) client: Client,
    pub(crate) server_url: String,
    /// The RFC 7638 thumbprint of the server signing key the app was configured with, if any:
    /// only that key is pinned at enrollment.
    pub(crate) server_key_thumbprint: Option<String>,
    /// The calls of one account that touch its code or biometric key run one at a time.
    pub(crate) account_locks: AccountLocks,
}

/// The phone-side authenticator: enrolls the phone for a person, receives and shows the requests
/// of online services, and answers them with the device key and the 5-digit code.
///
/// Open one per app and keep it: every method may be called from any thread. The async methods
/// need a tokio runtime (the bindings start one on first use) and may block their thread on the
/// keystore (a biometric prompt, a hardware round trip): call them from a background
/// dispatcher, not the UI thread.
#[cfg_attr(feature = "uniffi", derive(uniffi::Object))]
pub struct Authenticator {
    pub(crate) ctx: Context,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("server_url", &self.ctx.server_url)
            .finish_non_exhaustive()
    }
}

#[cfg_attr(feature = "uniffi", uniffi::export(async_runtime = "tokio"))]
impl Authenticator {
    /// Opens the authenticator with its store in `data_dir` (created if needed, migrated to the
    /// current schema) for the server at `server_url`, signing with `keystore`. The URL must be
    /// `https`, or plain `http` to a loopback address (`127.0.0.0/8`, `localhost`, `[::1]`)
    /// for development; anything else is [`CoreError::InvalidInput`]. A file that is not a
    /// Sleutel store gives [`CoreError::CorruptStore`]. When `server_key_thumbprint` is given
    /// (the base64url RFC 7638 thumbprint of the server's signing key, shipped with the app),
    /// an enrollment pins only that key and is refused with [`CoreError::ServerUntrusted`] if
    /// the server does not publish it. The thumbprint is not stored: pass it at every open.
    // A plain attribute, not a `cfg_attr`: uniffi reads a constructor's arguments (here the
    // default) only from a plain one. Without the `uniffi` feature the impl is not exported and
    // the attribute does nothing.
    #[uniffi::constructor(default(server_key_thumbprint = None))]
    pub fn open(
        data_dir: String,
        server_url: String,
        keystore: Arc<dyn Keystore>,
        server_key_thumbprint: Option<String>,
    ) -> Result<Self, CoreError> {
        let server_url = check_server_url(&server_url)?;
        let server_key_thumbprint = server_key_thumbprint
            .as_deref()
            .map(check_thumbprint)
            .transpose()?;
        let store = Store::open(Path::new(&data_dir))?;
        let client = Client::new()?;
        Ok(Self {
            ctx: Context {
                store,
                keystore,
                client,
                server_url,
                server_key_thumbprint,
                account_locks: AccountLocks::default(),
            },
        })
    }

    /// Like [`Authenticator::open`], with the core's [`SoftwareKeystore`] instead of a platform
    /// one: P-256 keys kept as secrets in the default keyring-core credential store that the
    /// embedding app registered. It cannot gate keys on biometrics. Without a registered store
    /// the answer is [`CoreError::Keystore`] with [`KeystoreError::Unavailable`].
    #[uniffi::constructor(default(server_key_thumbprint = None))]
    pub fn open_with_software_keystore(
        data_dir: String,
        server_url: String,
        server_key_thumbprint: Option<String>,
    ) -> Result<Self, CoreError> {
        let store =
            keyring_core::get_default_store().ok_or_else(|| KeystoreError::Unavailable {
                detail: "no default keyring-core credential store is registered".into(),
            })?;
        let keystore = Arc::new(SoftwareKeystore::new(store, SOFTWARE_KEYSTORE_SERVICE));
        Self::open(data_dir, server_url, keystore, server_key_thumbprint)
    }

    /// The server this authenticator enrolls with.
    pub fn server_url(&self) -> String {
        self.ctx.server_url.clone()
    }

    /// Starts an enrollment through a bank for `phone_number` (a Belgian mobile number): makes a
    /// new device key and returns where to send the person. Replaces any enrollment in progress.
    pub async fn start_bank_enrollment(
        &self,
        phone_number: String,
        bank: Bank,
    ) -> Result<BankHandoff, CoreError> {
        enrollment::start_bank_enrollment(&self.ctx, phone_number, bank).await
    }

    /// Starts an enrollment with the identification code the eID website gave for
    /// `phone_number` (after reading the eID with its PIN): makes a new device key, hands the
    /// code to the server and has it send the SMS control code. Replaces any enrollment in
    /// progress. A code of the wrong shape (or with a look-alike character such as `O` or `1`)
    /// is [`CoreError::InvalidInput`] on `identification_code` before anything is sent. The
    /// server's refusals: [`CoreError::WrongIdentityCode`] (also for a code issued for another
    /// number), [`CoreError::IdentityCodeExpired`], [`CoreError::IdentityCodeUsed`],
    /// [`CoreError::IdentityCodeBlocked`], [`CoreError::IdentityRefused`] (under age); the
    /// enrollment then waits at [`EnrollmentStep::IdentityCode`](crate::EnrollmentStep) for
    /// [`Authenticator::submit_identity_code`].
    pub async fn start_eid_enrollment(
        &self,
        phone_number: String,
        identification_code: String,
    ) -> Result<SmsSent, CoreError> {
        let code = enrollment::identification_code(&identification_code)?;
        enrollment::start_with_code(&self.ctx, phone_number, Start::Eid(code)).await
    }

    /// Starts an enrollment through the town-hall counter, which needs both of its factors:
    /// `activation_link`, the link of the counter's e-mail that the app was opened with
    /// (`sleutel://enroll/counter?activation=...`), and `activation_code`, the code the official
    /// handed out, typed by the person. Otherwise as [`Authenticator::start_eid_enrollment`].
    /// Before anything is sent, a link that is not the counter's (or carries no single
    /// well-formed token) is [`CoreError::InvalidInput`] on `activation_link`, and a code of the
    /// wrong shape, with a look-alike character, or that is a link, is
    /// [`CoreError::InvalidInput`] on `activation_code`. The server answers a wrong code (or a
    /// link it does not know) with [`CoreError::WrongIdentityCode`], counted on the enrollment
    /// and on the link's code; after too many the code is [`CoreError::IdentityCodeBlocked`].
    /// An expired link and code (14 days) are [`CoreError::IdentityCodeExpired`], used ones
    /// [`CoreError::IdentityCodeUsed`]. The link is kept (in the keystore) until the code step
    /// is over, so [`Authenticator::submit_identity_code`] needs only the code.
    pub async fn start_counter_enrollment(
        &self,
        phone_number: String,
        activation_link: String,
        activation_code: String,
    ) -> Result<SmsSent, CoreError> {
        let (activation_link, activation_code) = (
            Zeroizing::new(activation_link),
            Zeroizing::new(activation_code),
        );
        let how = enrollment::counter_start(&activation_link, &activation_code)?;
        enrollment::start_with_code(&self.ctx, phone_number, how).await
    }

    /// Types the identification or activation code again for the enrollment in progress (after
    /// a wrong code, or a [`CoreError::Network`]: a code the server had accepted then gives
    /// [`CoreError::WrongStep`] `{ expected: SmsCode }`, and the SMS went out). For the counter
    /// the code goes with the activation link the enrollment was started with; if the keystore
    /// no longer has it, the enrollment is abandoned ([`CoreError::EnrollmentExpired`]): open
    /// the link again.
    pub async fn submit_identity_code(&self, code: String) -> Result<SmsSent, CoreError> {
        enrollment::submit_identity_code(&self.ctx, code).await
    }

    /// Starts unblocking `account_id` (blocked after wrong codes, or from the block page) from
    /// this phone through its bank: the identity is proven again, then the SMS code
    /// ([`Authenticator::verify_sms_code`]) and a new code ([`Authenticator::choose_code`]).
    /// The unblock makes a new device key for the account: once the new code is chosen, the
    /// server revokes the old key (and any copy of it), and the old code no longer works. Until
    /// then the account keeps its key and code; an unblock that fails or is abandoned changes
    /// neither.
    pub async fn unblock_with_bank(
        &self,
        account_id: String,
        bank: Bank,
    ) -> Result<BankHandoff, CoreError> {
        enrollment::unblock_with_bank(&self.ctx, account_id, bank).await
    }

    /// Starts unblocking `account_id` with an identification code of the eID website, issued
    /// for the account's phone number; then as [`Authenticator::unblock_with_bank`].
    pub async fn unblock_with_eid(
        &self,
        account_id: String,
        identification_code: String,
    ) -> Result<SmsSent, CoreError> {
        let code = enrollment::identification_code(&identification_code)?;
        enrollment::unblock_with_code(&self.ctx, &account_id, Start::Eid(code)).await
    }

    /// Starts unblocking `account_id` through the counter: the e-mail's `activation_link` and
    /// the `activation_code` handed out there, checked as in
    /// [`Authenticator::start_counter_enrollment`]; then as [`Authenticator::unblock_with_bank`].
    pub async fn unblock_with_counter(
        &self,
        account_id: String,
        activation_link: String,
        activation_code: String,
    ) -> Result<SmsSent, CoreError> {
        let (activation_link, activation_code) = (
            Zeroizing::new(activation_link),
            Zeroizing::new(activation_code),
        );
        let how = enrollment::counter_start(&activation_link, &activation_code)?;
        enrollment::unblock_with_code(&self.ctx, &account_id, how).await
    }

    /// Takes the link the bank's app returned to (`sleutel://enroll/bank?...`), hands the
    /// identity to the server and has it send the SMS control code. After a
    /// [`CoreError::Network`] or [`CoreError::ServerUnavailable`], call it again with the same
    /// link; if the server had already accepted the identity, the answer is
    /// [`CoreError::WrongStep`] `{ expected: SmsCode }` and the enrollment has moved on to the
    /// SMS code.
    pub async fn complete_bank_handoff(&self, deep_link: String) -> Result<SmsSent, CoreError> {
        enrollment::complete_bank_handoff(&self.ctx, deep_link).await
    }

    /// Asks for a new SMS control code. [`CoreError::WrongStep`] `{ expected: SmsCode }` means
    /// the server has no code to resend: verify the code already received.
    pub async fn resend_sms_code(&self) -> Result<SmsSent, CoreError> {
        enrollment::resend_sms_code(&self.ctx).await
    }

    /// Checks the 6-digit SMS control code with the server. After a [`CoreError::Network`] or
    /// [`CoreError::ServerUnavailable`], call it again: a code the server had accepted is
    /// accepted again. [`CoreError::EnrollmentExpired`] also comes when the server is not at
    /// the SMS step (this phone and the server disagree): start again.
    pub async fn verify_sms_code(&self, code: String) -> Result<(), CoreError> {
        enrollment::verify_sms_code(&self.ctx, code).await
    }

    /// Sets the 5-digit code (typed twice), registers the device and PIN keys, and returns the
    /// new account. Trivial codes are refused with [`CoreError::WeakCode`]. After a
    /// [`CoreError::Network`] or [`CoreError::ServerUnavailable`] the server may have
    /// registered the code: the enrollment stays at this step, and calling again with the same
    /// code within the enrollment's lifetime finishes it; another code then gives
    /// [`CoreError::EarlierCodeRegistered`] and counts as a wrong code. With a
    /// configured server key thumbprint, a server that does not publish that key gives
    /// [`CoreError::ServerUntrusted`] before anything is registered.
    pub async fn choose_code(
        &self,
        code: String,
        confirmation: String,
    ) -> Result<Account, CoreError> {
        enrollment::choose_code(&self.ctx, code, confirmation).await
    }

    /// The enrollment in progress, if any: the app resumes it after a restart.
    pub fn enrollment_in_progress(&self) -> Result<Option<EnrollmentProgress>, CoreError> {
        enrollment::in_progress(&self.ctx)
    }

    /// The accounts enrolled on this phone, oldest first.
    pub fn accounts(&self) -> Result<Vec<Account>, CoreError> {
        Ok(self
            .ctx
            .store
            .accounts()?
            .iter()
            .map(Account::from)
            .collect())
    }

    /// Handles a push message (JSON with `account_id` and `request_id`): fetches the request,
    /// verifies it against the pinned server keys, keeps it, and returns what to show.
    pub async fn handle_push(&self, payload: String) -> Result<ActionView, CoreError> {
        actions::handle_push(&self.ctx, payload).await
    }

    /// Asks the server for the pending requests of every account, keeps those that verify,
    /// forgets those the server no longer lists, and returns the pending requests of the
    /// accounts refreshed. An account whose refresh fails (its server unreachable, say) keeps
    /// its stored requests (see [`Authenticator::pending`]) and does not stop the others; a
    /// revoked device marks its account revoked. Only when every account failed is the first
    /// error returned. At most 16 listed requests per account are looked at.
    pub async fn refresh_pending(&self) -> Result<Vec<ActionView>, CoreError> {
        actions::refresh_pending(&self.ctx).await
    }

    /// Opens a sign-in link for `account_id`: the QR code a sign-in page shows, scanned with the
    /// app's camera (`https://<server>/app/scan?...`, never opened by a tap), or the "open the
    /// app" link tapped on this phone (app-to-app; the platform opens the app with
    /// `https://<server>/app/sign-in?...`). The server binds the browser's sign-in to
    /// the account and starts its request; the answer is the request to show, which the person
    /// then approves or declines with [`Authenticator::approve`] or [`Authenticator::decline`]
    /// exactly as one that came by push. For a link tapped on this phone,
    /// [`SignInRequest::return_url`] is the URL to open after the answer: it takes the person
    /// back to the service.
    ///
    /// Refused before anything is sent: a link that is not an `https` sign-in link of this
    /// account's server (another host, plain http, another path, a missing, repeated or extra
    /// parameter): [`CoreError::NotASignInLink`]; an account not on this phone:
    /// [`CoreError::NoAccount`]; a blocked one: [`CoreError::AccountBlocked`]; a revoked
    /// one: [`CoreError::DeviceRevoked`].
    ///
    /// From the server: a QR code older than a few seconds, or a sign-in that ended:
    /// [`CoreError::SignInLinkExpired`] (scan again); a sign-in already bound by another scan
    /// or link: [`CoreError::SignInLinkUsed`]; a forged link: [`CoreError::NotASignInLink`];
    /// an account blocked meanwhile: [`CoreError::AccountBlocked`].
    pub async fn open_sign_in_link(
        &self,
        account_id: String,
        link: String,
    ) -> Result<SignInRequest, CoreError> {
        sign_in::open_sign_in_link(&self.ctx, account_id, link).await
    }

    /// The pending requests kept on this phone that have not expired, oldest first.
    pub fn pending(&self) -> Result<Vec<ActionView>, CoreError> {
        actions::pending(&self.ctx)
    }

    /// One pending request.
    pub fn show(&self, request_id: String) -> Result<ActionView, CoreError> {
        actions::show(&self.ctx, request_id)
    }

    /// Approves a pending request: signs the person's yes with the device key and the 5-digit
    /// code or the biometric key, and sends it. `approval` says how the person confirmed
    /// ([`Verification`](crate::Verification): the code, or the biometric, for which the
    /// platform shows its prompt with the request's text), the number picked under number
    /// matching, and which optional claims are shared (`None`: every claim asked for, required
    /// and optional).
    ///
    /// Refused before anything is signed or sent, the request staying pending:
    /// - a code that is not 5 digits: [`CoreError::CodeFormat`];
    /// - a request with [`ActionView::number_options`] approved without a number or with a
    ///   number not among them, or a number for a request that offers none:
    ///   [`CoreError::InvalidInput`] on `number`;
    /// - a claim in `optional_claims` that the request does not offer as optional (a required
    ///   one included: it is always shared): [`CoreError::InvalidInput`] on `optional_claims`.
    ///   A person who refuses a required claim declines instead;
    /// - the biometric for a request that demands the code ([`ActionView::code_only`]):
    ///   [`CoreError::CodeRequired`]; the biometric without biometrics enabled:
    ///   [`CoreError::BiometricsNotEnabled`];
    /// - an account the server has blocked: [`CoreError::AccountBlocked`], without any code
    ///   leaving the phone; a revoked one: [`CoreError::DeviceRevoked`].
    ///
    /// From the keystore: a cancelled biometric prompt is [`CoreError::Keystore`] with
    /// [`KeystoreError::UserCancelled`] and the request stays pending; a key the platform
    /// invalidated (the phone's biometrics changed) is [`CoreError::BiometricKeyInvalidated`]:
    /// biometrics are turned off for the account and the request stays pending for the code.
    ///
    /// From the server: a wrong code is [`CoreError::WrongCode`] with the attempts left, and the
    /// request stays pending; after the last one the account is blocked
    /// ([`CoreError::AccountBlocked`]). A number among the options that is not the one the
    /// relying party shows is [`CoreError::WrongNumber`]: the server declined the request and
    /// recorded it as suspicious. [`CoreError::CodeRequired`] for a biometric approval means
    /// the server knows no biometric key of this phone: biometrics are turned off here too. A
    /// request that has expired ([`CoreError::RequestExpired`]), was answered elsewhere
    /// ([`CoreError::RequestAlreadyAnswered`]) or is unknown ([`CoreError::UnknownRequest`]) is
    /// gone from the pending list, as after a wrong number.
    ///
    /// After a [`Authenticator::change_code`] whose answer was lost, an approval with the code
    /// first asks the server what became of that change, without the code:
    /// [`CoreError::EarlierCodeChangeRegistered`] when it took effect (nothing was sent with the
    /// code typed and the request stays pending: ask for the code chosen in that change), and
    /// otherwise the approval goes on with the code as it was. While the server cannot be asked,
    /// the approval fails with [`CoreError::Network`] or [`CoreError::ServerUnavailable`] and no
    /// code leaves the phone.
    pub async fn approve(&self, request_id: String, approval: Approval) -> Result<(), CoreError> {
        actions::approve(&self.ctx, request_id, approval).await
    }

    /// Declines a request; no code is needed. [`DeclineReason::NotMe`] tells the server the
    /// person did not start it.
    pub async fn decline(
        &self,
        request_id: String,
        reason: DeclineReason,
    ) -> Result<(), CoreError> {
        actions::decline(&self.ctx, request_id, reason).await
    }

    /// Changes the account's code: `current_code` authorises the change, `new_code` (typed twice
    /// as `new_code` and `confirmation`) becomes the code. The server replaces the PIN key; the
    /// old code no longer works. A wrong current code counts like a wrong code on an approval
    /// ([`CoreError::WrongCode`], then [`CoreError::AccountBlocked`]); a trivial new code is
    /// [`CoreError::WeakCode`].
    ///
    /// After a [`CoreError::Network`] or [`CoreError::ServerUnavailable`] the change may or may
    /// not have reached the server; the phone remembers it, across restarts. The next call that
    /// uses a code (this one again, [`Authenticator::approve`] with the code,
    /// [`Authenticator::enable_biometrics`]) first asks the server, with the device key alone:
    /// if the change took effect it ends with [`CoreError::EarlierCodeChangeRegistered`], the
    /// code typed unused and no wrong code counted, and the new code chosen then is the code;
    /// if not, the change is void for good and the call goes on with the old code.
    pub async fn change_code(
        &self,
        account_id: String,
        current_code: String,
        new_code: String,
        confirmation: String,
    ) -> Result<(), CoreError> {
        life::change_code(&self.ctx, account_id, current_code, new_code, confirmation).await
    }

    /// Enables biometrics for the account: creates a biometric-gated key in the keystore
    /// ([`crate::KeyProtection::Biometric`]; the platform prompts once) and registers it with the
    /// server, authorised by the code. Enabling again replaces the key (after an invalidation).
    /// A code change whose answer was lost is settled first, as for
    /// [`Authenticator::change_code`]: [`CoreError::EarlierCodeChangeRegistered`] means the
    /// code chosen then is now the code, and no key was created.
    pub async fn enable_biometrics(
        &self,
        account_id: String,
        code: String,
    ) -> Result<(), CoreError> {
        life::enable_biometrics(&self.ctx, account_id, code).await
    }

    /// Disables biometrics for the account: the server forgets the biometric key and the phone
    /// deletes it. [`CoreError::BiometricsNotEnabled`] when they were not enabled.
    pub async fn disable_biometrics(&self, account_id: String) -> Result<(), CoreError> {
        life::disable_biometrics(&self.ctx, account_id).await
    }

    /// Registers the push token the platform gave this app (`platform` [`PushPlatform::Fcm`]:
    /// the FCM registration token; [`PushPlatform::Apns`]: the APNs device token in
    /// hexadecimal) for the account's device on this phone, so that the server can wake the app
    /// when a request arrives. The server keeps one token per device: a new one replaces the
    /// old, and a token registered by another device of the same account moves to this one
    /// (each account on the phone keeps it: register it for every account). Call it after
    /// every activation or unblock, and whenever the platform hands out a new token;
    /// registering the same token again is harmless. The push message carries only the account and request
    /// ids: hand it to [`Authenticator::handle_push`].
    ///
    /// A token that is empty, too long or has characters outside its platform's alphabet is
    /// [`CoreError::InvalidInput`] on `token`, before anything is sent. An account not on this
    /// phone is [`CoreError::NoAccount`]; a revoked device [`CoreError::DeviceRevoked`]; a
    /// blocked account [`CoreError::AccountBlocked`] (blocking drops the token: register it
    /// again after the unblock). After a [`CoreError::Network`] call again.
    pub async fn register_push_token(
        &self,
        account_id: String,
        platform: PushPlatform,
        token: String,
    ) -> Result<(), CoreError> {
        life::register_push_token(&self.ctx, account_id, platform, token).await
    }

    /// Deactivates the account on this phone: the server revokes this device for good, and the
    /// phone forgets the account, its pending requests and its keys (the history stays). The
    /// person's other phones and the account itself stay. On [`CoreError::Network`] nothing
    /// changed here: call again.
    pub async fn deactivate(&self, account_id: String) -> Result<(), CoreError> {
        life::deactivate(&self.ctx, account_id).await
    }

    /// What happened to the accounts on this phone (activations, unblocks, code changes,
    /// biometrics, blocks, revocations, deactivations), newest first.
    pub fn account_events(&self) -> Result<Vec<AccountEvent>, CoreError> {
        self.ctx.store.account_events()
    }

    /// The decisions taken on this phone, newest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, CoreError> {
        actions::history(&self.ctx)
    }
}

/// Accepts an `https` base URL without query or fragment, or an `http` one whose host is a
/// loopback address, and drops a trailing slash so that paths can be appended. Plain http
/// anywhere else would let the network read and change everything, the identity token and the
/// server keys pinned at enrollment included; on loopback it is the developer's own machine.
fn check_server_url(server_url: &str) -> Result<String, CoreError> {
    let bad = |reason: &str| CoreError::invalid("server_url", reason);
    let url = url::Url::parse(server_url).map_err(|e| bad(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() || url.host().is_none() {
        return Err(bad("must be a base URL without query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(bad(
                "plain http is only allowed to a loopback address (127.0.0.0/8, localhost, \
                 [::1]); use https",
            ));
        }
        _ => return Err(bad("must be an https URL")),
    }
    Ok(server_url.trim_end_matches('/').to_owned())
}

/// Whether the URL's host is this machine: `localhost`, `127.0.0.0/8` or `::1`. (A name under
/// `.localhost` is not accepted: whether it resolves to loopback depends on the resolver.)
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Length in bytes of an RFC 7638 thumbprint with SHA-256.
const THUMBPRINT_BYTES: usize = 32;

/// Accepts a base64url SHA-256 thumbprint and returns it in canonical form (as
/// [`sleutel_protocol::jose::Jwk::thumbprint`] writes it), so a plain string comparison finds
/// the key.
fn check_thumbprint(thumbprint: &str) -> Result<String, CoreError> {
    let bad = || {
        CoreError::invalid(
            "server_key_thumbprint",
            "must be the base64url SHA-256 thumbprint (RFC 7638) of a key",
        )
    };
    let bytes =
        sleutel_protocol::jose::b64_decode(thumbprint.trim(), "thumbprint").map_err(|_| bad())?;
    if bytes.len() != THUMBPRINT_BYTES {
        return Err(bad());
    }
    Ok(sleutel_protocol::jose::b64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data directory as the constructors take it.
    fn data_dir(dir: &Path) -> String {
        dir.to_str().unwrap().to_owned()
    }

    fn open(dir: &Path) -> Result<Authenticator, CoreError> {
        let keystore = SoftwareKeystore::new(keyring_core::mock::Store::new().unwrap(), "test");
        Authenticator::open(
            data_dir(dir),
            "http://127.0.0.1:9/".into(),
            Arc::new(keystore),
            None,
        )
    }

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn authenticator_and_its_futures_can_cross_threads() {
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<Authenticator>();
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        assert_send(&auth.start_bank_enrollment(String::new(), Bank::Kbc));
        assert_send(&auth.complete_bank_handoff(String::new()));
        assert_send(&auth.resend_sms_code());
        assert_send(&auth.verify_sms_code(String::new()));
        assert_send(&auth.choose_code(String::new(), String::new()));
        assert_send(&auth.handle_push(String::new()));
        assert_send(&auth.refresh_pending());
        assert_send(&auth.approve(String::new(), Approval::code(String::new())));
        assert_send(&auth.decline(String::new(), DeclineReason::NotMe));
        assert_send(&auth.register_push_token(String::new(), PushPlatform::Fcm, String::new()));
        assert_send(&auth.open_sign_in_link(String::new(), String::new()));
    }

    #[test]
    fn open_creates_an_empty_store_and_trims_the_server_url() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(&dir.path().join("data")).unwrap();
        assert_eq!(auth.server_url(), "http://127.0.0.1:9");
        assert_eq!(auth.accounts().unwrap(), vec![]);
        assert_eq!(auth.enrollment_in_progress().unwrap(), None);
        assert_eq!(auth.pending().unwrap(), vec![]);
        assert_eq!(auth.history().unwrap(), vec![]);
    }

    #[test]
    fn open_refuses_a_garbage_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(crate::store::DB_FILE_NAME),
            b"not a database at all, just text",
        )
        .unwrap();
        assert!(matches!(
            open(dir.path()),
            Err(CoreError::CorruptStore { .. })
        ));
    }

    #[test]
    fn open_on_a_regular_file_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-directory");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(open(&file), Err(CoreError::Storage { .. })));
    }

    fn keystore() -> Arc<SoftwareKeystore> {
        Arc::new(SoftwareKeystore::new(
            keyring_core::mock::Store::new().unwrap(),
            "test",
        ))
    }

    fn refused_field(result: Result<Authenticator, CoreError>) -> Option<String> {
        match result {
            Err(CoreError::InvalidInput { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn open_refuses_a_server_url_that_is_not_https() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "ftp://x",
            "not a url",
            "https://x/?a=1",
            "https://x/#f",
            "file:///etc",
        ] {
            assert_eq!(
                refused_field(Authenticator::open(
                    data_dir(dir.path()),
                    bad.into(),
                    keystore(),
                    None
                )),
                Some("server_url".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn plain_http_is_refused_unless_the_host_is_loopback() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "http://sleutel.example",
            "http://example.org",
            "http://10.0.2.2:8080",
            "http://192.168.1.10",
            "http://[::2]",
            "http://[::ffff:127.0.0.1]",
            "http://localhost.evil.example",
            "http://app.localhost",
            "http://128.0.0.1",
        ] {
            assert_eq!(
                refused_field(Authenticator::open(
                    data_dir(dir.path()),
                    bad.into(),
                    keystore(),
                    None
                )),
                Some("server_url".into()),
                "{bad}"
            );
        }
        for good in [
            "https://sleutel.example",
            "https://10.0.2.2:8443/base/",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://localhost:3000/",
            "http://LOCALHOST",
            "http://[::1]:9",
        ] {
            assert!(
                Authenticator::open(data_dir(dir.path()), good.into(), keystore(), None).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn a_malformed_server_key_thumbprint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = sleutel_protocol::jose::b64([7u8; THUMBPRINT_BYTES]);
        for bad in [
            String::new(),
            "not base64url!".into(),
            sleutel_protocol::jose::b64([7u8; 20]),
            format!("{good}A"),
        ] {
            assert_eq!(
                refused_field(Authenticator::open(
                    data_dir(dir.path()),
                    "https://sleutel.example".into(),
                    keystore(),
                    Some(bad.clone())
                )),
                Some("server_key_thumbprint".into()),
                "{bad}"
            );
        }
        let auth = Authenticator::open(
            data_dir(dir.path()),
            "https://sleutel.example".into(),
            keystore(),
            Some(good.clone()),
        )
        .unwrap();
        assert_eq!(auth.ctx.server_key_thumbprint, Some(good));
    }

    // One test for both cases: the default credential store is process-wide.
    #[test]
    fn software_keystore_needs_a_registered_credential_store() {
        let dir = tempfile::tempdir().unwrap();
        keyring_core::unset_default_store();
        let refused = Authenticator::open_with_software_keystore(
            data_dir(dir.path()),
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
        let auth = Authenticator::open_with_software_keystore(
            data_dir(dir.path()),
            "http://127.0.0.1:9/".into(),
            None,
        )
        .unwrap();
        keyring_core::unset_default_store();
        assert_eq!(auth.server_url(), "http://127.0.0.1:9");
        assert_eq!(auth.accounts().unwrap(), vec![]);
    }

    #[tokio::test]
    async fn malformed_push_payload_is_invalid_input() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        for payload in [
            "",
            "not json",
            "{}",
            r#"{"account_id":"a"}"#,
            r#"{"account_id":"a","request_id":"r","extra":1}"#,
            r#"{"account_id":"a","request_id":"../../admin"}"#,
        ] {
            assert!(
                matches!(
                    auth.handle_push(payload.into()).await,
                    Err(CoreError::InvalidInput { .. })
                ),
                "{payload}"
            );
        }
    }

    #[tokio::test]
    async fn push_for_an_unknown_account_is_no_account() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        let payload = r#"{"account_id":"a1","request_id":"r1"}"#;
        assert_eq!(
            auth.handle_push(payload.into()).await,
            Err(CoreError::NoAccount)
        );
    }

    #[tokio::test]
    async fn enrollment_calls_without_an_enrollment_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        assert_eq!(
            auth.complete_bank_handoff("sleutel://enroll/bank".into())
                .await,
            Err(CoreError::NoEnrollmentInProgress)
        );
        assert_eq!(
            auth.verify_sms_code("123456".into()).await,
            Err(CoreError::NoEnrollmentInProgress)
        );
        assert_eq!(
            auth.choose_code("27182".into(), "27182".into()).await,
            Err(CoreError::NoEnrollmentInProgress)
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_any_network_call() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        assert_eq!(
            auth.start_bank_enrollment("+3223456789".into(), Bank::Kbc)
                .await,
            Err(CoreError::InvalidPhoneNumber)
        );
        assert!(matches!(
            auth.verify_sms_code("12a456".into()).await,
            Err(CoreError::InvalidInput { .. })
        ));
        assert_eq!(
            auth.choose_code("12345".into(), "12345".into()).await,
            Err(CoreError::WeakCode)
        );
        assert_eq!(
            auth.choose_code("27182".into(), "27183".into()).await,
            Err(CoreError::CodesDoNotMatch)
        );
        assert_eq!(
            auth.approve("r1".into(), Approval::code("1234")).await,
            Err(CoreError::CodeFormat)
        );
        assert_eq!(
            auth.approve("r1".into(), Approval::code("27182")).await,
            Err(CoreError::UnknownRequest)
        );
        assert_eq!(
            auth.decline("r1".into(), DeclineReason::Cancelled).await,
            Err(CoreError::UnknownRequest)
        );
        assert_eq!(auth.show("r1".into()), Err(CoreError::UnknownRequest));
    }

    /// A sign-in link of the server `open` configures, as the sign-in page makes it.
    const SIGN_IN_LINK: &str = "http://127.0.0.1:9/app/scan?kind=qr\
        &id=AAAAAAAAAAAAAAAAAAAAAA&step=880000000&mac=BBBBBBBBBBBBBBBBBBBBBB";

    fn not_a_sign_in_link(result: Result<SignInRequest, CoreError>) -> bool {
        matches!(result, Err(CoreError::NotASignInLink { .. }))
    }

    #[tokio::test]
    async fn a_sign_in_link_of_another_host_is_not_a_sign_in_link() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        let foreign = SIGN_IN_LINK.replace("127.0.0.1:9", "evil.example");
        assert!(not_a_sign_in_link(
            auth.open_sign_in_link("a1".into(), foreign).await
        ));
    }

    #[tokio::test]
    async fn a_sign_in_link_over_https_to_a_plain_http_server_is_not_a_sign_in_link() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        let other_scheme = SIGN_IN_LINK.replace("http://", "https://");
        assert!(not_a_sign_in_link(
            auth.open_sign_in_link("a1".into(), other_scheme).await
        ));
    }

    #[tokio::test]
    async fn garbage_is_not_a_sign_in_link() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        for garbage in [
            "",
            "not a link",
            "WIFI:S:home;T:WPA;P:secret;;",
            "sleutel://enroll/bank",
            "http://127.0.0.1:9/app/sign-in",
            "http://127.0.0.1:9/app/other?kind=app&id=AAAAAAAAAAAAAAAAAAAAAA&mac=BBBBBBBBBBBBBBBBBBBBBB",
        ] {
            assert!(
                not_a_sign_in_link(auth.open_sign_in_link("a1".into(), garbage.into()).await),
                "{garbage}"
            );
        }
    }

    #[tokio::test]
    async fn a_sign_in_link_for_an_account_not_on_the_phone_is_no_account() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        assert_eq!(
            auth.open_sign_in_link("a1".into(), SIGN_IN_LINK.into())
                .await,
            Err(CoreError::NoAccount)
        );
    }

    #[tokio::test]
    async fn unreachable_server_is_a_network_error_and_leaves_no_enrollment() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path()).unwrap();
        assert!(matches!(
            auth.start_bank_enrollment("+32470123456".into(), Bank::Kbc)
                .await,
            Err(CoreError::Network { .. })
        ));
        assert_eq!(auth.enrollment_in_progress().unwrap(), None);
    }
}
