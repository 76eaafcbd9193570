//! The server's keys and secrets: the ES256 key that signs action requests and ID tokens, the
//! simulated banks' identity-token keys (the only identity issuers the server trusts), and the
//! HMAC secrets for pairwise subjects and SMS-code hashes.
//!
//! They are generated once and kept in the database, so a restart keeps every key and phones'
//! pinned server keys stay valid. A production server keeps the signing key in an HSM and only
//! asks it for signatures; this reference server keeps it in its database (a 0600 SQLite file,
//! or PostgreSQL).

use std::collections::HashMap;
use std::fmt;

use crate::store::{Conn, Sql, secrets};
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use sha2::Sha256;
use sleutel_protocol::identity::Bank;
use sleutel_protocol::jose::{self, Header, Jwk, Jwks, RingSigningKey};
use zeroize::Zeroizing;

use crate::clock;
use crate::error::{Result, ServerError, StartError};
use crate::store::Store;

/// Length of the HMAC secrets, in bytes (the SHA-256 block-size-independent minimum is 32).
const SECRET_BYTES: usize = 32;

const SERVER_KEY: &str = "server-signing-key";
const PAIRWISE_SECRET: &str = "pairwise-subject-secret";
const SMS_SECRET: &str = "sms-code-secret";
const IDENTITY_CODE_SECRET: &str = "identity-code-secret";

fn bank_key_name(bank: Bank) -> String {
    format!("bank-signing-key:{}", bank.id())
}

/// A signing key with its key id (the public key's JWK thumbprint). It signs through `ring`,
/// which signs in about a tenth of `p256`'s time; `p256` keeps the stored form and the public key.
struct NamedKey {
    verifying: VerifyingKey,
    signer: RingSigningKey,
    kid: String,
}

impl NamedKey {
    fn new(signing: &SigningKey) -> Result<Self, StartError> {
        let verifying = *signing.verifying_key();
        let kid = Jwk::from_verifying_key(&verifying).thumbprint();
        let signer =
            RingSigningKey::from_p256(signing).map_err(|e| StartError::DatabaseUnusable {
                path: String::new(),
                detail: format!("a stored signing key cannot be used: {e}"),
            })?;
        Ok(Self {
            verifying,
            signer,
            kid,
        })
    }

    fn verifying(&self) -> &VerifyingKey {
        &self.verifying
    }

    fn sign(&self, typ: &str, payload: &[u8]) -> Result<String> {
        let header = Header::es256(typ).with_kid(self.kid.clone());
        jose::sign_compact(&header, payload, &self.signer)
            .map_err(|e| ServerError::Internal(format!("signing failed: {e}")))
    }
}

/// Every key and secret of the server, loaded from the database at start.
pub(crate) struct Keys {
    server: NamedKey,
    /// The server key's public JWKS, built once: it is served on every key request.
    jwks: Jwks,
    banks: HashMap<Bank, NamedKey>,
    pairwise_secret: Zeroizing<Vec<u8>>,
    sms_secret: Zeroizing<Vec<u8>>,
    identity_code_secret: Zeroizing<Vec<u8>>,
}

