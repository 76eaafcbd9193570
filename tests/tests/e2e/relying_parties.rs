//! Relying parties through OpenID Connect CIBA: registration (allowed claims, ping mode), the
//! claims in the ID token, requested_expiry, superseded requests, and the rate of calls.

use crate::common::*;
use sleutel_harness::ping::PingReceiver;
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::codes;
use sleutel_protocol::claims;
use sleutel_server::{Policy, RelyingPartyConfig};

const SHOP_ID: &str = "web-shop";
const SHOP_SECRET: &str = "shop-secret";

/// A server with the demo relying party and a web shop allowed only `age_over_18`.
async fn server_with_shop(policy: Policy, shop: RelyingPartyConfig) -> InProcessServer {
    InProcessServer::start_with(policy, vec![RelyingPartyConfig::demo(), shop])
        .await
        .expect("server starts")
}

fn shop() -> RelyingPartyConfig {
    RelyingPartyConfig::new(SHOP_ID, SHOP_SECRET, "Webwinkel").with_claims(&[claims::AGE_OVER_18])
}

#[tokio::test]
async fn ping_mode_pings_the_notification_endpoint_with_the_clients_token() {
    let receiver = PingReceiver::start().await.unwrap();
    let server = server_with_shop(Policy::default(), shop().with_ping(&receiver.url())).await;
    let mut e = enrolled(&server.url(), "+32470005001").await;
    let rp = RelyingParty::new(&server.url(), SHOP_ID, SHOP_SECRET).unwrap();
    let request = LoginRequest::new(&e.phone_number)
        .openid_only()
        .requiring(claims::AGE_OVER_18)
        .with_notification_token("rp-chosen-token-0123456789");
    let started = rp.backchannel_authorize(&request).await.unwrap();

    e.phone.approve_next(CODE, WAIT).await.unwrap();

    let token = rp
        .token_after_ping(&started, &receiver, "rp-chosen-token-0123456789", WAIT)
        .await
        .unwrap();
    let claims = rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(claims.age_over_18, Some(true));
    assert_eq!(receiver.pings().len(), 1);
}

#[tokio::test]
async fn a_ping_mode_request_without_a_notification_token_is_invalid_request() {
    let receiver = PingReceiver::start().await.unwrap();
    let server = server_with_shop(Policy::default(), shop().with_ping(&receiver.url())).await;
    let e = enrolled(&server.url(), "+32470005002").await;
    let rp = RelyingParty::new(&server.url(), SHOP_ID, SHOP_SECRET).unwrap();

    let err = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).openid_only())
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
}

#[tokio::test]
async fn a_claim_the_relying_party_is_not_registered_for_gives_invalid_scope() {
    let server = server_with_shop(Policy::default(), shop()).await;
    let e = enrolled(&server.url(), "+32470005003").await;
    let rp = RelyingParty::new(&server.url(), SHOP_ID, SHOP_SECRET).unwrap();

    let by_claims = rp
        .backchannel_authorize(
            &LoginRequest::new(&e.phone_number)
                .openid_only()
                .requiring(claims::BIRTHDATE),
        )
        .await
        .unwrap_err();
    // The profile scope asks for the name, which the shop is not registered for either.
    let by_scope = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number))
        .await
        .unwrap_err();

    assert_eq!(by_claims.api_code(), Some(codes::INVALID_SCOPE));
    assert_eq!(by_scope.api_code(), Some(codes::INVALID_SCOPE));
}

#[tokio::test]
async fn an_unknown_claim_gives_invalid_request() {
    let server = server().await;
    let e = enrolled(&server.url(), "+32470005004").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();

    let err = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).requiring("email"))
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
}

