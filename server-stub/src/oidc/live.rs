//! The live status of the sign-in pages, for browsers with JavaScript: one script from the
//! server's own origin ([`PATH_SCRIPT`]) that asks a small JSON status ([`PATH_STATUS_JSON`],
//! bound to the session cookie, never cached) once a second. The pages work without it: they
//! refresh themselves by a meta refresh inside `<noscript>`, so a browser never does both.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::authorize::PATH_SIGN_IN_STATUS;
use super::link::{BOUND_BY_APP, PATH_QR_IMAGE, step_of};
use super::page::Lang;
use super::session::session_of;
use super::wait::{self, Outcome};
use crate::server::AppState;
use crate::{clock, html};

/// Path of the script.
pub(super) const PATH_SCRIPT: &str = "/oidc/sign-in/live.js";

/// Path of the JSON status the script reads.
pub(super) const PATH_STATUS_JSON: &str = "/oidc/sign-in/status.json";

/// The script (kept beside this file, so that it reads as JavaScript).
const SCRIPT: &str = include_str!("live.js");

/// The markup a page that uses the live status puts in its `<head>`: the script, and the
/// page's own `refresh` for browsers without JavaScript only.
pub(super) fn head(refresh: &str) -> String {
    format!("<noscript>{refresh}</noscript><script src=\"{PATH_SCRIPT}\" defer></script>")
}

/// The region where the script announces the status (read out by screen readers).
pub(super) const LIVE_REGION: &str = "<p id=\"live\" role=\"status\" aria-live=\"polite\"></p>";

/// `GET /oidc/sign-in/live.js`.
pub(super) async fn script() -> Response {
    html::static_file(SCRIPT, "text/javascript; charset=utf-8")
}

/// What the script reads.
#[derive(Debug, Serialize)]
struct LiveStatus {
    /// `unbound` (the QR code or the form is shown), `waiting` (a phone has the request),
    /// `finished` (answered, expired or gone: go to `next`).
    state: &'static str,
    /// The current QR step.
    step: i64,
    /// The QR image of the current step, while unbound.
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    /// The short code the phone shows, once bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    /// A sentence to announce, in the session's language.
    message: &'static str,
    /// Where to go when the state calls for it.
    next: &'static str,
}

/// `GET /oidc/sign-in/status.json`: where the session's sign-in stands. It never issues the
/// code: the script goes to the wait page for that, which does.
pub(super) async fn status_json(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let step = step_of(clock::now());
    let session = match session_of(&state, &headers).await {
        Ok(session) => session,
        Err(_) => {
            let t = Lang::choose(None, &headers).texts();
            return answer(LiveStatus {
                state: "finished",
                step,
                image: None,
                code: None,
                message: t.no_session,
                next: PATH_SIGN_IN_STATUS,
            });
        }
    };
    let t = Lang::choose(session.lang.as_deref(), &headers).texts();
    let Some(code) = session.binding_code.clone() else {
        return answer(LiveStatus {
            state: "unbound",
            step,
            image: Some(format!("{PATH_QR_IMAGE}?step={step}")),
            code: None,
            message: t.qr_title,
            next: PATH_SIGN_IN_STATUS,
        });
    };
    let in_app = session.bound_by.as_deref() == Some(BOUND_BY_APP);
    let outcome = match state
        .db(move |_, conn| wait::outcome(conn, &session, false))
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return e.into_response(),
    };
    let (live, message) = match outcome {
        Outcome::Waiting => ("waiting", if in_app { t.app_wait } else { t.open_app }),
        Outcome::Approved(_) | Outcome::ApprovedInApp => ("finished", t.check_now),
        Outcome::Declined => ("finished", t.declined),
        Outcome::Blocked => ("finished", t.blocked),
        Outcome::Expired => ("finished", t.expired),
    };
    answer(LiveStatus {
        state: live,
        step,
        image: None,
        code: Some(code),
        message,
        next: PATH_SIGN_IN_STATUS,
    })
}

/// The status as JSON that no cache keeps.
fn answer(status: LiveStatus) -> Response {
    let mut response = Json(status).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
