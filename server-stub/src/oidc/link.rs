//! Signing in with the app instead of typing the number: the rotating QR code the sign-in page
//! shows for the app on another device, the "open the app on this phone" link (app-to-app), the
//! device call that hands either link to the server, the return URL that takes the person back
//! after an app-to-app sign-in, and the files that let the platforms open the link in the app.
//!
//! Decisions (docs/decisions/0024 and 0025):
//! - Each browser session has a public link id and a random secret kept on the server. The QR
//!   link carries the id, the time step (every [`QR_STEP_SECS`]) and HMAC-SHA256(secret, id and
//!   step) truncated to [`LINK_MAC_BYTES`]: a photo of the code is good for the step it shows
//!   and the next, and no one can compute the codes of later steps. The session cookie is never
//!   in a link.
//! - The first valid link binds the session to the calling device's account, once: any later
//!   link of the session (or a link after the number form) is `sign_in_link_used`. The binding
//!   and the action request commit together, and the request is the very one the number form
//!   starts (same ask, same short code, same limits).
//! - An app-to-app session never hands its authorization code to the browser holding the
//!   cookie: the code leaves only through the one-time return URL given to the phone, so a link
//!   sent to someone else cannot log the sender's browser in.
//! - A `GET` of a link (a browser without the app, a link preview) never binds anything.

use crate::store::relying_parties::{self, LinkBinding};
use crate::store::{Conn, accounts};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use qrcode::QrCode;
use qrcode::render::svg;
use sha2::Sha256;
use sleutel_protocol::api::sign_in::{
    LINK_MAC_BYTES, OpenSignInLink, PATH_APP_SIGN_IN, SignInLink, SignInLinkOpened,
};
use sleutel_protocol::jose;
use subtle::ConstantTimeEq;

use super::authorize::{
    self, PATH_SIGN_IN_STATUS, back_url, digest, error_page, internal_page, see_other, session_ask,
};
use super::backchannel::{create_login_in, request_id_of};
use super::live;
use super::no_store;
use super::page::{self, Lang};
use super::session::{Session, session_of};
use super::wait::{self, Outcome};
use crate::auth::{self, PhoneCall};
use crate::config::AppLinksConfig;
use crate::error::{Result, ServerError};
use crate::extract::{self, Params};
use crate::html::escape;
use crate::rate::{self, Bucket, Limit};
use crate::server::{App, AppState};
use crate::{clock, random};

/// Path of the QR page, which shows the rotating code and reloads itself every step.
pub(super) const PATH_QR_PAGE: &str = "/oidc/sign-in/qr";

/// Path of the QR code image of the session's current step (SVG).
pub(super) const PATH_QR_IMAGE: &str = "/oidc/sign-in/qr.svg";

/// Path of the return URL of an app-to-app sign-in.
pub(super) const PATH_RETURN: &str = "/oidc/sign-in/return";

/// Path of the iOS universal-link association file.
pub(super) const PATH_APPLE_APP_SITE_ASSOCIATION: &str = "/.well-known/apple-app-site-association";

/// Path of the Android app-link association file.
pub(super) const PATH_ASSET_LINKS: &str = "/.well-known/assetlinks.json";

/// Query parameter of the return URL carrying its one-time token.
const RETURN_TOKEN_PARAMETER: &str = "token";

/// How long one QR code stands: short enough that a photo relayed to someone else is stale
/// within seconds (as BankID's animated code), long enough for a phone camera to focus and read
/// it, and for the page to swap it without flicker.
pub(super) const QR_STEP_SECS: i64 = 2;

/// Time steps a scanned code is accepted for: its own and the next. The code on the screen was
/// made at most one step ago, and a scan that lands just after the change must still work; any
/// older code is expired. So a photo is good for at most `2 × QR_STEP_SECS`.
pub(super) const QR_STEPS_ACCEPTED: i64 = 2;

/// `bound_by` of a session bound by the number form.
pub(super) const BOUND_BY_NUMBER: &str = "number";
/// `bound_by` of a session bound by a scanned QR link.
const BOUND_BY_QR: &str = "qr";
/// `bound_by` of a session bound by an app-to-app link.
pub(super) const BOUND_BY_APP: &str = "app";

/// Bytes of a session's link secret: the HMAC-SHA256 key, a full 256 bits.
const LINK_SECRET_BYTES: usize = 32;

/// Smallest width and height of the QR image, in pixels: about 8 pixels a module for the codes
/// of a usual server URL, easy for a phone camera at arm's length from a laptop screen.
const QR_IMAGE_PIXELS: u32 = 264;

