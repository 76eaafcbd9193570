//! The browser session of a sign-in: the cookie that holds its random id (`__Host-` prefixed,
//! `Secure` off the loopback test bench), and the row the database keeps under the id's
//! SHA-256, as the sign-in pages read it.

use crate::store::{Sql, relying_parties};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Response;

use super::authorize::{digest, error_page, internal_page};
use super::page::Lang;
use crate::clock;
use crate::config::is_loopback;
use crate::error::Result;
use crate::html;
use crate::server::AppState;

/// Name of the session cookie on a plain-HTTP loopback test bench, where a `Secure` cookie
/// would not come back.
pub(super) const SESSION_COOKIE: &str = "sleutel_sign_in";

/// Name of the session cookie everywhere else. Browsers accept a `__Host-` cookie only when
/// it is `Secure`, has no `Domain` and has `Path=/` (RFC 6265bis §4.1.3.2): a page of a
/// sibling subdomain or plain HTTP on the same name cannot plant a session id of its own,
/// whose code its planter would then collect.
pub(super) const SECURE_SESSION_COOKIE: &str = "__Host-sleutel_sign_in";

/// How long a browser session lasts from the authorization request: time to type the number
/// and answer a request of the longest lifetime, with room to spare.
pub(super) const SESSION_TTL_SECS: i64 = 900;

/// Whether the server itself is on loopback over plain HTTP (a test bench).
pub(super) fn plain_loopback(server_url: &str) -> bool {
    url::Url::parse(server_url)
        .map(|url| url.scheme() == "http" && is_loopback(&url))
        .unwrap_or(false)
}

/// The `Set-Cookie` value of a new session: [`SECURE_SESSION_COOKIE`] unless the server is on
/// a plain-HTTP loopback test bench, where it is [`SESSION_COOKIE`] without `Secure`.
pub(super) fn session_cookie(server_url: &str, session_id: &str) -> String {
    if plain_loopback(server_url) {
        format!(
            "{SESSION_COOKIE}={session_id}; Path=/oidc; Max-Age={SESSION_TTL_SECS}; HttpOnly; \
             SameSite=Lax"
        )
    } else {
        format!(
            "{SECURE_SESSION_COOKIE}={session_id}; Path=/; Max-Age={SESSION_TTL_SECS}; \
             HttpOnly; SameSite=Lax; Secure"
        )
    }
}

/// The session id in the request's cookies, if any: only under the name this server sets, so
/// that a planted cookie without the `__Host-` prefix is no session.
pub(super) fn session_id(headers: &HeaderMap, server_url: &str) -> Option<String> {
    let wanted = if plain_loopback(server_url) {
        SESSION_COOKIE
    } else {
        SECURE_SESSION_COOKIE
    };
    html::cookie(headers, wanted)
}

/// A browser session as the sign-in pages read it.
pub(super) use crate::store::relying_parties::BrowserSession as Session;

/// The live session whose id the browser's cookie holds.
pub(super) fn load_session(conn: &impl Sql, session_id: &str, now: i64) -> Result<Option<Session>> {
    Ok(relying_parties::session_by_id_hash(
        conn,
        &digest(session_id),
        now,
    )?)
}

/// The session of a request, or the page that says there is none.
pub(super) async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let lang = Lang::choose(None, headers);
    let no_session = || error_page(StatusCode::BAD_REQUEST, lang, lang.texts().no_session);
    let Some(id) = session_id(headers, &state.url) else {
        return Err(no_session());
    };
    match state
        .db(move |_, conn| load_session(conn, &id, clock::now()))
        .await
    {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(no_session()),
        Err(e) => Err(internal_page(lang, &e)),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    #[test]
    fn the_cookie_is_secure_except_on_plain_loopback() {
        assert!(session_cookie("https://sleutel.example", "x").contains("; Secure"));
        assert!(!session_cookie("http://127.0.0.1:8080", "x").contains("Secure"));
        assert!(session_cookie("http://127.0.0.1:8080", "x").contains("HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn the_cookie_over_https_is_host_prefixed_for_the_whole_host() {
        let cookie = session_cookie("https://sleutel.example", "x");

        assert!(cookie.starts_with("__Host-sleutel_sign_in=x;"), "{cookie}");
        assert!(cookie.contains("; Path=/;"), "{cookie}");
        assert!(!cookie.contains("Domain"), "{cookie}");
    }

    #[test]
    fn a_planted_cookie_without_the_prefix_is_no_session_over_https() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("sleutel_sign_in=planted"),
        );

        assert_eq!(session_id(&headers, "https://sleutel.example"), None);
        assert_eq!(
            session_id(&headers, "http://127.0.0.1:8080").as_deref(),
            Some("planted")
        );
    }
}
