//! What a person types: the eID website's identification code and the counter's activation
//! code (as the phone reads them), and a mobile number (as the phone, the server and the
//! `login_hint` of relying parties read it). The first byte picks which. Checks that an accepted
//! code is canonical (reading it again, or its grouped display form, gives it back) of the right
//! length in the codes' alphabet, and that a normalised number normalises to itself.
use crate::text;
use sleutel_core::fuzzing::{activation_code, identification_code};
use sleutel_protocol::identity::{
    ACTIVATION_CODE_LENGTH, IDENTIFICATION_CODE_LENGTH, IDENTITY_CODE_ALPHABET,
    format_identity_code,
};
use sleutel_protocol::phone::normalize_belgian_mobile;

fn canonical(
    read: fn(&str) -> Result<String, sleutel_core::CoreError>,
    typed: &str,
    length: usize,
) -> bool {
    let Ok(code) = read(typed) else {
        return false;
    };
    assert_eq!(code.chars().count(), length);
    assert!(code.chars().all(|c| IDENTITY_CODE_ALPHABET.contains(c)));
    assert_eq!(read(&code).ok().as_ref(), Some(&code));
    assert_eq!(
        read(&format_identity_code(&code)).ok().as_ref(),
        Some(&code)
    );
    true
}

/// Runs the target on `data`; true when the reader under test accepted it.
pub fn run(data: &[u8]) -> bool {
    let Some((&pick, rest)) = data.split_first() else {
        return false;
    };
    let Some(typed) = text(rest) else {
        return false;
    };
    match pick % 3 {
        0 => canonical(identification_code, typed, IDENTIFICATION_CODE_LENGTH),
        1 => canonical(activation_code, typed, ACTIVATION_CODE_LENGTH),
        _ => {
            let Ok(number) = normalize_belgian_mobile(typed) else {
                return false;
            };
            assert!(number.starts_with("+324") && number.len() == 12);
            assert_eq!(
                normalize_belgian_mobile(&number).ok().as_ref(),
                Some(&number)
            );
            true
        }
    }
}
