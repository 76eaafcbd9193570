//! OpenID Connect Client-Initiated Backchannel Authentication (CIBA), poll mode, for relying
//! parties: discovery, JWKS, the backchannel authentication endpoint that turns a login into an
//! action request on the person's phone, and the token endpoint that hands out the ID token
//! once the person approved.
//!
//! Decisions:
//! - Clients authenticate with `client_secret_basic` only; id and secret are form-decoded
//!   (RFC 6749 §2.3.1) and the secret is compared in constant time, as SHA-256 digests so that
//!   not even its length leaks.
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

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use sleutel_protocol::action::{
    self, ACTION_TYP, ActionKind, ActionRequest, RelyingParty, UserVerification,
};
use sleutel_protocol::api::{
    self, BackchannelAuthResponse, DiscoveryDocument, IdTokenClaims, PushMessage, TokenResponse,
};
use sleutel_protocol::display;
use sleutel_protocol::jose::Jwks;
use sleutel_protocol::limits::MAX_BINDING_MESSAGE_CHARS;
use sleutel_protocol::phone;
use subtle::ConstantTimeEq;

use crate::config::RelyingPartyConfig;
use crate::error::{Result, ServerError};
use crate::extract::{Params, RawBody, is_valid_id};
use crate::requests::{Status, uv_to_column};
use crate::server::{App, AppState};
use crate::{clock, db, random};

/// The scopes this server knows: `openid` (required) and `profile` (the name).
pub const SUPPORTED_SCOPES: [&str; 2] = ["openid", "profile"];

/// The claim the `profile` scope asks for; consent to it releases name, given and family name.
pub const CLAIM_NAME: &str = "name";

/// Authentication methods of an approval with the code (RFC 8176): software-protected key (the
/// core cannot prove hardware protection to the server), PIN, and together multi-factor.
pub const AMR_CODE: [&str; 3] = ["swk", "pin", "mfa"];

/// Authentication methods of an approval with the biometric key. The platform says only that
/// the enrolled person passed its biometric check, not whether by fingerprint or face, so the
/// RFC 8176 value is `user` (user presence) beside the software key, together multi-factor.
pub const AMR_BIOMETRIC: [&str; 3] = ["swk", "user", "mfa"];

/// How long after the request's expiry an approved login's token can still be picked up: a
/// person who approves in the last second must not leave the relying party empty-handed.
pub const TOKEN_PICKUP_GRACE_SECS: i64 = 60;

/// Lifetime of the (opaque, unused) access token; this server has no userinfo endpoint.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 300;

/// The OIDC routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::PATH_OIDC_DISCOVERY, get(discovery))
        .route(api::PATH_OIDC_JWKS, get(jwks))
        .route(api::PATH_OIDC_BC_AUTHORIZE, post(bc_authorize))
        .route(api::PATH_OIDC_TOKEN, post(token))
}

/// A registered client with the digest of its secret.
struct Client {
    config: RelyingPartyConfig,
    secret_digest: [u8; 32],
}

/// The registered relying parties.
pub(crate) struct Clients(Vec<Client>);

impl Clients {
    /// Validates the configured relying parties (ids unique, names printable).
    pub fn new(relying_parties: Vec<RelyingPartyConfig>) -> Result<Self> {
        let mut clients: Vec<Client> = Vec::with_capacity(relying_parties.len());
        for config in relying_parties {
            config.validate()?;
            if clients
                .iter()
                .any(|c| c.config.client_id == config.client_id)
            {
                return Err(ServerError::Config(format!(
                    "relying party {} is configured twice",
                    config.client_id
                )));
            }
            clients.push(Client {
                secret_digest: Sha256::digest(config.secret.as_bytes()).into(),
                config,
            });
        }
        Ok(Self(clients))
    }

    /// Authenticates the client of a request (`client_secret_basic`).
    fn authenticate(&self, headers: &HeaderMap) -> Result<&RelyingPartyConfig> {
        let (id, secret) = basic_credentials(headers).ok_or(ServerError::InvalidClient)?;
        let given: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let client = self.0.iter().find(|c| c.config.client_id == id);
        // Compare even for an unknown id, so timing does not tell which ids exist.
        let expected = client.map(|c| c.secret_digest).unwrap_or([0xA5; 32]);
        let matches = bool::from(given.ct_eq(&expected));
        match client {
            Some(client) if matches => Ok(&client.config),
            _ => Err(ServerError::InvalidClient),
        }
    }
}

