//! The OpenID Connect readers the fuzz targets reach through [`crate::fuzzing`]: they live
//! here, inside `oidc`, because the functions they call are private to it.

use axum::http::{HeaderMap, HeaderValue, header};

use super::ask::read_ask;
use super::authorize::check_request;
pub(crate) use super::clients::Clients;
use super::token::{GrantAsked, read_grant};
use crate::config::RelyingPartyConfig;
use crate::error::ServerError;
use crate::extract::Params;
use crate::fuzzing::{AuthorizeAsk, AuthorizeRefusal, BackchannelAsk, ClientAuthenticated, Grant};

/// `read_ask` of `POST /oidc/bc-authorize` on the parsed form.
pub(crate) fn backchannel_ask(
    params: &Params,
    max_ttl: i64,
    client: &RelyingPartyConfig,
) -> Result<BackchannelAsk, ServerError> {
    let ask = read_ask(params, max_ttl, client)?;
    Ok(BackchannelAsk {
        phone_number: ask.phone_number,
        scope: ask.scope,
        binding_message: ask.binding_message,
        ttl_secs: ask.ttl_secs,
        kind: ask.kind,
        transaction: ask.transaction,
        document: ask.document,
        required_claims: ask.required_claims,
        optional_claims: ask.optional_claims,
        number_matching: ask.number_matching,
    })
}

/// `check_request` of `GET /oidc/authorize` on the parsed query.
pub(crate) fn authorize_ask(
    params: &Params,
    client: &RelyingPartyConfig,
) -> Result<AuthorizeAsk, AuthorizeRefusal> {
    check_request(params, client)
        .map(|asked| AuthorizeAsk {
            scope: asked.scope,
            code_challenge: asked.code_challenge,
        })
        .map_err(|refusal| AuthorizeRefusal {
            error: refusal.error,
            description: refusal.description,
        })
}

/// `read_grant` of `POST /oidc/token` on the parsed form.
pub(crate) fn grant(params: &Params) -> Result<Grant, ServerError> {
    Ok(match read_grant(params)? {
        GrantAsked::Code {
            code,
            redirect_uri,
            verifier,
        } => Grant::Code {
            code,
            redirect_uri,
            verifier,
        },
        GrantAsked::Ciba { auth_req_id } => Grant::Ciba { auth_req_id },
    })
}

/// The registered clients the client authentication is fuzzed against.
pub(crate) fn clients(relying_parties: Vec<RelyingPartyConfig>) -> Result<Clients, ServerError> {
    Clients::new(relying_parties).map_err(|e| ServerError::Internal(e.to_string()))
}

/// The credential check of the token and backchannel endpoints: an `Authorization` header
/// (`authorization`, if any) and the form's assertion, against `clients`.
pub(crate) fn authenticate(
    clients: &Clients,
    authorization: Option<&[u8]>,
    params: &Params,
    audiences: &[String],
    now: i64,
) -> Result<ClientAuthenticated, ServerError> {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        // Bytes that are no header value never reach a handler: the HTTP layer refuses them.
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| ServerError::InvalidRequest("not a header value".into()))?;
        headers.insert(header::AUTHORIZATION, value);
    }
    let authenticated = clients.authenticate(&headers, params, audiences, now)?;
    Ok(ClientAuthenticated {
        client_id: authenticated.config.client_id.clone(),
        assertion_kept_until: authenticated.assertion.map(|a| a.keep_until),
    })
}

/// The sign-in pages' readers of a browser's headers: the session id in the `Cookie` header
/// (`cookie`, if any) for the server at `server_url`, and the page language from
/// `Accept-Language` (`accept_language`, if any). Bytes that are no header value never reach a
/// handler, so they read as an absent header.
pub(crate) fn browser_headers(
    cookie: Option<&[u8]>,
    accept_language: Option<&[u8]>,
    server_url: &str,
) -> (Option<String>, &'static str) {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (header::COOKIE, cookie),
        (header::ACCEPT_LANGUAGE, accept_language),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    }
    (
        super::session::session_id(&headers, server_url),
        super::page::Lang::choose(None, &headers).tag(),
    )
}
