//! Hostile or broken input gets a JSON error, never a panic or axum's plain-text defaults.

use reqwest::StatusCode;
use sleutel_protocol::api::{self, codes};
use sleutel_protocol::limits::MAX_BODY_BYTES;

use crate::common::*;

#[tokio::test]
async fn an_oversize_body_gets_413_json() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let huge = vec![b' '; MAX_BODY_BYTES + 1];

    let (status, error) = err(phone
        .send(reqwest::Method::POST, api::PATH_ENROLLMENTS, huge)
        .await)
    .await;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error.error, codes::BODY_TOO_LARGE);
}

#[tokio::test]
async fn malformed_json_gets_400_json() {
    let server = server().await;
    let phone = Phone::new(&server.url());

    let (status, error) = err(phone
        .send(
            reqwest::Method::POST,
            api::PATH_ENROLLMENTS,
            b"{\"phone_number\": ".to_vec(),
        )
        .await)
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_missing_proof_gets_invalid_proof() {
    let server = server().await;

    let (status, error) = err(server
        .http()
        .post(format!("{}{}", server.url(), api::PATH_ENROLLMENTS))
        .body("{}")
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::INVALID_PROOF);
}

#[tokio::test]
async fn a_proof_for_another_path_gets_invalid_proof() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let proof = phone.proof("GET", "/v1/somewhere-else", b"");

    let (_, error) = err(phone
        .send_with_proof(reqwest::Method::GET, api::PATH_REQUESTS, Vec::new(), proof)
        .await)
    .await;

    assert_eq!(error.error, codes::INVALID_PROOF);
}

#[tokio::test]
async fn an_unknown_path_gets_404_json() {
    let server = server().await;

    let (status, error) = err(server
        .http()
        .get(format!("{}/no/such/path", server.url()))
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error.error, codes::NOT_FOUND);
}

#[tokio::test]
async fn a_wrong_method_gets_405_json() {
    let server = server().await;

    let (status, error) = err(server
        .http()
        .delete(format!("{}{}", server.url(), api::oidc::PATH_TOKEN))
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_broken_form_gets_a_json_error() {
    let server = server().await;

    let response = server
        .http()
        .post(format!("{}{}", server.url(), api::oidc::PATH_BC_AUTHORIZE))
        .basic_auth("online-overheid", Some("demo-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("scope=%%%&scope=openid")
        .send()
        .await
        .unwrap();

    let (status, error) = err(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn an_unknown_bank_is_not_found() {
    let server = server().await;

    let (status, error) = err(server
        .http()
        .get(format!(
            "{}/sim/bank/visa/authorize?enrollment_id=a&nonce=b&redirect_uri=sleutel%3A%2F%2Fenroll%2Fbank",
            server.url()
        ))
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error.error, codes::NOT_FOUND);
}

#[tokio::test]
async fn the_bank_returns_only_to_the_app() {
    let server = server().await;
    let citizen = citizen(&server).await;

    let (status, error) = err(server
        .http()
        .post(format!("{}/sim/bank/kbc/authorize", server.url()))
        .form(&[
            ("enrollment_id", "abc"),
            ("nonce", "def"),
            ("redirect_uri", "https://evil.example/steal"),
            ("card_number", citizen.debit_card.number.as_str()),
            ("card_pin", citizen.debit_card.pin.as_str()),
        ])
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn a_path_id_that_is_no_identifier_gets_400_json() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let too_long = "a".repeat(65);

    for id in ["a.b", "a%20b", too_long.as_str()] {
        let (status, error) = err(phone.get(&api::path_request(id)).await).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}");
        assert_eq!(error.error, codes::INVALID_REQUEST, "{id}");
    }
}

#[tokio::test]
async fn a_bank_id_with_dashes_is_an_identifier() {
    let server = server().await;

    let page = server
        .http()
        .get(format!(
            "{}/sim/bank/bnp-paribas-fortis/authorize?enrollment_id=a&nonce=b&redirect_uri=sleutel%3A%2F%2Fenroll%2Fbank",
            server.url()
        ))
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_auth_req_id_is_an_invalid_grant() {
    let server = server().await;
    let rp = server.rp();

    for id in ["a b", "a/b", &"a".repeat(65)] {
        assert_eq!(token_error(&rp, id).await, codes::INVALID_GRANT, "{id}");
    }
}

#[tokio::test]
async fn a_push_outbox_read_needs_an_account_identifier() {
    let server = server().await;

    let (status, error) = err(server
        .http()
        .get(format!("{}{}", server.url(), api::sim::PATH_PUSH))
        .query(&[("account_id", "no such/account")])
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.error, codes::INVALID_REQUEST);
}

#[tokio::test]
async fn two_proof_headers_get_invalid_proof() {
    let server = server().await;
    let phone = Phone::new(&server.url());
    let (first, second) = (
        phone.proof("GET", api::PATH_REQUESTS, b""),
        phone.proof("GET", api::PATH_REQUESTS, b""),
    );

    let (status, error) = err(server
        .http()
        .get(format!("{}{}", server.url(), api::PATH_REQUESTS))
        .header(sleutel_protocol::dpop::PROOF_HEADER, first)
        .header(sleutel_protocol::dpop::PROOF_HEADER, second)
        .send()
        .await
        .unwrap())
    .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error.error, codes::INVALID_PROOF);
    assert!(
        error.error_description.contains("more than one"),
        "{error:?}"
    );
}
