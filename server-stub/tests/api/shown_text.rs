//! Text a relying party sends for the person to read (payee, binding message) is refused when it
//! would look blank or imitate another name, rather than shown.

use sleutel_protocol::api::codes;
use sleutel_protocol::api::oidc::BackchannelAuthResponse;

use crate::common::*;

/// The form of a payment confirmation of 100 EUR to `payee`.
fn payment<'a>(number: &'a str, payee: &'a str) -> [(&'a str, &'a str); 7] {
    [
        ("scope", "openid"),
        ("login_hint", number),
        ("kind", "confirm_transaction"),
        ("transaction_amount", "100.00"),
        ("transaction_currency", "EUR"),
        ("transaction_payee", payee),
        ("transaction_iban", "BE68 5390 0754 7034"),
    ]
}

#[tokio::test]
async fn a_payment_to_a_readable_payee_is_accepted() {
    let server = server().await;
    let e = enroll(&server, "+32470000901").await;

    let started: BackchannelAuthResponse = ok(server
        .rp()
        .backchannel_authorize_raw(&payment(&e.number, "Stad Gent"))
        .await)
    .await;

    assert!(!started.auth_req_id.is_empty());
}

#[tokio::test]
async fn a_payee_of_a_braille_blank_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000902").await;

    let (_, error) = err(server
        .rp()
        .backchannel_authorize_raw(&payment(&e.number, "\u{2800}"))
        .await)
    .await;

    assert_eq!(error.error, codes::INVALID_REQUEST, "{error:?}");
    assert!(
        error.error_description.contains("transaction_payee"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_binding_message_of_a_braille_blank_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000903").await;

    let (_, error) = err(server
        .rp()
        .backchannel_authorize_raw(&[
            ("scope", "openid"),
            ("login_hint", &e.number),
            ("binding_message", "\u{2800}"),
        ])
        .await)
    .await;

    assert_eq!(error.error, codes::INVALID_BINDING_MESSAGE, "{error:?}");
}

#[tokio::test]
async fn a_payee_mixing_latin_and_cyrillic_is_refused() {
    let server = server().await;
    let e = enroll(&server, "+32470000904").await;

    // "Stаd Gent" with U+0430 CYRILLIC SMALL LETTER A.
    let (_, error) = err(server
        .rp()
        .backchannel_authorize_raw(&payment(&e.number, "St\u{0430}d Gent"))
        .await)
    .await;

    assert_eq!(error.error, codes::INVALID_REQUEST, "{error:?}");
    assert!(error.error_description.contains("scripts"), "{error:?}");
}
