//! The authorization code flow over real HTTP: a browser (a reqwest client that keeps the
//! session cookie by hand and follows no redirect) on the sign-in pages, the phone answering the
//! action request, the relying party exchanging the code; and every refusal.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sha2::{Digest, Sha256};
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::query_param;
use sleutel_protocol::api::oidc::{self, IdTokenClaims, TokenResponse};
use sleutel_protocol::api::{self, ResponseAccepted};
use sleutel_protocol::jose::{self, Jwks, UnverifiedJws};
use sleutel_server::{Policy, RelyingPartyConfig};
use url::Url;

use crate::common::*;

/// A PKCE verifier and its S256 challenge (computed apart, with `openssl dgst -sha256`).
pub const VERIFIER: &str = "dBjftJeZ4CK-P1UcR4dgkKUqeQQfqX6J-bMd6oJ3cPw";
pub const CHALLENGE: &str = "xhUrj-o0xMrn2237aduIA29_XbviWkR_2LYXt5Ke63c";
pub const STATE: &str = "state-of-the-rp";
pub const NONCE: &str = "nonce-of-the-rp";

/// The sign-in pages' paths (not part of the protocol: only the browser follows them).
pub const PATH_NUMBER: &str = "/oidc/sign-in/number";
pub const PATH_STATUS: &str = "/oidc/sign-in/status";

/// A browser: no redirects followed, the session cookie kept by hand.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
}

/// A page as the browser got it.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    async fn of(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> Url {
        Url::parse(self.headers[header::LOCATION].to_str().unwrap()).unwrap()
    }

    /// The value of the form's CSRF token.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).unwrap() + marker.len();
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }
}

