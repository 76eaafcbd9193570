//! The Sleutel phone core for Kotlin (package `be.sleutel.core`), Swift (module `SleutelCore`)
//! and Python (package `sleutel`), through uniffi: the library the apps link.
//!
//! This crate is the table of contents of what an app can call. Everything is defined, and
//! documented once, in `sleutel-core` and `sleutel-protocol`, which export it to uniffi behind
//! their `uniffi` feature; this crate turns the feature on and builds the one library
//! (`libsleutel_ffi`) that carries the scaffolding of both.
//!
//! - [`Authenticator`]: open it on a data directory, a server and a keystore (or the software
//!   keystore); enroll the phone (bank handoff, eID identification code or counter activation
//!   code; SMS control code; 5-digit code); unblock, change the code, enable biometrics,
//!   deactivate; register the push token of a [`PushPlatform`]; receive, show,
//!   [`approve`](Authenticator::approve) (with an [`Approval`]: the code or the biometric, the
//!   number picked, the optional claims shared) and decline the requests of online services;
//!   read the accounts, their events and the history.
//! - [`Keystore`]: the platform keystore the app implements (Android Keystore, Secure Enclave
//!   with the Keychain), with its [`KeystoreError`] and [`KeyProtection`].
//! - The values the calls take and return ([`Approval`], [`Account`], [`ActionView`],
//!   [`HistoryEntry`], [`EnrollmentProgress`], ...) and the one error type, [`CoreError`].
//!
//! Async methods become Kotlin `suspend` functions, Swift `async` functions and Python
//! coroutines; they run on a tokio runtime that uniffi starts on first use. A panic in Rust
//! reaches the caller as an exception, never as a crash.

pub use sleutel_core::{
    Account, AccountEvent, AccountEventKind, AccountStatus, ActionKind, ActionView, Approval,
    Authenticator, Bank, BankHandoff, CoreError, Decision, DeclineReason, EnrollmentProgress,
    EnrollmentStep, HistoryEntry, IdentitySource, KeyProtection, Keystore, KeystoreError,
    PushPlatform, SignInRequest, SmsSent, Transaction, UvMethod, Verification,
};
