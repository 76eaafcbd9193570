//! The platform keystore the core signs with: Android Keystore / StrongBox or the Secure Enclave
//! with the Keychain on phones, [`crate::SoftwareKeystore`] where no such hardware exists.
//!
//! The core never sees a hardware private key: it asks the keystore to sign. Secrets that are
//! not keys (the salt of the code) go through the keystore's secret slots, never into SQLite.

use p256::ecdsa::Signature;
use sleutel_protocol::jose::{self, Es256Signer, SIGNATURE_LEN};
use thiserror::Error;

/// How a key generated in the keystore is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum KeyProtection {
    /// Usable whenever the device is unlocked: the device key.
    Device,
    /// Usable only right after a biometric check, and invalidated when the enrolled biometrics
    /// change: the biometric key.
    Biometric,
}

/// Why the keystore could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Error))]
pub enum KeystoreError {
    /// The person cancelled the biometric or device-credential prompt.
    #[error("cancelled by the user")]
    UserCancelled,
    /// Too many failed biometric attempts: biometrics are locked for a while.
    #[error("biometrics locked out")]
    BiometricLockedOut,
    /// The key can no longer be used (biometrics changed, device credential removed).
    #[error("key invalidated")]
    KeyInvalidated,
    /// No key or secret under that name.
    #[error("key not found")]
    KeyNotFound,
    /// The keystore failed for another reason.
    #[error("keystore unavailable: {detail}")]
    Unavailable {
        /// The platform's explanation (never key material).
        detail: String,
    },
}

/// A platform keystore, implemented in Kotlin or Swift on phones and by
/// [`crate::SoftwareKeystore`] in Rust. Every method may block (a biometric prompt, a hardware
/// round trip) and is called on the thread that drives the core's async call, so apps call the
/// core from a background dispatcher, not the UI thread. Deleting a key
/// or secret that does not exist is not an error. An implementation reports failures with
/// [`KeystoreError`]; any other exception it throws reaches the core as
/// [`KeystoreError::Unavailable`].
#[cfg_attr(feature = "uniffi", uniffi::export(foreign))]
pub trait Keystore: Send + Sync {
    /// Generates a P-256 key under `alias` (replacing any key there) and returns its public key
    /// as an uncompressed SEC1 point (65 bytes).
    fn generate_key(
        &self,
        alias: String,
        protection: KeyProtection,
    ) -> Result<Vec<u8>, KeystoreError>;
    /// The uncompressed SEC1 public key of the key under `alias`.
    fn public_key(&self, alias: String) -> Result<Vec<u8>, KeystoreError>;
    /// Signs `message` with ES256 (ECDSA P-256 over SHA-256 of `message`) using the key under
    /// `alias`, showing `prompt` where the key needs user presence. Returns the raw 64-byte
    /// `r || s` signature or its ASN.1 DER form; the core accepts both.
    fn sign(
        &self,
        alias: String,
        message: Vec<u8>,
        prompt: Option<String>,
    ) -> Result<Vec<u8>, KeystoreError>;
    /// Deletes the key under `alias`.
    fn delete_key(&self, alias: String) -> Result<(), KeystoreError>;
    /// Whether the key under `alias` lives in secure hardware (StrongBox, TEE, Secure Enclave).
    /// A `Result`, so that a platform failure while asking is reported rather than guessed.
    fn is_hardware_backed(&self, alias: String) -> Result<bool, KeystoreError>;
    /// Stores a small secret under `name`, replacing any value there.
    fn put_secret(&self, name: String, value: Vec<u8>) -> Result<(), KeystoreError>;
    /// The secret under `name`, or `None` if there is none.
    fn get_secret(&self, name: String) -> Result<Option<Vec<u8>>, KeystoreError>;
    /// Deletes the secret under `name`.
    fn delete_secret(&self, name: String) -> Result<(), KeystoreError>;
}

/// A foreign implementation that throws something other than a [`KeystoreError`] (a
/// `RuntimeException` in Kotlin, a Swift error of another type) must not take the app down:
/// the core sees a keystore that is unavailable.
#[cfg(feature = "uniffi")]
impl From<uniffi::UnexpectedUniFFICallbackError> for KeystoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Unavailable {
            detail: format!(
                "the platform keystore failed unexpectedly ({})",
                exception_kind(&e.reason)
            ),
        }
    }
}

/// Longest exception name kept from a foreign failure.
#[cfg(any(feature = "uniffi", test))]
const MAX_EXCEPTION_KIND_CHARS: usize = 100;

/// The kind of a foreign exception, from the text the bindings pass on (a whole Kotlin stack
/// trace, a Python `repr`): only its name, before any message. A platform's messages may carry
/// anything, key aliases or worse, and the detail of an error ends up in logs.
#[cfg(any(feature = "uniffi", test))]
fn exception_kind(reason: &str) -> String {
    let first_line = reason.lines().next().unwrap_or_default();
    let name = first_line
        .split([':', '(', ' '])
        .next()
        .unwrap_or_default()
        .trim();
    if name.is_empty() {
        return "unknown".into();
    }
    name.chars().take(MAX_EXCEPTION_KIND_CHARS).collect()
}

/// Brings a signature from a keystore to the raw, low-S `r || s` form JWS needs. Android and
/// iOS return ASN.1 DER; software keys return raw bytes. Platform keystores (Android Keystore,
/// JCA, Python's `cryptography`) do not normalise s, so about half their signatures are high-S,
/// which the server refuses (see [`jose::verify_es256`]): each is turned into its low-S twin,
/// an equally valid signature by the same key over the same message.
pub(crate) fn normalize_signature(signature: &[u8]) -> Result<Vec<u8>, KeystoreError> {
    let unusable = || KeystoreError::Unavailable {
        detail: "the keystore returned a signature that is neither raw nor DER".into(),
    };
    let raw = if signature.len() == SIGNATURE_LEN {
        signature.to_vec()
    } else {
        Signature::from_der(signature)
            .map_err(|_| unusable())?
            .to_bytes()
            .to_vec()
    };
    jose::low_s_signature(&raw).map_err(|_| unusable())
}

