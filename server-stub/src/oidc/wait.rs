//! The wait page of a sign-in: it refreshes itself (or the live script polls) until the person
//! answered on the phone, then sends the browser back with the authorization code, or shows why
//! not; [`outcome`] is where a session's login stands, for the page, the live status and the
//! app-to-app return URL alike.

use crate::store::Conn;
use crate::store::relying_parties::{self, NewCode};
use crate::store::requests::{self, ClosedReason, SignInRequest};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::authorize::{
    AUTHORIZATION_CODE_TTL_SECS, PATH_SIGN_IN_STATUS, WAIT_PAGE_REFRESH_SECS, back_url, digest,
    internal_page, see_other, sign_in_page,
};
use super::link;
use super::live;
use super::page::{self, Lang};
use super::session::{Session, session_of};
use crate::error::Result;
use crate::html::escape;
use crate::requests::Status;
use crate::server::AppState;
use crate::{clock, random};

/// Where a session's login stands.
pub(super) enum Outcome {
    /// Not yet answered (or no request behind the number, until the wait ends).
    Waiting,
    /// Approved: the browser goes back with this code.
    Approved(String),
    /// The person declined.
    Declined,
    /// The person's key was blocked meanwhile.
    Blocked,
    /// The time is up (a sign-in whose request a newer one replaced waits for it too), or the
    /// session ended meanwhile (a concurrent request of the same browser took its code).
    Expired,
    /// Approved in the app of an app-to-app sign-in: the code goes back through the return URL
    /// only, never to this browser.
    ApprovedInApp,
}

/// `GET /oidc/sign-in/status`: the wait page until the person answered; then the redirect back
/// with the code, or the page that says why not.
pub(super) async fn status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let lang = Lang::choose(session.lang.as_deref(), &headers);
    let t = lang.texts();
    let Some(binding_code) = session.binding_code.clone() else {
        // The number was not sent yet: the form again.
        let name = state.clients.name(&session.client_id).unwrap_or_default();
        return page::html(
            StatusCode::OK,
            sign_in_page(
                lang,
                &name,
                &session.csrf_token,
                session.login_hint.as_deref(),
                None,
                link::app_link_of(&state.url, &session).as_deref(),
            ),
            None,
        );
    };
    let redirect_uri = session.redirect_uri.clone();
    let request_state = session.state.clone();
    // An app-to-app sign-in's code goes back only through the return URL the app opens: this
    // browser may not be the one the app returns to (decision 0025).
    let in_app = session.bound_by.as_deref() == Some(link::BOUND_BY_APP);
    let outcome = match state
        .db(move |_, conn| outcome(conn, &session, !in_app))
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => return internal_page(lang, &e),
    };
    let denied = || {
        back_url(
            &state.url,
            &redirect_uri,
            request_state.as_deref(),
            &[("error", "access_denied")],
        )
    };
    match outcome {
        Outcome::Approved(code) => see_other(&back_url(
            &state.url,
            &redirect_uri,
            request_state.as_deref(),
            &[("code", &code)],
        )),
        Outcome::Waiting => {
            let refresh = format!(
                "<meta http-equiv=\"refresh\" content=\"{WAIT_PAGE_REFRESH_SECS};url={PATH_SIGN_IN_STATUS}\">"
            );
            let body = format!(
                "<h1>{title}</h1><p>{open}</p><p>{label}</p>\
                 <p class=\"code\" aria-live=\"polite\">{code}</p><p>{refreshes}</p>\
                 <p><a class=\"button\" href=\"{PATH_SIGN_IN_STATUS}\">{check}</a></p>",
                title = escape(t.wait_title),
                open = escape(if in_app { t.app_wait } else { t.open_app }),
                label = escape(t.code_label),
                code = escape(&binding_code),
                refreshes = escape(t.wait_refresh),
                check = escape(t.check_now),
            );
            page::html(
                StatusCode::OK,
                page::document(
                    lang,
                    t.wait_title,
                    &live::head(&refresh),
                    &format!("{body}{}", live::LIVE_REGION),
                ),
                None,
            )
        }
        Outcome::ApprovedInApp => page::html(
            StatusCode::OK,
            page::message(lang, t.app_done_title, t.app_done, None),
            None,
        ),
        Outcome::Declined => page::html(
            StatusCode::OK,
            page::message(lang, t.declined_title, t.declined, Some(&denied())),
            None,
        ),
        Outcome::Blocked => page::html(
            StatusCode::OK,
            page::message(lang, t.blocked_title, t.blocked, Some(&denied())),
            None,
        ),
        Outcome::Expired => page::html(
            StatusCode::OK,
            page::message(lang, t.expired_title, t.expired, Some(&denied())),
            None,
        ),
    }
}

/// Reads where the session's login stands and, once approved, issues the code and ends the
/// session (a code is issued once) when `issue_code`; otherwise an approval is
/// [`Outcome::ApprovedInApp`] and nothing changes.
pub(super) fn outcome(conn: &mut Conn<'_>, session: &Session, issue_code: bool) -> Result<Outcome> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let request = match &session.auth_req_id {
        None => None,
        Some(id) => requests::sign_in_request(&tx, id)?,
    };
    let until_the_wait_ends = || {
        if now < session.wait_until.unwrap_or(now) {
            Outcome::Waiting
        } else {
            Outcome::Expired
        }
    };
    let outcome = match (request.map(triple), &session.auth_req_id) {
        (None, _) => until_the_wait_ends(),
        // A newer sign-in (or CIBA request) of the relying party to the same person replaced
        // this one. Ending the page at once would tell a registered number from an unknown
        // one, whose page waits (decision 0021): anyone could start two sign-ins with the same
        // number and see whether the first one ends.
        (Some((Status::Denied, _, Some(ClosedReason::Superseded))), _) => until_the_wait_ends(),
        (Some((Status::Pending, expires_at, _)), _) if now < expires_at => Outcome::Waiting,
        (Some((Status::Pending, ..)), _) => Outcome::Expired,
        (Some((Status::Declined, ..)), _) => Outcome::Declined,
        (Some((Status::Denied, _, Some(ClosedReason::Blocked))), _) => Outcome::Blocked,
        (Some((Status::Denied, ..)), _) => Outcome::Expired,
        (Some((Status::Approved, ..)), Some(_)) if !issue_code => Outcome::ApprovedInApp,
        (Some((Status::Approved, ..)), Some(auth_req_id)) => {
            // The session ends with its one code. `session` was read before this transaction,
            // so a concurrent request of the same browser may have ended it already: only the
            // request that deletes the row issues a code.
            if !relying_parties::end_session(&tx, &session.id_hash)? {
                return Ok(Outcome::Expired);
            }
            let code = random::id()?;
            // Codes and tokens no longer worth anything go as new ones come, besides the
            // periodic housekeeping.
            super::purge_expired(&tx, now)?;
            relying_parties::insert_code(
                &tx,
                &NewCode {
                    code_hash: &digest(&code),
                    client_id: &session.client_id,
                    redirect_uri: &session.redirect_uri,
                    code_challenge: &session.code_challenge,
                    nonce: session.nonce.as_deref(),
                    auth_req_id,
                    expires_at: now + AUTHORIZATION_CODE_TTL_SECS,
                },
            )?;
            Outcome::Approved(code)
        }
        (Some((Status::Approved, ..)), None) => Outcome::Expired,
    };
    tx.commit()?;
    Ok(outcome)
}

/// The parts of a sign-in's request that decide its outcome, as one tuple to match on.
fn triple(request: SignInRequest) -> (Status, i64, Option<ClosedReason>) {
    (request.status, request.expires_at, request.closed_reason)
}
