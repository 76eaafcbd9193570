//! The authorization code flow's browser side (RFC 6749 §4.1, OpenID Connect Core §3.1.2,
//! PKCE RFC 7636, `iss` in the response RFC 9207): the authorization endpoint checks what the
//! relying party asks and opens a browser session ([`super::session`]); the sign-in page takes
//! the person's phone number and starts the very action request CIBA would
//! ([`super::backchannel::create_login`]); the wait page ([`super::wait`]) then waits until the
//! person answered on the phone and sends the browser back with the code, or shows why not.
//!
//! Decisions:
//! - An unknown client or a redirect URI not registered for it never redirects (OIDC Core
//!   §3.1.2.6, RFC 6749 §4.1.2.1): the browser gets an error page, 400. Every later fault is
//!   answered by a redirect to the registered URI with `error`, `state` and `iss`.
//! - PKCE `S256` is required: a missing challenge or `plain` is `invalid_request`.
//! - The browser holds only a random session id (a cookie, `HttpOnly; SameSite=Lax`, `Secure`
//!   unless the server runs on loopback); the session lives in the database under the id's
//!   SHA-256, with the CSRF token of the number form.
//! - A number without an active, unblocked and unthrottled digital key gets the very same wait
//!   page, which simply expires: the page does not tell whether a number is registered.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sleutel_protocol::action::{ActionKind, UserVerification};
use sleutel_protocol::{jose, phone};
use subtle::ConstantTimeEq;

use super::ask::{LoginAsk, read_acr_values, read_asked_claims, read_scopes};
use super::backchannel::{
    answer_floor, count_backchannel_call, create_login_in, create_unanswerable_in, usable_account,
};
use super::link;
use super::page::{self, Lang};
use super::session::{SESSION_TTL_SECS, Session, session_cookie, session_of};
use crate::config::RelyingPartyConfig;
use crate::error::{Result, ServerError};
use crate::extract::{Params, RawBody};
use crate::html::escape;
use crate::rate::{self, Bucket, Limit};
use crate::server::AppState;
use crate::store::relying_parties::{self, NewSession};
use crate::{clock, random};

/// Path of the sign-in form's target (POST).
pub(super) const PATH_SIGN_IN_NUMBER: &str = "/oidc/sign-in/number";

/// Path of the wait page, which refreshes itself until the person answered.
pub(super) const PATH_SIGN_IN_STATUS: &str = "/oidc/sign-in/status";

/// How long an authorization code can be exchanged: the browser is redirected at once and the
/// relying party redeems it at once; a minute covers slow networks, and a code caught in a log
/// later is worthless.
pub(crate) const AUTHORIZATION_CODE_TTL_SECS: i64 = 60;

/// How often the wait page reloads itself: often enough that the person is sent on within
/// seconds of answering, rarely enough that a waiting browser costs little.
pub(super) const WAIT_PAGE_REFRESH_SECS: u32 = 2;

/// Numbers one source address may send through the form per minute: a person mistypes a few
/// times; more is someone probing numbers or pushing requests at strangers' phones.
pub(super) const MAX_SIGN_IN_FORMS_PER_SOURCE_PER_MINUTE: u32 = 10;

/// Browser sessions one source address may open per minute. Every authorization request
/// writes a session row that lives [`SESSION_TTL_SECS`], before anyone is authenticated: a
/// person opens a sign-in a few times a minute at most, a household or an office behind one
/// address some more; beyond this someone is filling the database.
pub(super) const MAX_SIGN_IN_SESSIONS_PER_SOURCE_PER_MINUTE: u32 = 60;

/// Longest query string of an authorization request, in bytes: the three echoed parameters
/// at [`MAX_ECHOED_PARAMETER_CHARS`] each, percent-encoded, with ample room for `scope`,
/// `claims` and the rest. The session keeps `acr_values` as given (any repetition of the two
/// known values passes its check), so without a bound one request could store all the HTTP
/// layer lets through (64 KiB) for the session's life.
pub(super) const MAX_AUTHORIZATION_QUERY_BYTES: usize = 8192;

