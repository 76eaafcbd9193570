//! Signing in from a link over real HTTP: the rotating QR code scanned by a phone (the link read
//! from the server, since a test cannot photograph the image), the app-to-app link with its
//! return URL, every refusal of a link, and the association files of the universal link.

use reqwest::StatusCode;
use reqwest::header;
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::query_param;
use sleutel_protocol::api::oidc::TokenResponse;
use sleutel_protocol::api::sign_in::{
    OpenSignInLink, PATH_APP_SCAN, PATH_APP_SIGN_IN, PATH_DEVICE_SIGN_IN, SignInLinkOpened,
};
use sleutel_protocol::api::{ResponseAccepted, codes};
use sleutel_server::{AppLinksConfig, Policy, RelyingPartyConfig};

use crate::authcode::{
    Browser, PATH_STATUS, Page, STATE, demo_exchange, send_number, sign_in_page,
};
use crate::common::*;

/// The QR page and its image (not part of the protocol: only the browser follows them).
const PATH_QR_PAGE: &str = "/oidc/sign-in/qr";
const PATH_QR_IMAGE: &str = "/oidc/sign-in/qr.svg";

/// The session id the browser's cookie holds.
fn session_id(browser: &Browser) -> String {
    let cookie = browser.cookie.as_deref().unwrap();
    cookie.split_once('=').unwrap().1.to_owned()
}

/// The QR link the browser's session shows `steps_back` steps ago (0: now).
fn qr_link(server: &InProcessServer, browser: &Browser, steps_back: i64) -> String {
    server
        .running()
        .sign_in_qr_link(&session_id(browser), steps_back)
        .unwrap()
        .unwrap()
}

/// Waits for the first second of a QR step (2 s long), so that a link computed now for a step
/// relative to the current one still has that relation when the server checks it.
async fn at_the_start_of_a_step() {
    while sleutel_protocol::clock::now() % 2 != 0 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The "open the app on this phone" link of a sign-in page.
fn app_link_on(page: &Page) -> String {
    let marker = format!("{PATH_APP_SIGN_IN}?");
    let at = page.body.find(&marker).unwrap();
    let start = page.body[..at].rfind('"').unwrap() + 1;
    let end = at + page.body[at..].find('"').unwrap();
    page.body[start..end].replace("&amp;", "&")
}

/// The phone hands `link` to the server.
async fn open(e: &Enrolled, link: &str) -> reqwest::Response {
    e.phone
        .post(
            PATH_DEVICE_SIGN_IN,
            &OpenSignInLink {
                link: link.to_owned(),
            },
        )
        .await
}

/// The phone approves the one request it has, with the right code.
async fn approve(e: &Enrolled) {
    let (request, jws) = e.the_request().await;
    let accepted: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
}

/// A browser at the sign-in page, and the app-to-app link the page offers.
async fn app_link_of_new_session(server: &InProcessServer) -> (Browser, String) {
    let mut browser = Browser::new(server);
    let page = sign_in_page(&mut browser, &[]).await;
    let link = app_link_on(&page);
    (browser, link)
}

/// The return URL of an app-to-app sign-in that `e` opened, read as a path and query.
async fn return_path(e: &Enrolled, link: &str) -> String {
    let opened: SignInLinkOpened = ok(open(e, link).await).await;
    let url = url::Url::parse(&opened.return_url.unwrap()).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap())
}

// --- The QR code ------------------------------------------------------------------------------

#[tokio::test]
async fn the_sign_in_page_offers_the_qr_code_and_the_app_on_this_phone() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = sign_in_page(&mut browser, &[]).await;

    assert!(page.body.contains(&format!("href=\"{PATH_QR_PAGE}\"")));
    assert!(
        app_link_on(&page).starts_with(&format!("{}{PATH_APP_SIGN_IN}?kind=app", server.url()))
    );
}

#[tokio::test]
async fn the_qr_page_shows_the_image_and_refreshes_itself_every_step() {
    let server = server().await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;

    let page = browser.get(PATH_QR_PAGE).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("src=\"{PATH_QR_IMAGE}?step=")));
    assert!(
        page.body
            .contains(&format!("content=\"2;url={PATH_QR_PAGE}\""))
    );
    assert!(page.body.contains(&format!("href=\"{PATH_STATUS}\"")));
}

#[tokio::test]
async fn the_qr_image_is_an_uncached_svg_of_the_servers_own_origin() {
    let server = server().await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;

    let image = browser.get(PATH_QR_IMAGE).await;

    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.headers[header::CONTENT_TYPE], "image/svg+xml");
    assert_eq!(image.headers[header::CACHE_CONTROL], "no-store");
    assert!(image.body.contains("<svg"));
}

