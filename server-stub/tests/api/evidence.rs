//! Lasting evidence of what was approved: the ID token says what the person approved (the
//! `sleutel_action` claim), the server keeps the phone's signed answer with the request, and
//! drops both once the retention has passed.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_harness::rp::RelyingParty;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::action::{ActionKind, ActionRequest};
use sleutel_protocol::api::oidc::{
    BackchannelAuthResponse, DiscoveryDocument, IdTokenClaims, TokenResponse,
};
use sleutel_protocol::api::{self, DeviceUpdated, ResponseAccepted, codes};
use sleutel_protocol::approval::{self, ApprovedTransaction, free_text_sha256};
use sleutel_protocol::clock::now;
use sleutel_protocol::jose::{self, GeneralJws, Jwk, Jwks};
use sleutel_protocol::response::{
    ActionResponse, Decision, DeclineReason, DeviceSignedResponse, UvMethod,
};
use sleutel_server::{Policy, RequestEvidence, RequestLookup};

use crate::common::*;
use crate::device_life::{change_pin, pin_change};

const PAYMENT: [(&str, &str); 4] = [
    ("transaction_amount", "125.50"),
    ("transaction_currency", "EUR"),
    ("transaction_payee", "Stad Gent"),
    ("transaction_iban", "BE68 5390 0754 7034"),
];

/// `rp` asks `e` for a request with `form` besides scope and login hint.
async fn ask(rp: &RelyingParty, e: &Enrolled, form: &[(&str, &str)]) -> BackchannelAuthResponse {
    let mut full = vec![("scope", "openid"), ("login_hint", e.number.as_str())];
    full.extend_from_slice(form);
    ok(rp.backchannel_authorize_raw(&full).await).await
}

/// An approved request: the verified ID token's claims, the request as the phone saw it and
/// its JWS, and the relying party's `auth_req_id`.
struct Approved {
    claims: IdTokenClaims,
    request: ActionRequest,
    jws: String,
    auth_req_id: String,
}

/// Asks `e` with `form`, approves with the code, and collects and verifies the ID token as the
/// relying party does.
async fn ask_and_approve(
    server: &InProcessServer,
    e: &Enrolled,
    form: &[(&str, &str)],
) -> Approved {
    let rp = server.rp();
    let started = ask(&rp, e, form).await;
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e
        .answer(&request, &e.approval(&request, &jws, &e.pin))
        .await)
    .await;
    let token: TokenResponse = ok(rp.token_raw(&started.auth_req_id).await).await;
    let jwks: Jwks = ok(server
        .http()
        .get(format!("{}{}", server.url(), api::oidc::PATH_JWKS))
        .send()
        .await
        .unwrap())
    .await;
    let claims =
        api::oidc::verify_id_token(&token.id_token, &jwks, &server.url(), rp.client_id(), now())
            .unwrap();
    Approved {
        claims,
        request,
        jws,
        auth_req_id: started.auth_req_id,
    }
}

/// The evidence of the request `auth_req_id`.
fn evidence(server: &InProcessServer, auth_req_id: &str) -> RequestEvidence {
    server
        .running()
        .request_evidence(RequestLookup::AuthReqId(auth_req_id))
        .unwrap()
        .expect("the server keeps the request")
}

/// A response of `e` to `request` with `payload`'s decision, signed by the device key and, when
/// given, `uv`.
pub(crate) fn signed(
    e: &Enrolled,
    payload: &ActionResponse,
    uv: Option<&SigningKey>,
) -> GeneralJws {
    let mut response = GeneralJws::new(&payload.to_payload());
    response
        .add_signature(&ActionResponse::device_header(), &e.phone.device)
        .unwrap();
    if let Some(key) = uv {
        response
            .add_signature(&ActionResponse::uv_header(UvMethod::Pin), key)
            .unwrap();
    }
    response
}

pub(crate) fn payload(request: &ActionRequest, jws: &str, decision: Decision) -> ActionResponse {
    ActionResponse {
        request_id: request.jti.clone(),
        request_hash: jose::sha256_b64(jws),
        decision,
        reason: (decision == Decision::Decline).then_some(DeclineReason::Cancelled),
        method: (decision == Decision::Approve).then_some(UvMethod::Pin),
        claims: Vec::new(),
        number: None,
        iat: now(),
    }
}

