//! The Sleutel phone core for Kotlin (package `be.sleutel.core`), Swift (module `SleutelCore`)
//! and Python, through uniffi.
//!
//! This crate is the table of contents of what an app can call:
//!
//! - [`Authenticator`]: open it on a data directory, a server and a keystore; enroll the phone
//!   (bank handoff, eID identification code or counter activation code; SMS control code;
//!   5-digit code); unblock, change the code, enable biometrics, deactivate; receive, show,
//!   approve (code or biometric) and decline the requests of online services; read the
//!   accounts, their events and the history.
//! - [`Keystore`]: the platform keystore the app implements (Android Keystore, Secure Enclave
//!   with the Keychain), with its [`KeystoreError`] and [`KeyProtection`].
//! - The values the calls return ([`Account`], [`ActionView`], [`HistoryEntry`],
//!   [`EnrollmentProgress`], ...) and the one error type, [`CoreError`], are the core's own
//!   types: they derive their uniffi traits in `sleutel-core` and `sleutel-protocol`.
//!
//! Async methods become Kotlin `suspend` functions, Swift `async` functions and Python
//! coroutines; they run on a tokio runtime that uniffi starts on first use. A panic in Rust
//! reaches the caller as an exception, never as a crash.

uniffi::setup_scaffolding!("sleutel");

mod authenticator;

pub use authenticator::Authenticator;
pub use sleutel_core::{
    Account, AccountEvent, AccountEventKind, AccountStatus, ActionKind, ActionView, Bank,
    BankHandoff, CoreError, Decision, DeclineReason, EnrollmentProgress, EnrollmentStep,
    HistoryEntry, IdentitySource, KeyProtection, Keystore, KeystoreError, SmsSent, Transaction,
    UvMethod,
};