impl Browser {
    pub fn new(server: &InProcessServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url(),
            cookie: None,
        }
    }

    async fn keep(&mut self, response: reqwest::Response) -> Page {
        if let Some(set) = response.headers().get(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = Some(pair);
        }
        Page::of(response).await
    }

    pub async fn get(&mut self, path_and_query: &str) -> Page {
        let mut request = self.http.get(format!("{}{path_and_query}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.keep(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = request.send().await.unwrap();
        self.keep(response).await
    }
}

/// An authorization request of the demo relying party, with `changes` to its parameters
/// (a value `None` leaves the parameter out).
pub fn authorize_query(changes: &[(&str, Option<&str>)]) -> String {
    let mut params: Vec<(&str, Option<&str>)> = vec![
        ("response_type", Some("code")),
        ("client_id", Some(RelyingPartyConfig::DEMO_CLIENT_ID)),
        ("redirect_uri", Some(RelyingPartyConfig::DEMO_REDIRECT_URI)),
        ("scope", Some("openid profile")),
        ("state", Some(STATE)),
        ("nonce", Some(NONCE)),
        ("code_challenge", Some(CHALLENGE)),
        ("code_challenge_method", Some("S256")),
    ];
    for (name, value) in changes {
        match params.iter_mut().find(|(n, _)| n == name) {
            Some(param) => param.1 = *value,
            None => params.push((name, *value)),
        }
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value {
            form.append_pair(name, value);
        }
    }
    format!("{}?{}", oidc::PATH_AUTHORIZE, form.finish())
}

/// The browser on the sign-in page of a fresh authorization request.
pub async fn sign_in_page(browser: &mut Browser, changes: &[(&str, Option<&str>)]) -> Page {
    let page = browser.get(&authorize_query(changes)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page
}

/// The browser sends `number` through the form and lands on the wait page.
pub async fn send_number(browser: &mut Browser, number: &str) -> Page {
    send_number_for(browser, number, &[]).await
}

/// As [`send_number`], for an authorization request with `changes` to its parameters.
pub async fn send_number_for(
    browser: &mut Browser,
    number: &str,
    changes: &[(&str, Option<&str>)],
) -> Page {
    let page = sign_in_page(browser, changes).await;
    let sent = browser
        .post(
            PATH_NUMBER,
            &[("csrf_token", &page.csrf()), ("phone_number", number)],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    browser.get(PATH_STATUS).await
}

/// A whole sign-in of `e` in `browser`, approved on the phone: the code of the redirect back.
async fn approved_code(browser: &mut Browser, e: &Enrolled) -> String {
    approved_code_for(browser, e, &[]).await
}

/// As [`approved_code`], for an authorization request with `changes` to its parameters (another
/// client and its redirect URI).
pub(crate) async fn approved_code_for(
    browser: &mut Browser,
    e: &Enrolled,
    changes: &[(&str, Option<&str>)],
) -> String {
    send_number_for(browser, &e.number, changes).await;
    let (request, jws) = e.the_request().await;
    let accepted: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
    let back = browser.get(PATH_STATUS).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    query_param(&back.location(), "code").unwrap()
}

/// The token endpoint's answer to an authorization code exchange by `client_id`.
async fn exchange(
    server: &InProcessServer,
    (client_id, secret): (&str, &str),
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", oidc::AUTHORIZATION_CODE_GRANT_TYPE),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    server
        .http()
        .post(format!("{}{}", server.url(), oidc::PATH_TOKEN))
        .basic_auth(client_id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap()
}

const DEMO: (&str, &str) = (
    RelyingPartyConfig::DEMO_CLIENT_ID,
    RelyingPartyConfig::DEMO_SECRET,
);

/// The demo relying party's exchange of `code` with the right redirect URI and verifier.
pub async fn demo_exchange(server: &InProcessServer, code: &str) -> reqwest::Response {
    exchange(
        server,
        DEMO,
        code,
        RelyingPartyConfig::DEMO_REDIRECT_URI,
        Some(VERIFIER),
    )
    .await
}

async fn userinfo(server: &InProcessServer, access_token: &str) -> reqwest::Response {
    server
        .http()
        .get(format!("{}{}", server.url(), oidc::PATH_USERINFO))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

/// The claims of an ID token, its signature checked with the server's JWKS.
async fn verified(server: &InProcessServer, token: &str) -> IdTokenClaims {
    let jwks: Jwks = ok(server
        .http()
        .get(format!("{}{}", server.url(), oidc::PATH_JWKS))
        .send()
        .await
        .unwrap())
    .await;
    let jws = UnverifiedJws::parse(token, "id token").unwrap();
    let key = jwks
        .find(jws.header.kid.as_deref().unwrap())
        .unwrap()
        .to_verifying_key()
        .unwrap();
    let payload = jws.verify(&key, oidc::ID_TOKEN_TYP, "id token").unwrap();
    jose::parse_claims(&payload, "id token").unwrap()
}

#[tokio::test]
async fn an_approved_sign_in_redirects_with_code_state_and_iss() {
    let server = server().await;
    let e = enroll(&server, "+32470000501").await;
    let mut browser = Browser::new(&server);

    send_number(&mut browser, &e.number).await;
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    let back = browser.get(PATH_STATUS).await;

    assert_eq!(back.status, StatusCode::SEE_OTHER);
    let location = back.location();
    assert!(
        location
            .as_str()
            .starts_with(RelyingPartyConfig::DEMO_REDIRECT_URI)
    );
    assert!(query_param(&location, "code").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some(STATE));
    assert_eq!(query_param(&location, "iss"), Some(server.url()));
}

#[tokio::test]
async fn the_phone_gets_the_same_login_as_ciba_with_the_code_the_page_shows() {
    let server = server().await;
    let e = enroll(&server, "+32470000502").await;
    let mut browser = Browser::new(&server);

    let wait = send_number(&mut browser, &e.number).await;
    let (request, _) = e.the_request().await;

    let code = request.binding_message.clone().unwrap();
    assert!(wait.body.contains(&code));
    assert_eq!(request.text, RelyingPartyConfig::DEMO_LOGIN_TEXT);
    assert_eq!(request.rp.id, RelyingPartyConfig::DEMO_CLIENT_ID);
    assert!(wait.body.contains("http-equiv=\"refresh\""));
}

#[tokio::test]
async fn a_number_typed_in_the_national_form_as_the_hint_shows_reaches_the_phone() {
    let server = server().await;
    let e = enroll(&server, "+32470000531").await;
    let mut browser = Browser::new(&server);

    let wait = send_number(&mut browser, "0470 00 05 31").await;
    let (request, _) = e.the_request().await;

    assert!(
        wait.body
            .contains(&request.binding_message.clone().unwrap())
    );
}

#[tokio::test]
async fn the_code_buys_an_id_token_with_nonce_and_at_hash() {
    let server = server().await;
    let e = enroll(&server, "+32470000503").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;

    let token: TokenResponse = ok(demo_exchange(&server, &code).await).await;

    let claims = verified(&server, &token.id_token).await;
    assert_eq!(claims.aud, RelyingPartyConfig::DEMO_CLIENT_ID);
    assert_eq!(claims.nonce.as_deref(), Some(NONCE));
    let digest = Sha256::digest(token.access_token.as_bytes());
    assert_eq!(claims.at_hash, Some(jose::b64(&digest[..16])));
    assert_eq!(claims.acr, oidc::ACR_CODE);
    assert!(claims.name.is_some());
}

#[tokio::test]
async fn userinfo_answers_sub_and_the_consented_claims_only() {
    let server = server().await;
    let e = enroll(&server, "+32470000504").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;
    let token: TokenResponse = ok(demo_exchange(&server, &code).await).await;
    let claims = verified(&server, &token.id_token).await;

    let info: serde_json::Value = ok(userinfo(&server, &token.access_token).await).await;

    assert_eq!(info["sub"], claims.sub);
    assert_eq!(info["name"], claims.name.unwrap());
    assert!(info.get("birthdate").is_none());
    assert!(info.get("national_register_number").is_none());
    for token_member in ["iss", "aud", "exp", "nonce", "at_hash", "sleutel_action"] {
        assert!(info.get(token_member).is_none(), "{token_member}");
    }
}

#[tokio::test]
async fn a_missing_verifier_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000505").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;

    let (status, error) = err(exchange(
        &server,
        DEMO,
        &code,
        RelyingPartyConfig::DEMO_REDIRECT_URI,
        None,
    )
    .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, api::codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_wrong_verifier_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000506").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;

    let (status, error) = err(exchange(
        &server,
        DEMO,
        &code,
        RelyingPartyConfig::DEMO_REDIRECT_URI,
        Some("dBjftJeZ4CK-P1UcR4dgkKUqeQQfqX6J-bMd6oJ3cPx"),
    )
    .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, api::codes::INVALID_GRANT);
}

#[tokio::test]
async fn plain_pkce_is_refused_by_a_redirect_with_invalid_request() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = browser
        .get(&authorize_query(&[
            ("code_challenge_method", Some("plain")),
            ("code_challenge", Some(VERIFIER)),
        ]))
        .await;

    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let location = page.location();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some(STATE));
    assert_eq!(query_param(&location, "iss"), Some(server.url()));
}

#[tokio::test]
async fn a_missing_challenge_is_refused_by_a_redirect_with_invalid_request() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = browser
        .get(&authorize_query(&[("code_challenge", None)]))
        .await;

    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        query_param(&page.location(), "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn prompt_none_is_answered_login_required() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = browser
        .get(&authorize_query(&[("prompt", Some("none"))]))
        .await;

    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        query_param(&page.location(), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = browser
        .get(&authorize_query(&[(
            "redirect_uri",
            Some("https://attacker.example/callback"),
        )]))
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.headers.get(header::LOCATION).is_none());
    assert!(!page.body.contains("attacker.example"));
}

#[tokio::test]
async fn another_clients_redirect_uri_gets_an_error_page_not_a_redirect() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = browser
        .get(&authorize_query(&[(
            "redirect_uri",
            Some(&other_rp_redirect_uri(1)),
        )]))
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.headers.get(header::LOCATION).is_none());
}

#[tokio::test]
async fn an_unknown_client_gets_an_error_page_not_a_redirect() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = browser
        .get(&authorize_query(&[("client_id", Some("no-such-client"))]))
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.headers.get(header::LOCATION).is_none());
}