#[tokio::test]
async fn the_id_token_of_a_payment_names_the_kind_payee_amount_iban_and_request_hash() {
    let server = server().await;
    let e = enroll(&server, "+32470000801").await;
    let mut form = vec![("kind", "confirm_transaction")];
    form.extend_from_slice(&PAYMENT);

    let approved = ask_and_approve(&server, &e, &form).await;

    let action = approved.claims.sleutel_action;
    assert_eq!(action.kind, ActionKind::ConfirmTransaction);
    assert_eq!(
        action.transaction,
        Some(ApprovedTransaction::Payment {
            amount: "125.50".into(),
            currency: "EUR".into(),
            payee: "Stad Gent".into(),
            iban: "BE68 5390 0754 7034".into(),
        })
    );
    assert_eq!(action.request_hash, jose::sha256_b64(&approved.jws));
    assert_eq!(action.document, None);
}

#[tokio::test]
async fn the_id_token_of_a_login_says_login_and_carries_no_transaction_or_document() {
    let server = server().await;
    let e = enroll(&server, "+32470000802").await;

    let approved = ask_and_approve(&server, &e, &[]).await;

    let action = approved.claims.sleutel_action;
    assert_eq!(action.kind, ActionKind::Login);
    assert_eq!(action.request_hash, jose::sha256_b64(&approved.jws));
    assert_eq!(action.transaction, None);
    assert_eq!(action.document, None);
    assert_eq!(action.binding_message, None);
}

#[tokio::test]
async fn the_id_token_of_a_signature_carries_the_document_name_and_digest() {
    let server = server().await;
    let e = enroll(&server, "+32470000803").await;
    let digest = "3f".repeat(32);

    let approved = ask_and_approve(
        &server,
        &e,
        &[
            ("kind", "sign"),
            ("document_name", "Huurcontract Kerkstraat 12.pdf"),
            ("document_sha256", &digest),
        ],
    )
    .await;

    let action = approved.claims.sleutel_action;
    assert_eq!(action.kind, ActionKind::Sign);
    let document = action.document.expect("the document");
    assert_eq!(document.name, "Huurcontract Kerkstraat 12.pdf");
    assert_eq!(document.sha256, digest);
}

#[tokio::test]
async fn the_binding_message_is_echoed_in_the_id_token() {
    let server = server().await;
    let e = enroll(&server, "+32470000804").await;

    let approved = ask_and_approve(&server, &e, &[("binding_message", "Bestelling 42")]).await;

    assert_eq!(
        approved.request.binding_message.as_deref(),
        Some("Bestelling 42")
    );
    assert_eq!(
        approved.claims.sleutel_action.binding_message.as_deref(),
        Some("Bestelling 42")
    );
}

#[tokio::test]
async fn free_text_is_in_the_id_token_as_the_digest_of_the_text_as_shown() {
    let server = server().await;
    let e = enroll(&server, "+32470000805").await;

    let approved = ask_and_approve(
        &server,
        &e,
        &[
            ("kind", "confirm_transaction"),
            ("transaction_text", "Huur mei\nKerkstraat 12"),
        ],
    )
    .await;

    let claims = approved.claims;
    assert_eq!(
        claims.sleutel_action.transaction,
        Some(ApprovedTransaction::FreeText {
            text_sha256: free_text_sha256("Huur mei Kerkstraat 12")
        })
    );
    let token_json = serde_json::to_string(&claims).unwrap();
    assert!(
        !token_json.contains("Huur mei"),
        "the text itself stays out"
    );
    assert_eq!(
        claims.sleutel_action.request_hash,
        jose::sha256_b64(&approved.jws)
    );
}

#[tokio::test]
async fn discovery_lists_the_approved_action_claim() {
    let server = server().await;

    let doc: DiscoveryDocument = ok(server
        .http()
        .get(format!("{}{}", server.url(), api::oidc::PATH_DISCOVERY))
        .send()
        .await
        .unwrap())
    .await;

    assert!(doc.claims_supported.iter().any(|c| c == approval::CLAIM));
}

