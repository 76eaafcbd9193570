//! The 5-digit code: its format, the refusal of trivial codes, and the derivation of the PIN key.
//!
//! The PIN key is never stored: it is derived on demand from the code and a random salt kept in
//! the keystore. The phone keeps no hash of the code and no PIN public key, so a dump of the
//! phone gives nothing to test guesses against; every guess must go to the server, which counts
//! failures.

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use p256::ecdsa::SigningKey;
use sha2::Sha256;
use sleutel_protocol::limits::PIN_LENGTH;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::CoreError;

/// Length of the random salt of the code, per account and per code change.
pub(crate) const SALT_LEN: usize = 16;

/// Argon2id memory cost in KiB (19 MiB): the OWASP minimum for Argon2id, affordable on a phone.
const ARGON2_M_KIB: u32 = 19 * 1024;
/// Argon2id passes.
const ARGON2_T: u32 = 2;
/// Argon2id lanes: phones are throttled when busy on many cores, one lane keeps timing stable.
const ARGON2_P: u32 = 1;
/// Length of the Argon2id output (the seed).
const SEED_LEN: usize = 32;

/// HKDF info string: binds the derived key to this purpose and version.
const PIN_KEY_INFO: &[u8] = b"sleutel/pin-key/v1";
/// Candidate scalars expanded by HKDF. A 32-byte chunk is rejected only if it is zero or not
/// below the group order (probability about 2^-32 each), so eight chunks all failing is out of
/// reach; taking the first valid one keeps the scalar uniform, unlike a modular reduction.
const CANDIDATES: usize = 8;

/// The most common 5-digit codes that the repeated-digit and straight-run rules do not already
/// catch. (13579 is deliberately absent: step-2 runs are not refused.)
const COMMON_CODES: [&str; 20] = [
    "12321", "11223", "10000", "12121", "12312", "00700", "90210", "42069", "12346", "14789",
    "11122", "11112", "21212", "69696", "10101", "12123", "20000", "11211", "12000", "00001",
];

/// Refuses anything but exactly five ASCII digits.
pub(crate) fn check_format(code: &str) -> Result<(), CoreError> {
    if code.len() == PIN_LENGTH && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CoreError::CodeFormat)
    }
}

/// Whether a well-formed code is too easy to guess: one digit repeated, a straight run up or
/// down (wrapping, so 67890 and 09876 count), or one of the most common codes.
pub(crate) fn is_trivial(code: &str) -> bool {
    let digits = code.as_bytes();
    let steps: Vec<u8> = digits.windows(2).map(|w| (w[1] + 10 - w[0]) % 10).collect();
    let straight = |step: u8| steps.iter().all(|s| *s == step);
    straight(0) || straight(1) || straight(9) || COMMON_CODES.contains(&code)
}

/// Compares the code and its confirmation in constant time.
pub(crate) fn codes_match(code: &str, confirmation: &str) -> bool {
    code.as_bytes().ct_eq(confirmation.as_bytes()).into()
}

/// Checks a newly chosen code and its confirmation.
pub(crate) fn check_new_code(code: &str, confirmation: &str) -> Result<(), CoreError> {
    check_format(code)?;
    if is_trivial(code) {
        return Err(CoreError::WeakCode);
    }
    check_format(confirmation)?;
    if !codes_match(code, confirmation) {
        return Err(CoreError::CodesDoNotMatch);
    }
    Ok(())
}

/// A fresh random salt.
pub(crate) fn new_salt() -> Result<Zeroizing<Vec<u8>>, CoreError> {
    let mut salt = Zeroizing::new(vec![0u8; SALT_LEN]);
    getrandom::fill(&mut salt).map_err(|e| CoreError::storage(format!("random generator: {e}")))?;
    Ok(salt)
}

/// Derives the PIN key: `seed = Argon2id(code, salt)`, then the first valid nonzero P-256 scalar
/// among the HKDF-SHA256 output chunks. Slow on purpose (tens of milliseconds to a second):
/// call it off the async executor.
pub(crate) fn derive_pin_key(code: &str, salt: &[u8]) -> Result<SigningKey, CoreError> {
    check_format(code)?;
    if salt.len() != SALT_LEN {
        return Err(CoreError::corrupt("the code's salt has the wrong length"));
    }
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(SEED_LEN))
        .map_err(|e| CoreError::storage(format!("argon2 parameters: {e}")))?;
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(code.as_bytes(), salt, seed.as_mut_slice())
        .map_err(|e| CoreError::storage(format!("argon2: {e}")))?;

    let mut okm = Zeroizing::new([0u8; 32 * CANDIDATES]);
    Hkdf::<Sha256>::new(None, seed.as_slice())
        .expand(PIN_KEY_INFO, okm.as_mut_slice())
        .map_err(|_| CoreError::storage("hkdf output length"))?;
    first_valid_scalar(okm.as_slice())
        .ok_or_else(|| CoreError::storage("no valid scalar in the derived key material"))
}