/// Domain separation of the MACs: a QR MAC can never pass as an app MAC, nor the other way.
const QR_MAC_LABEL: &str = "sleutel-sign-in-qr/v1";
const APP_MAC_LABEL: &str = "sleutel-sign-in-app/v1";

/// A new link id and link secret (base64url) for a browser session.
pub(super) fn new_link() -> Result<(String, String)> {
    Ok((
        random::id()?,
        jose::b64(random::bytes::<LINK_SECRET_BYTES>()?),
    ))
}

/// The time step of `now` (Unix seconds).
pub(super) fn step_of(now: i64) -> i64 {
    now.div_euclid(QR_STEP_SECS)
}

/// HMAC-SHA256 of `message` under the base64url `secret`, truncated to [`LINK_MAC_BYTES`].
fn mac(secret: &str, message: &str) -> Result<String> {
    let key = jose::b64_decode(secret, "link secret")
        .map_err(|e| ServerError::Internal(format!("stored link secret unreadable: {e}")))?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    mac.update(message.as_bytes());
    let full = mac.finalize().into_bytes();
    Ok(jose::b64(&full[..LINK_MAC_BYTES]))
}

/// The QR link of a session for `step`.
pub(super) fn qr_link(app_url: &str, id: &str, secret: &str, step: i64) -> Result<String> {
    let mac = mac(secret, &format!("{QR_MAC_LABEL}|{id}|{step}"))?;
    Ok(SignInLink::Qr {
        id: id.to_owned(),
        step,
        mac,
    }
    .to_url(app_url))
}

/// The app-to-app link of a session.
pub(super) fn app_link(app_url: &str, id: &str, secret: &str) -> Result<String> {
    let mac = mac(secret, &format!("{APP_MAC_LABEL}|{id}"))?;
    Ok(SignInLink::App {
        id: id.to_owned(),
        mac,
    }
    .to_url(app_url))
}

/// The app-to-app link of `session`, if it has links (sessions made before them do not).
pub(super) fn app_link_of(app_url: &str, session: &Session) -> Option<String> {
    let (id, secret) = (session.link_id.as_ref()?, session.link_secret.as_ref()?);
    app_link(app_url, id, secret).ok()
}

