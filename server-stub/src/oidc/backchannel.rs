//! OpenID Connect Client-Initiated Backchannel Authentication (CIBA), poll and ping modes, for
//! relying parties: discovery, JWKS, the backchannel authentication endpoint that turns a login,
//! a request to share data, a transaction or a document to sign into an action request on the
//! person's phone, and the token endpoint that hands out the ID token once the person approved.
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
//! - A relying party asks only for claims it is registered for (`invalid_scope` otherwise); a
//!   newer request of a relying party supersedes its older pending one to the same person; a
//!   relying party makes at most `max_backchannel_per_client_per_minute` calls (`slow_down`,
//!   429); after a "not me" report or a wrong number the person's requests are throttled.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use sleutel_protocol::action::{
    self, ACTION_TYP, ActionKind, ActionRequest, RelyingParty, SignDocument, Transaction,
    UserVerification,
};
use sleutel_protocol::api::oidc::{
    BackchannelAuthResponse, DiscoveryDocument, IdTokenClaims, TokenResponse,
};
use sleutel_protocol::api::{self, PushMessage};
use sleutel_protocol::approval::{self, ApprovedAction};
use sleutel_protocol::jose::{self, Jwks, UnverifiedJws};
use sleutel_protocol::limits::{
    MAX_ACTION_TEXT_CHARS, MAX_BINDING_MESSAGE_CHARS, MAX_DOCUMENT_NAME_CHARS, MAX_RP_NAME_CHARS,
};
use sleutel_protocol::{claims, display, identity, phone};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::{DeliveryMode, RelyingPartyConfig};
use crate::error::{Result, ServerError};
use crate::extract::{Params, RawBody, is_valid_id};
use crate::notify::MAX_NOTIFICATION_TOKEN_CHARS;
use crate::rate::{self, Bucket, Limit};
use crate::requests::{Status, uv_to_column};
use crate::server::{App, AppState};
use crate::{clock, db, events, random};

/// The scopes this server knows: `openid` (required), `profile` (the name) and `phone` (the
/// phone number); every other claim is asked with the `claims` parameter.
pub const SUPPORTED_SCOPES: [&str; 3] = ["openid", "profile", "phone"];

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

/// The age of [`claims::AGE_OVER_18`]: the claim's name fixes it, whatever the activation
/// policy's minimum age.
pub const ADULT_AGE_YEARS: u32 = 18;

/// Lifetime of the (opaque, unused) access token; this server has no userinfo endpoint.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 300;

/// The OIDC routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::oidc::PATH_DISCOVERY, get(discovery))
        .route(api::oidc::PATH_JWKS, get(jwks))
        .route(api::oidc::PATH_BC_AUTHORIZE, post(bc_authorize))
        .route(api::oidc::PATH_TOKEN, post(token))
}

/// A registered client with the digest of its secret.
struct Client {
    config: RelyingPartyConfig,
    secret_digest: [u8; 32],
}

/// The registered relying parties.
pub(crate) struct Clients(Vec<Client>);