// Only public facts: key ids.
impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("server_kid", &self.server.kid)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads every key and secret from `db`, generating the missing ones (first start) in one
    /// transaction. A stored key or secret that is not one makes the database unusable.
    pub(crate) fn load_or_create(store: &Store) -> Result<Self, StartError> {
        // A fault of the connection is the server's (and a conflict with another instance
        // creating the keys at the same moment runs this again); what the keys find wrong is
        // the database's.
        store.run(|conn| match Self::load_or_create_in(conn) {
            Err(StartError::Fault(e)) => Err(e),
            other => Ok(other),
        })?
    }

    fn load_or_create_in(conn: &mut Conn<'_>) -> Result<Self, StartError> {
        let tx = conn.immediate()?;
        let server = NamedKey::new(&signing_key(&tx, SERVER_KEY)?)?;
        let mut banks = HashMap::new();
        for bank in Bank::ALL {
            banks.insert(
                bank,
                NamedKey::new(&signing_key(&tx, &bank_key_name(bank))?)?,
            );
        }
        let pairwise_secret = secret(&tx, PAIRWISE_SECRET)?;
        let sms_secret = secret(&tx, SMS_SECRET)?;
        let identity_code_secret = secret(&tx, IDENTITY_CODE_SECRET)?;
        tx.commit()?;
        let jwks = Jwks {
            keys: vec![Jwk::from_verifying_key(server.verifying()).published(&server.kid)],
        };
        Ok(Self {
            server,
            jwks,
            banks,
            pairwise_secret,
            sms_secret,
            identity_code_secret,
        })
    }

    /// Keys for the fuzz targets: `key` signs as the server and as every bank, and every secret
    /// is fixed, so that a target can sign what the verification under test reads.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn fixed(key: &SigningKey) -> Result<Self, StartError> {
        let server = NamedKey::new(key)?;
        let mut banks = HashMap::new();
        for bank in Bank::ALL {
            banks.insert(bank, NamedKey::new(key)?);
        }
        let jwks = Jwks {
            keys: vec![Jwk::from_verifying_key(server.verifying()).published(&server.kid)],
        };
        Ok(Self {
            server,
            jwks,
            banks,
            pairwise_secret: Zeroizing::new(vec![1; 32]),
            sms_secret: Zeroizing::new(vec![2; 32]),
            identity_code_secret: Zeroizing::new(vec![3; 32]),
        })
    }

    /// The server's public signing key as a JWKS: served to phones and relying parties.
    pub(crate) fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Signs `payload` as a compact JWS of type `typ` with the server key.
    pub(crate) fn sign(&self, typ: &str, payload: &[u8]) -> Result<String> {
        self.server.sign(typ, payload)
    }

    /// Signs `payload` with `bank`'s identity-token key (simulator side).
    pub(crate) fn sign_as_bank(&self, bank: Bank, typ: &str, payload: &[u8]) -> Result<String> {
        let key = self
            .banks
            .get(&bank)
            .ok_or_else(|| ServerError::Internal(format!("no key for bank {}", bank.id())))?;
        key.sign(typ, payload)
    }

    /// The key a trusted identity issuer signs with, and its key id; `None` for any issuer the
    /// server does not trust.
    pub(crate) fn trusted_issuer(&self, issuer: &str) -> Option<(&str, &VerifyingKey)> {
        Bank::ALL
            .into_iter()
            .find(|bank| bank.issuer() == issuer)
            .and_then(|bank| self.banks.get(&bank))
            .map(|key| (key.kid.as_str(), key.verifying()))
    }

    /// The pairwise subject of `account_id` at `client_id`: stable for one relying party,
    /// unlinkable across relying parties (OIDC Core §8.1).
    pub(crate) fn pairwise_subject(&self, client_id: &str, account_id: &str) -> Result<String> {
        let mut mac = hmac_with(&self.pairwise_secret)?;
        mac.update(client_id.as_bytes());
        mac.update(&[0]);
        mac.update(account_id.as_bytes());
        Ok(jose::b64(mac.finalize().into_bytes()))
    }

    /// The stored form of an SMS code: HMAC over the enrollment id and the code. Six digits
    /// are a million guesses, so a hash is only as safe as its key: this reference server keeps
    /// the HMAC key in the same database, and a copy of that file reverses any stored code in
    /// moments. What limits the harm is that a code lives for minutes, is erased once used or
    /// failed, and is useful only with the device key that started the enrollment. A server
    /// whose HMAC key is in an HSM (as in production) gives nothing away with a database leak.
    pub(crate) fn sms_code_hash(&self, enrollment_id: &str, code: &str) -> Result<Vec<u8>> {
        let mut mac = hmac_with(&self.sms_secret)?;
        mac.update(enrollment_id.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Keys {
    /// The stored form of an identification or activation code: HMAC over the kind (`eid`,
    /// `counter`) and the canonical code. The codes carry 37 and 55 bits and are looked up by
    /// this hash, so the key (an HSM's, in production) is what keeps a database copy from
    /// yielding usable codes.
    pub(crate) fn identity_code_hash(&self, kind: &str, code: &str) -> Result<Vec<u8>> {
        let mut mac = hmac_with(&self.identity_code_secret)?;
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// The stored form of the token of a counter activation link: HMAC under the same secret
    /// as the codes, with a label no code kind uses, so a link hash can never equal a code
    /// hash. The token has 256 bits, so the hash is what the row is looked up by; the key keeps
    /// a database copy from yielding usable links.
    pub(crate) fn activation_link_hash(&self, token: &str) -> Result<Vec<u8>> {
        let mut mac = hmac_with(&self.identity_code_secret)?;
        mac.update(ACTIVATION_LINK_LABEL.as_bytes());
        mac.update(&[0]);
        mac.update(token.as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

/// The label of activation link hashes (code hashes are labelled with their kind, `eid` or
/// `counter`).
const ACTIVATION_LINK_LABEL: &str = "counter-link";

/// The label of the hashes of numbers without a usable key.
const UNANSWERABLE_NUMBER_LABEL: &str = "unanswerable-number";

impl Keys {
    /// The stored form of a phone number asked for that has no usable key: HMAC under the
    /// codes' secret, with a label of its own. Nothing but the limits per person needs the
    /// number, and they compare hashes; a database copy does not list the numbers relying
    /// parties asked about (Belgian mobile numbers are few enough to hash them all, so the key,
    /// an HSM's in production, is what protects them).
    pub(crate) fn unanswerable_number_hash(&self, phone_number: &str) -> Result<Vec<u8>> {
        let mut mac = hmac_with(&self.identity_code_secret)?;
        mac.update(UNANSWERABLE_NUMBER_LABEL.as_bytes());
        mac.update(&[0]);
        mac.update(phone_number.as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

fn hmac_with(key: &[u8]) -> Result<Hmac<Sha256>> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|_| ServerError::Internal("HMAC key of invalid length".into()))
}

fn signing_key(conn: &impl Sql, name: &str) -> Result<SigningKey, StartError> {
    if let Some(bytes) = secrets::load(conn, name)? {
        return SigningKey::from_slice(&bytes).map_err(|_| StartError::DatabaseUnusable {
            path: "the server database".into(),
            detail: format!("stored key {name} is not a P-256 private key"),
        });
    }
    let key = SigningKey::try_generate()
        .map_err(|e| ServerError::Internal(format!("OS random generator failed: {e}")))?;
    let bytes = Zeroizing::new(key.to_bytes().to_vec());
    secrets::insert(conn, name, &bytes, clock::now())?;
    Ok(key)
}

fn secret(conn: &impl Sql, name: &str) -> Result<Zeroizing<Vec<u8>>, StartError> {
    if let Some(bytes) = secrets::load(conn, name)? {
        if bytes.len() != SECRET_BYTES {
            return Err(StartError::DatabaseUnusable {
                path: "the server database".into(),
                detail: format!("stored secret {name} has the wrong length"),
            });
        }
        return Ok(bytes);
    }
    let bytes = Zeroizing::new(crate::random::bytes::<SECRET_BYTES>()?.to_vec());
    secrets::insert(conn, name, &bytes, clock::now())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_in(path: &std::path::Path) -> Keys {
        let db = crate::store::Store::open_sqlite(path).unwrap();
        let keys = Keys::load_or_create(&db).unwrap();
        db.close();
        keys
    }

    #[test]
    fn keys_survive_a_reopen_and_banks_have_distinct_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let first = keys_in(&path);
        let second = keys_in(&path);
        assert_eq!(first.jwks(), second.jwks());
        assert_eq!(
            first.pairwise_subject("rp", "acct").unwrap(),
            second.pairwise_subject("rp", "acct").unwrap()
        );
        let kbc = first.trusted_issuer("bank:kbc").unwrap().0.to_owned();
        let ing = first.trusted_issuer("bank:ing").unwrap().0.to_owned();
        assert_ne!(kbc, ing);
        assert!(first.trusted_issuer("bank:evil").is_none());
    }

    #[test]
    fn pairwise_subjects_differ_per_relying_party() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys_in(&dir.path().join("k.db"));
        assert_ne!(
            keys.pairwise_subject("a", "acct").unwrap(),
            keys.pairwise_subject("b", "acct").unwrap()
        );
    }

    #[test]
    fn a_link_hash_differs_from_a_code_hash_of_the_same_text() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys_in(&dir.path().join("k.db"));
        let text = "ACDEFGHJKMNP";
        assert_ne!(
            keys.activation_link_hash(text).unwrap(),
            keys.identity_code_hash("counter", text).unwrap()
        );
        assert_eq!(
            keys.activation_link_hash(text).unwrap(),
            keys.activation_link_hash(text).unwrap()
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys_in(&dir.path().join("k.db"));
        let shown = format!("{keys:?}");
        assert!(shown.contains(&keys.server.kid));
        assert!(!shown.contains("secret"));
    }
}