/// Longest value kept of `state`, `nonce` and `login_hint`: far above what a relying party
/// sends, small enough that a session row stays small.
pub(super) const MAX_ECHOED_PARAMETER_CHARS: usize = 512;

/// Length of a PKCE S256 challenge: the base64url of a SHA-256 digest, unpadded.
const S256_CHALLENGE_CHARS: usize = 43;

/// Digits of the short code the wait page and the phone both show (the binding message): four
/// digits are easy to compare at a glance.
pub(super) const BINDING_CODE_DIGITS: usize = 4;

/// The SHA-256 of a secret, base64url: how session ids, codes and tokens are stored.
pub(crate) fn digest(secret: &str) -> String {
    jose::b64(Sha256::digest(secret.as_bytes()))
}

/// A fault of an authorization request that is sent back to the relying party (RFC 6749
/// §4.1.2.1): the OAuth error code and a description.
pub(super) struct Refusal {
    pub(super) error: &'static str,
    pub(super) description: String,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }

    fn from_server_error(e: ServerError) -> Self {
        let description = e.to_string();
        Self::new(e.code(), description)
    }
}

/// The URL that sends the browser back to `redirect_uri` with `pairs`, `state` (when the
/// request had one) and `iss` (RFC 9207).
pub(super) fn back_url(
    app_url: &str,
    redirect_uri: &str,
    state: Option<&str>,
    pairs: &[(&str, &str)],
) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        // Registered URIs were parsed at start; this cannot happen.
        return redirect_uri.to_owned();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", app_url);
    }
    url.into()
}

/// A `303 See Other` to `location`, with the sign-in pages' headers.
pub(super) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    page::security_headers(headers);
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// An error page (no redirect) in `lang`.
pub(super) fn error_page(status: StatusCode, lang: Lang, text: &str) -> Response {
    let texts = lang.texts();
    page::html(
        status,
        page::message(lang, texts.error_title, text, None),
        None,
    )
}

/// The page for a fault of the server itself.
pub(super) fn internal_page(lang: Lang, e: &ServerError) -> Response {
    tracing::error!(error = %e, "sign-in failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        lang.texts().internal,
    )
}

/// A value kept for later, if given and not too long.
fn echoed(params: &Params, name: &str) -> Result<Option<String>, Refusal> {
    match params.optional(name) {
        Some(value) if value.chars().count() > MAX_ECHOED_PARAMETER_CHARS => Err(Refusal::new(
            "invalid_request",
            format!("{name} is longer than {MAX_ECHOED_PARAMETER_CHARS} characters"),
        )),
        value => Ok(value.map(str::to_owned)),
    }
}

/// What a checked authorization request asks, as the session keeps it.
pub(super) struct Asked {
    pub(super) scope: String,
    nonce: Option<String>,
    pub(super) code_challenge: String,
    login_hint: Option<String>,
    acr_values: Option<String>,
    claims: Option<String>,
    ui_locale: Option<Lang>,
}

