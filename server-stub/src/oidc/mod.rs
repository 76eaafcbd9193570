//! OpenID Connect for relying parties: the authorization code flow with its sign-in pages
//! ([`authorize`], [`page`], the code grant and UserInfo in [`code`]) and Client-Initiated
//! Backchannel Authentication (CIBA), poll and ping modes: discovery and JWKS (here), the registered clients and their authentication
//! ([`clients`]), the backchannel authentication endpoint that turns what a relying party asks
//! ([`ask`]: a login, a request to share data, a transaction or a document to sign) into an
//! action request on the person's phone ([`backchannel`]), and the token endpoint that hands out
//! the ID token once the person approved ([`token`]).
//!
//! Decisions:
//! - Clients authenticate with `client_secret_basic` (id and secret form-decoded, RFC 6749
//!   §2.3.1; the secret compared in constant time, as SHA-256 digests so that not even its
//!   length leaks) or `private_key_jwt` (an ES256 JWT, RFC 7523, single use), one method per
//!   client as registered, at the token and the backchannel endpoints alike ([`clients`],
//!   decision 0023).
//! - A login for a blocked account is refused at once with `access_denied`: the person cannot
//!   confirm anything until they activate again, so waiting for the expiry helps nobody.
//! - `slow_down` is answered to a poll that comes sooner than `interval` after the previous
//!   poll of a pending request; every poll counts. The interval itself stays as announced (the
//!   client adds 5 seconds, CIBA §11 / RFC 8628 §3.5).
//! - The token is issued once; a second exchange is `invalid_grant`.
//! - A person has at most `max_pending_per_account` open requests (all relying parties
//!   together); one more is refused with `access_denied` ("too many open requests for this
//!   user"). CIBA §13 defines no code for a quota, and `access_denied` is the one that tells the
//!   relying party at once that no login will follow, so it need not poll. Like the refusal of a
//!   blocked account it answers 403, the status CIBA §13 gives `access_denied` at this endpoint
//!   (the token endpoint answers its `access_denied` with 400, RFC 6749 §5.2).
//! - A relying party asks only for claims it is registered for (`invalid_scope` otherwise); a
//!   newer request of a relying party supersedes its older pending one to the same person; a
//!   relying party makes at most `max_backchannel_per_client_per_minute` calls (`slow_down`,
//!   429); after a "not me" report or a wrong number the person's requests are throttled.

mod ask;
mod authorize;
mod backchannel;
mod clients;
mod code;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing;
mod link;
mod live;
mod page;
mod session;
mod token;
mod wait;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sleutel_protocol::api::oidc::{self, DiscoveryDocument};
use sleutel_protocol::api::sign_in;
use sleutel_protocol::jose::{self, Jwks};
use sleutel_protocol::{approval, claims};

use crate::config::DeliveryMode;
use crate::server::AppState;
use crate::store::{Sql, relying_parties};

pub(crate) use clients::Clients;

/// Deletes the sign-in sessions past their lifetime, the access tokens past theirs, the
/// authorization codes that can revoke nothing still alive (a code past its own life plus an
/// access token's), and the kept `jti` of expired client assertions; returns how many rows
/// went. Called by the housekeeping purge, and whenever
/// a session or a code is made.
pub(crate) fn purge_expired(conn: &impl Sql, now: i64) -> crate::error::Result<usize> {
    // A code past its life still revokes its access token when replayed, until that token
    // has expired too.
    Ok(relying_parties::purge_expired(
        conn,
        now,
        now - token::ACCESS_TOKEN_TTL_SECS,
    )?)
}

