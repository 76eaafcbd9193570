//! Randomness from the operating system: identifiers, nonces, codes and secrets.

use sleutel_protocol::jose::b64;
use sleutel_protocol::limits::ID_BYTES;

use crate::error::{Result, ServerError};

/// `N` random bytes from the OS generator.
pub(crate) fn bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| ServerError::Internal(format!("OS random generator failed: {e}")))?;
    Ok(out)
}

/// A fresh random identifier (enrollment, account, request, nonce): base64url of
/// [`ID_BYTES`] random bytes, so unguessable and never derived from personal data.
pub(crate) fn id() -> Result<String> {
    Ok(b64(bytes::<ID_BYTES>()?))
}

/// A uniformly random number in `0..bound` (`bound` > 0), by rejection sampling so that no
/// value is more likely than another.
pub(crate) fn below(bound: u32) -> Result<u32> {
    let bound = bound.max(1);
    // The largest multiple of `bound` that fits in u32; values at or above it are redrawn.
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let value = u32::from_le_bytes(bytes::<4>()?);
        if value < zone {
            return Ok(value % bound);
        }
    }
}

/// `count` uniformly random decimal digits (SMS codes, card PINs, card numbers).
pub(crate) fn digits(count: usize) -> Result<String> {
    (0..count)
        .map(|_| below(10).map(|d| char::from(b'0' + d as u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_digits_are_digits() {
        assert_ne!(id().unwrap(), id().unwrap());
        let code = digits(6).unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert!((0..100).all(|_| below(7).unwrap() < 7));
    }
}