/// Checks the parts of an authorization request that are answered by a redirect.
pub(super) fn check_request(
    params: &Params,
    client: &RelyingPartyConfig,
) -> Result<Asked, Refusal> {
    let invalid = |why: &str| Refusal::new("invalid_request", why);
    match params.optional("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(Refusal::new(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        None => return Err(invalid("response_type is missing")),
    }
    if params.has("request") || params.has("request_uri") {
        return Err(Refusal::new(
            if params.has("request") {
                "request_not_supported"
            } else {
                "request_uri_not_supported"
            },
            "request objects are not supported",
        ));
    }
    // A state too long to keep is refused, not dropped: the relying party would otherwise
    // get its answer without the state it checks.
    echoed(params, "state")?;
    let scopes = read_scopes(params).map_err(Refusal::from_server_error)?;
    match params.optional("code_challenge_method") {
        Some("S256") => {}
        Some("plain") => return Err(invalid("PKCE plain is not accepted; use S256")),
        Some(_) => return Err(invalid("unknown code_challenge_method; use S256")),
        None => return Err(invalid("code_challenge_method S256 is required (PKCE)")),
    }
    let code_challenge = params
        .optional("code_challenge")
        .ok_or_else(|| invalid("code_challenge is required (PKCE S256)"))?;
    if code_challenge.len() != S256_CHALLENGE_CHARS
        || jose::b64_decode(code_challenge, "code_challenge").is_err()
    {
        return Err(invalid(
            "code_challenge must be the base64url SHA-256 of the verifier",
        ));
    }
    let acr_values = params.optional("acr_values").map(str::to_owned);
    read_acr_values(params).map_err(Refusal::from_server_error)?;
    read_asked_claims(params, &scopes, ActionKind::Login, client)
        .map_err(Refusal::from_server_error)?;
    if let Some(prompt) = params.optional("prompt") {
        let prompts: Vec<&str> = prompt.split(' ').filter(|p| !p.is_empty()).collect();
        if prompts.contains(&"none") {
            if prompts.len() > 1 {
                return Err(invalid("prompt=none goes with no other value"));
            }
            // There is no sign-in to remember: every login is confirmed on the phone, so
            // nothing can happen without the person (OIDC Core §3.1.2.6).
            return Err(Refusal::new(
                "login_required",
                "every sign-in is confirmed on the phone",
            ));
        }
        if let Some(other) = prompts.iter().find(|p| !matches!(**p, "login" | "consent")) {
            return Err(invalid(&format!("unsupported prompt {other:?}")));
        }
    }
    Ok(Asked {
        scope: scopes.join(" "),
        nonce: echoed(params, "nonce")?,
        code_challenge: code_challenge.to_owned(),
        login_hint: echoed(params, "login_hint")?,
        acr_values,
        claims: params.optional("claims").map(str::to_owned),
        ui_locale: params
            .optional("ui_locales")
            .and_then(Lang::from_ui_locales),
    })
}

/// `GET /oidc/authorize`: checks the authorization request, opens a browser session and shows
/// the sign-in page.
pub(super) async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let browser_lang = Lang::choose(None, &headers);
    let bad = |lang: Lang| error_page(StatusCode::BAD_REQUEST, lang, lang.texts().bad_request);
    // Refused before it is read: no client is known yet to redirect to.
    if uri.query().map_or(0, str::len) > MAX_AUTHORIZATION_QUERY_BYTES {
        return error_page(
            StatusCode::URI_TOO_LONG,
            browser_lang,
            browser_lang.texts().bad_request,
        );
    }
    let Ok(params) = Params::query(&uri) else {
        return bad(browser_lang);
    };
    let lang = Lang::choose(
        params
            .optional("ui_locales")
            .and_then(Lang::from_ui_locales)
            .map(Lang::tag),
        &headers,
    );
    // Until the client and its redirect URI are known good, nothing redirects.
    let Some(client) = params
        .optional("client_id")
        .and_then(|id| state.clients.get(id))
        .cloned()
    else {
        return bad(lang);
    };
    let Some(redirect_uri) = params
        .optional("redirect_uri")
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
        .map(str::to_owned)
    else {
        return bad(lang);
    };
    let request_state = params
        .optional("state")
        .filter(|s| s.chars().count() <= MAX_ECHOED_PARAMETER_CHARS)
        .map(str::to_owned);
    let asked = match check_request(&params, &client) {
        Ok(asked) => asked,
        Err(refusal) => {
            return see_other(&back_url(
                &state.url,
                &redirect_uri,
                request_state.as_deref(),
                &[
                    ("error", refusal.error),
                    ("error_description", &refusal.description),
                ],
            ));
        }
    };
    let Ok(session_id) = random::id() else {
        return internal_page(lang, &ServerError::Internal("no randomness".into()));
    };
    let session_hash = digest(&session_id);
    let login_hint = asked.login_hint.clone();
    let client_id = client.client_id.clone();
    let Ok((link_id, link_secret)) = link::new_link() else {
        return internal_page(lang, &ServerError::Internal("no randomness".into()));
    };
    let app_link = link::app_link(&state.url, &link_id, &link_secret).ok();
    let source = peer.ip();
    let stored = state
        .db(move |_, conn| {
            let now = clock::now();
            let csrf = random::id()?;
            let tx = conn.immediate()?;
            let limit = Limit::per_minute(MAX_SIGN_IN_SESSIONS_PER_SOURCE_PER_MINUTE);
            if rate::take(&tx, Bucket::SignInSessionsBySource(source), limit, now)?.is_err() {
                return Ok(None);
            }
            super::purge_expired(&tx, now)?;
            relying_parties::open_session(
                &tx,
                &NewSession {
                    id_hash: &session_hash,
                    client_id: &client_id,
                    redirect_uri: &redirect_uri,
                    scope: &asked.scope,
                    state: request_state.as_deref(),
                    nonce: asked.nonce.as_deref(),
                    code_challenge: &asked.code_challenge,
                    login_hint: asked.login_hint.as_deref(),
                    acr_values: asked.acr_values.as_deref(),
                    claims: asked.claims.as_deref(),
                    ui_locale: asked.ui_locale.map(Lang::tag),
                    csrf_token: &csrf,
                    created_at: now,
                    expires_at: now + SESSION_TTL_SECS,
                    link_id: &link_id,
                    link_secret: &link_secret,
                },
            )?;
            tx.commit()?;
            Ok(Some(csrf))
        })
        .await;
    match stored {
        Ok(None) => error_page(StatusCode::TOO_MANY_REQUESTS, lang, lang.texts().too_many),
        Ok(Some(csrf)) => page::html(
            StatusCode::OK,
            sign_in_page(
                lang,
                &client.name,
                &csrf,
                login_hint.as_deref(),
                None,
                app_link.as_deref(),
            ),
            Some(session_cookie(&state.url, &session_id)),
        ),
        Err(e) => internal_page(lang, &e),
    }
}

