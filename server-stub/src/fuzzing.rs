//! The server's readers of outside input, reachable by the fuzz targets (`fuzz/`, feature
//! `fuzzing`). Each function here is a thin door to the code a handler runs, not a copy of it:
//! what the fuzzer finds there, a request would hit. A deployed server never has the feature.
//!
//! The outside input the server reads here: form bodies and query strings, the JSON bodies of
//! the phone API and the simulators, the relying parties' backchannel and authorization requests,
//! token requests and client credentials, the banks' identity tokens and the bank page's form.
//! The phone's proofs and signed answers are read by `sleutel-protocol` functions that the
//! targets call directly.

use p256::ecdsa::SigningKey;
use serde::de::DeserializeOwned;
use sleutel_protocol::action::{ActionKind, SignDocument, Transaction};
use sleutel_protocol::api::sim::BankAuthorize;
use sleutel_protocol::identity::{Bank, IdentityClaims};

use crate::config::RelyingPartyConfig;
use crate::error::ServerError;
use crate::extract::{self, Params};
use crate::keys::Keys;
use crate::oidc::fuzzing as oidc;

/// The parameters of a form body or query string as the server reads them (each name once), in
/// no particular order.
pub fn form(bytes: &[u8]) -> Result<Vec<(String, String)>, ServerError> {
    let params = Params::parse(bytes)?;
    Ok(params
        .pairs()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// A JSON body read as every handler reads its body.
pub fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServerError> {
    extract::json(bytes)
}

/// What a backchannel authentication request asks, once read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackchannelAsk {
    /// The person's phone number (E.164), from `login_hint`.
    pub phone_number: String,
    /// The scopes asked, space-separated.
    pub scope: String,
    /// The text the relying party also shows.
    pub binding_message: Option<String>,
    /// The request's lifetime in seconds.
    pub ttl_secs: i64,
    /// The kind of request.
    pub kind: ActionKind,
    /// The payment or free-text order.
    pub transaction: Option<Transaction>,
    /// The document to sign.
    pub document: Option<SignDocument>,
    /// Claims the person must share.
    pub required_claims: Vec<String>,
    /// Claims the person may leave out.
    pub optional_claims: Vec<String>,
    /// Whether number matching was asked.
    pub number_matching: bool,
}

/// The form of `POST /oidc/bc-authorize` from `client`, read as the handler reads it once the
/// client is authenticated, with `max_ttl` as the policy's longest request lifetime.
pub fn backchannel_form(
    bytes: &[u8],
    max_ttl: i64,
    client: &RelyingPartyConfig,
) -> Result<BackchannelAsk, ServerError> {
    oidc::backchannel_ask(&Params::parse(bytes)?, max_ttl, client)
}

/// What a checked authorization request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeAsk {
    /// The scopes asked, space-separated.
    pub scope: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
}

/// An authorization request refused with a redirect to the relying party (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRefusal {
    /// The OAuth error code.
    pub error: &'static str,
    /// The description.
    pub description: String,
}

/// The query of `GET /oidc/authorize` for `client`, checked as the handler checks it once the
/// client and its redirect URI are known. `Ok(None)`: the query does not parse, which the
/// handler answers with an error page instead of a redirect.
pub fn authorize_query(
    query: &[u8],
    client: &RelyingPartyConfig,
) -> Result<Option<AuthorizeAsk>, AuthorizeRefusal> {
    let Ok(params) = Params::parse(query) else {
        return Ok(None);
    };
    oidc::authorize_ask(&params, client).map(Some)
}

/// What a token request asks to exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// An authorization code.
    Code {
        /// The code.
        code: String,
        /// The redirect URI it was issued for.
        redirect_uri: String,
        /// The PKCE verifier.
        verifier: String,
    },
    /// A CIBA grant.
    Ciba {
        /// The `auth_req_id`.
        auth_req_id: String,
    },
}

/// The grant of a `POST /oidc/token` form, read as the handler reads it once the client is
/// authenticated.
pub fn token_form(bytes: &[u8]) -> Result<Grant, ServerError> {
    oidc::grant(&Params::parse(bytes)?)
}

/// The registered relying parties client credentials are checked against.
pub struct Clients(oidc::Clients);

impl Clients {
    /// Registers `relying_parties` as the server does at start.
    pub fn new(relying_parties: Vec<RelyingPartyConfig>) -> Result<Self, ServerError> {
        oidc::clients(relying_parties).map(Self)
    }
}

/// A client whose credentials were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthenticated {
    /// Its client id.
    pub client_id: String,
    /// For an assertion: until when its `jti` is kept against replay.
    pub assertion_kept_until: Option<i64>,
}

/// The client authentication of the token and backchannel endpoints: the `Authorization`
/// header's bytes (if any) and the form `bytes`, checked against `clients` with `audiences` as
/// the accepted assertion audiences at `now`. The single use of an assertion is recorded in the
/// database afterwards and is not part of this.
pub fn client_credentials(
    clients: &Clients,
    authorization: Option<&[u8]>,
    bytes: &[u8],
    audiences: &[String],
    now: i64,
) -> Result<ClientAuthenticated, ServerError> {
    let params = Params::parse(bytes)?;
    oidc::authenticate(&clients.0, authorization, &params, audiences, now)
}

/// The server's keys with `key` as the server's and every bank's signing key, so that a fuzz
/// target can sign the identity tokens it feeds to [`identity_token`].
pub struct FixedKeys(Keys);

impl FixedKeys {
    /// Keys that all are `key`.
    pub fn new(key: &SigningKey) -> Result<Self, ServerError> {
        Keys::fixed(key)
            .map(Self)
            .map_err(|e| ServerError::Internal(e.to_string()))
    }
}

/// An identity token verified as `POST /v1/enrollments/{id}/identity` verifies it, for the
/// enrollment `enrollment_id` with `nonce`, started with `bank`, at `now`.
pub fn identity_token(
    keys: &FixedKeys,
    token: &str,
    enrollment_id: &str,
    nonce: &str,
    bank: Bank,
    now: i64,
) -> Result<IdentityClaims, ServerError> {
    crate::enrollment::identity_proof::verify_identity_token(
        &keys.0,
        token,
        enrollment_id,
        nonce,
        Some(bank.id()),
        now,
    )
}

/// The bank page's form (`POST /sim/bank/{bank}/authorize`), read as the simulator reads it.
pub fn bank_form(bytes: &[u8]) -> Result<BankAuthorize, ServerError> {
    crate::sim::bank::read_form(bytes)
}

/// What the sign-in pages read from a browser's headers, for the server at `server_url`: the
/// session id of the `Cookie` header's bytes (if any), and the language of the page from the
/// `Accept-Language` header's bytes (if any), as a tag (`nl`, `fr`, `en`).
pub fn browser_headers(
    cookie: Option<&[u8]>,
    accept_language: Option<&[u8]>,
    server_url: &str,
) -> (Option<String>, &'static str) {
    oidc::browser_headers(cookie, accept_language, server_url)
}
