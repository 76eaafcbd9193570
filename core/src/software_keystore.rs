//! A software keystore over a keyring-core credential store, for platforms without secure
//! hardware (desktop tests, the harness). Private keys and secrets are kept as credential
//! secrets and zeroized in memory after each use. Nothing here is hardware-backed.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate;
use zeroize::Zeroizing;

use crate::keystore::{KeyProtection, Keystore, KeystoreError};

/// A [`Keystore`] whose keys are P-256 scalars stored as secrets in a keyring-core credential
/// store (the platform keyring, or the mock store in tests). It cannot gate a key on biometrics,
/// so it refuses to generate [`KeyProtection::Biometric`] keys.
pub struct SoftwareKeystore {
    store: Arc<CredentialStore>,
    service: String,
}

impl std::fmt::Debug for SoftwareKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKeystore")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl SoftwareKeystore {
    /// A keystore keeping its entries under `service` in `store`.
    pub fn new(store: Arc<CredentialStore>, service: &str) -> Self {
        Self {
            store,
            service: service.to_owned(),
        }
    }

    fn entry(&self, user: &str) -> Result<Entry, KeystoreError> {
        self.store
            .build(&self.service, user, None)
            .map_err(unavailable)
    }

    fn key_entry(&self, alias: &str) -> Result<Entry, KeystoreError> {
        self.entry(&format!("key/{alias}"))
    }

    fn secret_entry(&self, name: &str) -> Result<Entry, KeystoreError> {
        self.entry(&format!("secret/{name}"))
    }

    fn load_key(&self, alias: &str) -> Result<SigningKey, KeystoreError> {
        let bytes = Zeroizing::new(self.key_entry(alias)?.get_secret().map_err(not_found)?);
        SigningKey::from_slice(&bytes).map_err(|_| KeystoreError::Unavailable {
            detail: "stored key is damaged".into(),
        })
    }
}