#[tokio::test]
async fn a_redirect_uri_other_than_the_authorize_one_is_refused_at_the_token_endpoint() {
    let server = server().await;
    let e = enroll(&server, "+32470000507").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;

    let (status, error) = err(exchange(
        &server,
        DEMO,
        &code,
        "http://127.0.0.1:8081/other",
        Some(VERIFIER),
    )
    .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, api::codes::INVALID_GRANT);
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_its_access_token() {
    let server = server().await;
    let e = enroll(&server, "+32470000508").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;
    let token: TokenResponse = ok(demo_exchange(&server, &code).await).await;

    let (status, error) = err(demo_exchange(&server, &code).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, api::codes::INVALID_GRANT);
    let revoked = userinfo(&server, &token.access_token).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_code_of_another_client_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000509").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;

    let (status, error) = err(exchange(
        &server,
        ("rp-1", "secret-1"),
        &code,
        RelyingPartyConfig::DEMO_REDIRECT_URI,
        Some(VERIFIER),
    )
    .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, api::codes::INVALID_GRANT);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000510").await;
    let mut browser = Browser::new(&server);
    let code = approved_code(&mut browser, &e).await;
    // Sixty seconds are too long to wait in a test: the code's expiry is moved to the past.
    server
        .sql_execute("UPDATE authorization_codes SET expires_at = 0", &[])
        .unwrap();

    let (status, error) = err(demo_exchange(&server, &code).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, api::codes::INVALID_GRANT);
}

/// The wait page with its one-off code blanked, for comparing two pages.
fn without_code(body: &str) -> String {
    let marker = "<p class=\"code\" aria-live=\"polite\">";
    let start = body.find(marker).unwrap() + marker.len();
    let end = start + body[start..].find('<').unwrap();
    format!("{}{}", &body[..start], &body[end..])
}

#[tokio::test]
async fn an_unknown_number_looks_exactly_like_a_known_one() {
    let server = server().await;
    let e = enroll(&server, "+32470000511").await;
    let mut known = Browser::new(&server);
    let mut unknown = Browser::new(&server);

    let known_page = send_number(&mut known, &e.number).await;
    let unknown_page = send_number(&mut unknown, "+32470000599").await;

    assert_eq!(known_page.status, unknown_page.status);
    assert_eq!(
        without_code(&known_page.body),
        without_code(&unknown_page.body)
    );
}

#[tokio::test]
async fn a_declined_sign_in_shows_a_page_with_an_access_denied_way_back() {
    let server = server().await;
    let e = enroll(&server, "+32470000512").await;
    let mut browser = Browser::new(&server);
    send_number(&mut browser, &e.number).await;
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e.answer(&request, &e.decline(&request, &jws)).await).await;

    let page = browser.get(PATH_STATUS).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Geweigerd"));
    assert!(page.body.contains("error=access_denied"));
}