#[tokio::test]
async fn the_stored_approval_verifies_with_the_device_and_pin_keys_and_matches_the_token() {
    let server = server().await;
    let e = enroll(&server, "+32470000806").await;
    let approved = ask_and_approve(&server, &e, &[("binding_message", "AB12")]).await;
    let token_hash = approved.claims.sleutel_action.request_hash;

    let kept = evidence(&server, &approved.auth_req_id);

    let response: GeneralJws =
        serde_json::from_str(kept.response_jws.as_deref().expect("the answer is kept")).unwrap();
    let verified = DeviceSignedResponse::verify(response, e.phone.device.verifying_key()).unwrap();
    assert!(verified.verify_user(e.pin.verifying_key()).is_ok());
    assert_eq!(kept.device_key, Some(e.phone.jwk.clone()));
    assert_eq!(
        kept.user_verification_key,
        Some(Jwk::from_verifying_key(e.pin.verifying_key()))
    );
    assert_eq!(verified.response.decision, Decision::Approve);
    assert_eq!(verified.response.request_hash, token_hash);
    assert_eq!(kept.request_hash, token_hash);
    assert_eq!(kept.request_jws, approved.jws);
    assert_eq!(kept.status, "approved");
}

#[tokio::test]
async fn the_kept_approval_still_verifies_after_a_code_change() {
    let server = server().await;
    let e = enroll(&server, "+32470000814").await;
    let approved = ask_and_approve(&server, &e, &[]).await;
    let new_pin = SigningKey::generate();
    let _: DeviceUpdated = ok(change_pin(&e, &pin_change(&e, &e.pin, &new_pin)).await).await;

    let kept = evidence(&server, &approved.auth_req_id);

    let response: GeneralJws = serde_json::from_str(kept.response_jws.as_deref().unwrap()).unwrap();
    let device_key = kept.device_key.unwrap().to_verifying_key().unwrap();
    let pin_key = kept
        .user_verification_key
        .unwrap()
        .to_verifying_key()
        .unwrap();
    let verified = DeviceSignedResponse::verify(response, &device_key).unwrap();
    assert!(verified.verify_user(&pin_key).is_ok());
    assert_eq!(&pin_key, e.pin.verifying_key());
}

#[tokio::test]
async fn the_evidence_is_found_by_request_id_and_by_the_tokens_request_hash() {
    let server = server().await;
    let e = enroll(&server, "+32470000807").await;

    let approved = ask_and_approve(&server, &e, &[]).await;

    let by_id = server
        .running()
        .request_evidence(RequestLookup::RequestId(&approved.request.jti))
        .unwrap();
    let by_hash = server
        .running()
        .request_evidence(RequestLookup::RequestHash(
            &approved.claims.sleutel_action.request_hash,
        ))
        .unwrap();
    assert!(by_id.is_some());
    assert_eq!(by_id, by_hash);
}

#[tokio::test]
async fn a_decline_is_kept_as_evidence() {
    let server = server().await;
    let e = enroll(&server, "+32470000808").await;
    let started = ask(&server.rp(), &e, &[]).await;
    let (request, jws) = e.the_request().await;
    let decline = e.decline(&request, &jws);

    let _: ResponseAccepted = ok(e.answer(&request, &decline).await).await;

    let kept = evidence(&server, &started.auth_req_id);
    let stored: GeneralJws = serde_json::from_str(kept.response_jws.as_deref().unwrap()).unwrap();
    assert_eq!(stored, decline);
    assert_eq!(kept.status, "declined");
    assert_eq!(kept.device_key, Some(e.phone.jwk.clone()));
    assert_eq!(
        kept.user_verification_key, None,
        "a decline carries no code"
    );
}

#[tokio::test]
async fn a_not_me_decline_is_kept_as_evidence() {
    let server = server().await;
    let e = enroll(&server, "+32470000809").await;
    let started = ask(&server.rp(), &e, &[]).await;
    let (request, jws) = e.the_request().await;
    let mut not_me = payload(&request, &jws, Decision::Decline);
    not_me.reason = Some(DeclineReason::NotMe);
    let response = signed(&e, &not_me, None);

    let _: ResponseAccepted = ok(e.answer(&request, &response).await).await;

    let kept = evidence(&server, &started.auth_req_id);
    let stored: GeneralJws = serde_json::from_str(kept.response_jws.as_deref().unwrap()).unwrap();
    assert_eq!(stored, response);
    assert_eq!(kept.decline_reason.as_deref(), Some("not_me"));
}

