//! The server over real HTTP: a real server on a loopback port with a temporary SQLite file,
//! a phone and a relying party played with the protocol crate's helpers.

// A test crate: its helpers are `pub` for the test modules beside them, and a failed unwrap is a
// failed test.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod authcode;
mod bad_input;
mod binary;
mod client_assertion;
mod common;
mod concurrency;
mod device_life;
mod devices;
mod enrollment;
mod evidence;
mod guessing;
mod health;
mod identity_guesses;
mod instances;
mod limits;
mod listening;
mod login;
mod pending;
mod push_delivery;
mod push_tokens;
mod reports;
mod resource_limits;
mod shown_text;
mod sign_in_links;
mod sources;
mod unanswerable;
mod unblock;