/// The sign-in page: the number form, with `error` above it when the last number was not one,
/// and the other ways in: the QR code, and the app on this phone (`app_link`).
pub(super) fn sign_in_page(
    lang: Lang,
    client_name: &str,
    csrf: &str,
    login_hint: Option<&str>,
    error: Option<&str>,
    app_link: Option<&str>,
) -> String {
    let t = lang.texts();
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" id=\"number-error\" role=\"alert\">{}</p>",
                escape(e)
            )
        })
        .unwrap_or_default();
    let described_by = if error.is_empty() {
        "number-hint"
    } else {
        "number-hint number-error"
    };
    let body = format!(
        "<h1>{title}</h1><p>{at} <strong>{client}</strong></p>{error}\
         <form method=\"post\" action=\"{PATH_SIGN_IN_NUMBER}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <label for=\"phone_number\">{label}</label>\
         <p id=\"number-hint\">{hint}</p>\
         <input id=\"phone_number\" name=\"phone_number\" type=\"tel\" autocomplete=\"tel\" \
         inputmode=\"tel\" required autofocus aria-describedby=\"{described_by}\" value=\"{value}\">\
         <button type=\"submit\">{send}</button></form>{others}",
        title = escape(t.sign_in_title),
        at = escape(t.sign_in_at),
        client = escape(client_name),
        csrf = escape(csrf),
        label = escape(t.number_label),
        hint = escape(t.number_hint),
        value = escape(login_hint.unwrap_or_default()),
        send = escape(t.send),
        others = other_ways(t, app_link),
    );
    page::document(lang, t.sign_in_title, "", &body)
}

/// The links to the other ways of signing in: the QR page, and the app on this phone.
fn other_ways(t: &page::Texts, app_link: Option<&str>) -> String {
    let app = app_link
        .map(|href| {
            format!(
                "<p><a href=\"{}\">{}</a></p>",
                escape(href),
                escape(t.app_offer)
            )
        })
        .unwrap_or_default();
    format!(
        "<p><a href=\"{}\">{}</a></p>{app}",
        link::PATH_QR_PAGE,
        escape(t.qr_offer)
    )
}