impl Clients {
    /// Validates the configured relying parties (ids unique, names printable). Ids that differ
    /// only in case or in `-`, `_`, `.` count as the same: they share one secret variable
    /// (`SLEUTEL_RP_SECRET_<ID>`), so one secret would open two registrations with different
    /// names and allowed claims, and a person or an operator could not tell them apart.
    pub fn new(relying_parties: Vec<RelyingPartyConfig>) -> Result<Self> {
        let mut clients: Vec<Client> = Vec::with_capacity(relying_parties.len());
        for config in relying_parties {
            config.validate()?;
            let variable = RelyingPartyConfig::secret_variable(&config.client_id);
            if clients
                .iter()
                .any(|c| RelyingPartyConfig::secret_variable(&c.config.client_id) == variable)
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

    /// The display name of `client_id`.
    pub fn name(&self, client_id: &str) -> Option<String> {
        self.0
            .iter()
            .find(|c| c.config.client_id == client_id)
            .map(|c| c.config.name.clone())
    }

    /// The claims `client_id` is registered for.
    pub fn allowed_claims(&self, client_id: &str) -> Option<Vec<String>> {
        self.0
            .iter()
            .find(|c| c.config.client_id == client_id)
            .map(|c| c.config.allowed_claims.clone())
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
        jwks_uri: format!("{url}{}", api::oidc::PATH_JWKS),
        token_endpoint: format!("{url}{}", api::oidc::PATH_TOKEN),
        backchannel_authentication_endpoint: format!("{url}{}", api::oidc::PATH_BC_AUTHORIZE),
        backchannel_token_delivery_modes_supported: vec![
            DeliveryMode::Poll.as_str().into(),
            DeliveryMode::Ping.as_str().into(),
        ],
        backchannel_user_code_parameter_supported: false,
        // Discovery requires the member. There is no authorization endpoint; the one artifact
        // this server issues is the ID token (from the token endpoint, through CIBA).
        response_types_supported: vec!["id_token".into()],
        grant_types_supported: vec![api::oidc::CIBA_GRANT_TYPE.into()],
        token_endpoint_auth_methods_supported: vec!["client_secret_basic".into()],
        id_token_signing_alg_values_supported: vec!["ES256".into()],
        scopes_supported: SUPPORTED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        claims_supported: ["iss", "sub", "aud", "iat", "exp", "auth_time", "acr", "amr"]
            .iter()
            .chain(claims::ALL.iter())
            .chain(std::iter::once(&approval::CLAIM))
            .map(|s| (*s).to_owned())
            .collect(),
        subject_types_supported: vec!["pairwise".into()],
        acr_values_supported: vec![
            api::oidc::ACR_CODE.into(),
            api::oidc::ACR_CODE_OR_BIOMETRIC.into(),
        ],
        claims_parameter_supported: true,
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
    scope: String,
    binding_message: Option<String>,
    ttl_secs: i64,
    /// How the person must confirm: the code, unless the relying party accepts a biometric.
    uv: UserVerification,
    /// What kind of request, with its template or document.
    kind: ActionKind,
    transaction: Option<Transaction>,
    document: Option<SignDocument>,
    /// Claims the person must share (refusing one declines).
    required_claims: Vec<String>,
    /// Claims the person may leave out.
    optional_claims: Vec<String>,
    /// Whether the relying party shows a number for the person to pick on the phone.
    number_matching: bool,
    /// The bearer token for pings (ping mode only).
    notification_token: Option<Zeroizing<String>>,
}

/// Longest `claims` request parameter accepted: the seven claims with `essential` flags fit
/// in a few hundred bytes.
pub const MAX_CLAIMS_PARAMETER_BYTES: usize = 4096;

/// The claims the `profile` scope asks for (voluntary, OIDC Core §5.4): the name.
pub const PROFILE_CLAIMS: [&str; 3] = [claims::NAME, claims::GIVEN_NAME, claims::FAMILY_NAME];

/// The claims the `phone` scope asks for (voluntary).
pub const PHONE_CLAIMS: [&str; 1] = [claims::PHONE_NUMBER];

/// Reads the `claims` request parameter (OIDC Core §5.5): `{"id_token": {"birthdate":
/// {"essential": true}, "age_over_18": null}}`. Returns `(claim, essential)` pairs.
fn read_claims_parameter(text: &str) -> Result<Vec<(String, bool)>> {
    let bad = |why: &str| ServerError::InvalidRequest(format!("claims parameter: {why}"));
    if text.len() > MAX_CLAIMS_PARAMETER_BYTES {
        return Err(bad("too long"));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
    if let Some(other) = object.keys().find(|k| *k != "id_token") {
        return Err(bad(&format!(
            "only id_token claims can be asked (there is no userinfo endpoint), not {other:?}"
        )));
    }
    let Some(requested) = object.get("id_token") else {
        return Ok(Vec::new());
    };
    let requested = requested
        .as_object()
        .ok_or_else(|| bad("id_token is not a JSON object"))?;
    let mut out = Vec::new();
    for (name, spec) in requested {
        if !claims::is_known(name) {
            return Err(bad(&format!(
                "unknown claim {name:?} (supported: {})",
                claims::ALL.join(", ")
            )));
        }
        let essential = match spec {
            serde_json::Value::Null => false,
            serde_json::Value::Object(members) => match members.get("essential") {
                None | Some(serde_json::Value::Null) => false,
                Some(serde_json::Value::Bool(essential)) => *essential,
                Some(_) => return Err(bad("essential must be true or false")),
            },
            _ => return Err(bad("each claim is null or an object")),
        };
        out.push((name.clone(), essential));
    }
    Ok(out)
}

/// A form value that the person will see, refused (not cleaned) when it cannot be shown safely
/// (see `display::check_showable`: blank, invisible characters, stacked marks, a word mixing
/// scripts), so that what is signed is what the relying party sent.
fn showable_param(params: &Params, name: &str, max: usize) -> Result<String> {
    let value = params.required(name)?;
    display::check_showable(value, max)
        .map_err(|why| ServerError::InvalidRequest(format!("{name} cannot be shown: {why}")))?;
    Ok(value.to_owned())
}

/// The kind of request and its template or document.
fn read_kind(params: &Params) -> Result<(ActionKind, Option<Transaction>, Option<SignDocument>)> {
    let kind = match params.optional("kind").unwrap_or("login") {
        "login" => ActionKind::Login,
        "share_data" => ActionKind::ShareData,
        "confirm_transaction" => ActionKind::ConfirmTransaction,
        "sign" => ActionKind::Sign,
        other => {
            return Err(ServerError::InvalidRequest(format!(
                "unknown kind {other:?} (login, share_data, confirm_transaction, sign)"
            )));
        }
    };
    let transaction_params = [
        "transaction_amount",
        "transaction_currency",
        "transaction_payee",
        "transaction_iban",
        "transaction_text",
    ];
    let document_params = ["document_name", "document_sha256"];
    let stray = |names: &[&str]| {
        names
            .iter()
            .find(|n| params.has(n))
            .map(|n| (*n).to_owned())
    };
    if kind != ActionKind::ConfirmTransaction
        && let Some(name) = stray(&transaction_params)
    {
        return Err(ServerError::InvalidRequest(format!(
            "{name} belongs to kind confirm_transaction"
        )));
    }
    if kind != ActionKind::Sign
        && let Some(name) = stray(&document_params)
    {
        return Err(ServerError::InvalidRequest(format!(
            "{name} belongs to kind sign"
        )));
    }
    let invalid = |e: sleutel_protocol::ProtocolError| ServerError::InvalidRequest(e.to_string());
    match kind {
        ActionKind::ConfirmTransaction => {
            let transaction = if params.has("transaction_text") {
                if let Some(name) = stray(&transaction_params[..4]) {
                    return Err(ServerError::InvalidRequest(format!(
                        "{name} does not go with transaction_text: a transaction is a payment \
                         or free text"
                    )));
                }
                let text = params.required("transaction_text")?;
                // Line breaks are folded to spaces; anything else invisible is refused.
                if text
                    .chars()
                    .any(|c| display::is_forbidden_char(c) && c != '\n' && c != '\t')
                {
                    return Err(ServerError::InvalidRequest(
                        "transaction_text holds control, invisible or bidirectional characters"
                            .into(),
                    ));
                }
                Transaction::FreeText {
                    text: text.to_owned(),
                }
            } else {
                Transaction::Payment {
                    amount: params.required("transaction_amount")?.to_owned(),
                    currency: params.required("transaction_currency")?.to_owned(),
                    payee: showable_param(params, "transaction_payee", MAX_RP_NAME_CHARS)?,
                    iban: params.required("transaction_iban")?.to_owned(),
                }
            };
            transaction.validate().map_err(invalid)?;
            Ok((kind, Some(transaction), None))
        }
        ActionKind::Sign => {
            let document = SignDocument {
                name: showable_param(params, "document_name", MAX_DOCUMENT_NAME_CHARS)?,
                sha256: params.required("document_sha256")?.to_owned(),
            };
            document.validate().map_err(invalid)?;
            Ok((kind, None, Some(document)))
        }
        ActionKind::Login | ActionKind::ShareData => Ok((kind, None, None)),
    }
}

#[cfg(test)]
fn read_login_ask(params: &Params, max_ttl: i64) -> Result<LoginAsk> {
    read_ask(params, max_ttl, &RelyingPartyConfig::demo())
}

fn read_ask(params: &Params, max_ttl: i64, client: &RelyingPartyConfig) -> Result<LoginAsk> {
    if params.has("login_hint_token") || params.has("id_token_hint") {
        return Err(ServerError::InvalidRequest(
            "login_hint_token and id_token_hint are not supported; use login_hint".into(),
        ));
    }
    // The discovery document says backchannel_user_code_parameter_supported: false.
    if params.has("user_code") {
        return Err(ServerError::InvalidRequest(
            "user_code is not supported".into(),
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
            display::check_showable(message, MAX_BINDING_MESSAGE_CHARS).map_err(|why| {
                ServerError::InvalidBindingMessage(format!("cannot be shown: {why}"))
            })?;
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
                .find(|v| **v != api::oidc::ACR_CODE && **v != api::oidc::ACR_CODE_OR_BIOMETRIC)
            {
                return Err(ServerError::InvalidRequest(format!(
                    "unsupported acr value {unknown:?}"
                )));
            }
            if values.contains(&api::oidc::ACR_CODE_OR_BIOMETRIC) {
                UserVerification::PinOrBiometric
            } else {
                UserVerification::Pin
            }
        }
    };
    let (kind, transaction, document) = read_kind(params)?;

    // Claims: the scopes ask voluntarily, the claims parameter essentially or voluntarily; a
    // claim asked both ways is required.
    let mut asked: Vec<(String, bool)> = Vec::new();
    let mut ask = |claim: &str, essential: bool| match asked.iter_mut().find(|(c, _)| c == claim) {
        Some((_, e)) => *e |= essential,
        None => asked.push((claim.to_owned(), essential)),
    };
    if scopes.contains(&"profile") {
        PROFILE_CLAIMS.iter().for_each(|c| ask(c, false));
    }
    if scopes.contains(&"phone") {
        PHONE_CLAIMS.iter().for_each(|c| ask(c, false));
    }
    if let Some(text) = params.optional("claims") {
        for (claim, essential) in read_claims_parameter(text)? {
            ask(&claim, essential);
        }
    }
    if let Some((claim, _)) = asked
        .iter()
        .find(|(c, _)| !client.allowed_claims.contains(c))
    {
        return Err(ServerError::ClaimNotAllowed(format!(
            "this client is not registered for the claim {claim:?}"
        )));
    }
    if kind == ActionKind::ShareData && asked.is_empty() {
        return Err(ServerError::InvalidRequest(
            "share_data asks for at least one claim (scope or claims parameter)".into(),
        ));
    }
    // The consent screen lists claims in the protocol's order.
    let in_order = |essential: bool| -> Vec<String> {
        claims::ALL
            .iter()
            .filter(|c| asked.iter().any(|(a, e)| a == *c && *e == essential))
            .map(|c| (*c).to_owned())
            .collect()
    };
    let number_matching = match params.optional("number_matching") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ServerError::InvalidRequest(
                "number_matching is true or false".into(),
            ));
        }
    };
    // CIBA §7.1: required of a ping-mode client, meaningless to a poll-mode one.
    let notification_token = match client.delivery_mode {
        DeliveryMode::Poll => None,
        DeliveryMode::Ping => {
            let token = params
                .optional("client_notification_token")
                .ok_or_else(|| {
                    ServerError::InvalidRequest(
                        "client_notification_token is required in ping mode".into(),
                    )
                })?;
            if token.is_empty()
                || token.len() > MAX_NOTIFICATION_TOKEN_CHARS
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(ServerError::InvalidRequest(format!(
                    "client_notification_token must be 1-{MAX_NOTIFICATION_TOKEN_CHARS} \
                     printable ASCII characters"
                )));
            }
            Some(Zeroizing::new(token.to_owned()))
        }
    };
    Ok(LoginAsk {
        uv,
        phone_number,
        scope: scopes.join(" "),
        binding_message,
        ttl_secs,
        kind,
        transaction,
        document,
        required_claims: in_order(true),
        optional_claims: in_order(false),
        number_matching,
        notification_token,
    })
}

/// `POST /oidc/bc-authorize`: starts a request on the phone of the person `login_hint` names.
async fn bc_authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let client = authenticate_client(&state, &headers, peer.ip()).await?;
    let client_id = client.client_id.clone();
    state
        .db(move |app, conn| count_backchannel_call(app, conn, &client_id))
        .await?;
    let params = Params::parse(&body)?;
    let ask = read_ask(&params, state.policy.request_ttl_secs, &client)?;
    let (started, superseded) = state
        .db(move |app, conn| create_login(app, conn, &client, ask))
        .await?;
    state.notifier.notify(&superseded);
    Ok(no_store(Json(started)))
}