/// The client id and secret of an `Authorization: Basic` header, each form-decoded.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Decodes one `application/x-www-form-urlencoded` value.
fn form_decode(value: &str) -> Option<String> {
    if value.contains(['&', '=']) {
        return None;
    }
    if value.is_empty() {
        return Some(String::new());
    }
    url::form_urlencoded::parse(value.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
}

/// `GET /.well-known/openid-configuration`.
async fn discovery(State(state): State<AppState>) -> Json<DiscoveryDocument> {
    let url = &state.url;
    Json(DiscoveryDocument {
        issuer: url.clone(),
        jwks_uri: format!("{url}{}", api::PATH_OIDC_JWKS),
        token_endpoint: format!("{url}{}", api::PATH_OIDC_TOKEN),
        backchannel_authentication_endpoint: format!("{url}{}", api::PATH_OIDC_BC_AUTHORIZE),
        backchannel_token_delivery_modes_supported: vec!["poll".into()],
        backchannel_user_code_parameter_supported: false,
        // Discovery requires the member. There is no authorization endpoint; the one artifact
        // this server issues is the ID token (from the token endpoint, through CIBA).
        response_types_supported: vec!["id_token".into()],
        grant_types_supported: vec![api::CIBA_GRANT_TYPE.into()],
        token_endpoint_auth_methods_supported: vec!["client_secret_basic".into()],
        id_token_signing_alg_values_supported: vec!["ES256".into()],
        scopes_supported: SUPPORTED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        claims_supported: [
            "iss",
            "sub",
            "aud",
            "iat",
            "exp",
            "auth_time",
            "acr",
            "amr",
            "name",
            "given_name",
            "family_name",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        subject_types_supported: vec!["pairwise".into()],
        acr_values_supported: vec![api::ACR_CODE.into(), api::ACR_CODE_OR_BIOMETRIC.into()],
    })
}

/// `GET /oidc/jwks` and `GET /v1/server-keys`: the server's public signing key. Its key id is
/// its thumbprint, and it is the same across restarts.
pub(crate) async fn jwks(State(state): State<AppState>) -> Json<Jwks> {
    Json(state.keys.jwks().clone())
}

/// What a relying party asks for in a backchannel authentication request.
struct LoginAsk {
    phone_number: String,
    with_profile: bool,
    scope: String,
    binding_message: Option<String>,
    ttl_secs: i64,
    /// How the person must confirm: the code, unless the relying party accepts a biometric.
    uv: UserVerification,
}

fn read_login_ask(params: &Params, max_ttl: i64) -> Result<LoginAsk> {
    if params.has("login_hint_token") || params.has("id_token_hint") {
        return Err(ServerError::InvalidRequest(
            "login_hint_token and id_token_hint are not supported; use login_hint".into(),
        ));
    }
    let scope = params
        .optional("scope")
        .ok_or_else(|| ServerError::InvalidScope("scope is missing (openid is required)".into()))?;
    let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    if let Some(unknown) = scopes.iter().find(|s| !SUPPORTED_SCOPES.contains(s)) {
        return Err(ServerError::InvalidScope(format!(
            "unsupported scope {unknown:?}"
        )));
    }
    if !scopes.contains(&"openid") {
        return Err(ServerError::InvalidScope(
            "the scope must contain openid".into(),
        ));
    }
    let hint = params.required("login_hint")?;
    let phone_number = phone::normalize_belgian_mobile(hint).map_err(|_| {
        ServerError::UnknownUserId("login_hint is not a Belgian mobile number".into())
    })?;
    let binding_message = match params.optional("binding_message") {
        None => None,
        Some(message) => {
            if !display::is_showable(message, MAX_BINDING_MESSAGE_CHARS) {
                return Err(ServerError::InvalidBindingMessage(format!(
                    "at most {MAX_BINDING_MESSAGE_CHARS} printable characters; control, \
                     invisible or bidirectional characters cannot be shown"
                )));
            }
            Some(message.to_owned())
        }
    };
    let ttl_secs = match params.optional("requested_expiry") {
        None => max_ttl,
        Some(text) => match text.parse::<i64>() {
            Ok(secs) if secs > 0 => secs.min(max_ttl),
            _ => {
                return Err(ServerError::InvalidRequest(
                    "requested_expiry must be a positive number of seconds".into(),
                ));
            }
        },
    };
    // acr_values lists what the relying party accepts, most preferred first (OIDC Core §3.1.2.1).
    // The code is always acceptable; a biometric only when the relying party names it.
    let uv = match params.optional("acr_values") {
        None => UserVerification::Pin,
        Some(values) => {
            let values: Vec<&str> = values.split(' ').filter(|v| !v.is_empty()).collect();
            if let Some(unknown) = values
                .iter()
                .find(|v| **v != api::ACR_CODE && **v != api::ACR_CODE_OR_BIOMETRIC)
            {
                return Err(ServerError::InvalidRequest(format!(
                    "unsupported acr value {unknown:?}"
                )));
            }
            if values.contains(&api::ACR_CODE_OR_BIOMETRIC) {
                UserVerification::PinOrBiometric
            } else {
                UserVerification::Pin
            }
        }
    };
    Ok(LoginAsk {
        uv,
        phone_number,
        with_profile: scopes.contains(&"profile"),
        scope: scopes.join(" "),
        binding_message,
        ttl_secs,
    })
}

/// `POST /oidc/bc-authorize`: starts a login on the phone of the person `login_hint` names.
async fn bc_authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let client = state.clients.authenticate(&headers)?.clone();
    let params = Params::parse(&body)?;
    let ask = read_login_ask(&params, state.policy.request_ttl_secs)?;
    let started = state
        .db(move |app, conn| create_login(app, conn, &client, ask))
        .await?;
    Ok(no_store(Json(started)))
}

fn create_login(
    app: &App,
    conn: &mut rusqlite::Connection,
    client: &RelyingPartyConfig,
    ask: LoginAsk,
) -> Result<BackchannelAuthResponse> {
    let now = clock::now();
    let tx = db::immediate(conn)?;
    let account = tx
        .query_row(
            "SELECT a.id, a.blocked_at IS NOT NULL,
                    (SELECT count(*) FROM devices d
                     WHERE d.account_id = a.id AND d.revoked_at IS NULL)
             FROM phone_numbers p JOIN accounts a ON a.id = p.account_id
             WHERE p.phone_number = ?1",
            [&ask.phone_number],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, bool>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    let account_id = match account {
        None | Some((_, _, 0)) => {
            return Err(ServerError::UnknownUserId(
                "no active digital key for this phone number".into(),
            ));
        }
        Some((_, true, _)) => {
            return Err(ServerError::BackchannelDenied(
                "the person's digital key is blocked until they activate it again".into(),
            ));
        }
        Some((id, false, _)) => id,
    };
    let open: i64 = tx.query_row(
        "SELECT count(*) FROM action_requests
         WHERE account_id = ?1 AND status = 'pending' AND expires_at > ?2",
        params![account_id, now],
        |row| row.get(0),
    )?;
    if open >= i64::from(app.policy.max_pending_per_account) {
        return Err(ServerError::BackchannelDenied(
            "too many open requests for this user; try again when the person has answered".into(),
        ));
    }
    let request_id = random::id()?;
    let auth_req_id = random::id()?;
    let claims = if ask.with_profile {
        vec![CLAIM_NAME.to_owned()]
    } else {
        Vec::new()
    };
    let mut request = ActionRequest {
        iss: app.url.clone(),
        aud: account_id.clone(),
        jti: request_id.clone(),
        iat: now,
        exp: now + ask.ttl_secs,
        rp: RelyingParty {
            id: client.client_id.clone(),
            name: client.name.clone(),
        },
        kind: ActionKind::Login,
        text: client.login_text(),
        claims: claims.clone(),
        binding_message: ask.binding_message,
        uv: ask.uv,
        number_options: None,
        transaction: None,
    };
    // Whatever a relying party sends is cleaned before the server signs it for display.
    action::clean_for_display(&mut request);
    request
        .validate(now)
        .map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
    let payload = serde_json::to_vec(&request).map_err(|e| ServerError::Internal(e.to_string()))?;
    let jws = app.keys.sign(ACTION_TYP, &payload);
    let claims_json =
        serde_json::to_string(&claims).map_err(|e| ServerError::Internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO action_requests (id, auth_req_id, client_id, account_id, jws, scope, claims,
             uv, created_at, expires_at, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')",
        params![
            request_id,
            auth_req_id,
            client.client_id,
            account_id,
            jws,
            ask.scope,
            claims_json,
            uv_to_column(request.uv)?,
            now,
            request.exp
        ],
    )?;
    app.push.send(
        &tx,
        &PushMessage {
            account_id,
            request_id,
        },
    )?;
    tx.commit()?;
    Ok(BackchannelAuthResponse {
        auth_req_id,
        expires_in: ask.ttl_secs,
        interval: app.policy.ciba_poll_interval_secs,
    })
}

/// `POST /oidc/token`: the CIBA grant, polled by the relying party.
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let client_id = state.clients.authenticate(&headers)?.client_id.clone();
    let params = Params::parse(&body)?;
    if params.required("grant_type")? != api::CIBA_GRANT_TYPE {
        return Err(ServerError::UnsupportedGrantType);
    }
    let auth_req_id = params.required("auth_req_id")?.to_owned();
    // Anything but one of our identifiers names no grant (RFC 6749 §5.2: invalid_grant).
    if !is_valid_id(&auth_req_id) {
        return Err(ServerError::InvalidGrant("malformed auth_req_id".into()));
    }
    let token = state
        .db(move |app, conn| exchange(app, conn, &client_id, &auth_req_id))
        .await?;
    Ok(no_store(Json(token)))
}

fn exchange(
    app: &App,
    conn: &mut rusqlite::Connection,
    client_id: &str,
    auth_req_id: &str,
) -> Result<TokenResponse> {
    let now = clock::now();
    let tx = db::immediate(conn)?;
    let row = tx
        .query_row(
            "SELECT r.client_id, r.account_id, r.status, r.expires_at, r.last_poll_at,
                    r.token_issued_at, r.auth_time, r.consented_claims,
                    a.given_name, a.family_name, r.method
             FROM action_requests r JOIN accounts a ON a.id = r.account_id
             WHERE r.auth_req_id = ?1",
            [auth_req_id],
            |row| {
                Ok(Grant {
                    client_id: row.get(0)?,
                    account_id: row.get(1)?,
                    status: row.get(2)?,
                    expires_at: row.get(3)?,
                    last_poll_at: row.get(4)?,
                    token_issued_at: row.get(5)?,
                    auth_time: row.get(6)?,
                    consented_claims: row.get(7)?,
                    given_name: row.get(8)?,
                    family_name: row.get(9)?,
                    method: row.get(10)?,
                })
            },
        )
        .optional()?;
    // Another client's auth_req_id is as unknown as a made-up one.
    let Some(grant) = row.filter(|g| g.client_id == client_id) else {
        return Err(ServerError::InvalidGrant("unknown auth_req_id".into()));
    };
    if grant.token_issued_at.is_some() {
        return Err(ServerError::InvalidGrant(
            "the token for this auth_req_id was already issued".into(),
        ));
    }
    match grant.status {
        Status::Pending => {
            if now >= grant.expires_at {
                return Err(ServerError::ExpiredToken);
            }
            tx.execute(
                "UPDATE action_requests SET last_poll_at = ?2 WHERE auth_req_id = ?1",
                params![auth_req_id, now],
            )?;
            tx.commit()?;
            let too_soon = grant
                .last_poll_at
                .is_some_and(|last| now < last + app.policy.ciba_poll_interval_secs);
            Err(if too_soon {
                ServerError::SlowDown
            } else {
                ServerError::AuthorizationPending
            })
        }
        Status::Declined => Err(ServerError::AccessDenied("the person declined".into())),
        Status::Denied => Err(ServerError::AccessDenied(
            "the request was closed: the person's digital key is blocked".into(),
        )),
        Status::Approved => {
            if now >= grant.expires_at + TOKEN_PICKUP_GRACE_SECS {
                return Err(ServerError::ExpiredToken);
            }
            let token = id_token(app, client_id, &grant, now)?;
            tx.execute(
                "UPDATE action_requests SET token_issued_at = ?2 WHERE auth_req_id = ?1",
                params![auth_req_id, now],
            )?;
            tx.commit()?;
            Ok(token)
        }
    }
}

/// A CIBA grant as the token endpoint reads it.
struct Grant {
    client_id: String,
    account_id: String,
    status: Status,
    expires_at: i64,
    last_poll_at: Option<i64>,
    token_issued_at: Option<i64>,
    auth_time: Option<i64>,
    consented_claims: Option<String>,
    given_name: String,
    family_name: String,
    /// How the approval was verified (`pin`, `biometric`).
    method: Option<String>,
}

fn id_token(app: &App, client_id: &str, grant: &Grant, now: i64) -> Result<TokenResponse> {
    let consented: Vec<String> = match &grant.consented_claims {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| ServerError::Internal(format!("stored consent unreadable: {e}")))?,
        None => Vec::new(),
    };
    let with_name = consented.iter().any(|c| c == CLAIM_NAME);
    let biometric = grant.method.as_deref() == Some("biometric");
    let claims = IdTokenClaims {
        iss: app.url.clone(),
        sub: app.keys.pairwise_subject(client_id, &grant.account_id)?,
        aud: client_id.to_owned(),
        iat: now,
        exp: now + app.policy.id_token_ttl_secs,
        auth_time: grant.auth_time.unwrap_or(now),
        acr: if biometric {
            api::ACR_CODE_OR_BIOMETRIC
        } else {
            api::ACR_CODE
        }
        .to_owned(),
        amr: if biometric { AMR_BIOMETRIC } else { AMR_CODE }
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        name: with_name.then(|| format!("{} {}", grant.given_name, grant.family_name)),
        given_name: with_name.then(|| grant.given_name.clone()),
        family_name: with_name.then(|| grant.family_name.clone()),
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| ServerError::Internal(e.to_string()))?;
    Ok(TokenResponse {
        access_token: random::id()?,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_TTL_SECS,
        id_token: app.keys.sign(api::ID_TOKEN_TYP, &payload),
    })
}

/// Token responses must not be cached (RFC 6749 §5.1).
fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(value))).unwrap(),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(
            basic_credentials(&basic("my%20client:s%3Acret+x")),
            Some(("my client".into(), "s:cret x".into()))
        );
        assert_eq!(basic_credentials(&basic("no-colon")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[test]
    fn only_the_right_secret_authenticates() {
        let clients = Clients::new(vec![RelyingPartyConfig::demo()]).unwrap();
        assert!(
            clients
                .authenticate(&basic("online-overheid:demo-secret"))
                .is_ok()
        );
        assert!(
            clients
                .authenticate(&basic("online-overheid:demo-secreT"))
                .is_err()
        );
        assert!(clients.authenticate(&basic("someone:demo-secret")).is_err());
    }

    #[test]
    fn duplicate_client_ids_are_refused() {
        let twice = vec![RelyingPartyConfig::demo(), RelyingPartyConfig::demo()];
        assert!(Clients::new(twice).is_err());
    }

    #[test]
    fn login_asks_are_checked() {
        let ask = |body: &str| read_login_ask(&Params::parse(body.as_bytes()).unwrap(), 300);
        let ok =
            ask("scope=openid+profile&login_hint=%2B32470123456&binding_message=AB12").unwrap();
        assert!(ok.with_profile);
        assert_eq!(ok.phone_number, "+32470123456");
        assert!(matches!(
            ask("scope=profile&login_hint=%2B32470123456"),
            Err(ServerError::InvalidScope(_))
        ));
        assert!(matches!(
            ask("scope=openid+email&login_hint=%2B32470123456"),
            Err(ServerError::InvalidScope(_))
        ));
        assert!(matches!(
            ask("scope=openid"),
            Err(ServerError::InvalidRequest(_))
        ));
        assert!(matches!(
            ask("scope=openid&login_hint=x&id_token_hint=y"),
            Err(ServerError::InvalidRequest(_))
        ));
        assert!(matches!(
            ask("scope=openid&login_hint=%2B32470123456&binding_message=a%E2%80%AEb"),
            Err(ServerError::InvalidBindingMessage(_))
        ));
        let long = "x".repeat(MAX_BINDING_MESSAGE_CHARS + 1);
        assert!(matches!(
            ask(&format!(
                "scope=openid&login_hint=%2B32470123456&binding_message={long}"
            )),
            Err(ServerError::InvalidBindingMessage(_))
        ));
        assert_eq!(
            ask("scope=openid&login_hint=%2B32470123456&requested_expiry=60")
                .unwrap()
                .ttl_secs,
            60
        );
        assert_eq!(
            ask("scope=openid&login_hint=%2B32470123456&requested_expiry=6000")
                .unwrap()
                .ttl_secs,
            300
        );
    }
}
