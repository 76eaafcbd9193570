//! Signing in from a link with the real phone core: the QR code of a browser's sign-in page
//! scanned by the app, and the app opened on the same phone with the page's link, answered on
//! the virtual phone; and the refusals the app can show.

use reqwest::StatusCode;
use reqwest::header;
use sleutel_core::{Approval, CoreError, DeclineReason, SignInRequest};
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::query_param;
use sleutel_protocol::api::oidc;
use sleutel_server::RelyingPartyConfig;

use crate::common::*;

/// A browser that starts a sign-in of the demo relying party: the session cookie's value, and
/// the "open the app on this phone" link of its page.
async fn browser_sign_in(server: &InProcessServer) -> (String, String) {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", RelyingPartyConfig::DEMO_CLIENT_ID)
        .append_pair("redirect_uri", RelyingPartyConfig::DEMO_REDIRECT_URI)
        .append_pair("scope", "openid")
        .append_pair("state", "s-1")
        .append_pair(
            "code_challenge",
            "xhUrj-o0xMrn2237aduIA29_XbviWkR_2LYXt5Ke63c",
        )
        .append_pair("code_challenge_method", "S256")
        .finish();
    let page = server
        .http()
        .get(format!("{}{}?{query}", server.url(), oidc::PATH_AUTHORIZE))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let body = page.text().await.unwrap();
    let at = body.find("/app/sign-in?").unwrap();
    let start = body[..at].rfind('"').unwrap() + 1;
    let end = at + body[at..].find('"').unwrap();
    (session, body[start..end].replace("&amp;", "&"))
}

/// The QR link a session shows `steps_back` steps ago.
fn qr_link(server: &InProcessServer, session: &str, steps_back: i64) -> String {
    server
        .running()
        .sign_in_qr_link(session, steps_back)
        .unwrap()
        .unwrap()
}

/// Opens `url` without following its redirect.
async fn get_once(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_scanned_qr_code_shows_the_login_with_the_pages_code_and_is_approved_like_a_push() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000801").await;
    let (session, _) = browser_sign_in(&server).await;

    let SignInRequest {
        request,
        return_url,
    } = e
        .phone
        .open_sign_in_link(&qr_link(&server, &session, 0))
        .await
        .unwrap();
    e.phone
        .authenticator()
        .approve(request.request_id.clone(), Approval::code(CODE))
        .await
        .unwrap();

    assert_eq!(request.text, RelyingPartyConfig::DEMO_LOGIN_TEXT);
    assert_eq!(request.binding_message.map(|c| c.len()), Some(4));
    assert_eq!(return_url, None);
    assert_eq!(e.phone.authenticator().history().unwrap().len(), 1);
}

#[tokio::test]
async fn an_app_to_app_sign_in_returns_through_the_url_the_core_gives() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000802").await;
    let (_, app_link) = browser_sign_in(&server).await;

    let opened = e.phone.open_sign_in_link(&app_link).await.unwrap();
    e.phone
        .authenticator()
        .approve(opened.request.request_id.clone(), Approval::code(CODE))
        .await
        .unwrap();
    let back = get_once(&opened.return_url.unwrap()).await;

    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let location = url::Url::parse(back.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    assert!(query_param(&location, "code").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-1"));
}

#[tokio::test]
async fn the_debug_output_of_an_app_to_app_sign_in_hides_its_one_time_return_url() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000808").await;
    let (_, app_link) = browser_sign_in(&server).await;

    let opened = e.phone.open_sign_in_link(&app_link).await.unwrap();

    let token = opened.return_url.clone().unwrap();
    let token = token.rsplit_once('=').unwrap().1;
    assert!(!format!("{opened:?}").contains(token));
}

#[tokio::test]
async fn a_declined_app_to_app_sign_in_returns_access_denied() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000803").await;
    let (_, app_link) = browser_sign_in(&server).await;

    let opened = e.phone.open_sign_in_link(&app_link).await.unwrap();
    e.phone
        .authenticator()
        .decline(opened.request.request_id.clone(), DeclineReason::Cancelled)
        .await
        .unwrap();
    let back = get_once(&opened.return_url.unwrap()).await;

    let location = url::Url::parse(back.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
}

#[tokio::test]
async fn an_old_qr_code_is_link_expired() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000804").await;
    let (session, _) = browser_sign_in(&server).await;

    let refused = e
        .phone
        .open_sign_in_link(&qr_link(&server, &session, 2))
        .await;

    assert!(matches!(
        refused,
        Err(sleutel_harness::HarnessError::Core(
            CoreError::SignInLinkExpired
        ))
    ));
}

#[tokio::test]
async fn a_second_scan_of_a_sign_in_is_link_used() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000805").await;
    let (session, app_link) = browser_sign_in(&server).await;
    e.phone
        .open_sign_in_link(&qr_link(&server, &session, 0))
        .await
        .unwrap();

    let refused = e.phone.open_sign_in_link(&app_link).await;

    assert!(matches!(
        refused,
        Err(sleutel_harness::HarnessError::Core(
            CoreError::SignInLinkUsed
        ))
    ));
}

#[tokio::test]
async fn a_forged_link_is_not_a_sign_in_link() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000806").await;
    let (_, app_link) = browser_sign_in(&server).await;
    let url = url::Url::parse(&app_link).unwrap();
    let mac = query_param(&url, "mac").unwrap();
    let forged = app_link.replace(&mac, &"A".repeat(mac.len()));

    let refused = e.phone.open_sign_in_link(&forged).await;

    assert!(matches!(
        refused,
        Err(sleutel_harness::HarnessError::Core(
            CoreError::NotASignInLink { .. }
        ))
    ));
}

#[tokio::test]
async fn a_blocked_account_opens_no_sign_in() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470000807").await;
    let (_, app_link) = browser_sign_in(&server).await;
    server
        .sql_execute("UPDATE accounts SET blocked_at = 1", &[])
        .unwrap();

    let refused = e.phone.open_sign_in_link(&app_link).await;

    assert!(matches!(
        refused,
        Err(sleutel_harness::HarnessError::Core(
            CoreError::AccountBlocked
        ))
    ));
}