fn public_sec1(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

/// Maps a credential-store error without ever echoing stored bytes.
fn unavailable(e: keyring_core::Error) -> KeystoreError {
    use keyring_core::Error as E;
    let detail = match &e {
        E::PlatformFailure(inner) => format!("platform failure: {inner}"),
        E::NoStorageAccess(inner) => format!("no storage access: {inner}"),
        E::NoEntry => "no entry".to_owned(),
        E::BadEncoding(_) | E::BadDataFormat(..) => "stored data has an unexpected format".into(),
        E::BadStoreFormat(what) => format!("bad store format: {what}"),
        E::TooLong(what, max) => format!("{what} longer than {max}"),
        E::Invalid(what, why) => format!("invalid {what}: {why}"),
        E::Ambiguous(_) => "ambiguous entry".to_owned(),
        E::NoDefaultStore => "no credential store".to_owned(),
        E::NotSupportedByStore(what) => format!("not supported: {what}"),
        _ => "credential store error".to_owned(),
    };
    KeystoreError::Unavailable { detail }
}

fn not_found(e: keyring_core::Error) -> KeystoreError {
    match e {
        keyring_core::Error::NoEntry => KeystoreError::KeyNotFound,
        other => unavailable(other),
    }
}

fn delete(entry: Entry) -> Result<(), KeystoreError> {
    match entry.delete_credential() {
        Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
        Err(e) => Err(unavailable(e)),
    }
}

impl Keystore for SoftwareKeystore {
    fn generate_key(
        &self,
        alias: String,
        protection: KeyProtection,
    ) -> Result<Vec<u8>, KeystoreError> {
        if protection == KeyProtection::Biometric {
            return Err(KeystoreError::Unavailable {
                detail: "a software keystore cannot gate a key on biometrics".into(),
            });
        }
        let key = SigningKey::try_generate().map_err(|e| KeystoreError::Unavailable {
            detail: format!("random generator: {e}"),
        })?;
        let scalar = Zeroizing::new(key.to_bytes());
        self.key_entry(&alias)?
            .set_secret(scalar.as_slice())
            .map_err(unavailable)?;
        Ok(public_sec1(&key))
    }

    fn public_key(&self, alias: String) -> Result<Vec<u8>, KeystoreError> {
        Ok(public_sec1(&self.load_key(&alias)?))
    }

    fn sign(
        &self,
        alias: String,
        message: Vec<u8>,
        _prompt: Option<String>,
    ) -> Result<Vec<u8>, KeystoreError> {
        let key = self.load_key(&alias)?;
        let signature: Signature = key.sign(&message);
        Ok(signature.to_bytes().to_vec())
    }

    fn delete_key(&self, alias: String) -> Result<(), KeystoreError> {
        delete(self.key_entry(&alias)?)
    }

    fn is_hardware_backed(&self, _alias: String) -> Result<bool, KeystoreError> {
        Ok(false)
    }

    fn put_secret(&self, name: String, value: Vec<u8>) -> Result<(), KeystoreError> {
        let value = Zeroizing::new(value);
        self.secret_entry(&name)?
            .set_secret(&value)
            .map_err(unavailable)
    }

    fn get_secret(&self, name: String) -> Result<Option<Vec<u8>>, KeystoreError> {
        match self.secret_entry(&name)?.get_secret() {
            Ok(value) => Ok(Some(value)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn delete_secret(&self, name: String) -> Result<(), KeystoreError> {
        delete(self.secret_entry(&name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::normalize_signature;
    use p256::ecdsa::signature::Verifier;
    use sleutel_protocol::jose::verifying_key_from_sec1;

    fn keystore() -> SoftwareKeystore {
        SoftwareKeystore::new(keyring_core::mock::Store::new().unwrap(), "sleutel-test")
    }

    #[test]
    fn generated_key_signs_verifiably_and_keeps_its_public_key() {
        let ks = keystore();
        let public = ks.generate_key("a".into(), KeyProtection::Device).unwrap();
        assert_eq!(public.len(), 65);
        assert_eq!(ks.public_key("a".into()).unwrap(), public);
        assert_eq!(ks.is_hardware_backed("a".into()), Ok(false));

        let signature = ks.sign("a".into(), b"hello".to_vec(), None).unwrap();
        let signature = Signature::from_slice(&normalize_signature(&signature).unwrap()).unwrap();
        let key = verifying_key_from_sec1(&public).unwrap();
        assert!(key.verify(b"hello", &signature).is_ok());
    }

    #[test]
    fn missing_or_deleted_key_is_not_found() {
        let ks = keystore();
        assert_eq!(
            ks.public_key("none".into()),
            Err(KeystoreError::KeyNotFound)
        );
        ks.generate_key("a".into(), KeyProtection::Device).unwrap();
        ks.delete_key("a".into()).unwrap();
        assert_eq!(
            ks.sign("a".into(), b"x".to_vec(), None),
            Err(KeystoreError::KeyNotFound)
        );
        // Deleting again is harmless, so cleanup can be retried.
        assert_eq!(ks.delete_key("a".into()), Ok(()));
    }

    #[test]
    fn keys_under_different_aliases_are_distinct() {
        let ks = keystore();
        let a = ks.generate_key("a".into(), KeyProtection::Device).unwrap();
        let b = ks.generate_key("b".into(), KeyProtection::Device).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_round_trip_and_delete() {
        let ks = keystore();
        assert_eq!(ks.get_secret("s".into()), Ok(None));
        ks.put_secret("s".into(), vec![1, 2, 3]).unwrap();
        assert_eq!(ks.get_secret("s".into()), Ok(Some(vec![1, 2, 3])));
        ks.put_secret("s".into(), vec![4]).unwrap();
        assert_eq!(ks.get_secret("s".into()), Ok(Some(vec![4])));
        ks.delete_secret("s".into()).unwrap();
        assert_eq!(ks.get_secret("s".into()), Ok(None));
        assert_eq!(ks.delete_secret("s".into()), Ok(()));
    }

    #[test]
    fn biometric_keys_are_refused_in_software() {
        assert!(matches!(
            keystore().generate_key("b".into(), KeyProtection::Biometric),
            Err(KeystoreError::Unavailable { .. })
        ));
    }
}
