//! The Sleutel authenticator: the phone side of a citizen's digital key.
//!
//! An [`Authenticator`] enrolls the phone for a person (bank handoff, eID identification code or
//! counter activation code, SMS control code, a chosen 5-digit code), then receives the signed
//! requests of online services, shows them, and answers with two signatures: the device key (held
//! by the platform [`Keystore`]) and a PIN key derived on demand from the code, never stored.
//! Everything is kept in a local SQLite store; secrets go through the keystore. With the `uniffi`
//! feature, the [`Authenticator`] and the public types and errors derive their uniffi traits: this
//! API is the one Kotlin, Swift and Python call, built into one library by the bindings crate
//! (`sleutel-ffi`). With the `testing` feature, [`testing`] holds the test keystore with a
//! simulated biometric sensor that the core's own tests and the harness's virtual phones use.

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

// The core's diagnostics: `tracing` events with the `logs` feature (on by default, so the
// harness's virtual phones and the tests log), nothing at all without it. The phones' library
// (sleutel-ffi) turns the feature off: no subscriber can be installed through the bindings, so
// on a phone every event would go nowhere, yet each call site costs code (the library's size
// budget, docs/performance.md). Without the feature the arguments are still type-checked and
// count as used, and no code is emitted for them. Defined before the modules so that all of them
// see the macros.
#[cfg(feature = "logs")]
macro_rules! debug {
    ($($arg:tt)+) => { ::tracing::debug!($($arg)+) };
}
#[cfg(feature = "logs")]
macro_rules! warn {
    ($($arg:tt)+) => { ::tracing::warn!($($arg)+) };
}
#[cfg(not(feature = "logs"))]
macro_rules! debug {
    ($field:ident = $(%)? $value:expr, $($rest:tt)+) => {{
        if false {
            let _ = &$value;
        }
        debug!($($rest)+)
    }};
    ($($message:tt)+) => {
        if false {
            let _ = ::std::format_args!($($message)+);
        }
    };
}
#[cfg(not(feature = "logs"))]
macro_rules! warn {
    ($field:ident = $(%)? $value:expr, $($rest:tt)+) => {{
        if false {
            let _ = &$value;
        }
        warn!($($rest)+)
    }};
    ($($message:tt)+) => {
        if false {
            let _ = ::std::format_args!($($message)+);
        }
    };
}

mod account;
mod account_locks;
mod actions;
mod authenticator;
mod client;
mod enrollment;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod keystore;
mod life;
mod pin;
mod server_keys;
mod sign_in;
mod software_keystore;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use account::{Account, AccountEvent, AccountEventKind, AccountStatus};
pub use actions::{ActionView, Approval, HistoryEntry, Verification};
pub use authenticator::Authenticator;
pub use enrollment::{BankHandoff, EnrollmentProgress, EnrollmentStep};
pub use error::CoreError;
pub use keystore::{KeyProtection, Keystore, KeystoreError};
pub use sign_in::SignInRequest;
pub use software_keystore::SoftwareKeystore;

pub use sleutel_protocol::action::{ActionKind, SignDocument, Transaction};
pub use sleutel_protocol::api::{PushPlatform, SmsSent};
pub use sleutel_protocol::identity::{Bank, IdentitySource};
pub use sleutel_protocol::response::{Decision, DeclineReason, UvMethod};

// The one reading of the clock, shared with the server (`crate::now()` in this crate).
use sleutel_protocol::clock::now;

/// A fresh random identifier: [`sleutel_protocol::limits::ID_BYTES`] bytes from the OS
/// generator in base64url, unique enough that ids never repeat (proof ids in the server's replay
/// window, key aliases across enrollments).
pub(crate) fn random_id() -> Result<String, CoreError> {
    let mut bytes = [0u8; sleutel_protocol::limits::ID_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| CoreError::storage(format!("random generator: {e}")))?;
    Ok(sleutel_protocol::jose::b64(bytes))
}
