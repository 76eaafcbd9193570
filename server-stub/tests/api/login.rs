//! Logins through OpenID Connect CIBA: the relying party asks, the phone answers, the relying
//! party polls for the ID token.

use std::time::Duration;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use reqwest::StatusCode;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::oidc::{DiscoveryDocument, IdTokenClaims, TokenResponse};
use sleutel_protocol::api::{self, RequestEnvelope, ResponseAccepted, codes};
use sleutel_protocol::clock::now;
use sleutel_protocol::jose::{self, Jwks, UnverifiedJws};
use sleutel_protocol::response::UvMethod;
use sleutel_server::{Policy, RelyingPartyConfig};

use crate::common::*;

async fn jwks(server: &InProcessServer) -> Jwks {
    ok(server
        .http()
        .get(format!("{}{}", server.url(), api::oidc::PATH_JWKS))
        .send()
        .await
        .unwrap())
    .await
}

/// Verifies an ID token as a relying party does: signature by a JWKS key, issuer, audience.
async fn verified_id_token(server: &InProcessServer, token: &str) -> IdTokenClaims {
    let jwks = jwks(server).await;
    let jws = UnverifiedJws::parse(token, "id token").unwrap();
    let key = jwks
        .find(jws.header.kid.as_deref().unwrap())
        .unwrap()
        .to_verifying_key()
        .unwrap();
    let payload = jws
        .verify(&key, api::oidc::ID_TOKEN_TYP, "id token")
        .unwrap();
    let claims: IdTokenClaims = jose::parse_claims(&payload, "id token").unwrap();
    assert_eq!(claims.iss, server.url());
    assert_eq!(claims.aud, "online-overheid");
    assert!(claims.exp > now());
    claims
}

#[tokio::test]
async fn a_device_key_in_hardware_shows_as_hwk_in_the_amr() {
    let server = server().await;
    let e = enroll_with_hardware_key(&server, "+32470000209").await;
    let rp = server.rp();

    let started = rp.start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    let token: TokenResponse = ok(rp.token_raw(&started.auth_req_id).await).await;

    let claims = verified_id_token(&server, &token.id_token).await;
    assert_eq!(claims.amr, vec!["hwk", "pin", "mfa"]);
}

#[tokio::test]
async fn an_approved_login_gives_a_verifiable_id_token_with_the_name() {
    let server = server().await;
    let e = enroll(&server, "+32470000201").await;
    let rp = server.rp();

    let started = rp.start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let accepted: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    let token: TokenResponse = ok(rp.token_raw(&started.auth_req_id).await).await;

    assert_eq!(request.text, "Ik log in op de online overheid");
    assert_eq!(request.rp.name, "Online overheid");
    assert_eq!(request.binding_message.as_deref(), Some("TEST-1"));
    // The profile scope asks for the name voluntarily: the person may leave it out.
    assert!(request.claims.is_empty());
    assert_eq!(
        request.optional_claims,
        vec!["name", "given_name", "family_name"]
    );
    assert_eq!(started.interval, 2);
    assert_eq!(accepted.status, "approved");
    let claims = verified_id_token(&server, &token.id_token).await;
    let name = format!("{} {}", e.citizen.given_name, e.citizen.family_name);
    assert_eq!(claims.name.as_deref(), Some(name.as_str()));
    assert_eq!(
        claims.given_name.as_deref(),
        Some(e.citizen.given_name.as_str())
    );
    assert_eq!(claims.acr, api::oidc::ACR_CODE);
    assert_eq!(claims.amr, vec!["swk", "pin", "mfa"]);
    assert_ne!(
        claims.sub, e.completed.account_id,
        "the subject is pairwise"
    );
    assert!(claims.auth_time <= now());
    assert_eq!(token.token_type, "Bearer");
}

#[tokio::test]
async fn the_subject_is_stable_for_one_relying_party() {
    let server = server().await;
    let e = enroll(&server, "+32470000202").await;
    let rp = server.rp();
    let mut subjects = Vec::new();
    for _ in 0..2 {
        let (_, token) = approved_login(&rp, &e).await;
        subjects.push(verified_id_token(&server, &token.id_token).await.sub);
    }
    assert_eq!(subjects[0], subjects[1]);
}

