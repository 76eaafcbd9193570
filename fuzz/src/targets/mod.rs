//! The targets' bodies, one module each: the fuzz binaries (`fuzz_targets/`) call them, and so
//! does the seed test, so that a seed is checked by exactly what fuzzes it.

pub mod action_request;
pub mod api_bodies;
pub mod authorize_query;
pub mod bank_form;
pub mod bank_return_link;
pub mod bc_authorize_form;
pub mod browser_headers;
pub mod client_assertion;
pub mod compact_jws;
pub mod counter_activation_link;
pub mod dpop_proof;
pub mod error_answer;
pub mod general_jws;
pub mod id_token;
pub mod identity_token;
pub mod push_payload;
pub mod server_keys;
pub mod sign_in_link;
pub mod token_form;
pub mod typed_codes;

/// A target's body: runs on one input; true when the reader under test accepted it.
pub type Run = fn(&[u8]) -> bool;

/// Every target by name, as the seed folders are named.
pub const ALL: [(&str, Run); 20] = [
    ("action_request", action_request::run),
    ("api_bodies", api_bodies::run),
    ("authorize_query", authorize_query::run),
    ("bank_form", bank_form::run),
    ("bank_return_link", bank_return_link::run),
    ("bc_authorize_form", bc_authorize_form::run),
    ("browser_headers", browser_headers::run),
    ("client_assertion", client_assertion::run),
    ("compact_jws", compact_jws::run),
    ("counter_activation_link", counter_activation_link::run),
    ("dpop_proof", dpop_proof::run),
    ("error_answer", error_answer::run),
    ("general_jws", general_jws::run),
    ("id_token", id_token::run),
    ("identity_token", identity_token::run),
    ("push_payload", push_payload::run),
    ("server_keys", server_keys::run),
    ("sign_in_link", sign_in_link::run),
    ("token_form", token_form::run),
    ("typed_codes", typed_codes::run),
];