#[tokio::test]
async fn the_qr_image_needs_the_session_cookie() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let image = browser.get(PATH_QR_IMAGE).await;

    assert_eq!(image.status, StatusCode::BAD_REQUEST);
    assert!(!image.body.contains("<svg"));
}

#[tokio::test]
async fn a_scanned_qr_link_binds_the_session_and_the_login_completes_with_the_phone() {
    let server = server().await;
    let e = enroll(&server, "+32470000701").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    browser.get(PATH_QR_PAGE).await;

    let opened: SignInLinkOpened = ok(open(&e, &qr_link(&server, &browser, 0)).await).await;
    let (request, _) = e.the_request().await;
    let moved_on = browser.get(PATH_QR_PAGE).await;
    let wait = browser.get(PATH_STATUS).await;
    approve(&e).await;
    let back = browser.get(PATH_STATUS).await;

    assert_eq!(opened.request_id, request.jti);
    assert_eq!(opened.return_url, None);
    assert_eq!(moved_on.status, StatusCode::SEE_OTHER);
    assert!(wait.body.contains(&request.binding_message.unwrap()));
    assert_eq!(request.text, RelyingPartyConfig::DEMO_LOGIN_TEXT);
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    let code = query_param(&back.location(), "code").unwrap();
    let _: TokenResponse = ok(demo_exchange(&server, &code).await).await;
}

#[tokio::test]
async fn a_qr_link_of_the_previous_step_is_still_accepted() {
    let server = server().await;
    let e = enroll(&server, "+32470000702").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    at_the_start_of_a_step().await;

    let opened: SignInLinkOpened = ok(open(&e, &qr_link(&server, &browser, 1)).await).await;

    assert_eq!(opened.request_id, e.the_request().await.0.jti);
}

#[tokio::test]
async fn a_qr_link_two_steps_old_is_refused_as_expired() {
    let server = server().await;
    let e = enroll(&server, "+32470000703").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;

    let (status, error) = err(open(&e, &qr_link(&server, &browser, 2)).await).await;

    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error.error, codes::SIGN_IN_LINK_EXPIRED);
    assert!(e.pending().await.is_empty());
}

#[tokio::test]
async fn a_qr_link_used_twice_is_refused_the_second_time() {
    let server = server().await;
    let e = enroll(&server, "+32470000704").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    let link = qr_link(&server, &browser, 0);
    let _: SignInLinkOpened = ok(open(&e, &link).await).await;

    let (status, error) = err(open(&e, &link).await).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error.error, codes::SIGN_IN_LINK_USED);
    assert_eq!(e.pending().await.len(), 1);
}

#[tokio::test]
async fn an_old_qr_link_of_a_bound_session_is_refused_as_used_not_expired() {
    let server = server().await;
    let e = enroll(&server, "+32470000743").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    let _: SignInLinkOpened = ok(open(&e, &qr_link(&server, &browser, 0)).await).await;

    let (status, error) = err(open(&e, &qr_link(&server, &browser, 3)).await).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error.error, codes::SIGN_IN_LINK_USED);
}

#[tokio::test]
async fn another_link_of_a_bound_session_is_refused_as_used() {
    let server = server().await;
    let first = enroll(&server, "+32470000705").await;
    let second = enroll(&server, "+32470000706").await;
    let (browser, app_link) = app_link_of_new_session(&server).await;
    let _: SignInLinkOpened = ok(open(&first, &qr_link(&server, &browser, 0)).await).await;

    let (status, error) = err(open(&second, &app_link).await).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error.error, codes::SIGN_IN_LINK_USED);
    assert!(second.pending().await.is_empty());
}

#[tokio::test]
async fn a_link_after_the_number_form_is_refused_as_used() {
    let server = server().await;
    let e = enroll(&server, "+32470000707").await;
    let mut browser = Browser::new(&server);
    send_number(&mut browser, &e.number).await;

    let (_, error) = err(open(&e, &qr_link(&server, &browser, 0)).await).await;

    assert_eq!(error.error, codes::SIGN_IN_LINK_USED);
}

#[tokio::test]
async fn a_qr_link_with_a_tampered_mac_is_refused_as_invalid() {
    let server = server().await;
    let e = enroll(&server, "+32470000708").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    let link = qr_link(&server, &browser, 0);
    let mac = query_param(&url::Url::parse(&link).unwrap(), "mac").unwrap();
    let flipped = if mac.starts_with('A') { "B" } else { "A" };
    let tampered = link.replace(&mac, &format!("{flipped}{}", &mac[1..]));

    let (status, error) = err(open(&e, &tampered).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::SIGN_IN_LINK_INVALID);
    assert!(e.pending().await.is_empty());
}

