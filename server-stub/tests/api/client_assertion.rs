//! Client authentication with `private_key_jwt` (OIDC Core §9, RFC 7523) over real HTTP: a
//! relying party registered with a public key signs a fresh client assertion per call, at the
//! token endpoint (both grants) and at CIBA's backchannel endpoint; and every assertion that
//! must not pass is refused with `invalid_client`, as a wrong secret is.
//!
//! Most refusals are tried at the token endpoint with the CIBA grant and a made-up
//! `auth_req_id`: the client is authenticated first, so an accepted assertion is answered
//! `invalid_grant` (400) and a refused one `invalid_client` (401), with no login needed.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sleutel_harness::rp::ClientKey;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::oidc::{self, TokenResponse};
use sleutel_protocol::api::{ApiError, codes};
use sleutel_protocol::clock::now;
use sleutel_protocol::jose::{self, Es256Signer, Jwks};
use sleutel_protocol::limits::MAX_CLIENT_ASSERTION_LIFETIME_SECS;
use sleutel_server::{Policy, RelyingPartyConfig};

use crate::authcode::{Browser, VERIFIER, approved_code_for};
use crate::common::*;

/// The relying party registered with a key (`private_key_jwt`).
const KEY_CLIENT: &str = "key-client";
/// Its key's id.
const KID: &str = "key-1";
/// Where the authorization code flow sends its browser back.
const KEY_CLIENT_REDIRECT_URI: &str = "http://127.0.0.1:9/key-client/callback";
/// A relying party registered with a secret (from [`relying_parties`]).
const SECRET_CLIENT: (&str, &str) = ("rp-1", "secret-1");

/// A server whose relying parties are those of [`server`] and [`KEY_CLIENT`] with `key`
/// registered as [`KID`], with `policy`.
async fn server_with_key_client(key: &SigningKey, policy: Policy) -> InProcessServer {
    server_with_key_client_keys(&[(key, KID)], policy).await
}

/// As [`server_with_key_client`], with the keys `keys` and their ids registered.
async fn server_with_key_client_keys(
    keys: &[(&SigningKey, &str)],
    policy: Policy,
) -> InProcessServer {
    let jwks = Jwks {
        keys: keys
            .iter()
            .map(|(key, kid)| client_key(key, Some(kid)).public_jwk())
            .collect(),
    };
    let key_client = RelyingPartyConfig::new(KEY_CLIENT, "replaced", "Sleuteldienst")
        .with_private_key_jwt(jwks)
        .with_redirect_uris(&[KEY_CLIENT_REDIRECT_URI]);
    let mut rps = relying_parties();
    rps.push(key_client);
    InProcessServer::start_with(policy, rps).await.unwrap()
}

fn client_key(key: &SigningKey, kid: Option<&str>) -> ClientKey {
    ClientKey::new(key.clone(), kid)
}

/// A server with [`KEY_CLIENT`] and the key it registered.
async fn bench() -> (InProcessServer, SigningKey) {
    let key = SigningKey::generate();
    let server = server_with_key_client(&key, Policy::default()).await;
    (server, key)
}

fn token_endpoint(server: &InProcessServer) -> String {
    format!("{}{}", server.url(), oidc::PATH_TOKEN)
}

/// The claims of a good assertion of [`KEY_CLIENT`] for the token endpoint.
fn good_claims(server: &InProcessServer) -> Value {
    let now = now();
    json!({
        "iss": KEY_CLIENT, "sub": KEY_CLIENT, "aud": token_endpoint(server),
        "jti": jti(), "iat": now, "exp": now + 60,
    })
}

/// The ES256 header of an assertion signed by the key [`KID`].
fn good_header() -> Value {
    json!({"alg": "ES256", "typ": "JWT", "kid": KID})
}

/// `header` and `claims` signed by `key` as a compact JWS.
fn signed(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        jose::b64(header.to_string()),
        jose::b64(claims.to_string())
    );
    let signature = key.sign_es256(input.as_bytes()).unwrap();
    format!("{input}.{}", jose::b64(signature))
}