/// What the number form leads to.
enum Started {
    /// A request is on its way to the phone (or, for a number without a usable key, nothing
    /// is, and the wait page will expire just the same).
    Waiting,
    /// The number is not a Belgian mobile number: the form again, with a message.
    NotANumber,
    /// The form came too often from this address.
    TooMany,
}

/// `POST /oidc/sign-in/number`: the person's phone number, with the session's CSRF token.
pub(super) async fn number(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let lang = Lang::choose(session.lang.as_deref(), &headers);
    let t = lang.texts();
    let forbidden = || error_page(StatusCode::FORBIDDEN, lang, t.forbidden);
    let Ok(params) = Params::parse(&body) else {
        return forbidden();
    };
    let given = params.optional("csrf_token").unwrap_or_default();
    // The token is the session's own: a form posted from another site does not know it.
    if !bool::from(given.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
        return forbidden();
    }
    if session.binding_code.is_some() {
        return see_other(PATH_SIGN_IN_STATUS);
    }
    let typed = params
        .optional("phone_number")
        .unwrap_or_default()
        .to_owned();
    let Some(client) = state.clients.get(&session.client_id).cloned() else {
        return error_page(StatusCode::BAD_REQUEST, lang, t.no_session);
    };
    let source = peer.ip();
    let client_name = client.name.clone();
    let csrf = session.csrf_token.clone();
    let app_link = link::app_link_of(&state.url, &session);
    // Whatever the number, the wait page is not shown sooner than this (decision 0030).
    let floor = answer_floor(&state);
    let started = start(&state, client, session, typed, source).await;
    match started {
        Ok((Started::Waiting, superseded, pushes)) => {
            state.notifier.notify(&superseded);
            // The request is committed: only now may a push make a phone look for it.
            state.push.dispatch(pushes);
            tokio::time::sleep_until(floor).await;
            see_other(PATH_SIGN_IN_STATUS)
        }
        Ok((Started::NotANumber, ..)) => page::html(
            StatusCode::BAD_REQUEST,
            sign_in_page(
                lang,
                &client_name,
                &csrf,
                None,
                Some(t.invalid_number),
                app_link.as_deref(),
            ),
            None,
        ),
        Ok((Started::TooMany, ..)) => error_page(StatusCode::TOO_MANY_REQUESTS, lang, t.too_many),
        Err(ServerError::BackchannelRateLimited { .. }) => {
            error_page(StatusCode::TOO_MANY_REQUESTS, lang, t.too_many)
        }
        Err(e) => internal_page(lang, &e),
    }
}