#[tokio::test]
async fn a_qr_link_moved_to_the_tappable_app_to_app_path_is_refused_as_invalid() {
    let server = server().await;
    let e = enroll(&server, "+32470000709").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    let link = qr_link(&server, &browser, 0);
    let tappable = link.replace(PATH_APP_SCAN, PATH_APP_SIGN_IN);
    assert_ne!(tappable, link);

    let (status, error) = err(open(&e, &tappable).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::SIGN_IN_LINK_INVALID);
    assert!(e.pending().await.is_empty());
}

#[tokio::test]
async fn a_qr_link_opened_in_a_browser_says_to_scan_it_and_binds_nothing() {
    let server = server().await;
    let e = enroll(&server, "+32470000739").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    let link = qr_link(&server, &browser, 0);
    let mut other = Browser::new(&server);

    let page = other.get(link.trim_start_matches(&server.url())).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Scan deze code met de Sleutel-app"));
    let _: SignInLinkOpened = ok(open(&e, &link).await).await;
}

#[tokio::test]
async fn a_qr_link_with_a_step_from_the_future_is_refused_as_invalid() {
    let server = server().await;
    let e = enroll(&server, "+32470000709").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    at_the_start_of_a_step().await;

    let (_, error) = err(open(&e, &qr_link(&server, &browser, -1)).await).await;

    assert_eq!(error.error, codes::SIGN_IN_LINK_INVALID);
}

#[tokio::test]
async fn a_link_of_an_expired_session_is_refused_as_expired() {
    let server = server().await;
    let e = enroll(&server, "+32470000710").await;
    let (_, link) = app_link_of_new_session(&server).await;
    server
        .sql_execute("UPDATE browser_sessions SET expires_at = 0", &[])
        .unwrap();

    let (status, error) = err(open(&e, &link).await).await;

    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error.error, codes::SIGN_IN_LINK_EXPIRED);
}

#[tokio::test]
async fn a_link_of_another_server_is_refused_before_any_lookup() {
    let server = server().await;
    let e = enroll(&server, "+32470000711").await;
    let (_, link) = app_link_of_new_session(&server).await;
    let foreign = link.replace("127.0.0.1", "localhost");

    let (status, error) = err(open(&e, &foreign).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::SIGN_IN_LINK_INVALID);
}

#[tokio::test]
async fn a_blocked_account_cannot_bind_a_sign_in() {
    let server = server().await;
    let e = enroll(&server, "+32470000712").await;
    let (_, link) = app_link_of_new_session(&server).await;
    server
        .sql_execute(
            "UPDATE accounts SET blocked_at = 1 WHERE id = ?1",
            &[(&e.completed.account_id).into()],
        )
        .unwrap();

    let (status, error) = err(open(&e, &link).await).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
}

#[tokio::test]
async fn links_beyond_the_relying_partys_backchannel_rate_are_slowed_down() {
    let server = server_with(Policy {
        max_backchannel_per_client_per_minute: 1,
        ..Policy::default()
    })
    .await;
    let first = enroll(&server, "+32470000713").await;
    let second = enroll(&server, "+32470000714").await;
    let (_, one) = app_link_of_new_session(&server).await;
    let (_, other) = app_link_of_new_session(&server).await;
    let _: SignInLinkOpened = ok(open(&first, &one).await).await;

    let (status, error) = err(open(&second, &other).await).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.error, codes::SLOW_DOWN);
    assert!(second.pending().await.is_empty());
}

#[tokio::test]
async fn a_link_without_the_device_proof_is_refused() {
    let server = server().await;
    let (_, link) = app_link_of_new_session(&server).await;

    let response = server
        .http()
        .post(format!("{}{PATH_DEVICE_SIGN_IN}", server.url()))
        .json(&OpenSignInLink { link })
        .send()
        .await
        .unwrap();
    let (status, error) = err(response).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::INVALID_PROOF);
}

// --- App-to-app ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_return_url_of_an_approved_app_to_app_sign_in_redirects_with_code_state_and_iss() {
    let server = server().await;
    let e = enroll(&server, "+32470000720").await;
    let (_, link) = app_link_of_new_session(&server).await;
    let back_path = return_path(&e, &link).await;
    approve(&e).await;
    let mut app_browser = Browser::new(&server);

    let back = app_browser.get(&back_path).await;

    assert_eq!(back.status, StatusCode::SEE_OTHER);
    let location = back.location();
    assert!(
        location
            .as_str()
            .starts_with(RelyingPartyConfig::DEMO_REDIRECT_URI)
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some(STATE));
    assert_eq!(query_param(&location, "iss"), Some(server.url()));
    let code = query_param(&location, "code").unwrap();
    let _: TokenResponse = ok(demo_exchange(&server, &code).await).await;
}