/// An [`Es256Signer`] over one key of a [`Keystore`], so the protocol's JWS and proof helpers can
/// sign with keys the core never holds.
pub(crate) struct KeystoreSigner<'a> {
    pub(crate) keystore: &'a dyn Keystore,
    pub(crate) alias: &'a str,
    pub(crate) prompt: Option<&'a str>,
}

impl<'a> KeystoreSigner<'a> {
    /// A signer for a key that needs no prompt (the device key).
    pub(crate) fn new(keystore: &'a dyn Keystore, alias: &'a str) -> Self {
        Self {
            keystore,
            alias,
            prompt: None,
        }
    }
}

impl Es256Signer for KeystoreSigner<'_> {
    type Error = KeystoreError;

    fn sign_es256(&self, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        let signature = self.keystore.sign(
            self.alias.to_owned(),
            message.to_vec(),
            self.prompt.map(str::to_owned),
        )?;
        normalize_signature(&signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::elliptic_curve::Generate;
    use p256::elliptic_curve::scalar::IsHigh;

    #[test]
    fn der_and_raw_signatures_normalise_to_the_same_raw_bytes() {
        let key = SigningKey::generate();
        // A low-S signature, so that only the encoding differs (high-S has its own test).
        let signature: Signature = key.sign(b"message");
        let signature = signature.normalize_s();
        let raw = signature.to_bytes().to_vec();
        let der = signature.to_der().as_bytes().to_vec();
        assert_ne!(der.len(), SIGNATURE_LEN);

        assert_eq!(normalize_signature(&raw).unwrap(), raw);
        assert_eq!(normalize_signature(&der).unwrap(), raw);
        let back = Signature::from_slice(&normalize_signature(&der).unwrap()).unwrap();
        assert!(key.verifying_key().verify(b"message", &back).is_ok());
    }

    /// A platform keystore that, like Android's or JCA's, hands back the high-S form of its
    /// signatures, raw or in DER. Only signing is used by these tests.
    struct HighSKeystore {
        key: SigningKey,
        der: bool,
    }

    impl HighSKeystore {
        fn high_s(&self, message: &[u8]) -> Signature {
            let signature: Signature = self.key.sign(message);
            let low = signature.normalize_s();
            let (r, _) = low.split_bytes();
            Signature::from_scalars(r, (-*low.s()).to_bytes()).unwrap()
        }
    }

    impl Keystore for HighSKeystore {
        fn generate_key(&self, _: String, _: KeyProtection) -> Result<Vec<u8>, KeystoreError> {
            Err(KeystoreError::KeyNotFound)
        }
        fn public_key(&self, _: String) -> Result<Vec<u8>, KeystoreError> {
            Err(KeystoreError::KeyNotFound)
        }
        fn sign(
            &self,
            _: String,
            message: Vec<u8>,
            _: Option<String>,
        ) -> Result<Vec<u8>, KeystoreError> {
            let signature = self.high_s(&message);
            Ok(if self.der {
                signature.to_der().as_bytes().to_vec()
            } else {
                signature.to_bytes().to_vec()
            })
        }
        fn delete_key(&self, _: String) -> Result<(), KeystoreError> {
            Ok(())
        }
        fn is_hardware_backed(&self, _: String) -> Result<bool, KeystoreError> {
            Ok(false)
        }
        fn put_secret(&self, _: String, _: Vec<u8>) -> Result<(), KeystoreError> {
            Ok(())
        }
        fn get_secret(&self, _: String) -> Result<Option<Vec<u8>>, KeystoreError> {
            Ok(None)
        }
        fn delete_secret(&self, _: String) -> Result<(), KeystoreError> {
            Ok(())
        }
    }

    #[test]
    fn the_keystore_signer_turns_high_s_signatures_into_verifiable_low_s_ones() {
        for der in [false, true] {
            let keystore = HighSKeystore {
                key: SigningKey::generate(),
                der,
            };
            let high = keystore.high_s(b"message");
            assert!(bool::from(high.s().is_high()));

            let signature = KeystoreSigner::new(&keystore, "device")
                .sign_es256(b"message")
                .unwrap();
            assert_eq!(
                signature,
                high.normalize_s().to_bytes().to_vec(),
                "der: {der}"
            );
            assert_eq!(
                jose::verify_es256(keystore.key.verifying_key(), b"message", &signature, "m"),
                Ok(())
            );
        }
    }

    #[test]
    fn a_foreign_exception_is_named_without_its_message() {
        assert_eq!(
            exception_kind(
                "java.lang.RuntimeException: alias device-1 secret\n\tat Foo.sign(Foo.kt:3)"
            ),
            "java.lang.RuntimeException"
        );
        assert_eq!(exception_kind("RuntimeError('the secret')"), "RuntimeError");
        assert_eq!(exception_kind(""), "unknown");
        assert_eq!(exception_kind(&"x".repeat(500)).len(), 100);
    }

    #[test]
    fn garbage_signature_is_refused() {
        for bad in [
            &[][..],
            &[0u8; 64][..],
            &[0x30, 0x02, 0x01][..],
            &[7u8; 70][..],
        ] {
            assert!(matches!(
                normalize_signature(bad),
                Err(KeystoreError::Unavailable { .. })
            ));
        }
    }
}