#[tokio::test]
async fn the_id_token_carries_every_claim_asked_and_consented() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470005005").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let request = LoginRequest::new(&e.phone_number)
        .requiring(claims::BIRTHDATE)
        .requiring(claims::NATIONAL_REGISTER_NUMBER)
        .optionally(claims::PHONE_NUMBER)
        .optionally(claims::AGE_OVER_18);
    let started = rp.backchannel_authorize(&request).await.unwrap();

    let view = e.phone.approve_next(CODE, WAIT).await.unwrap();

    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let got = rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(view.claims, vec!["birthdate", "national_register_number"]);
    assert_eq!(
        view.optional_claims,
        vec![
            "name",
            "given_name",
            "family_name",
            "phone_number",
            "age_over_18"
        ]
    );
    assert_eq!(got.birthdate.as_deref(), Some(e.citizen.birthdate.as_str()));
    assert_eq!(
        got.national_register_number.as_deref(),
        Some(e.citizen.national_register_number.as_str())
    );
    assert_eq!(got.phone_number.as_deref(), Some(e.phone_number.as_str()));
    assert_eq!(got.age_over_18, Some(true));
    assert_eq!(
        got.given_name.as_deref(),
        Some(e.citizen.given_name.as_str())
    );
}

#[tokio::test]
async fn asking_only_age_over_18_reveals_no_birthdate_or_name() {
    let server = server_with_shop(Policy::default(), shop()).await;
    let mut e = enrolled(&server.url(), "+32470005006").await;
    let rp = RelyingParty::new(&server.url(), SHOP_ID, SHOP_SECRET).unwrap();
    let request = LoginRequest::new(&e.phone_number)
        .openid_only()
        .requiring(claims::AGE_OVER_18);
    let started = rp.backchannel_authorize(&request).await.unwrap();

    e.phone.approve_next(CODE, WAIT).await.unwrap();

    let token = rp.wait_for_token(&started, WAIT).await.unwrap();
    let got = rp.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(got.age_over_18, Some(true));
    assert_eq!(got.birthdate, None);
    assert_eq!(got.name, None);
    assert_eq!(got.national_register_number, None);
}

#[tokio::test]
async fn requested_expiry_shortens_the_request_on_the_phone() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470005007").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();

    let started = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).expiring_in(60))
        .await
        .unwrap();

    let view = e.phone.next_request(WAIT).await.unwrap();
    assert_eq!(started.expires_in, 60);
    assert_eq!(view.expires_at - view.issued_at, 60);
}

#[tokio::test]
async fn a_newer_request_from_the_same_relying_party_supersedes_the_older_one() {
    let server = server().await;
    let mut e = enrolled(&server.url(), "+32470005008").await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    let older = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).with_message("OUD"))
        .await
        .unwrap();

    let newer = rp
        .backchannel_authorize(&LoginRequest::new(&e.phone_number).with_message("NIEUW"))
        .await
        .unwrap();

    let err = rp.poll_token(&older.auth_req_id).await.unwrap_err();
    assert_eq!(err.api_code(), Some(codes::ACCESS_DENIED));
    let pending = e.phone.authenticator().refresh_pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].binding_message.as_deref(), Some("NIEUW"));
    let view = e.phone.approve_next(CODE, WAIT).await.unwrap();
    assert_eq!(view.binding_message.as_deref(), Some("NIEUW"));
    assert!(rp.wait_for_token(&newer, WAIT).await.is_ok());
}