/// Three wrong codes on the sign-in's own request block the account, which closes it: the page
/// says the key is blocked, with the same way back as a refusal.
#[tokio::test]
async fn a_sign_in_whose_account_gets_blocked_shows_the_blocked_page() {
    let server = server().await;
    let e = enroll(&server, "+32470000598").await;
    let mut browser = Browser::new(&server);
    send_number(&mut browser, &e.number).await;
    let (request, jws) = e.the_request().await;
    let wrong = SigningKey::generate();
    for _ in 0..3 {
        let _ = e
            .answer(&request, &e.approval(&request, &jws, &wrong))
            .await;
    }

    let page = browser.get(PATH_STATUS).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Geblokkeerd"));
    assert!(page.body.contains("error=access_denied"));
}

#[tokio::test]
async fn a_form_without_the_csrf_token_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000513").await;
    let mut browser = Browser::new(&server);
    sign_in_page(&mut browser, &[]).await;

    let page = browser
        .post(PATH_NUMBER, &[("phone_number", e.number.as_str())])
        .await;

    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(e.pending().await.is_empty());
}

#[tokio::test]
async fn the_sign_in_page_carries_the_security_headers_and_a_safe_cookie() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = browser.get(&authorize_query(&[])).await;

    let header = |name: header::HeaderName| page.headers[name].to_str().unwrap().to_owned();
    let csp = header(header::CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'none'"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains("form-action 'self'"));
    assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header(header::REFERRER_POLICY), "no-referrer");
    assert_eq!(header(header::CACHE_CONTROL), "no-store");
    let cookie = header(header::SET_COOKIE);
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(!page.body.contains("<script"));
}

#[tokio::test]
async fn the_page_speaks_the_language_ui_locales_asks() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let french = sign_in_page(&mut browser, &[("ui_locales", Some("fr"))]).await;
    let dutch = sign_in_page(&mut browser, &[]).await;

    assert!(french.body.contains("<html lang=\"fr\""));
    assert!(french.body.contains("Envoyer"));
    assert!(dutch.body.contains("Versturen"));
}

#[tokio::test]
async fn the_login_hint_fills_in_the_labelled_number_field() {
    let server = server().await;
    let mut browser = Browser::new(&server);

    let page = sign_in_page(&mut browser, &[("login_hint", Some("0470 12 34 56"))]).await;

    assert!(page.body.contains("<label for=\"phone_number\">"));
    assert!(page.body.contains("value=\"0470 12 34 56\""));
}

