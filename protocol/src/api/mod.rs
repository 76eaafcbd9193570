//! HTTP paths and JSON bodies of the Sleutel server, by who calls them:
//!
//! - the phone API (`/v1/...`, every call with a DPoP-style proof) and the app's own deep links
//!   (the bank's return link, the counter's activation link), at the root of this module;
//! - [`sign_in`]: the sign-in links of the browser sign-in (rotating QR code, app-to-app) and the
//!   device call that hands one to the server;
//! - [`oidc`]: the OpenID Connect CIBA endpoints for relying parties and the ID token;
//! - `sim` (feature `sim`): the simulators under `/sim/` (citizens, cards, the eID website, the
//!   counter, the block page, a bank's form, the outboxes), for the reference server and the
//!   harness only; the phone library is built without them.
//!
//! Every error, on every path, is a JSON [`ApiError`] with an HTTP 4xx/5xx status and one of the
//! [`codes`]; the OIDC endpoints use the OAuth error codes of RFC 6749 / CIBA in the same shape.

mod error;
pub mod oidc;
mod phone;
pub mod sign_in;
#[cfg(feature = "sim")]
pub mod sim;

pub use error::{ApiError, codes};
pub use phone::*;

/// What `Debug` shows instead of a code or PIN, so no secret reaches a log.
const REDACTED: &str = "<redacted>";