#[tokio::test]
async fn a_push_tells_the_phone_which_request_to_fetch() {
    let server = server().await;
    let e = enroll(&server, "+32470000203").await;
    server.rp().start_login(&e.number).await.unwrap();

    let outbox = server
        .sim()
        .push_messages(&e.completed.account_id, 0)
        .await
        .unwrap();
    let message = &outbox.messages.last().unwrap().message;
    let envelope: RequestEnvelope =
        ok(e.phone.get(&api::path_request(&message.request_id)).await).await;

    assert_eq!(message.account_id, e.completed.account_id);
    assert_eq!(e.verify(&envelope.request).jti, message.request_id);
}

#[tokio::test]
async fn wrong_codes_count_down_then_block_the_account_and_the_right_code_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000204").await;
    let rp = server.rp();
    let started = rp.start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let wrong = SigningKey::generate();

    for left in [2, 1] {
        let (status, error) = err(e
            .answer(&request, &e.approval(&request, &jws, &wrong))
            .await)
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error.error, codes::WRONG_PIN);
        assert_eq!(error.attempts_left, Some(left));
        assert_eq!(e.pending().await.len(), 1, "the request stays open");
    }
    let (status, error) = err(e
        .answer(&request, &e.approval(&request, &jws, &wrong))
        .await)
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
    assert_eq!(error.attempts_left, Some(0));

    let (_, error) = err(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    assert_eq!(error.error, codes::ACCOUNT_BLOCKED);
    assert_eq!(
        token_error(&rp, &started.auth_req_id).await,
        codes::ACCESS_DENIED
    );
    // A new request for the blocked person is answered as for any number (decision 0030), and
    // then stays pending: nobody can answer it.
    let again: sleutel_protocol::api::oidc::BackchannelAuthResponse = ok(rp
        .backchannel_authorize_raw(&[("scope", "openid"), ("login_hint", &e.number)])
        .await)
    .await;
    assert_eq!(
        token_error(&rp, &again.auth_req_id).await,
        codes::AUTHORIZATION_PENDING
    );
}

#[tokio::test]
async fn a_biometric_approval_of_a_code_only_request_is_refused_and_costs_no_attempt() {
    let server = server().await;
    let e = enroll(&server, "+32470000219").await;
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let biometric = e.approval_by(&request, &jws, UvMethod::Biometric, &SigningKey::generate());

    let (status, error) = err(e.answer(&request, &biometric).await).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::METHOD_NOT_ALLOWED);
    assert_eq!(e.pending().await.len(), 1, "the request stays open");
    let (_, error) = err(e
        .answer(
            &request,
            &e.approval(&request, &jws, &SigningKey::generate()),
        )
        .await)
    .await;
    assert_eq!(error.error, codes::WRONG_PIN);
    assert_eq!(error.attempts_left, Some(2));
}

#[tokio::test]
async fn a_right_code_after_a_wrong_one_resets_the_count() {
    let server = server().await;
    let e = enroll(&server, "+32470000205").await;
    let rp = server.rp();
    let wrong = SigningKey::generate();
    for _ in 0..2 {
        rp.start_login(&e.number).await.unwrap();
        let (request, jws) = e.the_request().await;
        let (_, error) = err(e
            .answer(&request, &e.approval(&request, &jws, &wrong))
            .await)
        .await;
        assert_eq!(error.attempts_left, Some(2));
        let _: ResponseAccepted = ok(e
            .answer(&request, &e.approval(&request, &jws, &e.pin))
            .await)
        .await;
    }
}

#[tokio::test]
async fn a_decline_gives_the_relying_party_access_denied() {
    let server = server().await;
    let e = enroll(&server, "+32470000206").await;
    let rp = server.rp();
    let started = rp.start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;

    let accepted: ResponseAccepted = ok(e.answer(&request, &e.decline(&request, &jws)).await).await;

    assert_eq!(accepted.status, "declined");
    assert_eq!(
        token_error(&rp, &started.auth_req_id).await,
        codes::ACCESS_DENIED
    );
    assert!(e.pending().await.is_empty());
}