/// A CIBA token request for a made-up grant, carrying `assertion` (and `extra` parameters).
async fn token_with(
    server: &InProcessServer,
    assertion: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", oidc::CIBA_GRANT_TYPE),
        ("auth_req_id", "unknown-request"),
        (
            "client_assertion_type",
            oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER,
        ),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    server
        .http()
        .post(token_endpoint(server))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The answer to a token request that carries `assertion`: the error code, once the status is
/// checked to be that of the code.
async fn answer_to(server: &InProcessServer, assertion: &str) -> String {
    error_of(token_with(server, assertion, &[]).await)
        .await
        .error
}

/// The error of a refused request, its status checked against its code: 401 for
/// `invalid_client`, 400 for `invalid_grant` (the client passed).
async fn error_of(response: reqwest::Response) -> ApiError {
    let (status, error) = err(response).await;
    let expected = if error.error == codes::INVALID_CLIENT {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    assert_eq!(status, expected, "{}", error.error);
    error
}

/// `claims` with `changes` applied (a `Null` removes the member).
fn with(mut claims: Value, changes: &[(&str, Value)]) -> Value {
    for (name, value) in changes {
        match value {
            Value::Null => {
                claims.as_object_mut().unwrap().remove(*name);
            }
            value => claims[*name] = value.clone(),
        }
    }
    claims
}

// --- accepted -------------------------------------------------------------------------------

#[tokio::test]
async fn a_good_assertion_authenticates_the_code_exchange() {
    let (server, key) = bench().await;
    let e = enroll(&server, "+32470000801").await;
    let mut browser = Browser::new(&server);
    let code = approved_code_for(
        &mut browser,
        &e,
        &[
            ("client_id", Some(KEY_CLIENT)),
            ("redirect_uri", Some(KEY_CLIENT_REDIRECT_URI)),
        ],
    )
    .await;
    let rp = server.relying_party_with_key(KEY_CLIENT, client_key(&key, Some(KID)));

    let response = rp
        .token_request_raw(&[
            ("grant_type", oidc::AUTHORIZATION_CODE_GRANT_TYPE),
            ("code", &code),
            ("redirect_uri", KEY_CLIENT_REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .await
        .unwrap();

    let token: TokenResponse = ok(response).await;
    let claims = rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(claims.aud, KEY_CLIENT);
}

#[tokio::test]
async fn a_good_assertion_authenticates_a_ciba_login_from_bc_authorize_to_the_token() {
    let (server, key) = bench().await;
    let e = enroll(&server, "+32470000802").await;
    let rp = server.relying_party_with_key(KEY_CLIENT, client_key(&key, Some(KID)));

    let (_, token) = approved_login(&rp, &e).await;

    let claims = rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(claims.aud, KEY_CLIENT);
}

#[tokio::test]
async fn an_assertion_without_kid_is_accepted_when_the_client_has_one_key() {
    let (server, key) = bench().await;
    let header = json!({"alg": "ES256", "typ": "JWT"});

    let code = answer_to(&server, &signed(&key, &header, &good_claims(&server))).await;

    assert_eq!(code, codes::INVALID_GRANT);
}

#[tokio::test]
async fn an_assertion_for_the_issuer_is_accepted_at_the_token_endpoint() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("aud", json!(server.url()))]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_GRANT);
}

#[tokio::test]
async fn an_audience_array_holding_the_token_endpoint_is_accepted() {
    let (server, key) = bench().await;
    let aud = json!(["https://other.example", token_endpoint(&server)]);
    let claims = with(good_claims(&server), &[("aud", aud)]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_GRANT);
}

#[tokio::test]
async fn an_assertion_with_the_high_s_signature_web_crypto_may_sign_is_accepted() {
    let (server, key) = bench().await;
    let good = signed(&key, &good_header(), &good_claims(&server));
    let (input, signature) = good.rsplit_once('.').unwrap();
    let low =
        p256::ecdsa::Signature::from_slice(&jose::b64_decode(signature, "s").unwrap()).unwrap();
    let (r, s) = low.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r, (-*s).to_bytes()).unwrap();

    let code = answer_to(&server, &format!("{input}.{}", jose::b64(high.to_bytes()))).await;

    assert_eq!(code, codes::INVALID_GRANT);
}

// --- refused: key and signature -------------------------------------------------------------

#[tokio::test]
async fn an_assertion_signed_by_another_key_is_refused() {
    let (server, _) = bench().await;
    let other = SigningKey::generate();

    let code = answer_to(
        &server,
        &signed(&other, &good_header(), &good_claims(&server)),
    )
    .await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_naming_an_unknown_kid_is_refused() {
    let (server, key) = bench().await;
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "key-2"});

    let code = answer_to(&server, &signed(&key, &header, &good_claims(&server))).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_without_kid_is_refused_when_the_client_has_several_keys() {
    let key = SigningKey::generate();
    let second = SigningKey::generate();
    let server =
        server_with_key_client_keys(&[(&key, KID), (&second, "key-2")], Policy::default()).await;
    let header = json!({"alg": "ES256", "typ": "JWT"});

    let code = answer_to(&server, &signed(&key, &header, &good_claims(&server))).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_with_a_tampered_signature_is_refused() {
    let (server, key) = bench().await;
    let good = signed(&key, &good_header(), &good_claims(&server));
    // A character in the middle of the signature carries six bits of it.
    let at = good.len() - 40;
    let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);

    let code = answer_to(&server, &tampered).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_unsigned_assertion_with_alg_none_is_refused() {
    let (server, _) = bench().await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": KID});
    let unsigned = format!(
        "{}.{}.",
        jose::b64(header.to_string()),
        jose::b64(good_claims(&server).to_string())
    );

    let code = answer_to(&server, &unsigned).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_with_alg_hs256_is_refused() {
    let (server, key) = bench().await;
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": KID});
    // The classic confusion: a MAC keyed with the public key, which anyone has.
    let input = format!(
        "{}.{}",
        jose::b64(header.to_string()),
        jose::b64(good_claims(&server).to_string())
    );
    let public = key.verifying_key().to_sec1_point(false);
    let mac = Sha256::digest([public.as_bytes(), input.as_bytes()].concat());
    let token = format!("{input}.{}", jose::b64(mac));

    let code = answer_to(&server, &token).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

// --- refused: claims ------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_assertion_is_refused() {
    let (server, key) = bench().await;
    let past = now() - 600;
    let claims = with(
        good_claims(&server),
        &[("iat", json!(past - 60)), ("exp", json!(past))],
    );

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_whose_exp_lies_beyond_the_longest_lifetime_is_refused() {
    let (server, key) = bench().await;
    let exp = now() + MAX_CLIENT_ASSERTION_LIFETIME_SECS + 3600;
    let claims = with(good_claims(&server), &[("exp", json!(exp))]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_without_exp_is_refused() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("exp", Value::Null)]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_not_valid_before_a_time_still_ahead_is_refused() {
    let (server, key) = bench().await;
    let claims = with(
        good_claims(&server),
        &[("nbf", json!(now() + 200)), ("exp", json!(now() + 260))],
    );

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_issued_in_the_future_is_refused() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("iat", json!(now() + 200))]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_refused() {
    let (server, key) = bench().await;
    let claims = with(
        good_claims(&server),
        &[("aud", json!("https://other-server.example/oidc/token"))],
    );

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_without_aud_is_refused() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("aud", Value::Null)]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_whose_iss_is_not_the_client_is_refused() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("iss", json!(SECRET_CLIENT.0))]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_whose_sub_is_not_the_client_is_refused() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("sub", json!(SECRET_CLIENT.0))]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn a_client_id_parameter_other_than_the_assertions_client_is_refused() {
    let (server, key) = bench().await;
    let assertion = signed(&key, &good_header(), &good_claims(&server));

    let response = token_with(&server, &assertion, &[("client_id", SECRET_CLIENT.0)]).await;

    assert_eq!(error_of(response).await.error, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_without_jti_is_refused() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("jti", Value::Null)]);

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

// --- refused: replay ------------------------------------------------------------------------

#[tokio::test]
async fn a_replayed_assertion_is_refused_the_second_time() {
    let (server, key) = bench().await;
    let assertion = signed(&key, &good_header(), &good_claims(&server));
    let first = answer_to(&server, &assertion).await;

    let second = answer_to(&server, &assertion).await;

    assert_eq!(first, codes::INVALID_GRANT);
    assert_eq!(second, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn a_new_assertion_reusing_a_jti_is_refused() {
    let (server, key) = bench().await;
    let claims = good_claims(&server);
    let first = answer_to(&server, &signed(&key, &good_header(), &claims)).await;
    // Another assertion, as the client would make it, but with the same jti.
    let again = with(claims, &[("exp", json!(now() + 120))]);

    let second = answer_to(&server, &signed(&key, &good_header(), &again)).await;

    assert_eq!(first, codes::INVALID_GRANT);
    assert_eq!(second, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn an_assertion_used_at_the_token_endpoint_is_refused_at_bc_authorize() {
    let (server, key) = bench().await;
    let e = enroll(&server, "+32470000803").await;
    let assertion = signed(&key, &good_header(), &good_claims(&server));
    assert_eq!(answer_to(&server, &assertion).await, codes::INVALID_GRANT);

    let response = server
        .http()
        .post(format!("{}{}", server.url(), oidc::PATH_BC_AUTHORIZE))
        .form(&[
            ("scope", "openid profile"),
            ("login_hint", e.number.as_str()),
            (
                "client_assertion_type",
                oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER,
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(error_of(response).await.error, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn of_concurrent_uses_of_one_assertion_exactly_one_passes() {
    let (server, key) = bench().await;
    let assertion = signed(&key, &good_header(), &good_claims(&server));

    let answers = futures_join(&server, &assertion, 8).await;

    let passed = answers
        .iter()
        .filter(|c| *c == codes::INVALID_GRANT)
        .count();
    let refused = answers
        .iter()
        .filter(|c| *c == codes::INVALID_CLIENT)
        .count();
    assert_eq!((passed, refused), (1, 7));
}

/// The answers to `n` token requests sent at once with the same `assertion`.
async fn futures_join(server: &InProcessServer, assertion: &str, n: usize) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let http = server.http().clone();
        let url = token_endpoint(server);
        let assertion = assertion.to_owned();
        tasks.spawn(async move {
            let response = http
                .post(url)
                .form(&[
                    ("grant_type", oidc::CIBA_GRANT_TYPE),
                    ("auth_req_id", "unknown-request"),
                    (
                        "client_assertion_type",
                        oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                    ),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .unwrap();
            err(response).await.1.error
        });
    }
    tasks.join_all().await
}

// --- refused: methods -----------------------------------------------------------------------

#[tokio::test]
async fn a_secret_client_sending_an_assertion_is_refused() {
    let (server, key) = bench().await;
    let claims = with(
        good_claims(&server),
        &[
            ("iss", json!(SECRET_CLIENT.0)),
            ("sub", json!(SECRET_CLIENT.0)),
        ],
    );

    let code = answer_to(&server, &signed(&key, &good_header(), &claims)).await;

    assert_eq!(code, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn a_key_client_sending_a_secret_is_refused() {
    let (server, _) = bench().await;
    // The secret it was created with before its keys replaced it.
    let rp = server.relying_party(KEY_CLIENT, "replaced");

    let response = rp.token_raw("unknown-request").await.unwrap();

    assert_eq!(error_of(response).await.error, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn basic_authentication_beside_an_assertion_is_refused() {
    let (server, key) = bench().await;
    let assertion = signed(&key, &good_header(), &good_claims(&server));

    let response = server
        .http()
        .post(token_endpoint(&server))
        .basic_auth(SECRET_CLIENT.0, Some(SECRET_CLIENT.1))
        .form(&[
            ("grant_type", oidc::CIBA_GRANT_TYPE),
            ("auth_req_id", "unknown-request"),
            (
                "client_assertion_type",
                oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER,
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(error_of(response).await.error, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn a_client_secret_in_the_body_beside_an_assertion_is_refused() {
    let (server, key) = bench().await;
    let assertion = signed(&key, &good_header(), &good_claims(&server));

    let response = token_with(&server, &assertion, &[("client_secret", "replaced")]).await;

    assert_eq!(error_of(response).await.error, codes::INVALID_CLIENT);
}

// --- refusals as a wrong secret's -------------------------------------------------------------

#[tokio::test]
async fn a_refusal_says_which_check_failed_but_never_echoes_the_assertion() {
    let (server, key) = bench().await;
    let claims = with(good_claims(&server), &[("aud", json!("https://elsewhere"))]);
    let assertion = signed(&key, &good_header(), &claims);

    let error = error_of(token_with(&server, &assertion, &[]).await).await;

    assert!(
        error.error_description.contains("aud"),
        "{}",
        error.error_description
    );
    let signature = assertion.rsplit('.').next().unwrap();
    assert!(!error.error_description.contains(signature));
    assert!(!error.error_description.contains(&assertion[..40]));
}

#[tokio::test]
async fn failed_assertions_hold_the_address_up_as_wrong_secrets_do() {
    let key = SigningKey::generate();
    let server = server_with_key_client(
        &key,
        Policy {
            max_client_auth_failures_per_source_per_minute: 2,
            ..Policy::default()
        },
    )
    .await;
    let other = SigningKey::generate();
    for _ in 0..2 {
        let forged = signed(&other, &good_header(), &good_claims(&server));
        assert_eq!(answer_to(&server, &forged).await, codes::INVALID_CLIENT);
    }

    let good = signed(&key, &good_header(), &good_claims(&server));
    let (status, held) = err(token_with(&server, &good, &[]).await).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(held.error, codes::SLOW_DOWN);
}

// --- registration -----------------------------------------------------------------------------

#[tokio::test]
async fn discovery_offers_private_key_jwt_with_es256() {
    let (server, _) = bench().await;

    let doc = server.rp().discovery().await.unwrap().clone();

    assert_eq!(
        doc.token_endpoint_auth_methods_supported,
        vec!["client_secret_basic", "private_key_jwt"]
    );
    assert_eq!(
        doc.token_endpoint_auth_signing_alg_values_supported,
        vec!["ES256"]
    );
}

#[tokio::test]
async fn the_server_does_not_start_with_a_key_client_without_keys() {
    let empty = RelyingPartyConfig::new(KEY_CLIENT, "replaced", "Sleuteldienst")
        .with_private_key_jwt(Jwks { keys: vec![] });

    let started = InProcessServer::start_with(Policy::default(), vec![empty]).await;

    assert!(started.is_err());
}
