//! The test keystore, for the core's own tests and for the harness's virtual phones (feature
//! `testing`; the bindings' library never enables it, so no app carries it).
//!
//! [`TestKeystore`] is the core's [`SoftwareKeystore`] for device keys and secrets, plus a
//! simulated biometric sensor, so that biometric keys ([`KeyProtection::Biometric`]) can be
//! created and used on a Linux machine. The software keystore refuses biometric keys, since it
//! cannot gate anything on a biometric; this one plays the platform's part: a biometric key is a
//! software key that signs only when the simulated prompt succeeds, and that reports
//! [`KeystoreError::KeyInvalidated`] for good once the phone's enrolled biometrics change, as
//! Android's `setInvalidatedByBiometricEnrollment` and iOS's `.biometryCurrentSet` do.
//!
//! It also records what the core did with it (the keys it generated, in order, and the secrets
//! it put), so a test can check that a key or a secret is kept or gone without knowing the
//! names the core gives them.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sleutel_protocol::jose::{self, Es256Signer};

use crate::{KeyProtection, Keystore, KeystoreError, SoftwareKeystore};

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

/// A keystore with a simulated biometric sensor. Cheap to clone; clones share the sensor and
/// the records.
#[derive(Clone)]
pub struct TestKeystore {
    software: Arc<SoftwareKeystore>,
    prompt: Arc<Mutex<BiometricPrompt>>,
    /// Aliases of the biometric keys generated since this keystore was opened and not deleted:
    /// the keys a new enrolled fingerprint invalidates.
    biometric_aliases: Arc<Mutex<BTreeSet<String>>>,
    /// Names of the secrets the core put since this keystore was opened, so tests can look for
    /// a secret by its value without knowing the core's naming.
    secret_names: Arc<Mutex<BTreeSet<String>>>,
    /// Aliases of the keys the core generated since this keystore was opened and has not
    /// deleted, so tests can find a key whose alias the core keeps to itself.
    key_aliases: Arc<Mutex<BTreeSet<String>>>,
    /// Every alias the core generated since this keystore was opened, in order, deleted or not:
    /// a key the core made and dropped again can still be looked for.
    generated: Arc<Mutex<Vec<String>>>,
    /// Whether the keystore says its keys are in secure hardware.
    in_hardware: Arc<AtomicBool>,
    /// Where a durable keystore writes its keys and secrets after each change; `None` for one
    /// that keeps them in memory (or saves only when told).
    durable: Option<Arc<DurableFile>>,
}

/// The file of a durable [`TestKeystore`]: the sample store's contents, replaced whole after
/// every change by writing a temporary file, syncing it and renaming it over the old one, so a
/// process killed at any instant leaves either the old contents or the new, never a torn file,
/// as a platform keystore's operations are each all or nothing.
struct DurableFile {
    store: Arc<keyring_core::sample::Store>,
    path: std::path::PathBuf,
    /// The sample store saves itself to this file; it is then renamed over `path`.
    staging: std::path::PathBuf,
    /// One save at a time: two would race on the staging file.
    saving: Mutex<()>,
}

impl DurableFile {
    fn persist(&self) -> Result<(), KeystoreError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| KeystoreError::Unavailable {
            detail: format!("durable test keystore: {what}: {e}"),
        };
        let _one = lock(&self.saving);
        self.store.save().map_err(|e| failed("save", &e))?;
        std::fs::File::open(&self.staging)
            .and_then(|f| f.sync_all())
            .map_err(|e| failed("sync", &e))?;
        std::fs::rename(&self.staging, &self.path).map_err(|e| failed("rename", &e))?;
        // The rename itself is durable once the directory is synced.
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| failed("sync the directory", &e))?;
        }
        Ok(())
    }
}