#[tokio::test]
async fn a_sign_in_nobody_answers_expires_with_an_access_denied_way_back() {
    let server = server_with(Policy {
        request_ttl_secs: 1,
        ..Policy::default()
    })
    .await;
    let e = enroll(&server, "+32470000514").await;
    let mut browser = Browser::new(&server);
    send_number(&mut browser, &e.number).await;

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let page = browser.get(PATH_STATUS).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Verlopen"));
    assert!(page.body.contains("error=access_denied"));
    assert!(!page.body.contains("http-equiv=\"refresh\""));
}

#[tokio::test]
async fn numbers_from_one_address_beyond_the_form_limit_get_a_too_many_tries_page() {
    let server = server().await;
    let mut browser = Browser::new(&server);
    let page = sign_in_page(&mut browser, &[]).await;
    let csrf = page.csrf();
    // Numbers that are not Belgian mobile numbers start nothing, so the session stays at the
    // form and every try counts.
    for _ in 0..10 {
        let again = browser
            .post(
                PATH_NUMBER,
                &[("csrf_token", &csrf), ("phone_number", "12")],
            )
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
    }

    let refused = browser
        .post(
            PATH_NUMBER,
            &[("csrf_token", &csrf), ("phone_number", "12")],
        )
        .await;

    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_oversized_authorization_request_gets_an_error_page_and_no_session() {
    let server = server().await;
    let mut browser = Browser::new(&server);
    // Each value is a known one, and the session would keep them all as given.
    let acr_values = vec![oidc::ACR_CODE; 400].join(" ");

    let page = browser
        .get(&authorize_query(&[("acr_values", Some(&acr_values))]))
        .await;

    assert_eq!(page.status, StatusCode::URI_TOO_LONG);
    assert!(page.headers.get(header::SET_COOKIE).is_none());
    assert!(page.headers.get(header::LOCATION).is_none());
}

#[tokio::test]
async fn sessions_from_one_address_beyond_the_limit_get_a_too_many_tries_page() {
    let server = server().await;
    let mut browser = Browser::new(&server);
    for _ in 0..60 {
        sign_in_page(&mut browser, &[]).await;
    }

    let refused = browser.get(&authorize_query(&[])).await;

    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn concurrent_wait_pages_after_an_approval_get_one_code_between_them() {
    let server = server().await;
    let e = enroll(&server, "+32470000531").await;
    let mut browser = Browser::new(&server);
    send_number(&mut browser, &e.number).await;
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    let cookie = browser.cookie.clone();

    // The same browser asks its wait page several times at once (tabs, a reload, the script).
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut tab = Browser::new(&server);
        tab.cookie = cookie.clone();
        tasks.spawn(async move { tab.get(PATH_STATUS).await });
    }
    let mut codes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let page = done.unwrap();
        if page.status == StatusCode::SEE_OTHER
            && let Some(code) = query_param(&page.location(), "code")
        {
            codes.push(code);
        }
    }

    assert_eq!(codes.len(), 1, "codes issued: {codes:?}");
}

#[tokio::test]
async fn a_number_sent_twice_at_once_starts_the_one_request_the_wait_page_shows() {
    let server = server().await;
    let e = enroll(&server, "+32470000532").await;
    let mut browser = Browser::new(&server);
    let page = sign_in_page(&mut browser, &[]).await;
    let csrf = page.csrf();

    // A double click: the same form posted several times at once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut tab = Browser::new(&server);
        tab.cookie = browser.cookie.clone();
        let (csrf, number) = (csrf.clone(), e.number.clone());
        tasks.spawn(async move {
            tab.post(
                PATH_NUMBER,
                &[("csrf_token", &csrf), ("phone_number", &number)],
            )
            .await
            .status
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), StatusCode::SEE_OTHER);
    }
    let wait = browser.get(PATH_STATUS).await;
    let (request, _) = e.the_request().await;

    assert!(
        wait.body.contains(&request.binding_message.unwrap()),
        "the wait page shows another code than the phone: {}",
        wait.body
    );
}

#[tokio::test]
async fn a_sign_in_superseded_by_a_newer_one_waits_like_an_unknown_number() {
    let server = server().await;
    let e = enroll(&server, "+32470000533").await;
    let mut first = Browser::new(&server);
    let mut second = Browser::new(&server);
    send_number(&mut first, &e.number).await;

    // A second sign-in with the same number supersedes the first one's request. Were the
    // first page to end at once, two tries would tell a registered number from an unknown
    // one, whose page waits.
    send_number(&mut second, &e.number).await;
    let page = first.get(PATH_STATUS).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("http-equiv=\"refresh\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("error=access_denied"));
}