/// Whether `given` is the expected MAC, compared in constant time.
fn mac_matches(expected: &str, given: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

// --- The QR page and its image ---------------------------------------------------------------

/// `GET /oidc/sign-in/qr`: the rotating QR code, reloading itself every step; once a phone has
/// bound the session, the wait page with the short code.
pub(super) async fn qr_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    if session.binding_code.is_some() || session.link_id.is_none() {
        return see_other(PATH_SIGN_IN_STATUS);
    }
    let lang = Lang::choose(session.lang.as_deref(), &headers);
    let t = lang.texts();
    let step = step_of(clock::now());
    let refresh =
        format!("<meta http-equiv=\"refresh\" content=\"{QR_STEP_SECS};url={PATH_QR_PAGE}\">");
    let app = app_link_of(&state.url, &session)
        .map(|href| {
            format!(
                "<p><a href=\"{}\">{}</a></p>",
                escape(&href),
                escape(t.app_offer)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p>{explain}</p>\
         <p><img id=\"qr\" src=\"{PATH_QR_IMAGE}?step={step}\" width=\"{QR_IMAGE_PIXELS}\" \
         height=\"{QR_IMAGE_PIXELS}\" alt=\"{alt}\"></p>\
         <p><a href=\"{PATH_SIGN_IN_STATUS}\">{number}</a></p>{app}",
        title = escape(t.qr_title),
        explain = escape(t.qr_explain),
        alt = escape(t.qr_alt),
        number = escape(t.number_offer),
    );
    page::html(
        StatusCode::OK,
        page::document(
            lang,
            t.qr_title,
            &live::head(&refresh),
            &format!("{body}{}", live::LIVE_REGION),
        ),
        None,
    )
}

/// `GET /oidc/sign-in/qr.svg`: the QR code of the session's link for the current step, as an
/// SVG image from the server's own origin (the page's policy allows images from nowhere
/// else). Gone once the session is bound.
pub(super) async fn qr_image(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let (Some(id), Some(secret)) = (&session.link_id, &session.link_secret) else {
        return gone();
    };
    if session.binding_code.is_some() {
        return gone();
    }
    let link = match qr_link(&state.url, id, secret, step_of(clock::now())) {
        Ok(link) => link,
        Err(e) => return internal_page(Lang::Nl, &e),
    };
    let image = match QrCode::new(link.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color<'_>>()
            .min_dimensions(QR_IMAGE_PIXELS, QR_IMAGE_PIXELS)
            .build(),
        Err(e) => {
            return internal_page(
                Lang::Nl,
                &ServerError::Internal(format!("QR code not made: {e}")),
            );
        }
    };
    let mut response = image.into_response();
    let headers = response.headers_mut();
    page::security_headers(headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    response
}

/// The answer for an image that is no more.
fn gone() -> Response {
    let mut response = StatusCode::GONE.into_response();
    page::security_headers(response.headers_mut());
    response
}

// --- The link opened in a browser ------------------------------------------------------------

/// `GET /app/sign-in`: the link opened where the app is not (a computer, a phone without the
/// app): a page saying to open it on the phone with the app. It binds nothing.
pub(super) async fn link_in_browser(headers: HeaderMap) -> Response {
    let lang = Lang::choose(None, &headers);
    let t = lang.texts();
    page::html(
        StatusCode::OK,
        page::message(lang, t.link_title, t.link_text, None),
        None,
    )
}

/// `GET /app/scan`: a QR link opened in a browser (tapped, or typed in). QR links are no universal
/// links, so this is where every tap on one lands: a page saying to scan the code with the app.
/// It binds nothing.
pub(super) async fn scan_link_in_browser(headers: HeaderMap) -> Response {
    let lang = Lang::choose(None, &headers);
    let t = lang.texts();
    page::html(
        StatusCode::OK,
        page::message(lang, t.scan_title, t.scan_text, None),
        None,
    )
}

// --- The device call -------------------------------------------------------------------------

/// `POST /v1/device/sign-in`: the app hands a scanned or tapped link to the server. The first
/// valid link binds the browser session to the device's account and starts its login.
pub(super) async fn open_link(State(state): State<AppState>, call: PhoneCall) -> Result<Response> {
    let body: OpenSignInLink = extract::json(&call.body)?;
    let link = SignInLink::parse(&body.link, &state.url)
        .map_err(|e| ServerError::SignInLinkInvalid(e.to_string()))?;
    let (opened, superseded, pushes) = state
        .db(move |app, conn| bind(app, conn, &call.jkt, &link))
        .await?;
    state.notifier.notify(&superseded);
    // The request is committed: only now may a push make a phone look for it.
    state.push.dispatch(pushes);
    Ok(no_store(Json(opened)))
}

/// Checks `link` and binds its session to the account of the device `jkt`, starting the
/// session's login, all in one transaction.
fn bind(
    app: &App,
    conn: &mut Conn<'_>,
    jkt: &str,
    link: &SignInLink,
) -> Result<(SignInLinkOpened, Vec<String>, Vec<crate::push::Delivery>)> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let device = auth::active_device(&tx, jkt)?;
    let session = relying_parties::session_by_link_id(&tx, link.id(), now)?
        // A session that ended is gone from the table: its links are expired, not unknown.
        .ok_or(ServerError::SignInLinkExpired)?;
    let secret = session
        .link_secret
        .as_deref()
        .ok_or(ServerError::SignInLinkExpired)?;
    // The MAC first: until it verifies, the link tells nothing about the session.
    let too_old = match link {
        SignInLink::Qr {
            id,
            step,
            mac: given,
        } => {
            let expected = mac(secret, &format!("{QR_MAC_LABEL}|{id}|{step}"))?;
            let current = step_of(now);
            if !mac_matches(&expected, given) || *step > current {
                return Err(ServerError::SignInLinkInvalid(
                    "the link was not made by this server's sign-in page".into(),
                ));
            }
            *step <= current - QR_STEPS_ACCEPTED
        }
        SignInLink::App { id, mac: given } => {
            let expected = mac(secret, &format!("{APP_MAC_LABEL}|{id}"))?;
            if !mac_matches(&expected, given) {
                return Err(ServerError::SignInLinkInvalid(
                    "the link was not made by this server's sign-in page".into(),
                ));
            }
            false
        }
    };
    // A bound session says so whatever the link's age: a second scan learns that the sign-in
    // is taken, not merely that its code is old.
    if session.binding_code.is_some() || session.bound_by.is_some() {
        return Err(ServerError::SignInLinkUsed);
    }
    if too_old {
        return Err(ServerError::SignInLinkExpired);
    }
    if accounts::is_blocked(&tx, &device.account_id)? {
        return Err(ServerError::AccountBlocked);
    }
    let client = app
        .clients
        .get(&session.client_id)
        .cloned()
        .ok_or(ServerError::SignInLinkExpired)?;
    // A link starts a login like a backchannel call of the relying party, and counts as one.
    let limit = Limit::per_minute(app.policy.max_backchannel_per_client_per_minute);
    rate::take(&tx, Bucket::BackchannelCalls(&client.client_id), limit, now)?.map_err(
        |exceeded| ServerError::BackchannelRateLimited {
            retry_after: exceeded.retry_after,
        },
    )?;
    let binding_code = random::digits(authorize::BINDING_CODE_DIGITS)?;
    // The account is the device's: no number to look up.
    let ask = session_ask(
        &session,
        &client,
        String::new(),
        &binding_code,
        app.policy.request_ttl_secs,
    )?;
    let ttl = ask.ttl_secs;
    let (started, superseded, pushes) =
        create_login_in(app, &tx, &client, &ask, device.account_id)?;
    let request_id = request_id_of(&tx, &started.auth_req_id)?;
    let (bound_by, return_token) = match link {
        SignInLink::Qr { .. } => (BOUND_BY_QR, None),
        SignInLink::App { .. } => (BOUND_BY_APP, Some(random::id()?)),
    };
    let return_token_hash = return_token.as_deref().map(digest);
    let bound = relying_parties::bind_session_by_link(
        &tx,
        &LinkBinding {
            id_hash: &session.id_hash,
            binding_code: &binding_code,
            auth_req_id: &started.auth_req_id,
            wait_until: now + ttl,
            bound_by,
            return_token_hash: return_token_hash.as_deref(),
        },
    )?;
    if !bound {
        return Err(ServerError::SignInLinkUsed);
    }
    tx.commit()?;
    let return_url = return_token.map(|token| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(RETURN_TOKEN_PARAMETER, &token)
            .finish();
        format!("{}{PATH_RETURN}?{query}", app.url)
    });
    Ok((
        SignInLinkOpened {
            request_id,
            return_url,
        },
        superseded,
        pushes,
    ))
}

// --- The way back of an app-to-app sign-in ---------------------------------------------------

/// `GET /oidc/sign-in/return?token=...`: once the person answered in the app, a `303` to the
/// relying party with the code (or `error=access_denied`), `state` and `iss`; the token then
/// ends with the session. Before the answer, a page saying to confirm in the app first.
pub(super) async fn return_to_rp(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::choose(None, &headers);
    let no_session = || error_page(StatusCode::BAD_REQUEST, lang, lang.texts().no_session);
    let Some(token) = Params::query(&uri)
        .ok()
        .and_then(|p| p.optional(RETURN_TOKEN_PARAMETER).map(str::to_owned))
    else {
        return no_session();
    };
    let found = state
        .db(move |_, conn| {
            let now = clock::now();
            let session = relying_parties::session_by_return_token(conn, &digest(&token), now)?;
            let Some(session) = session else {
                return Ok(None);
            };
            let outcome = wait::outcome(conn, &session, true)?;
            if !matches!(outcome, Outcome::Waiting | Outcome::Approved(_)) {
                // The answer is given: the return URL has done its one job.
                relying_parties::end_session(conn, &session.id_hash)?;
            }
            Ok(Some((session, outcome)))
        })
        .await;
    let (session, outcome) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return no_session(),
        Err(e) => return internal_page(lang, &e),
    };
    let lang = Lang::choose(session.lang.as_deref(), &headers);
    let back = |pairs: &[(&str, &str)]| {
        see_other(&back_url(
            &state.url,
            &session.redirect_uri,
            session.state.as_deref(),
            pairs,
        ))
    };
    match outcome {
        Outcome::Approved(code) => back(&[("code", &code)]),
        Outcome::Waiting => page::html(
            StatusCode::OK,
            page::message(
                lang,
                lang.texts().wait_title,
                lang.texts().return_wait,
                None,
            ),
            None,
        ),
        Outcome::Declined | Outcome::Blocked | Outcome::Expired | Outcome::ApprovedInApp => {
            back(&[("error", "access_denied")])
        }
    }
}