/// Counts a backchannel call of `client_id`, refused or not, and refuses it beyond the policy's
/// rate. Counting refused calls too bounds how fast phone numbers can be probed.
fn count_backchannel_call(
    app: &App,
    conn: &mut rusqlite::Connection,
    client_id: &str,
) -> Result<()> {
    let now = clock::now();
    let tx = db::immediate(conn)?;
    let limit = Limit::per_minute(app.policy.max_backchannel_per_client_per_minute);
    let taken = rate::take(&tx, Bucket::BackchannelCalls(client_id), limit, now)?;
    tx.commit()?;
    taken.map_err(|exceeded| ServerError::BackchannelRateLimited {
        retry_after: exceeded.retry_after,
    })
}

/// Authenticates the client of a token or backchannel request from `source`.
///
/// Failures are counted per source address: once the policy's number in the last minute is
/// reached, every authentication from that address is refused with `slow_down` (429) until the
/// window has passed, the right secret included, or guessing would go on at full speed. They are
/// also counted per registered client id, from all addresses together, and beyond the policy's
/// number the operator is alerted in the log; that count refuses nothing, since a refusal would
/// let anyone hold a relying party up and would answer differently for ids that exist.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    source: IpAddr,
) -> Result<RelyingPartyConfig> {
    let authenticated = state.clients.authenticate(headers).cloned();
    let claimed = basic_credentials(headers)
        .map(|(id, _)| id)
        .filter(|id| state.clients.name(id).is_some());
    state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let policy = &app.policy;
            let by_source = Bucket::ClientAuthFailuresBySource(source);
            let source_limit =
                Limit::per_minute(policy.max_client_auth_failures_per_source_per_minute);
            if let Err(exceeded) = rate::check(&tx, by_source, source_limit, now)? {
                return Err(ServerError::ClientAuthRateLimited {
                    retry_after: exceeded.retry_after,
                });
            }
            if authenticated.is_err() {
                rate::record(&tx, by_source, source_limit, now)?;
                if let Some(id) = &claimed {
                    let by_client = Bucket::ClientAuthFailuresByClient(id);
                    let alert =
                        Limit::per_minute(policy.alert_client_auth_failures_per_client_per_minute);
                    if rate::take(&tx, by_client, alert, now)?.is_err() {
                        tracing::warn!(
                            client_id = %id,
                            "failed authentications of one client id beyond the alert level: \
                             its secret may be under attack"
                        );
                    }
                }
                tx.commit()?;
                tracing::info!(%source, "a client authentication failed");
            }
            authenticated
        })
        .await
}