/// The OIDC routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(oidc::PATH_DISCOVERY, get(discovery))
        .route(oidc::PATH_JWKS, get(jwks))
        .route(oidc::PATH_BC_AUTHORIZE, post(backchannel::bc_authorize))
        .route(oidc::PATH_TOKEN, post(token::token))
        .route(oidc::PATH_AUTHORIZE, get(authorize::authorize))
        .route(authorize::PATH_SIGN_IN_NUMBER, post(authorize::number))
        .route(authorize::PATH_SIGN_IN_STATUS, get(wait::status))
        .route(page::PATH_STYLESHEET, get(page::stylesheet))
        .route(link::PATH_QR_PAGE, get(link::qr_page))
        .route(live::PATH_SCRIPT, get(live::script))
        .route(live::PATH_STATUS_JSON, get(live::status_json))
        .route(link::PATH_QR_IMAGE, get(link::qr_image))
        .route(link::PATH_RETURN, get(link::return_to_rp))
        .route(sign_in::PATH_APP_SIGN_IN, get(link::link_in_browser))
        .route(sign_in::PATH_APP_SCAN, get(link::scan_link_in_browser))
        .route(sign_in::PATH_DEVICE_SIGN_IN, post(link::open_link))
        .route(
            link::PATH_APPLE_APP_SITE_ASSOCIATION,
            get(link::apple_app_site_association),
        )
        .route(link::PATH_ASSET_LINKS, get(link::asset_links))
        .route(
            oidc::PATH_USERINFO,
            get(code::userinfo).post(code::userinfo),
        )
}

/// `GET /.well-known/openid-configuration`.
async fn discovery(State(state): State<AppState>) -> Json<DiscoveryDocument> {
    let url = &state.url;
    Json(DiscoveryDocument {
        issuer: url.clone(),
        jwks_uri: format!("{url}{}", oidc::PATH_JWKS),
        token_endpoint: format!("{url}{}", oidc::PATH_TOKEN),
        authorization_endpoint: Some(format!("{url}{}", oidc::PATH_AUTHORIZE)),
        userinfo_endpoint: Some(format!("{url}{}", oidc::PATH_USERINFO)),
        code_challenge_methods_supported: vec!["S256".into()],
        authorization_response_iss_parameter_supported: true,
        backchannel_authentication_endpoint: format!("{url}{}", oidc::PATH_BC_AUTHORIZE),
        backchannel_token_delivery_modes_supported: vec![
            DeliveryMode::Poll.as_str().into(),
            DeliveryMode::Ping.as_str().into(),
        ],
        backchannel_user_code_parameter_supported: false,
        // The authorization endpoint answers with a code only (PKCE S256 required).
        response_types_supported: vec!["code".into()],
        grant_types_supported: vec![
            oidc::AUTHORIZATION_CODE_GRANT_TYPE.into(),
            oidc::CIBA_GRANT_TYPE.into(),
        ],
        token_endpoint_auth_methods_supported: vec![
            oidc::AUTH_METHOD_CLIENT_SECRET_BASIC.into(),
            oidc::AUTH_METHOD_PRIVATE_KEY_JWT.into(),
        ],
        // Client assertions are ES256 only, as everything else here (decision 0001).
        token_endpoint_auth_signing_alg_values_supported: vec![jose::ES256.into()],
        id_token_signing_alg_values_supported: vec!["ES256".into()],
        scopes_supported: ask::SUPPORTED_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        claims_supported: ["iss", "sub", "aud", "iat", "exp", "auth_time", "acr", "amr"]
            .iter()
            .chain(claims::ALL.iter())
            .chain(std::iter::once(&approval::CLAIM))
            .map(|s| (*s).to_owned())
            .collect(),
        subject_types_supported: vec!["pairwise".into()],
        acr_values_supported: vec![oidc::ACR_CODE.into(), oidc::ACR_CODE_OR_BIOMETRIC.into()],
        claims_parameter_supported: true,
    })
}

/// `GET /oidc/jwks` and `GET /v1/server-keys`: the server's public signing key. Its key id is
/// its thumbprint, and it is the same across restarts.
pub(crate) async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json(state.keys.jwks().clone())
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(feature = "testing")]
pub(crate) use link::qr_link_of_session;
