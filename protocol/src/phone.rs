//! Belgian mobile phone numbers in E.164 form.

use crate::{ProtocolError, Result};

/// Checks that `number` is a Belgian mobile number (`+324` followed by 8 digits, the 046x-049x
/// mobile ranges) and returns it in E.164 form. People type it in any of the forms Belgians use:
/// international (`+32 470 12 34 56`), with the international call prefix (`0032 470 ...`) or
/// national (`0470 12 34 56`); spaces, dots, slashes and dashes are removed first, and any other
/// character is refused.
pub fn normalize_belgian_mobile(number: &str) -> Result<String> {
    let compact: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '/' | '-'))
        .collect();
    let digits = compact
        .strip_prefix("+32")
        .or_else(|| compact.strip_prefix("0032"))
        // The national form: the trunk prefix 0 takes the place of +32.
        .or_else(|| {
            compact
                .strip_prefix('0')
                .filter(|rest| !rest.starts_with('0'))
        })
        .ok_or_else(|| ProtocolError::invalid("phone_number", "must start with +32, 0032 or 04"))?;
    if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::invalid(
            "phone_number",
            "must be +32 (or 0) followed by 9 digits",
        ));
    }
    // Belgian mobile numbers are 046x, 047x, 048x and 049x.
    if !matches!(&digits[..2], "46" | "47" | "48" | "49") {
        return Err(ProtocolError::invalid(
            "phone_number",
            "not a Belgian mobile number (+32 46x-49x)",
        ));
    }
    Ok(format!("+32{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_mobile_numbers_with_separators() {
        assert_eq!(
            normalize_belgian_mobile("+32 470 12 34 56").unwrap(),
            "+32470123456"
        );
    }

    #[test]
    fn accepts_the_national_form_and_the_international_call_prefix() {
        for typed in [
            "0470 12 34 56",
            "0470/12.34.56",
            "0032 470 12 34 56",
            "0032470123456",
        ] {
            assert_eq!(
                normalize_belgian_mobile(typed).unwrap(),
                "+32470123456",
                "{typed}"
            );
        }
    }

    #[test]
    fn refuses_landlines_foreign_and_garbage() {
        for bad in [
            "+3223456789",
            "+31612345678",
            "023456789",
            "0031612345678",
            "00470123456",
            "470123456",
            "04701234567",
            "+32470abc456",
            "+3247012345",
            "",
        ] {
            assert!(normalize_belgian_mobile(bad).is_err(), "{bad}");
        }
    }
}