#[tokio::test]
async fn a_replayed_response_is_refused_as_already_answered() {
    let server = server().await;
    let e = enroll(&server, "+32470000207").await;
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let approval = e.approval(&request, &jws, &e.pin);
    let _: ResponseAccepted = ok(e.answer(&request, &approval).await).await;

    let (status, error) = err(e.answer(&request, &approval).await).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error.error, codes::REQUEST_ALREADY_ANSWERED);
    let (status, _) = err(e.phone.get(&api::path_request(&request.jti)).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000208").await;
    let proof = e.phone.proof("GET", api::PATH_REQUESTS, b"");
    let first = e
        .phone
        .send_with_proof(
            reqwest::Method::GET,
            api::PATH_REQUESTS,
            Vec::new(),
            proof.clone(),
        )
        .await;
    assert!(first.status().is_success());

    let (status, error) = err(e
        .phone
        .send_with_proof(reqwest::Method::GET, api::PATH_REQUESTS, Vec::new(), proof)
        .await)
    .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::PROOF_REPLAYED);
}

#[tokio::test]
async fn a_response_signed_by_another_device_key_is_invalid() {
    let server = server().await;
    let e = enroll(&server, "+32470000209").await;
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let mut approval = e.approval(&request, &jws, &e.pin);
    let mut forged = sleutel_protocol::jose::GeneralJws::new(&approval.payload_bytes().unwrap());
    forged
        .add_signature(
            &sleutel_protocol::response::ActionResponse::device_header(),
            &SigningKey::generate(),
        )
        .unwrap();
    forged.signatures.push(approval.signatures.remove(1));

    let (_, error) = err(e.answer(&request, &forged).await).await;

    assert_eq!(error.error, codes::INVALID_RESPONSE);
    assert_eq!(e.pending().await.len(), 1);
}

#[tokio::test]
async fn a_request_of_another_account_is_unknown() {
    let server = server().await;
    let victim = enroll(&server, "+32470000210").await;
    let other = enroll(&server, "+32470000211").await;
    server.rp().start_login(&victim.number).await.unwrap();
    let (request, _) = victim.the_request().await;

    let (status, error) = err(other.phone.get(&api::path_request(&request.jti)).await).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error.error, codes::UNKNOWN_REQUEST);
}

#[tokio::test]
async fn an_unknown_device_gets_unknown_device() {
    let server = server().await;

    let (status, error) = err(Phone::new(&server.url()).get(api::PATH_REQUESTS).await).await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::UNKNOWN_DEVICE);
}

#[tokio::test]
async fn a_login_hint_that_is_no_belgian_mobile_number_is_an_invalid_request() {
    let server = server().await;

    let (status, error) = err(server
        .rp()
        .backchannel_authorize_raw(&[("scope", "openid"), ("login_hint", "+3221234567")])
        .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_wrong_client_secret_gives_invalid_client() {
    let server = server().await;
    let e = enroll(&server, "+32470000212").await;
    let rp = server
        .rp()
        .with_credentials(RelyingPartyConfig::DEMO_CLIENT_ID, "not-the-secret");

    let response = rp
        .backchannel_authorize_raw(&[("scope", "openid"), ("login_hint", &e.number)])
        .await
        .unwrap();

    assert!(response.headers().contains_key("www-authenticate"));
    let (status, error) = err(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::INVALID_CLIENT);
}

#[tokio::test]
async fn a_login_without_openid_scope_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000213").await;

    let (_, error) = err(server
        .rp()
        .backchannel_authorize_raw(&[("scope", "profile"), ("login_hint", &e.number)])
        .await)
    .await;

    assert_eq!(error.error, codes::INVALID_SCOPE);
}

#[tokio::test]
async fn a_binding_message_with_a_bidi_override_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000214").await;

    let (_, error) = err(server
        .rp()
        .backchannel_authorize_raw(&[
            ("scope", "openid"),
            ("login_hint", &e.number),
            ("binding_message", "AB\u{202E}21"),
        ])
        .await)
    .await;

    assert_eq!(error.error, codes::INVALID_BINDING_MESSAGE);
}

