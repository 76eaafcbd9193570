//! "Online overheid", the demo relying-party site of `sleutel-harness web-demo`: a home page
//! with an "Aanmelden via Sleutel" button that runs the OpenID Connect authorization code flow
//! against the server, the callback that checks and exchanges what comes back, and a "Welkom"
//! page with the verified claims and a log-out.
//!
//! Each login gets a fresh `state`, `nonce` and PKCE S256 verifier, kept in the site's
//! server-side session (the browser holds only a random session id in a cookie). The callback
//! checks `state` before anything else (a wrong or missing one is an error page and no token
//! request: it is how a site tells its own login from one an attacker planted, RFC 6749
//! §10.12), then `iss` (RFC 9207: the answer comes from the server the login went to), then
//! exchanges the code (`client_secret_basic`) and verifies the ID token: signature against the
//! server's JWKS, `iss`, `aud`, `exp`, `nonce` and `at_hash`
//! ([`RelyingParty::verify_code_flow_tokens`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sleutel_protocol::api::oidc::IdTokenClaims;
use sleutel_protocol::jose::b64;
use sleutel_server::html::{self, escape};
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::rp::RelyingParty;
use crate::{HarnessError, Result};

/// Path of the callback the server sends the browser back to (the registered redirect URI).
pub const PATH_CALLBACK: &str = "/callback";
/// Path that starts a login.
pub const PATH_LOGIN: &str = "/login";
/// Path of the log-out form's target.
pub const PATH_LOGOUT: &str = "/logout";
/// Path of the site's stylesheet.
const PATH_STYLESHEET: &str = "/style.css";

/// The session cookie's name: its own, since cookies do not tell ports apart and the server's
/// sign-in cookie lives on the same loopback host.
const SESSION_COOKIE: &str = "online_overheid_session";

/// The site's Content-Security-Policy: its own stylesheet only, no script at all, forms only to
/// itself, never framed, no `<base>`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How long a session lives: a demo visit, not a working day.
const SESSION_TTL: Duration = Duration::from_secs(30 * 60);

/// How long a started login may take to come back: the server's own sign-in session lives 15
/// minutes, so a callback later than that cannot carry a code this login asked for.
const LOGIN_TTL: Duration = Duration::from_secs(15 * 60);

/// How many sessions the site keeps: a demo on loopback has a handful; the bound keeps a script
/// that opens sessions in a loop from filling the memory.
const MAX_SESSIONS: usize = 10_000;

/// Random bytes of a session id, `state`, `nonce` and CSRF token (256 bits: unguessable).
const SECRET_BYTES: usize = 32;

/// Random bytes of a PKCE verifier: 32 bytes make 43 base64url characters, the least RFC 7636
/// §4.1 allows, with 256 bits of entropy as it recommends.
const VERIFIER_BYTES: usize = 32;

/// The scopes the site asks: the name.
const SCOPE: &str = "openid profile";

/// A language of the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Dutch, the default.
    Nl,
    /// French.
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The language's tag (`nl`), as `lang` and `ui_locales` write it.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        [Lang::Nl, Lang::Fr, Lang::En]
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(tag))
    }

    fn texts(self) -> &'static Texts {
        match self {
            Lang::Nl => &NL,
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }
}

/// Every text of the site, one table per language.
struct Texts {
    site: &'static str,
    intro: &'static str,
    sign_in: &'static str,
    welcome: &'static str,
    claims: &'static str,
    log_out: &'static str,
    language: &'static str,
    error_title: &'static str,
    no_login: &'static str,
    wrong_state: &'static str,
    wrong_issuer: &'static str,
    refused: &'static str,
    failed: &'static str,
    full: &'static str,
    start_again: &'static str,
}

const NL: Texts = Texts {
    site: "Online overheid",
    intro: "Meld u aan om uw dossiers te bekijken.",
    sign_in: "Aanmelden via Sleutel",
    welcome: "Welkom",
    claims: "Wat de overheid van u kreeg:",
    log_out: "Afmelden",
    language: "Taal",
    error_title: "Aanmelden lukte niet",
    no_login: "Er is geen aanmelding bezig in deze browser. Begin opnieuw.",
    wrong_state: "Dit antwoord hoort niet bij uw aanmelding (verkeerde state). Er is niets \
                  ingewisseld. Begin opnieuw.",
    wrong_issuer: "Dit antwoord komt niet van de Sleutel-server waar u zich aanmeldde.",
    refused: "De aanmelding werd niet bevestigd:",
    failed: "Het antwoord van Sleutel kon niet worden nagekeken.",
    full: "Te veel bezoekers. Probeer later opnieuw.",
    start_again: "Opnieuw beginnen",
};

