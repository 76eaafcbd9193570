//! The virtual phone's keystore: the core's [`SoftwareKeystore`] for device keys and secrets,
//! plus a simulated biometric sensor, so that biometric keys
//! ([`KeyProtection::Biometric`]) can be created and used on a Linux machine.
//!
//! The core's own software keystore refuses biometric keys, since it cannot gate anything on a
//! biometric; this test keystore plays the platform's part: a biometric key is a software key
//! that signs only when the simulated prompt succeeds, and that reports
//! [`KeystoreError::KeyInvalidated`] for good once the phone's enrolled biometrics change, as
//! Android's `setInvalidatedByBiometricEnrollment` and iOS's `.biometryCurrentSet` do.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use sleutel_core::{KeyProtection, Keystore, KeystoreError, SoftwareKeystore};

/// What the simulated biometric prompt answers next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiometricPrompt {
    /// The enrolled person is recognised.
    Succeed,
    /// The person cancels the prompt.
    Cancel,
    /// Too many failed tries: biometrics are locked for a while.
    LockedOut,
}

/// Marker secret of a biometric key (kept with the keys, so it survives a reopen).
fn biometric_marker(alias: &str) -> String {
    format!("test-biometric/{alias}")
}

/// Marker value of a biometric key that is still valid / that was invalidated.
const VALID: &[u8] = b"valid";
const INVALIDATED: &[u8] = b"invalidated";

/// A keystore with a simulated biometric sensor. Cheap to clone; clones share the sensor.
#[derive(Clone)]
pub struct TestKeystore {
    software: Arc<SoftwareKeystore>,
    prompt: Arc<Mutex<BiometricPrompt>>,
    biometric_aliases: Arc<Mutex<Vec<String>>>,
    /// Names of the secrets the core put since this keystore was opened, so tests can look for
    /// a secret by its value without knowing the core's naming.
    secret_names: Arc<Mutex<BTreeSet<String>>>,
}

impl std::fmt::Debug for TestKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKeystore").finish_non_exhaustive()
    }
}

impl TestKeystore {
    /// A test keystore over `software`, whose prompt succeeds until told otherwise.
    pub fn new(software: SoftwareKeystore) -> Self {
        Self {
            software: Arc::new(software),
            prompt: Arc::new(Mutex::new(BiometricPrompt::Succeed)),
            biometric_aliases: Arc::default(),
            secret_names: Arc::default(),
        }
    }

    /// Sets what the biometric prompt answers from now on.
    pub fn set_prompt(&self, answer: BiometricPrompt) {
        *self.prompt.lock().unwrap_or_else(|p| p.into_inner()) = answer;
    }

    /// Simulates a new fingerprint or face enrolled on the phone: every existing biometric key
    /// is invalidated for good.
    pub fn enroll_new_biometric(&self) -> Result<(), KeystoreError> {
        let aliases = self
            .biometric_aliases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for alias in aliases {
            if self
                .software
                .get_secret(biometric_marker(&alias))?
                .is_some()
            {
                self.software
                    .put_secret(biometric_marker(&alias), INVALIDATED.to_vec())?;
            }
        }
        Ok(())
    }

    /// Whether a secret the core put since this keystore was opened, and has not deleted,
    /// holds `value` (a test checks that a secret is kept, or gone, without its name).
    pub fn holds_secret(&self, value: &[u8]) -> Result<bool, KeystoreError> {
        let names = self
            .secret_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for name in names {
            if self.software.get_secret(name)?.as_deref() == Some(value) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn is_biometric(&self, alias: &str) -> Result<Option<bool>, KeystoreError> {
        Ok(self
            .software
            .get_secret(biometric_marker(alias))?
            .map(|marker| marker == VALID))
    }
}

impl Keystore for TestKeystore {
    fn generate_key(
        &self,
        alias: String,
        protection: KeyProtection,
    ) -> Result<Vec<u8>, KeystoreError> {
        let public = self
            .software
            .generate_key(alias.clone(), KeyProtection::Device)?;
        if protection == KeyProtection::Biometric {
            self.software
                .put_secret(biometric_marker(&alias), VALID.to_vec())?;
            self.biometric_aliases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(alias);
        }
        Ok(public)
    }

    fn public_key(&self, alias: String) -> Result<Vec<u8>, KeystoreError> {
        self.software.public_key(alias)
    }

    fn sign(
        &self,
        alias: String,
        message: Vec<u8>,
        prompt: Option<String>,
    ) -> Result<Vec<u8>, KeystoreError> {
        match self.is_biometric(&alias)? {
            None => {}
            Some(false) => return Err(KeystoreError::KeyInvalidated),
            Some(true) => {
                // A real platform shows `prompt`; the simulated person answers as told.
                let _shown = prompt;
                match *self.prompt.lock().unwrap_or_else(|p| p.into_inner()) {
                    BiometricPrompt::Succeed => {}
                    BiometricPrompt::Cancel => return Err(KeystoreError::UserCancelled),
                    BiometricPrompt::LockedOut => return Err(KeystoreError::BiometricLockedOut),
                }
            }
        }
        self.software.sign(alias, message, None)
    }

    fn delete_key(&self, alias: String) -> Result<(), KeystoreError> {
        self.software.delete_secret(biometric_marker(&alias))?;
        self.software.delete_key(alias)
    }

    fn is_hardware_backed(&self, alias: String) -> Result<bool, KeystoreError> {
        self.software.is_hardware_backed(alias)
    }

    fn put_secret(&self, name: String, value: Vec<u8>) -> Result<(), KeystoreError> {
        self.software.put_secret(name.clone(), value)?;
        self.secret_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name);
        Ok(())
    }

    fn get_secret(&self, name: String) -> Result<Option<Vec<u8>>, KeystoreError> {
        self.software.get_secret(name)
    }

    fn delete_secret(&self, name: String) -> Result<(), KeystoreError> {
        self.software.delete_secret(name.clone())?;
        self.secret_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
        Ok(())
    }
}