#[tokio::test]
async fn the_return_url_works_once() {
    let server = server().await;
    let e = enroll(&server, "+32470000721").await;
    let (_, link) = app_link_of_new_session(&server).await;
    let back_path = return_path(&e, &link).await;
    approve(&e).await;
    let mut app_browser = Browser::new(&server);
    app_browser.get(&back_path).await;

    let again = app_browser.get(&back_path).await;

    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.headers.get(header::LOCATION).is_none());
}

#[tokio::test]
async fn the_browser_that_started_an_app_to_app_sign_in_never_gets_the_code() {
    let server = server().await;
    let e = enroll(&server, "+32470000722").await;
    let (mut browser, link) = app_link_of_new_session(&server).await;
    let back_path = return_path(&e, &link).await;
    approve(&e).await;

    let page = browser.get(PATH_STATUS).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get(header::LOCATION).is_none());
    assert!(!page.body.contains("code="));
    // The code is still waiting for the return URL.
    let back = Browser::new(&server).get(&back_path).await;
    assert!(query_param(&back.location(), "code").is_some());
}

#[tokio::test]
async fn a_declined_app_to_app_sign_in_returns_access_denied() {
    let server = server().await;
    let e = enroll(&server, "+32470000723").await;
    let (_, link) = app_link_of_new_session(&server).await;
    let back_path = return_path(&e, &link).await;
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e.answer(&request, &e.decline(&request, &jws)).await).await;

    let back = Browser::new(&server).get(&back_path).await;

    assert_eq!(back.status, StatusCode::SEE_OTHER);
    let location = back.location();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "code"), None);
    assert_eq!(query_param(&location, "state").as_deref(), Some(STATE));
}

#[tokio::test]
async fn the_return_url_before_the_answer_asks_to_confirm_in_the_app_first() {
    let server = server().await;
    let e = enroll(&server, "+32470000724").await;
    let (_, link) = app_link_of_new_session(&server).await;
    let back_path = return_path(&e, &link).await;

    let early = Browser::new(&server).get(&back_path).await;
    approve(&e).await;
    let later = Browser::new(&server).get(&back_path).await;

    assert_eq!(early.status, StatusCode::OK);
    assert!(early.body.contains("Bevestig eerst in de Sleutel-app"));
    assert!(query_param(&later.location(), "code").is_some());
}

#[tokio::test]
async fn a_qr_sign_in_has_no_return_url() {
    let server = server().await;
    let e = enroll(&server, "+32470000725").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;

    let opened: SignInLinkOpened = ok(open(&e, &qr_link(&server, &browser, 0)).await).await;

    assert_eq!(opened.return_url, None);
}

// --- The link in a browser, and the association files --------------------------------------

#[tokio::test]
async fn a_link_opened_in_a_browser_says_to_open_it_on_the_phone_and_binds_nothing() {
    let server = server().await;
    let e = enroll(&server, "+32470000730").await;
    let (_, link) = app_link_of_new_session(&server).await;
    let path = link.trim_start_matches(&server.url()).to_owned();
    let mut other = Browser::new(&server);

    let page = other.get(&path).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Open deze link op uw gsm"));
    let _: SignInLinkOpened = ok(open(&e, &link).await).await;
}

#[tokio::test]
async fn the_link_page_speaks_the_browsers_language() {
    let server = server().await;

    let french = server
        .http()
        .get(format!("{}{PATH_APP_SIGN_IN}", server.url()))
        .header(header::ACCEPT_LANGUAGE, "fr-BE")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert!(french.contains("Ouvrez ce lien sur votre GSM"));
}