const FR: Texts = Texts {
    site: "Administration en ligne",
    intro: "Connectez-vous pour consulter vos dossiers.",
    sign_in: "Se connecter via Sleutel",
    welcome: "Bienvenue",
    claims: "Ce que l'administration a reçu de vous :",
    log_out: "Se déconnecter",
    language: "Langue",
    error_title: "La connexion a échoué",
    no_login: "Aucune connexion n'est en cours dans ce navigateur. Recommencez.",
    wrong_state: "Cette réponse n'appartient pas à votre connexion (state erroné). Rien n'a été \
                  échangé. Recommencez.",
    wrong_issuer: "Cette réponse ne vient pas du serveur Sleutel auquel vous vous êtes connecté.",
    refused: "La connexion n'a pas été confirmée :",
    failed: "La réponse de Sleutel n'a pas pu être vérifiée.",
    full: "Trop de visiteurs. Réessayez plus tard.",
    start_again: "Recommencer",
};

const EN: Texts = Texts {
    site: "Online government",
    intro: "Sign in to see your files.",
    sign_in: "Sign in with Sleutel",
    welcome: "Welcome",
    claims: "What the government received from you:",
    log_out: "Sign out",
    language: "Language",
    error_title: "Signing in failed",
    no_login: "No sign-in is under way in this browser. Start again.",
    wrong_state: "This answer does not belong to your sign-in (wrong state). Nothing was \
                  exchanged. Start again.",
    wrong_issuer: "This answer does not come from the Sleutel server you signed in with.",
    refused: "The sign-in was not confirmed:",
    failed: "Sleutel's answer could not be verified.",
    full: "Too many visitors. Try again later.",
    start_again: "Start again",
};

