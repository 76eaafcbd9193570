//! The end-to-end tests, in one binary: a real server on loopback per test (the harness's
//! in-process server), simulated citizens, the real phone core on virtual phones, and relying
//! parties over OpenID Connect CIBA. One module per part of the story; the tests run in parallel.

// A test crate: its helpers are `pub` for the test modules beside them, and a failed unwrap is a
// failed test.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod account_life;
mod cli;
mod common;
mod consent;
mod crash;
mod defences;
mod enrollment;
mod hostile;
mod login;
mod relying_parties;
mod sign_in_links;
mod sources;
