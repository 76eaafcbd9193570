//! What a person or a platform hands the phone: the eID website's identification code and the
//! counter's activation code (as the phone reads them), a mobile number (as the phone, the
//! server and the `login_hint` of relying parties read it), and FCM and APNs push tokens (as the
//! phone and the server read them). The first byte picks which. Checks that an accepted code is
//! canonical (reading it again, or its grouped display form, gives it back) of the right length
//! in the codes' alphabet, that a normalised number normalises to itself, and that a canonical
//! push token is canonical again.

use crate::text;
use sleutel_core::fuzzing::{activation_code, identification_code};
use sleutel_protocol::api::{PushPlatform, canonical_push_token};
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
    match pick % 5 {
        0 => canonical(identification_code, typed, IDENTIFICATION_CODE_LENGTH),
        1 => canonical(activation_code, typed, ACTIVATION_CODE_LENGTH),
        3 | 4 => {
            let platform = if pick % 5 == 3 {
                PushPlatform::Fcm
            } else {
                PushPlatform::Apns
            };
            let Ok(token) = canonical_push_token(platform, typed) else {
                return false;
            };
            assert_eq!(
                canonical_push_token(platform, &token).ok().as_ref(),
                Some(&token)
            );
            true
        }
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