/// The sentence the phone shows for a request of `kind` from `client`.
fn request_text(client: &RelyingPartyConfig, ask: &LoginAsk) -> String {
    let text = match (ask.kind, &ask.transaction, &ask.document) {
        (ActionKind::Login, _, _) => return client.login_text(),
        (ActionKind::ShareData, _, _) => format!("Ik deel gegevens met {}", client.name),
        (
            ActionKind::ConfirmTransaction,
            Some(Transaction::Payment {
                amount,
                currency,
                payee,
                ..
            }),
            _,
        ) => format!("Ik betaal {amount} {currency} aan {payee}"),
        (ActionKind::ConfirmTransaction, _, _) => {
            format!("Ik bevestig een opdracht aan {}", client.name)
        }
        (ActionKind::Sign, _, Some(document)) => format!("Ik onderteken {}", document.name),
        (ActionKind::Sign, _, None) => format!("Ik onderteken een document van {}", client.name),
    };
    display::clean_display_text(&text, MAX_ACTION_TEXT_CHARS)
}

/// Number matching: the number the relying party shows (10-99, two digits) and the three
/// options the phone offers, in random order, all different.
fn number_options() -> Result<(u8, Vec<u8>)> {
    let draw = || -> Result<u8> {
        u8::try_from(10 + random::below(90)?).map_err(|e| ServerError::Internal(e.to_string()))
    };
    let right = draw()?;
    let mut options = vec![right];
    while options.len() < 3 {
        let decoy = draw()?;
        if !options.contains(&decoy) {
            options.push(decoy);
        }
    }
    // Fisher-Yates, so the right number's place tells nothing.
    for i in (1..options.len()).rev() {
        let j = usize::try_from(random::below(u32::try_from(i + 1).unwrap_or(1))?).unwrap_or(0);
        options.swap(i, j);
    }
    Ok((right, options))
}