#[tokio::test]
async fn the_association_files_are_absent_without_configured_apps() {
    let server = server().await;

    for path in [
        "/.well-known/apple-app-site-association",
        "/.well-known/assetlinks.json",
    ] {
        let response = server
            .http()
            .get(format!("{}{path}", server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

const FINGERPRINT: &str = "14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5";

#[tokio::test]
async fn the_association_files_name_the_configured_apps_and_the_link_path() {
    let server = InProcessServer::start_with_app_links(AppLinksConfig {
        apple_app_ids: vec!["ABCDE12345.be.sleutel.app".into()],
        android_package: Some("be.sleutel.app".into()),
        android_cert_fingerprints: vec![FINGERPRINT.into()],
    })
    .await
    .unwrap();
    let get = |path: &str| server.http().get(format!("{}{path}", server.url())).send();

    let apple: serde_json::Value = ok(get("/.well-known/apple-app-site-association")
        .await
        .unwrap())
    .await;
    let android: serde_json::Value = ok(get("/.well-known/assetlinks.json").await.unwrap()).await;

    let details = &apple["applinks"]["details"][0];
    assert_eq!(details["appIDs"][0], "ABCDE12345.be.sleutel.app");
    assert_eq!(details["components"][0]["/"], PATH_APP_SIGN_IN);
    let target = &android[0]["target"];
    assert_eq!(target["package_name"], "be.sleutel.app");
    assert_eq!(target["sha256_cert_fingerprints"][0], FINGERPRINT);
}

#[tokio::test]
async fn a_malformed_app_configuration_stops_the_start() {
    let started = InProcessServer::start_with_app_links(AppLinksConfig {
        android_package: Some("be.sleutel.app".into()),
        android_cert_fingerprints: vec!["not-a-fingerprint".into()],
        ..AppLinksConfig::default()
    })
    .await;

    assert!(started.is_err());
}

// --- The live status (JavaScript) -----------------------------------------------------------

const PATH_SCRIPT: &str = "/oidc/sign-in/live.js";
const PATH_STATUS_JSON: &str = "/oidc/sign-in/status.json";

/// The status the script reads, as the browser gets it.
async fn live_status(browser: &mut Browser) -> serde_json::Value {
    let page = browser.get(PATH_STATUS_JSON).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    serde_json::from_str(&page.body).unwrap()
}

#[tokio::test]
async fn the_qr_and_wait_pages_load_the_script_and_refresh_only_without_it() {
    let server = server().await;
    let e = enroll(&server, "+32470000740").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;

    let qr = browser.get(PATH_QR_PAGE).await;
    let _: SignInLinkOpened = ok(open(&e, &qr_link(&server, &browser, 0)).await).await;
    let wait = browser.get(PATH_STATUS).await;

    for page in [qr, wait] {
        assert!(
            page.body
                .contains(&format!("<script src=\"{PATH_SCRIPT}\" defer></script>"))
        );
        assert!(page.body.contains("<noscript><meta http-equiv=\"refresh\""));
        assert!(!page.body.contains("<script>"));
        assert!(page.body.contains("aria-live=\"polite\""));
    }
}

#[tokio::test]
async fn the_policy_allows_scripts_and_requests_of_the_servers_own_origin_only() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = sign_in_page(&mut browser, &[]).await;

    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self';"));
    assert!(csp.contains("connect-src 'self';"));
    assert!(!csp.contains("unsafe"));
}

#[tokio::test]
async fn the_script_is_javascript_without_eval() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let script = browser.get(PATH_SCRIPT).await;

    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(
        script.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(script.body.contains(PATH_STATUS_JSON));
    assert!(!script.body.contains("eval("));
    assert!(!script.body.contains("innerHTML"));
}

#[tokio::test]
async fn the_live_status_gives_the_qr_image_of_the_step_then_the_short_code() {
    let server = server().await;
    let e = enroll(&server, "+32470000741").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;

    let unbound = live_status(&mut browser).await;
    let _: SignInLinkOpened = ok(open(&e, &qr_link(&server, &browser, 0)).await).await;
    let waiting = live_status(&mut browser).await;

    assert_eq!(unbound["state"], "unbound");
    let step = unbound["step"].as_i64().unwrap();
    assert_eq!(
        unbound["image"],
        format!("{PATH_QR_IMAGE}?step={step}").as_str()
    );
    let (request, _) = e.the_request().await;
    assert_eq!(waiting["state"], "waiting");
    assert_eq!(waiting["code"], request.binding_message.unwrap().as_str());
}

#[tokio::test]
async fn the_live_status_of_an_answered_sign_in_leaves_the_code_to_the_wait_page() {
    let server = server().await;
    let e = enroll(&server, "+32470000742").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;
    let _: SignInLinkOpened = ok(open(&e, &qr_link(&server, &browser, 0)).await).await;
    approve(&e).await;

    let finished = live_status(&mut browser).await;
    let back = browser.get(PATH_STATUS).await;

    assert_eq!(finished["state"], "finished");
    assert_eq!(finished["next"], PATH_STATUS);
    assert!(!finished.to_string().contains("code="));
    assert!(query_param(&back.location(), "code").is_some());
}

#[tokio::test]
async fn the_live_status_without_a_session_sends_the_script_to_the_status_page() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let gone = live_status(&mut browser).await;

    assert_eq!(gone["state"], "finished");
    assert_eq!(gone["next"], PATH_STATUS);
}
