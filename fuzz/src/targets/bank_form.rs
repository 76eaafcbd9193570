//! The bank simulator's form (`POST /sim/bank/{bank}/authorize`), read as the simulator reads
//! it. Checks that an accepted form binds to identifiers, returns only to the app, and carries
//! a card number without spaces and a PIN of digits.
use sleutel_protocol::api::{DEEP_LINK_BANK_RETURN, is_valid_id};
use sleutel_server::fuzzing::bank_form;

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Ok(form) = bank_form(data) else {
        return false;
    };
    assert!(is_valid_id(&form.enrollment_id) && is_valid_id(&form.nonce));
    assert_eq!(form.redirect_uri, DEEP_LINK_BANK_RETURN);
    assert!(!form.card_number.chars().any(char::is_whitespace));
    assert!(!form.card_pin.is_empty() && form.card_pin.bytes().all(|b| b.is_ascii_digit()));
    true
}