/// Whether the account is throttled after a suspicious event: at most one new request per
/// `suspicious_throttle_secs` during `suspicious_window_secs` after the last report.
fn throttled(
    app: &App,
    tx: &rusqlite::Transaction<'_>,
    account_id: &str,
    now: i64,
) -> Result<bool> {
    let last_report: Option<i64> = tx.query_row(
        "SELECT max(at) FROM account_events WHERE account_id = ?1 AND event IN (?2, ?3)",
        params![account_id, events::SUSPICIOUS[0], events::SUSPICIOUS[1]],
        |row| row.get(0),
    )?;
    let Some(report) = last_report.filter(|at| *at > now - app.policy.suspicious_window_secs)
    else {
        return Ok(false);
    };
    let last_request: Option<i64> = tx.query_row(
        "SELECT max(created_at) FROM action_requests WHERE account_id = ?1 AND created_at >= ?2",
        params![account_id, report],
        |row| row.get(0),
    )?;
    let since = last_request.unwrap_or(report).max(report);
    Ok(now < since + app.policy.suspicious_throttle_secs)
}

/// Creates the request and returns the answer for the relying party and the ids of the
/// relying party's earlier requests to this person that the new one superseded.
fn create_login(
    app: &App,
    conn: &mut rusqlite::Connection,
    client: &RelyingPartyConfig,
    ask: LoginAsk,
) -> Result<(BackchannelAuthResponse, Vec<String>)> {
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
    if throttled(app, &tx, &account_id, now)? {
        return Err(ServerError::BackchannelDenied(
            "the person recently reported a request as not theirs; requests to them are \
             throttled, try again later"
                .into(),
        ));
    }
    // Supersession frees the place of the request it closes, so the bound on open requests
    // alone would let one relying party push the person without end ("MFA fatigue"). Requests
    // of this relying party to this person that the person did not answer (open or
    // superseded) within one request lifetime are bounded like open requests are.
    let unanswered: i64 = tx.query_row(
        "SELECT count(*) FROM action_requests
         WHERE account_id = ?1 AND client_id = ?2 AND created_at > ?3
           AND (status = 'pending' OR closed_reason = 'superseded')",
        params![
            account_id,
            client.client_id,
            now - app.policy.request_ttl_secs
        ],
        |row| row.get(0),
    )?;
    if unanswered >= i64::from(app.policy.max_pending_per_account) {
        return Err(ServerError::BackchannelDenied(
            "too many unanswered requests of this client for this user; try again when the \
             person has answered"
                .into(),
        ));
    }
    // A newer request from the same relying party replaces its older one: the person sees one
    // request per relying party, the latest (a relying party retrying after a lost answer must
    // not fill the list).
    let superseded: Vec<String> = {
        let mut statement = tx.prepare(
            "SELECT id FROM action_requests
             WHERE account_id = ?1 AND client_id = ?2 AND status = 'pending' AND expires_at > ?3",
        )?;
        let rows = statement.query_map(params![account_id, client.client_id, now], |row| {
            row.get::<_, String>(0)
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.execute(
        "UPDATE action_requests SET status = 'denied', answered_at = ?3,
             closed_reason = 'superseded'
         WHERE account_id = ?1 AND client_id = ?2 AND status = 'pending'",
        params![account_id, client.client_id, now],
    )?;
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
    let (match_number, options) = if ask.number_matching {
        let (right, options) = number_options()?;
        (Some(right), Some(options))
    } else {
        (None, None)
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
        kind: ask.kind,
        text: request_text(client, &ask),
        claims: ask.required_claims.clone(),
        optional_claims: ask.optional_claims.clone(),
        binding_message: ask.binding_message,
        uv: ask.uv,
        number_options: options,
        transaction: ask.transaction,
        document: ask.document,
    };
    // Whatever a relying party sends is cleaned before the server signs it for display.
    action::clean_for_display(&mut request);
    request
        .validate(now)
        .map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
    let payload = serde_json::to_vec(&request).map_err(|e| ServerError::Internal(e.to_string()))?;
    let jws = app.keys.sign(ACTION_TYP, &payload);
    let to_json = |v: &Vec<String>| {
        serde_json::to_string(v).map_err(|e| ServerError::Internal(e.to_string()))
    };
    let kind_name = match serde_json::to_value(request.kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => return Err(ServerError::Internal("request kind without a name".into())),
    };
    tx.execute(
        "INSERT INTO action_requests (id, auth_req_id, client_id, account_id, jws, scope, claims,
             uv, created_at, expires_at, status, kind, optional_claims, match_number,
             request_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?13, ?14)",
        params![
            request_id,
            auth_req_id,
            client.client_id,
            account_id,
            jws,
            ask.scope,
            to_json(&request.claims)?,
            uv_to_column(request.uv)?,
            now,
            request.exp,
            kind_name,
            to_json(&request.optional_claims)?,
            match_number,
            jose::sha256_b64(&jws),
        ],
    )?;
    app.push.send(
        &tx,
        &PushMessage {
            account_id,
            request_id: request_id.clone(),
        },
    )?;
    // The ping is registered before the commit makes the request visible to the phone: a phone
    // that answers at once must find it. If the commit fails, the entry is never notified and
    // is dropped at its expiry.
    if let (Some(token), Some(endpoint)) = (ask.notification_token, &client.notification_endpoint) {
        app.notifier.register(
            &request_id,
            &auth_req_id,
            endpoint,
            token,
            request.exp + TOKEN_PICKUP_GRACE_SECS,
        );
    }
    tx.commit()?;
    Ok((
        BackchannelAuthResponse {
            auth_req_id,
            expires_in: ask.ttl_secs,
            interval: app.policy.ciba_poll_interval_secs,
            match_number,
        },
        superseded,
    ))
}

/// `POST /oidc/token`: the CIBA grant, polled by the relying party.
async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let client_id = authenticate_client(&state, &headers, peer.ip())
        .await?
        .client_id;
    let params = Params::parse(&body)?;
    if params.required("grant_type")? != api::oidc::CIBA_GRANT_TYPE {
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
                    a.given_name, a.family_name, r.method, r.closed_reason, r.decline_reason,
                    a.birthdate, a.national_register_number,
                    (SELECT p.phone_number FROM phone_numbers p WHERE p.account_id = a.id
                     ORDER BY p.verified_at DESC LIMIT 1),
                    r.jws
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
                    closed_reason: row.get(11)?,
                    decline_reason: row.get(12)?,
                    birthdate: row.get(13)?,
                    national_register_number: row.get(14)?,
                    phone_number: row.get(15)?,
                    request_jws: row.get(16)?,
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
        Status::Declined => Err(ServerError::AccessDenied(
            match grant.decline_reason.as_deref() {
                Some("not_me") => "the person declined: they did not start this request",
                Some("wrong_number") => {
                    "the person picked another number than the one shown; the request is declined"
                }
                _ => "the person declined",
            }
            .into(),
        )),
        Status::Denied => Err(ServerError::AccessDenied(
            match grant.closed_reason.as_deref() {
                Some("superseded") => "superseded by a newer request of this client",
                _ => "the request was closed: the person's digital key is blocked",
            }
            .into(),
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
    /// Why the server closed the request (`blocked`, `superseded`).
    closed_reason: Option<String>,
    /// Why the person declined (`cancelled`, `not_me`, `wrong_number`).
    decline_reason: Option<String>,
    birthdate: String,
    national_register_number: String,
    phone_number: Option<String>,
    /// The action request as signed and stored: what the phone showed and signed the hash of.
    request_jws: String,
}

/// The action request of a grant, read back from the JWS the server signed and the phone
/// answered (checked with the server's own key, so that the ID token can only describe what
/// the server itself signed).
fn signed_request(app: &App, jws: &str) -> Result<ActionRequest> {
    let unreadable =
        |e: sleutel_protocol::ProtocolError| ServerError::Internal(format!("stored request: {e}"));
    let payload = UnverifiedJws::parse(jws, "stored action request")
        .and_then(|parsed| {
            parsed.verify(
                app.keys.server_verifying_key(),
                ACTION_TYP,
                "stored action request",
            )
        })
        .map_err(unreadable)?;
    jose::parse_claims(&payload, "stored action request").map_err(unreadable)
}

fn id_token(app: &App, client_id: &str, grant: &Grant, now: i64) -> Result<TokenResponse> {
    let consented: Vec<String> = match &grant.consented_claims {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| ServerError::Internal(format!("stored consent unreadable: {e}")))?,
        None => Vec::new(),
    };
    // The consent was checked against the request's claims, which the relying party was
    // allowed; checking the registration again covers a registration narrowed since.
    let allowed = app.clients.allowed_claims(client_id).unwrap_or_default();
    let released =
        |claim: &str| consented.iter().any(|c| c == claim) && allowed.iter().any(|c| c == claim);
    let age_over_18 = if released(claims::AGE_OVER_18) {
        let birth = identity::Date::parse(&grant.birthdate)
            .map_err(|e| ServerError::Internal(format!("stored birthdate unreadable: {e}")))?;
        Some(birth.age_on(identity::Date::from_unix(now)) >= ADULT_AGE_YEARS)
    } else {
        None
    };
    let biometric = grant.method.as_deref() == Some("biometric");
    // What was approved comes from the signed request itself, the one whose hash the phone's
    // signatures cover, not from anything the relying party sent or could change later.
    let request = signed_request(app, &grant.request_jws)?;
    let sleutel_action = ApprovedAction::of_request(&request, &grant.request_jws);
    let claims = IdTokenClaims {
        iss: app.url.clone(),
        sub: app.keys.pairwise_subject(client_id, &grant.account_id)?,
        aud: client_id.to_owned(),
        iat: now,
        exp: now + app.policy.id_token_ttl_secs,
        auth_time: grant.auth_time.unwrap_or(now),
        acr: if biometric {
            api::oidc::ACR_CODE_OR_BIOMETRIC
        } else {
            api::oidc::ACR_CODE
        }
        .to_owned(),
        amr: if biometric { AMR_BIOMETRIC } else { AMR_CODE }
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        name: released(claims::NAME).then(|| format!("{} {}", grant.given_name, grant.family_name)),
        given_name: released(claims::GIVEN_NAME).then(|| grant.given_name.clone()),
        family_name: released(claims::FAMILY_NAME).then(|| grant.family_name.clone()),
        birthdate: released(claims::BIRTHDATE).then(|| grant.birthdate.clone()),
        national_register_number: released(claims::NATIONAL_REGISTER_NUMBER)
            .then(|| grant.national_register_number.clone()),
        phone_number: if released(claims::PHONE_NUMBER) {
            grant.phone_number.clone()
        } else {
            None
        },
        age_over_18,
        sleutel_action,
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| ServerError::Internal(e.to_string()))?;
    Ok(TokenResponse {
        access_token: random::id()?,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_TTL_SECS,
        id_token: app.keys.sign(api::oidc::ID_TOKEN_TYP, &payload),
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
    fn client_ids_differing_only_in_case_or_separators_are_refused() {
        for other in ["SHOP-A", "shop_a", "Shop.A"] {
            let both = vec![
                RelyingPartyConfig::new("shop-a", "s1", "Shop A"),
                RelyingPartyConfig::new(other, "s2", "Shop B"),
            ];
            assert!(Clients::new(both).is_err(), "{other}");
        }
    }

    #[test]
    fn login_asks_are_checked() {
        let ask = |body: &str| read_login_ask(&Params::parse(body.as_bytes()).unwrap(), 300);
        let ok =
            ask("scope=openid+profile&login_hint=%2B32470123456&binding_message=AB12").unwrap();
        assert_eq!(
            ok.optional_claims,
            vec!["name", "given_name", "family_name"]
        );
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
