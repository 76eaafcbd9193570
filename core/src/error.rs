//! The one error type of the core, with a variant for every situation a caller can act on.

use thiserror::Error;

use crate::enrollment::EnrollmentStep;
use crate::keystore::KeystoreError;

/// Why an operation of the authenticator failed. Each variant names what the app can do about
/// it: ask again, show a message, start over, or report a fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum CoreError {
    /// An argument is malformed (a push payload, an identifier, an SMS code of the wrong shape).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which argument.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The phone number is not a Belgian mobile number.
    #[error("not a Belgian mobile number")]
    InvalidPhoneNumber,
    /// The chosen code is too easy to guess (repeated digit, straight run, very common code).
    #[error("this code is too easy to guess")]
    WeakCode,
    /// The code is not exactly 5 digits.
    #[error("the code must be exactly 5 digits")]
    CodeFormat,
    /// The code and its confirmation differ.
    #[error("the two codes do not match")]
    CodesDoNotMatch,
    /// There is no enrollment going on: start one first.
    #[error("no enrollment in progress")]
    NoEnrollmentInProgress,
    /// The enrollment is waiting for another step than the one called. `expected` is always
    /// where the enrollment now stands on this phone (after following the server, when the
    /// server said it had moved on), so calling the step it names makes progress.
    #[error("the enrollment is waiting for {expected:?}")]
    WrongStep {
        /// The step the enrollment is waiting for: the call the app should make instead.
        expected: EnrollmentStep,
    },
    /// The enrollment cannot go on: it took too long, the server forgot it, or the server is at
    /// a step this phone cannot follow. The phone has forgotten it: start again.
    #[error("the enrollment has expired; start again")]
    EnrollmentExpired,
    /// The server already registered the code chosen in an earlier `choose_code` of this
    /// enrollment, whose answer was lost (a dropped connection or a server failure), and the
    /// code typed now is another one. The server counted it as a wrong code, like any other
    /// guess of the registered code: `attempts_left` more before the account is blocked
    /// ([`CoreError::AccountBlocked`]). The enrollment stays at the code step: ask for the
    /// code chosen the first time and call `choose_code` with it again, within the
    /// enrollment's lifetime. A person who no longer knows it starts a new enrollment, which
    /// replaces that code.
    ///
    /// The phone cannot tell the two codes apart itself: it keeps no trace of a code, so the
    /// server's refusal is the only sign.
    #[error(
        "the code chosen earlier is already registered; enter that code ({attempts_left} attempt(s) left)"
    )]
    EarlierCodeRegistered {
        /// Wrong codes left before the account is blocked.
        attempts_left: u32,
    },
    /// The bank's return link carried an error, is malformed, or belongs to another enrollment.
    #[error("the bank handoff was refused: {reason}")]
    HandoffRefused {
        /// What went wrong, for display.
        reason: String,
    },
    /// The server did not accept the identity (invalid token, or the person is not admitted).
    #[error("the identity was refused: {reason}")]
    IdentityRefused {
        /// The server's explanation.
        reason: String,
    },
    /// Wrong identification code (eID) or activation code (counter). At 0 attempts left the
    /// code no longer works (eID: ask the website for a new one) or the enrollment has ended.
    #[error("wrong code, {attempts_left} attempt(s) left")]
    WrongIdentityCode {
        /// Tries left before the code or the enrollment stops accepting codes.
        attempts_left: u32,
    },
    /// The identification or activation code has expired (an activation code after 14 days):
    /// the person asks for a new one.
    #[error("this code has expired; ask for a new one")]
    IdentityCodeExpired,
    /// The identification or activation code was already used: each code works once.
    #[error("this code was already used; ask for a new one")]
    IdentityCodeUsed,
    /// The identification code was typed wrong too often and no longer works.
    #[error("this code no longer works after too many wrong tries; ask for a new one")]
    IdentityCodeBlocked,
    /// Wrong SMS code.
    #[error("wrong SMS code, {attempts_left} attempt(s) left")]
    WrongSmsCode {
        /// Attempts before the enrollment is ended.
        attempts_left: u32,
    },
    /// The SMS code expired: ask for a new one.
    #[error("the SMS code has expired")]
    SmsCodeExpired,
    /// Too many wrong SMS codes: the enrollment is over.
    #[error("too many wrong attempts; start again")]
    TooManyAttempts,
    /// A new SMS code was asked for too soon.
    #[error("wait {retry_after_secs} s before asking for a new SMS code")]
    ResendTooSoon {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// Too many of something for now: activations started (with this phone's key, from this
    /// network, or on the server as a whole), SMS codes sent to this number in the last hour,
    /// or wrong SMS codes typed for this number today. Try again after `retry_after_secs`
    /// seconds; nothing was started, sent or checked.
    #[error("too many attempts for now; try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// Wrong 5-digit code; the request stays open.
    #[error("wrong code, {attempts_left} attempt(s) left")]
    WrongCode {
        /// Attempts before the account is blocked.
        attempts_left: u32,
    },
    /// The account is blocked after too many wrong codes: the person must prove their identity
    /// again.
    #[error("the account is blocked")]
    AccountBlocked,
    /// An earlier `change_code` of this account lost its answer (a dropped connection, a
    /// server failure, the app killed), and the phone has now learnt from the server that the
    /// change took effect: the new code chosen then is the account's code from now on. Nothing
    /// was done with the code typed in this call: it was neither used nor sent, and no wrong
    /// code was counted. Tell the person that the code chosen in the interrupted change is now
    /// their code, and ask for it again (for an approval: the request is still pending).
    ///
    /// Had the change not taken effect, the call would have gone on with the old code as if
    /// nothing had happened.
    #[error("the code chosen in an interrupted code change is now the code; enter that code")]
    EarlierCodeChangeRegistered,
    /// The request must be confirmed with the 5-digit code: the relying party does not accept a
    /// biometric (or the server knows no biometric key of this phone).
    #[error("this request must be confirmed with the code")]
    CodeRequired,
    /// Biometrics are not enabled for this account on this phone.
    #[error("biometrics are not enabled for this account")]
    BiometricsNotEnabled,
    /// The platform invalidated the biometric key (the biometrics enrolled on the phone
    /// changed). The phone has turned biometrics off for the account: confirm with the code, and
    /// enable biometrics again if wanted.
    #[error("the biometric key was invalidated; use the code, then enable biometrics again")]
    BiometricKeyInvalidated,
    /// The number picked is not the one the relying party shows. The server declined the
    /// request and recorded it as suspicious; it is gone from the pending list.
    #[error("that is not the number the service shows; the request was declined")]
    WrongNumber,
    /// The link is not a sign-in link of this account's server (another site's link, plain
    /// http, a malformed or forged one): nothing was sent. Show that this code or link is not
    /// for Sleutel.
    #[error("not a Sleutel sign-in link: {reason}")]
    NotASignInLink {
        /// What is wrong with it, for logs.
        reason: String,
    },
    /// The sign-in link has expired: the QR code changed since it was scanned (each code lasts
    /// seconds), or the sign-in on the page ended. Scan the code the page shows now, or start
    /// again at the service.
    #[error("this sign-in code has expired; scan the code shown now")]
    SignInLinkExpired,
    /// The sign-in was already taken by an earlier scan or link (each sign-in is bound once):
    /// start again at the service.
    #[error("this sign-in was already used; start again at the service")]
    SignInLinkUsed,
    /// The request has expired.
    #[error("the request has expired")]
    RequestExpired,
    /// The request was already answered (perhaps on another phone).
    #[error("the request was already answered")]
    RequestAlreadyAnswered,
    /// No such request on this phone or on the server.
    #[error("unknown request")]
    UnknownRequest,
    /// The server sent something that does not check out against the pinned keys (signature,
    /// issuer, audience). Such a request is never stored or shown.
    #[error("the server could not be trusted: {reason}")]
    ServerUntrusted {
        /// What failed to verify (no content of the request).
        reason: String,
    },
    /// This phone was revoked for the account (for instance by an activation on another phone).
    #[error("this device was revoked")]
    DeviceRevoked,
    /// No account on this phone matches.
    #[error("no such account on this phone")]
    NoAccount,
    /// The platform keystore failed or the person cancelled its prompt; `error` says which.
    #[error("keystore: {error}")]
    Keystore {
        /// What the keystore reported.
        #[from]
        error: KeystoreError,
    },
    /// The server could not be reached.
    #[error("network: {detail}")]
    Network {
        /// The transport error.
        detail: String,
    },
    /// The server's answer could not be used: a server failure (5xx), a page that did not come
    /// from the Sleutel API (a proxy, a captive portal), or an answer the phone could not read
    /// (malformed, or larger than the protocol allows). Like [`CoreError::Network`], the server
    /// may or may not have acted on the call: the phone keeps what it needs, and the same call
    /// can be made again.
    #[error("the server is unavailable{}: {detail}", status_suffix(*.status))]
    ServerUnavailable {
        /// The HTTP status of a failure answer (5xx, or a non-API page with any error status);
        /// `None` when a success answer could not be read.
        status: Option<u16>,
        /// What was wrong with the answer, for logs.
        detail: String,
    },
    /// The Sleutel API refused the call with an error the app is not expected to handle (a
    /// malformed request, a bad proof): a JSON error body with a 4xx status.
    #[error("server error {code}: {description}")]
    Server {
        /// The server's error code (`api::codes`).
        code: String,
        /// The server's explanation.
        description: String,
    },
    /// The local store is not a Sleutel store or is damaged.
    #[error("the local store is corrupt or foreign: {detail}")]
    CorruptStore {
        /// What was found.
        detail: String,
    },
    /// The local store could not be read or written (disk full, permissions).
    #[error("storage: {detail}")]
    Storage {
        /// The storage error.
        detail: String,
    },
}

impl CoreError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn untrusted(reason: impl Into<String>) -> Self {
        Self::ServerUntrusted {
            reason: reason.into(),
        }
    }

    pub(crate) fn storage(detail: impl std::fmt::Display) -> Self {
        Self::Storage {
            detail: detail.to_string(),
        }
    }

    pub(crate) fn unavailable(status: Option<u16>, detail: impl Into<String>) -> Self {
        Self::ServerUnavailable {
            status,
            detail: detail.into(),
        }
    }

    pub(crate) fn corrupt(detail: impl Into<String>) -> Self {
        Self::CorruptStore {
            detail: detail.into(),
        }
    }
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl From<rusqlite::Error> for CoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                Self::corrupt(e.to_string())
            }
            _ => Self::storage(e),
        }
    }
}
