//! The core's tests that run a whole [`crate::Authenticator`] against the in-process
//! [`fake_server`]: the wire format, the account's life, the push token, lost answers and
//! unblocks. Each module's own unit tests stay beside its code.

mod conformance;
pub(crate) mod fake_server;
mod life;
mod push;
mod recovery;
mod unblock;