/// Locks a record. A test that panicked while holding the lock left the record as it was, which
/// is still what the core did; so the poison is ignored rather than failing every later test.
fn lock<T>(record: &Mutex<T>) -> MutexGuard<'_, T> {
    record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
            key_aliases: Arc::default(),
            generated: Arc::default(),
            in_hardware: Arc::default(),
            durable: None,
        }
    }

    /// A test keystore whose keys and secrets live in the file `path` (created if missing) and
    /// are written there before each call that changes them returns, as a platform keystore's
    /// are: a process killed at any moment, then opened again on `path`, finds every key and
    /// secret the core was told exists. For tests that kill the app's process.
    pub fn open_durable(path: &std::path::Path) -> Result<Self, KeystoreError> {
        let unusable = |e: &dyn std::fmt::Display| KeystoreError::Unavailable {
            detail: format!("durable test keystore {}: {e}", path.display()),
        };
        let text = |p: &std::path::Path| {
            p.to_str()
                .map(str::to_owned)
                .ok_or_else(|| unusable(&"not a UTF-8 path"))
        };
        let mut staging = path.as_os_str().to_owned();
        staging.push(".staging");
        let staging = std::path::PathBuf::from(staging);
        let credentials = keyring_core::sample::Store::load_credentials(&text(path)?)
            .map_err(|e| unusable(&e))?;
        let store = keyring_core::sample::Store::new_internal(credentials, Some(text(&staging)?));
        let credential_store: Arc<keyring_core::CredentialStore> = store.clone();
        let mut keystore = Self::new(SoftwareKeystore::new(credential_store, "sleutel-test"));
        keystore.durable = Some(Arc::new(DurableFile {
            store,
            path: path.to_owned(),
            staging,
            saving: Mutex::new(()),
        }));
        Ok(keystore)
    }

    /// Writes a durable keystore's file after a change; nothing for the others.
    fn persist(&self) -> Result<(), KeystoreError> {
        match &self.durable {
            Some(file) => file.persist(),
            None => Ok(()),
        }
    }

    /// Makes the keystore say that its keys are (or are not) in secure hardware, as a phone
    /// with StrongBox, a TEE or a Secure Enclave does. The keys stay software keys: this plays
    /// only the platform's answer, which is all the server ever learns.
    pub fn set_in_hardware(&self, in_hardware: bool) {
        self.in_hardware.store(in_hardware, Ordering::Relaxed);
    }

    /// Sets what the biometric prompt answers from now on.
    pub fn set_prompt(&self, answer: BiometricPrompt) {
        *lock(&self.prompt) = answer;
    }

    /// Simulates a new fingerprint or face enrolled on the phone: every existing biometric key
    /// is invalidated for good.
    pub fn enroll_new_biometric(&self) -> Result<(), KeystoreError> {
        let aliases = lock(&self.biometric_aliases).clone();
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
        self.persist()
    }

    /// Whether a secret the core put since this keystore was opened, and has not deleted,
    /// holds `value` (a test checks that a secret is kept, or gone, without its name).
    pub fn holds_secret(&self, value: &[u8]) -> Result<bool, KeystoreError> {
        let names = lock(&self.secret_names).clone();
        for name in names {
            if self.software.get_secret(name)?.as_deref() == Some(value) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The values of the secrets the core put since this keystore was opened and has not
    /// deleted (a test keeps them to check later that they are gone, without their names).
    pub fn held_secrets(&self) -> Result<Vec<Vec<u8>>, KeystoreError> {
        let names = lock(&self.secret_names).clone();
        let mut values = Vec::new();
        for name in names {
            if let Some(value) = self.software.get_secret(name)? {
                values.push(value);
            }
        }
        Ok(values)
    }

    /// The aliases of the keys the core generated since this keystore was opened and has not
    /// deleted, device and biometric keys alike.
    pub fn key_aliases(&self) -> Vec<String> {
        lock(&self.key_aliases).iter().cloned().collect()
    }

    /// The aliases of the biometric keys the core generated since this keystore was opened and
    /// has not deleted.
    pub fn biometric_aliases(&self) -> Vec<String> {
        lock(&self.biometric_aliases).iter().cloned().collect()
    }

    /// The alias of the key the core generated last, whether it deleted it since or not (a test
    /// looks for a key the core made and never stored the alias of); `None` before any key.
    pub fn last_generated_alias(&self) -> Option<String> {
        lock(&self.generated).last().cloned()
    }

    /// Whether the keystore holds a key under `alias`.
    pub fn has_key(&self, alias: &str) -> Result<bool, KeystoreError> {
        match self.software.public_key(alias.to_owned()) {
            Ok(_) => Ok(true),
            Err(KeystoreError::KeyNotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A signer with the key under `alias`, for a test that speaks the protocol by hand with a
    /// key the core holds (say, the device key of a copy of the phone's files).
    pub fn signer<'a>(&'a self, alias: &'a str) -> KeySigner<'a> {
        KeySigner {
            keystore: self,
            alias,
        }
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
        lock(&self.key_aliases).insert(alias.clone());
        lock(&self.generated).push(alias.clone());
        if protection == KeyProtection::Biometric {
            self.software
                .put_secret(biometric_marker(&alias), VALID.to_vec())?;
            lock(&self.biometric_aliases).insert(alias);
        }
        // The key and its biometric marker reach the file together.
        self.persist()?;
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
                match *lock(&self.prompt) {
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
        self.software.delete_key(alias.clone())?;
        lock(&self.key_aliases).remove(&alias);
        lock(&self.biometric_aliases).remove(&alias);
        self.persist()
    }

    fn is_hardware_backed(&self, alias: String) -> Result<bool, KeystoreError> {
        // The software keystore answers first, so its errors still reach the caller.
        let software = self.software.is_hardware_backed(alias)?;
        Ok(software || self.in_hardware.load(Ordering::Relaxed))
    }

    fn put_secret(&self, name: String, value: Vec<u8>) -> Result<(), KeystoreError> {
        self.software.put_secret(name.clone(), value)?;
        lock(&self.secret_names).insert(name);
        self.persist()
    }

    fn get_secret(&self, name: String) -> Result<Option<Vec<u8>>, KeystoreError> {
        self.software.get_secret(name)
    }

    fn delete_secret(&self, name: String) -> Result<(), KeystoreError> {
        self.software.delete_secret(name.clone())?;
        lock(&self.secret_names).remove(&name);
        self.persist()
    }
}

/// An [`Es256Signer`] over one key of a [`TestKeystore`], with low-S signatures as the protocol
/// requires.
pub struct KeySigner<'a> {
    keystore: &'a TestKeystore,
    alias: &'a str,
}

impl Es256Signer for KeySigner<'_> {
    type Error = KeystoreError;

    fn sign_es256(&self, message: &[u8]) -> Result<Vec<u8>, KeystoreError> {
        let signature = self
            .keystore
            .sign(self.alias.to_owned(), message.to_vec(), None)?;
        jose::low_s_signature(&signature).map_err(|e| KeystoreError::Unavailable {
            detail: e.to_string(),
        })
    }
}

/// Whether [`reuse_pin_keys`] was called in this process.
static REUSE_PIN_KEYS: AtomicBool = AtomicBool::new(false);

/// The PIN keys derived since [`reuse_pin_keys`], by salt and code.
static PIN_KEYS: Mutex<Vec<(Vec<u8>, String, p256::ecdsa::SigningKey)>> = Mutex::new(Vec::new());

/// For a load generator only: from now on, this process derives the PIN key of each code and
/// salt once, through the core's own derivation (Argon2id, 19 MiB), and reuses it for every
/// later approval with that code. A load generator with hundreds of simulated phones would
/// otherwise spend its CPU on Argon2id and measure itself instead of the server. Only the core's
/// own test of this switch calls it (with a salt no other test uses); every other test's
/// approval pays for the derivation as a phone does.
pub fn reuse_pin_keys() {
    REUSE_PIN_KEYS.store(true, Ordering::SeqCst);
}

/// The PIN key derived earlier for `code` and `salt`, when [`reuse_pin_keys`] was called.
pub(crate) fn remembered_pin_key(code: &str, salt: &[u8]) -> Option<p256::ecdsa::SigningKey> {
    if !REUSE_PIN_KEYS.load(Ordering::SeqCst) {
        return None;
    }
    lock(&PIN_KEYS)
        .iter()
        .find(|(s, c, _)| s == salt && c == code)
        .map(|(_, _, key)| key.clone())
}

/// Keeps a derived PIN key for [`remembered_pin_key`], when [`reuse_pin_keys`] was called.
pub(crate) fn remember_pin_key(code: &str, salt: &[u8], key: &p256::ecdsa::SigningKey) {
    if REUSE_PIN_KEYS.load(Ordering::SeqCst) {
        lock(&PIN_KEYS).push((salt.to_vec(), code.to_owned(), key.clone()));
    }
}

/// The core's PIN key derivation (Argon2id with the code's parameters, then HKDF to a P-256
/// key) of `code` with a 16-byte `salt`, for benchmarks: the public half of the key it gives.
pub fn derive_pin_key(
    code: &str,
    salt: &[u8],
) -> Result<p256::ecdsa::VerifyingKey, crate::CoreError> {
    crate::pin::derive_pin_key(code, salt).map(|key| *key.verifying_key())
}

#[cfg(test)]
mod durable_tests {
    use super::*;

    #[test]
    fn a_durable_keystore_opened_again_has_every_key_and_secret_it_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.ron");
        let keystore = TestKeystore::open_durable(&path).unwrap();
        let public = keystore
            .generate_key("device".into(), KeyProtection::Device)
            .unwrap();
        keystore
            .generate_key("finger".into(), KeyProtection::Biometric)
            .unwrap();
        keystore.put_secret("salt".into(), b"s1".to_vec()).unwrap();
        keystore.put_secret("gone".into(), b"x".to_vec()).unwrap();
        keystore.delete_secret("gone".into()).unwrap();
        // No save, no drop: what a killed process leaves.
        std::mem::forget(keystore);

        let reopened = TestKeystore::open_durable(&path).unwrap();
        assert_eq!(reopened.public_key("device".into()).unwrap(), public);
        assert_eq!(reopened.is_biometric("finger").unwrap(), Some(true));
        assert_eq!(
            reopened.get_secret("salt".into()).unwrap().as_deref(),
            Some(&b"s1"[..])
        );
        assert_eq!(reopened.get_secret("gone".into()).unwrap(), None);
    }
}