/// The stylesheet, served by the site itself (the CSP allows no inline style).
const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}header{border-bottom:4px solid #1f4e79;\
margin-bottom:1rem}h1{color:#1f4e79}nav a{margin-right:.5rem}\
a.button,button{display:inline-block;margin-top:1rem;font-size:1.1rem;padding:.6rem 1.2rem;\
background:#ff4612;color:#fff;border:0;border-radius:.3rem;text-decoration:none;cursor:pointer}\
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}\
td{word-break:break-all}.site{font-weight:700;font-size:1.25rem;color:#1f4e79;margin:0}\
.error{color:#a40000}";

/// A login the browser started and the callback has not finished.
struct PendingLogin {
    state: String,
    nonce: String,
    verifier: String,
    started: Instant,
}

/// One browser's session at the site.
struct Session {
    lang: Lang,
    csrf: String,
    pending: Option<PendingLogin>,
    signed_in: Option<IdTokenClaims>,
    last_seen: Instant,
}

/// Why a callback does not sign the person in; each is a page that says to start again.
#[derive(Debug, Error)]
enum CallbackError {
    /// No login was started in this browser (no session, or it expired).
    #[error("no login under way")]
    NoLogin,
    /// `state` is missing or not the one this login sent: no token request is made.
    #[error("wrong state")]
    WrongState,
    /// `iss` is missing or not the server's issuer (RFC 9207).
    #[error("wrong issuer")]
    WrongIssuer,
    /// The server sent an error back (`access_denied` for a decline, an expiry or not-me).
    #[error("refused: {0}")]
    Refused(String),
    /// The code exchange or the ID token's verification failed.
    #[error("verification: {0}")]
    Failed(HarnessError),
}

impl CallbackError {
    fn status(&self) -> StatusCode {
        match self {
            CallbackError::NoLogin | CallbackError::WrongState | CallbackError::WrongIssuer => {
                StatusCode::BAD_REQUEST
            }
            CallbackError::Refused(_) => StatusCode::OK,
            CallbackError::Failed(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn text(&self, t: &Texts) -> String {
        match self {
            CallbackError::NoLogin => t.no_login.to_owned(),
            CallbackError::WrongState => t.wrong_state.to_owned(),
            CallbackError::WrongIssuer => t.wrong_issuer.to_owned(),
            CallbackError::Refused(error) => format!("{} {error}", t.refused),
            CallbackError::Failed(_) => t.failed.to_owned(),
        }
    }
}

/// The site's shared state.
#[derive(Clone)]
struct Site {
    rp: RelyingParty,
    redirect_uri: String,
    default_lang: Lang,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

/// The demo site, bound to its port and ready to serve.
pub struct DemoSite {
    listener: TcpListener,
    site: Site,
}

impl DemoSite {
    /// The site on `listener` (whose base URL is `url`), signing people in at the server through
    /// `rp` (a relying party whose registration lists `url` + [`PATH_CALLBACK`]), in
    /// `default_lang` until the person picks another.
    pub fn new(listener: TcpListener, url: &str, rp: RelyingParty, default_lang: Lang) -> Self {
        Self {
            listener,
            site: Site {
                rp,
                redirect_uri: redirect_uri(url),
                default_lang,
                sessions: Arc::default(),
            },
        }
    }

    /// Serves the site until the task is dropped.
    pub async fn serve(self) -> Result<()> {
        let router = Router::new()
            .route("/", get(home))
            .route(PATH_LOGIN, get(login))
            .route(PATH_CALLBACK, get(callback))
            .route(PATH_LOGOUT, post(logout))
            .route(PATH_STYLESHEET, get(stylesheet))
            .with_state(self.site);
        axum::serve(self.listener, router)
            .await
            .map_err(|e| HarnessError::Server(format!("demo site: {e}")))
    }
}

/// The redirect URI of the site at `url`.
pub fn redirect_uri(url: &str) -> String {
    format!("{}{PATH_CALLBACK}", url.trim_end_matches('/'))
}

/// A fresh random secret, base64url.
fn random_secret<const N: usize>() -> Result<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| HarnessError::State(format!("OS random generator failed: {e}")))?;
    Ok(b64(bytes))
}

impl Site {
    fn sessions<T>(&self, f: impl FnOnce(&mut HashMap<String, Session>) -> T) -> T {
        // Held for a lookup or an insert, never across an await.
        let mut guard = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// The browser's live session id, if its cookie names one.
    fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers)?;
        self.sessions(|sessions| {
            let live = sessions
                .get_mut(&id)
                .filter(|s| s.last_seen.elapsed() < SESSION_TTL)
                .map(|s| s.last_seen = Instant::now())
                .is_some();
            live.then_some(id)
        })
    }

    /// The browser's session, or a new one (with the cookie to set). `None` when the site is
    /// full even after dropping expired sessions.
    fn session_or_new(&self, headers: &HeaderMap) -> Result<Option<(String, Option<String>)>> {
        if let Some(id) = self.session_id(headers) {
            return Ok(Some((id, None)));
        }
        let id = random_secret::<SECRET_BYTES>()?;
        let session = Session {
            lang: self.default_lang,
            csrf: random_secret::<SECRET_BYTES>()?,
            pending: None,
            signed_in: None,
            last_seen: Instant::now(),
        };
        let stored = self.sessions(|sessions| {
            if sessions.len() >= MAX_SESSIONS {
                sessions.retain(|_, s| s.last_seen.elapsed() < SESSION_TTL);
            }
            if sessions.len() >= MAX_SESSIONS {
                return false;
            }
            sessions.insert(id.clone(), session);
            true
        });
        // The cookie is not `Secure`: the demo site is plain http on loopback.
        let cookie = format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax");
        Ok(stored.then_some((id, Some(cookie))))
    }

    fn lang(&self, id: Option<&str>) -> Lang {
        id.and_then(|id| self.sessions(|s| s.get(id).map(|s| s.lang)))
            .unwrap_or(self.default_lang)
    }
}

/// The session id in the request's cookie.
fn cookie(headers: &HeaderMap) -> Option<String> {
    html::cookie(headers, SESSION_COOKIE)
}

/// A whole page in `lang` with the language choice; `body` is trusted markup of escaped parts.
fn document(lang: Lang, title: &str, body: &str) -> String {
    let t = lang.texts();
    let choice: String = [Lang::Nl, Lang::Fr, Lang::En]
        .into_iter()
        .map(|l| {
            if l == lang {
                format!("<strong>{}</strong> ", l.tag().to_uppercase())
            } else {
                format!(
                    "<a href=\"/?lang={tag}\" hreflang=\"{tag}\">{upper}</a> ",
                    tag = l.tag(),
                    upper = l.tag().to_uppercase()
                )
            }
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"{tag}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — {site}</title><link rel=\"stylesheet\" href=\"{PATH_STYLESHEET}\">\
         </head><body><header><p class=\"site\">{site}</p>\
         <nav aria-label=\"{language}\">{choice}</nav></header><main>{body}</main></body></html>\n",
        tag = lang.tag(),
        title = escape(title),
        site = escape(t.site),
        language = escape(t.language),
    )
}

/// An HTML answer with the site's security headers, and a cookie to set if any.
fn html(status: StatusCode, body: String, cookie: Option<String>) -> Response {
    html::page(status, body, CONTENT_SECURITY_POLICY, cookie)
}

/// A `303 See Other` to `location`, with the security headers and a cookie to set if any.
fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = html(StatusCode::SEE_OTHER, String::new(), cookie);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A page of one message with a way to start again.
fn message_page(status: StatusCode, lang: Lang, title: &str, text: &str) -> Response {
    let t = lang.texts();
    let body = format!(
        "<h1>{title}</h1><p class=\"error\" role=\"alert\">{text}</p>\
         <p><a class=\"button\" href=\"/\">{again}</a></p>",
        title = escape(title),
        text = escape(text),
        again = escape(t.start_again),
    );
    html(status, document(lang, title, &body), None)
}

fn unavailable(lang: Lang) -> Response {
    let t = lang.texts();
    message_page(StatusCode::SERVICE_UNAVAILABLE, lang, t.error_title, t.full)
}

/// The query of the home page.
#[derive(Deserialize)]
struct HomeQuery {
    lang: Option<String>,
}

/// `GET /`: the "Aanmelden via Sleutel" button, or "Welkom" with the claims once signed in.
/// `?lang=` picks the language.
async fn home(
    State(site): State<Site>,
    Query(query): Query<HomeQuery>,
    headers: HeaderMap,
) -> Response {
    let Ok(Some((id, cookie))) = site.session_or_new(&headers) else {
        return unavailable(site.default_lang);
    };
    let chosen = query.lang.as_deref().and_then(Lang::from_tag);
    let (lang, csrf, signed_in) = site.sessions(|sessions| {
        let Some(session) = sessions.get_mut(&id) else {
            return (site.default_lang, String::new(), None);
        };
        if let Some(lang) = chosen {
            session.lang = lang;
        }
        (
            session.lang,
            session.csrf.clone(),
            session.signed_in.clone(),
        )
    });
    let t = lang.texts();
    let body = match signed_in {
        None => format!(
            "<h1>{site}</h1><p>{intro}</p>\
             <p><a class=\"button\" id=\"sign-in\" href=\"{PATH_LOGIN}\">{sign_in}</a></p>",
            site = escape(t.site),
            intro = escape(t.intro),
            sign_in = escape(t.sign_in),
        ),
        Some(claims) => welcome(t, &claims, &csrf),
    };
    html(StatusCode::OK, document(lang, t.site, &body), cookie)
}

/// The "Welkom" part of the home page: the name, the claims, the log-out form.
fn welcome(t: &Texts, claims: &IdTokenClaims, csrf: &str) -> String {
    let name = claims.name.clone().unwrap_or_default();
    let mut rows = vec![
        ("sub", claims.sub.clone()),
        ("acr", claims.acr.clone()),
        ("amr", claims.amr.join(" ")),
    ];
    let optional = [
        ("name", &claims.name),
        ("given_name", &claims.given_name),
        ("family_name", &claims.family_name),
        ("birthdate", &claims.birthdate),
        ("national_register_number", &claims.national_register_number),
        ("phone_number", &claims.phone_number),
    ];
    rows.extend(
        optional
            .into_iter()
            .filter_map(|(claim, value)| value.clone().map(|v| (claim, v))),
    );
    let rows: String = rows
        .into_iter()
        .map(|(claim, value)| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                escape(claim),
                escape(&value)
            )
        })
        .collect();
    format!(
        "<h1 id=\"welcome\">{welcome}, {name}</h1><p>{claims_label}</p>\
         <table id=\"claims\">{rows}</table>\
         <form method=\"post\" action=\"{PATH_LOGOUT}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <button type=\"submit\">{log_out}</button></form>",
        welcome = escape(t.welcome),
        name = escape(&name),
        claims_label = escape(t.claims),
        csrf = escape(csrf),
        log_out = escape(t.log_out),
    )
}

/// `GET /login`: a fresh state, nonce and PKCE verifier in the session, then the browser goes
/// to the server's authorization endpoint.
async fn login(State(site): State<Site>, headers: HeaderMap) -> Response {
    let lang = site.lang(site.session_id(&headers).as_deref());
    match start_login(&site, &headers).await {
        Ok(Some((location, cookie))) => see_other(&location, cookie),
        Ok(None) => unavailable(lang),
        Err(e) => {
            eprintln!("demo site: a login could not start: {e}");
            let t = lang.texts();
            message_page(StatusCode::BAD_GATEWAY, lang, t.error_title, t.failed)
        }
    }
}

/// The authorization URL of a new login, and the cookie of a new session if one was opened.
async fn start_login(site: &Site, headers: &HeaderMap) -> Result<Option<(String, Option<String>)>> {
    let Some((id, cookie)) = site.session_or_new(headers)? else {
        return Ok(None);
    };
    let pending = PendingLogin {
        state: random_secret::<SECRET_BYTES>()?,
        nonce: random_secret::<SECRET_BYTES>()?,
        verifier: random_secret::<VERIFIER_BYTES>()?,
        started: Instant::now(),
    };
    let challenge = b64(Sha256::digest(pending.verifier.as_bytes()));
    let endpoint = site
        .rp
        .discovery()
        .await?
        .authorization_endpoint
        .clone()
        .ok_or_else(|| HarnessError::Missing("the server's authorization endpoint".into()))?;
    let mut url = url::Url::parse(&endpoint).map_err(|e| HarnessError::Http(e.to_string()))?;
    let lang = site.sessions(|sessions| {
        let session = sessions.get_mut(&id)?;
        let lang = session.lang;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", site.rp.client_id())
            .append_pair("redirect_uri", &site.redirect_uri)
            .append_pair("scope", SCOPE)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("ui_locales", lang.tag());
        // A new login replaces one the browser started and left.
        session.pending = Some(pending);
        Some(lang)
    });
    Ok(lang.map(|_| (url.to_string(), cookie)))
}

/// The authorization response (RFC 6749 §4.1.2, RFC 9207).
#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// `GET /callback`: checks state and iss, exchanges the code, verifies the ID token, signs the
/// person in.
async fn callback(
    State(site): State<Site>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let id = site.session_id(&headers);
    let lang = site.lang(id.as_deref());
    match finish_login(&site, id.as_deref(), query).await {
        Ok(()) => see_other("/", None),
        Err(e) => {
            if let CallbackError::Failed(cause) = &e {
                eprintln!("demo site: a sign-in did not verify: {cause}");
            }
            let t = lang.texts();
            message_page(e.status(), lang, t.error_title, &e.text(t))
        }
    }
}

async fn finish_login(
    site: &Site,
    id: Option<&str>,
    query: CallbackQuery,
) -> std::result::Result<(), CallbackError> {
    let id = id.ok_or(CallbackError::NoLogin)?;
    // The pending login is taken only once its state matched: a forged callback must not
    // cancel the person's real login. Past this point a wrong `iss` ends it: its state went to
    // another issuer (a mix-up, RFC 9207 §2.4).
    let pending = site.sessions(|sessions| {
        let session = sessions.get_mut(id).ok_or(CallbackError::NoLogin)?;
        let pending = session
            .pending
            .as_ref()
            .filter(|p| p.started.elapsed() < LOGIN_TTL)
            .ok_or(CallbackError::NoLogin)?;
        let state_matches = query
            .state
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.state.as_bytes())));
        if !state_matches {
            return Err(CallbackError::WrongState);
        }
        session.pending.take().ok_or(CallbackError::NoLogin)
    })?;
    let issuer = site
        .rp
        .discovery()
        .await
        .map_err(CallbackError::Failed)?
        .issuer
        .clone();
    if query.iss.as_deref() != Some(issuer.as_str()) {
        return Err(CallbackError::WrongIssuer);
    }
    if let Some(error) = query.error {
        return Err(CallbackError::Refused(error));
    }
    let code = query
        .code
        .ok_or_else(|| CallbackError::Refused("no code".into()))?;
    let token = site
        .rp
        .exchange_code(&code, &site.redirect_uri, &pending.verifier)
        .await
        .map_err(CallbackError::Failed)?;
    let claims = site
        .rp
        .verify_code_flow_tokens(&token, &pending.nonce)
        .await
        .map_err(CallbackError::Failed)?;
    site.sessions(|sessions| {
        if let Some(session) = sessions.get_mut(id) {
            session.signed_in = Some(claims);
        }
    });
    Ok(())
}

/// The log-out form.
#[derive(Deserialize)]
struct LogoutForm {
    csrf_token: String,
}

/// `POST /logout`: ends the sign-in (the CSRF token keeps another site from signing people out).
async fn logout(
    State(site): State<Site>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(id) = site.session_id(&headers) {
        site.sessions(|sessions| {
            if let Some(session) = sessions.get_mut(&id)
                && bool::from(form.csrf_token.as_bytes().ct_eq(session.csrf.as_bytes()))
            {
                session.signed_in = None;
            }
        });
    }
    see_other("/", None)
}

/// `GET /style.css`.
async fn stylesheet() -> Response {
    html::static_file(STYLESHEET, "text/css; charset=utf-8")
}
