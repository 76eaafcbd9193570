//! Wire types, JOSE helpers and validation rules shared by the Sleutel phone core and server.
//!
//! Nothing here does I/O: every check takes the current time as an argument, so both ends (and
//! their tests) apply exactly the same rules. The modules follow the protocol's concepts:
//!
//! - [`clock`]: the one reading of the system clock, for the callers (no check here reads it).
//! - [`jose`]: base64url, P-256 JWKs and their thumbprints, compact and general-JSON ES256 JWS.
//! - [`dpop`]: the DPoP-style proof every phone request carries.
//! - [`identity`]: identity tokens from banks (and later eID and counter), national register numbers.
//! - [`claims`]: the identity claims a relying party can ask for.
//! - [`action`]: the signed action request the server sends to a phone.
//! - [`response`]: the phone's answer, signed by the device key and the user-verification key.
//! - [`approval`]: what an ID token says the person approved (the `sleutel_action` claim).
//! - [`api`]: HTTP paths and JSON bodies: the phone API, OIDC CIBA (`api::oidc`), the error
//!   body and codes, and (feature `sim`) the simulators (`api::sim`).
//! - [`phone`]: Belgian mobile numbers in E.164.
//! - [`display`]: cleaning of text from servers before it reaches a screen.
//! - [`limits`]: every size, count and time limit, with its reason.

#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();

pub mod action;
pub mod api;
pub mod approval;
pub mod claims;
pub mod clock;
pub mod display;
pub mod dpop;
mod error;
pub mod identity;
pub mod jose;
pub mod limits;
pub mod phone;
pub mod response;

pub use error::ProtocolError;

/// Result type of this crate.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