/// Starts the login of the number `typed` for `session`: the same limits and the same action
/// request as a backchannel authentication request of the relying party. Each step that
/// commits is its own unit of database work, so that a unit that loses a conflict between
/// instances runs again whole, never after something it committed.
async fn start(
    state: &AppState,
    client: RelyingPartyConfig,
    session: Session,
    typed: String,
    source: std::net::IpAddr,
) -> Result<(Started, Vec<String>, Vec<crate::push::Delivery>)> {
    let taken = state
        .db(move |_, conn| {
            let tx = conn.immediate()?;
            let limit = Limit::per_minute(MAX_SIGN_IN_FORMS_PER_SOURCE_PER_MINUTE);
            let taken = rate::take(
                &tx,
                Bucket::SignInFormsBySource(source),
                limit,
                clock::now(),
            )?;
            tx.commit()?;
            Ok(taken.is_ok())
        })
        .await?;
    if !taken {
        return Ok((Started::TooMany, Vec::new(), Vec::new()));
    }
    let Ok(phone_number) = phone::normalize_belgian_mobile(&typed) else {
        return Ok((Started::NotANumber, Vec::new(), Vec::new()));
    };
    let client_id = client.client_id.clone();
    state
        .db(move |app, conn| count_backchannel_call(app, conn, &client_id))
        .await?;
    let binding_code = random::digits(BINDING_CODE_DIGITS)?;
    let ask = session_ask(
        &session,
        &client,
        phone_number,
        &binding_code,
        state.policy.request_ttl_secs,
    )?;
    let ttl = ask.ttl_secs;
    // The session is claimed before any request exists: of several posts of the form at once
    // (a double click), only the one that binds the session starts a request. Otherwise each
    // would start one, the last superseding the others, while the session kept the code of
    // the first: the phone and the wait page would show different codes.
    let id_hash = session.id_hash.clone();
    let claimed = state
        .db(move |_, conn| {
            Ok(relying_parties::bind_session_by_number(
                conn,
                &id_hash,
                &binding_code,
                clock::now() + ttl,
                link::BOUND_BY_NUMBER,
            )?)
        })
        .await?;
    if !claimed {
        return Ok((Started::Waiting, Vec::new(), Vec::new()));
    }
    // From here a fault leaves a session bound to no request: its wait page expires, as for an
    // unknown number, and the person starts again from the relying party.
    state
        .db(move |app, conn| {
            let created = {
                let tx = conn.immediate()?;
                let created = match usable_account(&tx, &ask.phone_number)? {
                    Some(account) => {
                        create_login_in(app, &tx, &client, &ask, account).map(Begun::Person)
                    }
                    // A number without a usable key is recorded as a backchannel request
                    // nobody can answer, so that it counts towards the same limits per person
                    // as a registered number's sign-in (decision 0030).
                    None => create_unanswerable_in(app, &tx, &client, &ask)
                        .map(|(_, superseded)| Begun::Nobody { superseded }),
                };
                match created {
                    Ok(Begun::Person((started, superseded, pushes))) => {
                        relying_parties::set_session_request(
                            &tx,
                            &session.id_hash,
                            Some(&started.auth_req_id),
                        )?;
                        tx.commit()?;
                        Some((superseded, pushes))
                    }
                    // The session stays bound to no request: its page waits and expires just
                    // as for a person who does not answer. The relying party's requests for
                    // the number it superseded are pinged as a person's would be.
                    Ok(Begun::Nobody { superseded }) => {
                        relying_parties::set_session_request(&tx, &session.id_hash, None)?;
                        tx.commit()?;
                        Some((superseded, Vec::new()))
                    }
                    // Throttled after a "not me", or a limit per person: nothing is kept, and
                    // the page waits and expires all the same.
                    Err(ServerError::BackchannelDenied(_)) => None,
                    Err(e) => return Err(e),
                }
            };
            match created {
                Some((superseded, pushes)) => Ok((Started::Waiting, superseded, pushes)),
                None => {
                    relying_parties::set_session_request(conn, &session.id_hash, None)?;
                    Ok((Started::Waiting, Vec::new(), Vec::new()))
                }
            }
        })
        .await
}

/// What a sign-in's number began: a person's request, or one nobody can answer (with the
/// relying party's earlier requests for the number that it superseded).
enum Begun {
    Person(super::backchannel::Created),
    Nobody { superseded: Vec<String> },
}

/// The ask of a session, as a backchannel authentication request would make it: a login with
/// the session's scope, claims and ACR values, and the short code as the binding message.
pub(super) fn session_ask(
    session: &Session,
    client: &RelyingPartyConfig,
    phone_number: String,
    binding_code: &str,
    ttl_secs: i64,
) -> Result<LoginAsk> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("scope", &session.scope);
    if let Some(acr) = &session.acr_values {
        form.append_pair("acr_values", acr);
    }
    if let Some(claims) = &session.claims {
        form.append_pair("claims", claims);
    }
    let params = Params::parse(form.finish().as_bytes())?;
    let scopes = read_scopes(&params)?;
    let uv: UserVerification = read_acr_values(&params)?;
    let (required_claims, optional_claims) =
        read_asked_claims(&params, &scopes, ActionKind::Login, client)?;
    Ok(LoginAsk {
        phone_number,
        scope: scopes.join(" "),
        binding_message: Some(binding_code.to_owned()),
        ttl_secs,
        uv,
        kind: ActionKind::Login,
        transaction: None,
        document: None,
        required_claims,
        optional_claims,
        number_matching: false,
        notification_token: None,
    })
}