#[tokio::test]
async fn a_wrong_number_is_kept_as_evidence_of_the_number_picked() {
    let server = server().await;
    let e = enroll(&server, "+32470000810").await;
    let started = ask(&server.rp(), &e, &[("number_matching", "true")]).await;
    let (request, jws) = e.the_request().await;
    let shown = started.match_number.unwrap();
    let wrong = *request
        .number_options
        .as_ref()
        .unwrap()
        .iter()
        .find(|n| **n != shown)
        .unwrap();
    let mut pick = payload(&request, &jws, Decision::Approve);
    pick.number = Some(wrong);
    let response = signed(&e, &pick, Some(&e.pin));

    let (_, error) = err(e.answer(&request, &response).await).await;

    assert_eq!(error.error, codes::WRONG_NUMBER);
    let kept = evidence(&server, &started.auth_req_id);
    let stored: GeneralJws = serde_json::from_str(kept.response_jws.as_deref().unwrap()).unwrap();
    assert_eq!(stored, response);
    assert_eq!(kept.decline_reason.as_deref(), Some("wrong_number"));
}

#[tokio::test]
async fn a_wrong_code_is_not_kept_as_evidence() {
    let server = server().await;
    let e = enroll(&server, "+32470000811").await;
    let started = ask(&server.rp(), &e, &[]).await;
    let (request, jws) = e.the_request().await;

    let (_, error) = err(e
        .answer(
            &request,
            &e.approval(&request, &jws, &SigningKey::generate()),
        )
        .await)
    .await;

    assert_eq!(error.error, codes::WRONG_PIN);
    let kept = evidence(&server, &started.auth_req_id);
    assert_eq!(kept.response_jws, None);
    assert_eq!(kept.status, "pending");
}

#[tokio::test]
async fn the_right_code_after_a_wrong_one_keeps_only_the_right_answer() {
    let server = server().await;
    let e = enroll(&server, "+32470000812").await;
    let started = ask(&server.rp(), &e, &[]).await;
    let (request, jws) = e.the_request().await;
    let _ = err(e
        .answer(
            &request,
            &e.approval(&request, &jws, &SigningKey::generate()),
        )
        .await)
    .await;
    let right = e.approval(&request, &jws, &e.pin);

    let _: ResponseAccepted = ok(e.answer(&request, &right).await).await;

    let kept = evidence(&server, &started.auth_req_id);
    let stored: GeneralJws = serde_json::from_str(kept.response_jws.as_deref().unwrap()).unwrap();
    assert_eq!(stored, right);
}

/// Moves every time of the request `auth_req_id` `secs` into the past, as if that long had
/// passed since it was made and answered.
fn age(server: &InProcessServer, auth_req_id: &str, secs: i64) {
    let changed = server
        .sql_execute(
            "UPDATE action_requests SET created_at = created_at - ?2,
                 expires_at = expires_at - ?2, answered_at = answered_at - ?2,
                 auth_time = auth_time - ?2
             WHERE auth_req_id = ?1",
            &[auth_req_id.into(), secs.into()],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn a_restart_purges_requests_past_the_retention_and_keeps_recent_ones() {
    let retention = Policy::default().request_retention_secs;
    let server = server().await;
    let e = enroll(&server, "+32470000813").await;
    let old = ask(&server.rp(), &e, &[]).await;
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e.answer(&request, &e.decline(&request, &jws)).await).await;
    let recent = ask(&server.rp(), &e, &[]).await;
    let (request, jws) = e.the_request().await;
    let _: ResponseAccepted = ok(e.answer(&request, &e.decline(&request, &jws)).await).await;
    age(&server, &old.auth_req_id, retention + 1);
    age(&server, &recent.auth_req_id, retention - 3600);

    let server = server.restart().await.unwrap();

    let gone = server
        .running()
        .request_evidence(RequestLookup::AuthReqId(&old.auth_req_id))
        .unwrap();
    assert_eq!(gone, None);
    assert!(
        evidence(&server, &recent.auth_req_id)
            .response_jws
            .is_some()
    );
    server.shutdown().await;
}