/// Derives the PIN key on a blocking thread when running inside a tokio runtime, so the async
/// executor is not stalled by Argon2id; inline otherwise.
pub(crate) async fn derive_pin_key_off_thread(
    code: Zeroizing<String>,
    salt: Zeroizing<Vec<u8>>,
) -> Result<SigningKey, CoreError> {
    #[cfg(any(test, feature = "testing"))]
    if let Some(key) = crate::testing::remembered_pin_key(&code, &salt) {
        return Ok(key);
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return derive_pin_key(&code, &salt);
    }
    #[cfg(any(test, feature = "testing"))]
    let (kept_code, kept_salt) = (code.clone(), salt.clone());
    let derived = tokio::task::spawn_blocking(move || derive_pin_key(&code, &salt))
        .await
        .map_err(|e| CoreError::storage(format!("key derivation task: {e}")))?;
    #[cfg(any(test, feature = "testing"))]
    if let Ok(key) = &derived {
        crate::testing::remember_pin_key(&kept_code, &kept_salt, key);
    }
    derived
}

/// Rejection sampling: the first 32-byte chunk that is a nonzero scalar below the group order.
fn first_valid_scalar(okm: &[u8]) -> Option<SigningKey> {
    okm.chunks_exact(32)
        .find_map(|chunk| SigningKey::from_slice(chunk).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sleutel_protocol::jose::b64;

    const SALT: [u8; SALT_LEN] = *b"sleutel-salt-v1!";

    fn public_b64(key: &SigningKey) -> String {
        b64(key.verifying_key().to_sec1_point(false).as_bytes())
    }

    #[test]
    fn same_code_and_salt_give_the_same_key() {
        let a = derive_pin_key("13579", &SALT).unwrap();
        let b = derive_pin_key("13579", &SALT).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
    }

    #[test]
    fn a_load_generator_reuses_the_key_the_core_derived_for_a_code_and_salt() {
        // Another salt than the other tests', so that they derive as before.
        let salt = [42u8; SALT_LEN];
        crate::testing::reuse_pin_keys();
        let derived = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(derive_pin_key_off_thread(
                Zeroizing::new("13579".to_owned()),
                Zeroizing::new(salt.to_vec()),
            ))
            .unwrap();

        let reused = crate::testing::remembered_pin_key("13579", &salt).unwrap();

        assert_eq!(reused.to_bytes(), derived.to_bytes());
        assert!(crate::testing::remembered_pin_key("24680", &salt).is_none());
    }

    #[test]
    fn another_salt_or_code_gives_another_key() {
        let base = derive_pin_key("13579", &SALT).unwrap();
        let mut other_salt = SALT;
        other_salt[0] ^= 1;
        let salted = derive_pin_key("13579", &other_salt).unwrap();
        let coded = derive_pin_key("13578", &SALT).unwrap();
        assert_ne!(base.to_bytes(), salted.to_bytes());
        assert_ne!(base.to_bytes(), coded.to_bytes());
    }

    /// Computed independently with Python's `cryptography` (Argon2id and HKDF-SHA256, first
    /// chunk below the group order), so a change in the derivation cannot go unnoticed: every
    /// enrolled PIN key depends on it.
    #[test]
    fn derivation_matches_the_reference_vector() {
        let key = derive_pin_key("13579", &SALT).unwrap();
        assert_eq!(b64(key.to_bytes()), REFERENCE_SCALAR);
        assert_eq!(public_b64(&key), REFERENCE_PUBLIC);
    }

    const REFERENCE_SCALAR: &str = "TBflM7tQ8f_pDeCmOoJ9qr8QAFDAenB86h3AuZasFfQ";
    const REFERENCE_PUBLIC: &str =
        "BLhF_1IGWdWH6kQk0_ChYRrBQksxvIWpmd09YGsw92NM-jv23KfQXTOpAambk50lcTqALE6m2Ug-ZH_RJ2faCyo";

    #[test]
    fn chunks_that_are_zero_or_not_below_the_order_are_skipped() {
        let mut okm = [0u8; 32 * 3];
        okm[..32].fill(0xff); // above the group order
        // okm[32..64] stays zero: not a valid scalar either
        okm[95] = 7;
        let key = first_valid_scalar(&okm).unwrap();
        assert_eq!(key.to_bytes().as_slice(), &okm[64..]);
        assert!(first_valid_scalar(&okm[..64]).is_none());
    }

    #[test]
    fn salt_of_the_wrong_length_is_refused() {
        assert!(matches!(
            derive_pin_key("13579", &[0u8; 8]),
            Err(CoreError::CorruptStore { .. })
        ));
    }

    #[test]
    fn trivial_codes_are_refused() {
        for code in [
            "00000", "11111", "99999", "12345", "54321", "23456", "01234", "98765", "67890",
            "09876", "90123", "12321", "11223", "10000", "90210",
        ] {
            assert!(is_trivial(code), "{code}");
            assert_eq!(
                check_new_code(code, code),
                Err(CoreError::WeakCode),
                "{code}"
            );
        }
    }

    #[test]
    fn ordinary_codes_are_accepted() {
        for code in ["13579", "27182", "31415", "48213", "70592", "24680"] {
            assert!(!is_trivial(code), "{code}");
            assert_eq!(check_new_code(code, code), Ok(()), "{code}");
        }
    }

    #[test]
    fn codes_must_be_five_digits() {
        for bad in ["1357", "135790", "1357a", "", "１３５７９", " 3579"] {
            assert_eq!(
                check_new_code(bad, bad),
                Err(CoreError::CodeFormat),
                "{bad}"
            );
        }
        assert_eq!(check_new_code("13579", "1357"), Err(CoreError::CodeFormat));
    }

    #[test]
    fn code_and_confirmation_must_match() {
        assert_eq!(
            check_new_code("13579", "13578"),
            Err(CoreError::CodesDoNotMatch)
        );
    }
}