#[tokio::test]
async fn polling_faster_than_the_interval_gives_slow_down() {
    let server = server().await;
    let e = enroll(&server, "+32470000215").await;
    let rp = server.rp();
    let started = rp.start_login(&e.number).await.unwrap();

    let first = token_error(&rp, &started.auth_req_id).await;
    let second = token_error(&rp, &started.auth_req_id).await;

    assert_eq!(first, codes::AUTHORIZATION_PENDING);
    assert_eq!(second, codes::SLOW_DOWN);
}

#[tokio::test]
async fn the_token_is_issued_once() {
    let server = server().await;
    let e = enroll(&server, "+32470000216").await;
    let rp = server.rp();
    let (started, _) = approved_login(&rp, &e).await;

    assert_eq!(
        token_error(&rp, &started.auth_req_id).await,
        codes::INVALID_GRANT
    );
}

#[tokio::test]
async fn an_unknown_grant_type_or_auth_req_id_is_refused() {
    let server = server().await;
    let rp = server.rp();

    assert_eq!(token_error(&rp, "no-such-id").await, codes::INVALID_GRANT);
    let (_, error) = err(server
        .http()
        .post(format!("{}{}", server.url(), api::oidc::PATH_TOKEN))
        .basic_auth(rp.client_id(), Some(RelyingPartyConfig::DEMO_SECRET))
        .form(&[("grant_type", "password"), ("username", "x")])
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(error.error, codes::UNSUPPORTED_GRANT_TYPE);
}

#[tokio::test]
async fn an_expired_request_gives_expired_token_and_cannot_be_answered() {
    let server = server_with(Policy {
        request_ttl_secs: 2,
        ..Policy::default()
    })
    .await;
    let e = enroll(&server, "+32470000217").await;
    let rp = server.rp();
    let started = rp.start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let approval = e.approval(&request, &jws, &e.pin);

    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(
        token_error(&rp, &started.auth_req_id).await,
        codes::EXPIRED_TOKEN
    );
    let (status, error) = err(e.answer(&request, &approval).await).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error.error, codes::REQUEST_EXPIRED);
    assert!(e.pending().await.is_empty());
}

#[tokio::test]
async fn a_restarted_server_keeps_accounts_and_keys() {
    let server = server().await;
    let e = enroll(&server, "+32470000218").await;
    let keys_before = jwks(&server).await;
    let url_before = server.url();

    let server = server.restart().await.unwrap();

    assert_eq!(server.url(), url_before);
    assert_eq!(jwks(&server).await, keys_before);
    let (_, token) = approved_login(&server.rp(), &e).await;
    verified_id_token(&server, &token.id_token).await;
    server.shutdown().await;
}

#[tokio::test]
async fn discovery_names_the_ciba_poll_endpoints() {
    let server = server().await;

    let doc: DiscoveryDocument = ok(server
        .http()
        .get(format!("{}{}", server.url(), api::oidc::PATH_DISCOVERY))
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(doc.issuer, server.url());
    assert_eq!(
        doc.backchannel_token_delivery_modes_supported,
        vec!["poll", "ping"]
    );
    assert_eq!(
        doc.grant_types_supported,
        vec![
            api::oidc::AUTHORIZATION_CODE_GRANT_TYPE,
            api::oidc::CIBA_GRANT_TYPE
        ]
    );
    assert_eq!(
        doc.token_endpoint_auth_methods_supported,
        vec!["client_secret_basic", "private_key_jwt"]
    );
    assert_eq!(doc.subject_types_supported, vec!["pairwise"]);
    assert_eq!(doc.response_types_supported, vec!["code"]);
    assert_eq!(
        doc.jwks_uri,
        format!("{}{}", server.url(), api::oidc::PATH_JWKS)
    );
}

#[tokio::test]
async fn a_discovery_document_without_response_types_still_parses() {
    let server = server().await;
    let mut doc: serde_json::Value = ok(server
        .http()
        .get(format!("{}{}", server.url(), api::oidc::PATH_DISCOVERY))
        .send()
        .await
        .unwrap())
    .await;
    doc.as_object_mut()
        .unwrap()
        .remove("response_types_supported");

    let older: DiscoveryDocument = serde_json::from_value(doc).unwrap();

    assert!(older.response_types_supported.is_empty());
}