// --- The association files -------------------------------------------------------------------

/// `GET /.well-known/apple-app-site-association`: the iOS apps whose universal links are the
/// sign-in links; 404 when none is configured.
pub(super) async fn apple_app_site_association(State(state): State<AppState>) -> Response {
    match apple_association(&state.app_links) {
        Some(body) => json_file(body),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The association document for `config`, if it names iOS apps.
fn apple_association(config: &AppLinksConfig) -> Option<serde_json::Value> {
    if config.apple_app_ids.is_empty() {
        return None;
    }
    Some(serde_json::json!({
        "applinks": {
            // The current form (iOS 13 and later)...
            "details": [{
                "appIDs": config.apple_app_ids,
                // The app-to-app path only: a QR link must never open the app from a tap.
                "components": [{ "/": PATH_APP_SIGN_IN }],
            }],
            // ... and the older one, which needs the empty "apps".
            "apps": [],
        },
    }))
}

/// `GET /.well-known/assetlinks.json`: the Android app whose app links are the sign-in links;
/// 404 when none is configured.
pub(super) async fn asset_links(State(state): State<AppState>) -> Response {
    match &state.app_links.android_package {
        Some(package) => json_file(serde_json::json!([{
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": package,
                "sha256_cert_fingerprints": state.app_links.android_cert_fingerprints,
            },
        }])),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A JSON file as the platforms fetch it: `application/json`, no redirect.
fn json_file(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

// --- For tests -------------------------------------------------------------------------------

/// The QR link of the live session whose cookie value is `session_id`, `steps_back` steps
/// before the current one. For tests, which cannot read the QR image.
#[cfg(feature = "testing")]
pub(crate) fn qr_link_of_session(
    conn: &impl crate::store::Sql,
    app_url: &str,
    session_id: &str,
    steps_back: i64,
) -> Result<Option<String>> {
    let now = clock::now();
    match relying_parties::session_link(conn, &digest(session_id), now)? {
        Some(relying_parties::SessionLink {
            link_id: Some(id),
            link_secret: Some(secret),
        }) => qr_link(app_url, &id, &secret, step_of(now) - steps_back).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const URL: &str = "https://sleutel.example";
    const ID: &str = "BBBBBBBBBBBBBBBBBBBBBB";

    #[test]
    fn the_qr_link_changes_every_step_and_reads_back() {
        let first = qr_link(URL, ID, SECRET, 100).unwrap();
        let next = qr_link(URL, ID, SECRET, 101).unwrap();
        assert_ne!(first, next);
        assert!(matches!(
            SignInLink::parse(&first, URL),
            Ok(SignInLink::Qr { step: 100, .. })
        ));
    }

    #[test]
    fn a_qr_mac_is_not_an_app_mac() {
        let SignInLink::App { mac: app, .. } =
            SignInLink::parse(&app_link(URL, ID, SECRET).unwrap(), URL).unwrap()
        else {
            panic!("not an app link");
        };
        for step in 0..4 {
            let SignInLink::Qr { mac: qr, .. } =
                SignInLink::parse(&qr_link(URL, ID, SECRET, step).unwrap(), URL).unwrap()
            else {
                panic!("not a QR link");
            };
            assert_ne!(qr, app);
        }
    }

    #[test]
    fn steps_are_whole_periods_of_the_clock() {
        assert_eq!(step_of(0), 0);
        assert_eq!(step_of(QR_STEP_SECS - 1), 0);
        assert_eq!(step_of(QR_STEP_SECS), 1);
    }

    #[test]
    fn the_association_files_name_the_configured_apps_only() {
        assert_eq!(apple_association(&AppLinksConfig::default()), None);
        let config = AppLinksConfig {
            apple_app_ids: vec!["ABCDE12345.be.sleutel.app".into()],
            ..AppLinksConfig::default()
        };
        let document = apple_association(&config).unwrap();
        assert_eq!(
            document["applinks"]["details"][0]["appIDs"][0],
            "ABCDE12345.be.sleutel.app"
        );
    }

    #[test]
    fn only_the_app_to_app_path_is_a_universal_link_never_the_qr_path() {
        let config = AppLinksConfig {
            apple_app_ids: vec!["ABCDE12345.be.sleutel.app".into()],
            ..AppLinksConfig::default()
        };
        let document = apple_association(&config).unwrap();
        let components = &document["applinks"]["details"][0]["components"];
        assert_eq!(components, &serde_json::json!([{ "/": PATH_APP_SIGN_IN }]));
        assert!(
            !components
                .to_string()
                .contains(sleutel_protocol::api::sign_in::PATH_APP_SCAN)
        );
    }
}
