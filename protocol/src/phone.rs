//! Belgian mobile phone numbers in E.164 form.

use crate::{ProtocolError, Result};

/// Checks that `number` is a Belgian mobile number in E.164 form (`+324` followed by 8 digits,
/// the 046x-049x mobile ranges) and returns it unchanged. Spaces, dots and slashes, as people
/// type them, are removed first; any other character is refused.
pub fn normalize_belgian_mobile(number: &str) -> Result<String> {
    let compact: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '/' | '-'))
        .collect();
    let digits = compact
        .strip_prefix("+32")
        .ok_or_else(|| ProtocolError::invalid("phone_number", "must start with +32"))?;
    if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProtocolError::invalid(
            "phone_number",
            "must be +32 followed by 9 digits",
        ));
    }
    // Belgian mobile numbers are 046x, 047x, 048x and 049x.
    if !matches!(&digits[..2], "46" | "47" | "48" | "49") {
        return Err(ProtocolError::invalid(
            "phone_number",
            "not a Belgian mobile number (+32 46x-49x)",
        ));
    }
    Ok(compact)
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
    fn refuses_landlines_foreign_and_garbage() {
        for bad in [
            "+3223456789",
            "+31612345678",
            "0470123456",
            "+32470abc456",
            "+3247012345",
            "",
        ] {
            assert!(normalize_belgian_mobile(bad).is_err(), "{bad}");
        }
    }
}