/// A ping-mode relying party's request superseded by its next one for the same number is
/// pinged, and refused when fetched, whether a person could answer it or nobody could: the
/// pings tell a registered number from an unknown one no more than the answers do.
#[tokio::test]
async fn a_superseded_ping_mode_request_is_pinged_whatever_the_number() {
    let receiver = PingReceiver::start().await.unwrap();
    let server = server_with_shop(Policy::default(), shop().with_ping(&receiver.url())).await;
    let e = enrolled(&server.url(), "+32470005010").await;
    let rp = RelyingParty::new(&server.url(), SHOP_ID, SHOP_SECRET).unwrap();
    let mut seen = Vec::new();
    for number in [e.phone_number.as_str(), "+32470005011"] {
        let ask = |token: &str| {
            LoginRequest::new(number)
                .openid_only()
                .requiring(claims::AGE_OVER_18)
                .with_notification_token(token)
        };
        let older = rp
            .backchannel_authorize(&ask("older-token-0123456789"))
            .await
            .unwrap();
        let newer = rp
            .backchannel_authorize(&ask("newer-token-0123456789"))
            .await
            .unwrap();

        let bearer = receiver.wait_for(&older.auth_req_id, WAIT).await.unwrap();
        let refused = rp.poll_token(&older.auth_req_id).await.unwrap_err();
        let pending = rp.poll_token(&newer.auth_req_id).await.unwrap_err();
        let newer_pinged = receiver
            .pings()
            .iter()
            .any(|(_, id)| id == &newer.auth_req_id);
        seen.push((
            bearer,
            refused.api_code().map(str::to_owned),
            pending.api_code().map(str::to_owned),
            newer_pinged,
        ));
    }

    assert_eq!(
        seen[0],
        (
            "older-token-0123456789".to_owned(),
            Some(codes::ACCESS_DENIED.to_owned()),
            Some(codes::AUTHORIZATION_PENDING.to_owned()),
            false
        )
    );
    assert_eq!(
        seen[1], seen[0],
        "an unknown number's requests as a person's"
    );
    assert_eq!(receiver.pings().len(), 2);
}

/// An expired ping-mode request, superseded afterwards, is not pinged and stays expired,
/// whatever the number.
#[tokio::test]
async fn an_expired_ping_mode_request_superseded_later_is_not_pinged_whatever_the_number() {
    let receiver = PingReceiver::start().await.unwrap();
    let server = server_with_shop(Policy::default(), shop().with_ping(&receiver.url())).await;
    let e = enrolled(&server.url(), "+32470005012").await;
    let rp = RelyingParty::new(&server.url(), SHOP_ID, SHOP_SECRET).unwrap();
    let ask = |number: &str, token: &str| {
        LoginRequest::new(number)
            .openid_only()
            .requiring(claims::AGE_OVER_18)
            .with_notification_token(token)
    };
    let numbers = [e.phone_number.clone(), "+32470005013".to_owned()];
    let mut older = Vec::new();
    for number in &numbers {
        let request = ask(number, "expired-token-0123456789").expiring_in(1);
        older.push(rp.backchannel_authorize(&request).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let mut seen = Vec::new();
    for (number, older) in numbers.iter().zip(&older) {
        rp.backchannel_authorize(&ask(number, "newer-token-0123456789"))
            .await
            .unwrap();
        let expired = rp.poll_token(&older.auth_req_id).await.unwrap_err();
        seen.push(expired.api_code().map(str::to_owned));
    }
    // A ping would have been sent at the supersession, before the polls answered.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    assert_eq!(
        seen[0], seen[1],
        "an unknown number's request as a person's"
    );
    assert!(receiver.pings().is_empty(), "{:?}", receiver.pings());
}

#[tokio::test]
async fn backchannel_calls_beyond_the_per_minute_limit_get_slow_down() {
    let server = server_with(Policy {
        max_backchannel_per_client_per_minute: 2,
        ..Policy::default()
    })
    .await;
    let rp = RelyingParty::demo(&server.url()).unwrap();
    // Refused calls count too: probing phone numbers is rate-limited as well.
    for _ in 0..2 {
        let err = rp
            .backchannel_authorize(&LoginRequest::new("+3221234567"))
            .await
            .unwrap_err();
        assert_eq!(err.api_code(), Some(codes::INVALID_REQUEST));
    }

    let err = rp
        .backchannel_authorize(&LoginRequest::new("+32470005099"))
        .await
        .unwrap_err();

    assert_eq!(err.api_code(), Some(codes::SLOW_DOWN));
}

#[tokio::test]
async fn discovery_offers_ping_mode_the_claims_parameter_and_every_claim() {
    let server = server().await;
    let rp = RelyingParty::demo(&server.url()).unwrap();

    let doc = rp.discovery().await.unwrap();

    assert_eq!(
        doc.backchannel_token_delivery_modes_supported,
        vec!["poll", "ping"]
    );
    assert!(doc.claims_parameter_supported);
    for claim in claims::ALL {
        assert!(doc.claims_supported.iter().any(|c| c == claim), "{claim}");
    }
}
