//! Sleutel reference server: phone enrollment (bank-app handoff, eID identification code or
//! counter activation code, SMS control code, device and PIN keys), the account's life (code
//! change, biometric key, push token, deactivation, blocking, history), signed action requests
//! and two-signature responses, push through FCM and APNs or an outbox, OpenID Connect CIBA
//! (poll and ping modes) for relying parties, and simulators of the banks, the eID website, the
//! counter, the block page, SMS, e-mail and push.
//!
//! Everything lives in one database, including the server's signing key, so a restart keeps
//! accounts and keys: a SQLite file by default, or a PostgreSQL database that several instances
//! share (`store`). [`start`] binds, migrates and serves in the background, or says why it
//! cannot ([`StartError`]); tests drive the returned [`RunningServer`] over real HTTP, and with
//! the `testing` feature also read what no route serves (a request's evidence, an account's
//! history). Wire types and rules come from `sleutel-protocol`.

mod auth;
mod code_attempts;
pub mod config;
mod device;
mod enrollment;
mod error;
mod events;
mod extract;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod housekeeping;
pub mod html;
mod keys;
mod notify;
mod oidc;
mod push;
mod push_tokens;
mod random;
mod rate;
mod requests;
mod serve;
mod server;
mod sim;
mod sms;
mod store;
#[cfg(feature = "testing")]
mod testing;

// The one reading of the clock, shared with the phone core (`crate::clock::now()` here).
use sleutel_protocol::clock;

pub use config::{
    ApnsConfig, ApnsEnvironment, AppLinksConfig, ClientAuthentication, DeliveryMode, FcmConfig,
    Policy, PushConfig, RelyingPartyConfig, ServerConfig,
};
pub use error::{ServerError, StartError};
pub use server::{RunningServer, start};
pub use sleutel_protocol::identity::Bank;
pub use store::Database;
#[cfg(feature = "testing")]
pub use testing::{
    AccountParts, EnrollmentState, OpenedDatabase, RequestEvidence, RequestLookup, RequestState,
    SqlValue,
};
