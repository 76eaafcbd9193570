//! JOSE for P-256: base64url, JWKs (RFC 7517/7518), thumbprints (RFC 7638), and ES256 JWS in
//! compact form and in general JSON serialization with several signatures (RFC 7515 §7.2.1).
//!
//! Only ES256 is ever accepted: a header naming any other algorithm (`none`, `HS256`, ...) is
//! refused before any key is used, which closes the classic algorithm-confusion attacks. A
//! received header that marks parameters as critical (`crit`) is refused when it is decoded: we
//! understand no JWS extension, and RFC 7515 §4.1.11 makes a recipient reject what it does not
//! understand. Signatures are accepted only in their low-S form (s ≤ n/2), so one signature has
//! exactly one valid encoding, and every signer here produces that form.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
#[cfg(any(not(feature = "ring"), test))]
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::scalar::IsHigh;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::limits::MAX_JWS_BYTES;
use crate::{ProtocolError, Result};

/// The only JWS algorithm the protocol uses.
pub const ES256: &str = "ES256";

/// Length of a raw ES256 signature (`r || s`, 32 bytes each).
pub const SIGNATURE_LEN: usize = 64;

/// Encodes bytes as base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `what` names the field in the error.
pub fn b64_decode(text: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| ProtocolError::malformed(what, format!("base64url: {e}")))
}

/// base64url of SHA-256 of `data`: used for request hashes, body hashes and thumbprints.
pub fn sha256_b64(data: impl AsRef<[u8]>) -> String {
    b64(Sha256::digest(data.as_ref()))
}

/// A P-256 public key as a JSON Web Key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: always `EC`.
    pub kty: String,
    /// Curve: always `P-256`.
    pub crv: String,
    /// base64url of the 32-byte x coordinate.
    pub x: String,
    /// base64url of the 32-byte y coordinate.
    pub y: String,
    /// Key id, where the key is published in a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use (`sig`), where the key is published in a set.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Algorithm (`ES256`), where the key is published in a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

impl Jwk {
    /// The JWK of a P-256 verifying key, without `kid`.
    pub fn from_verifying_key(key: &VerifyingKey) -> Self {
        let point = key.to_sec1_point(false);
        // An uncompressed SEC1 point is 0x04 || x || y.
        let bytes = point.as_bytes();
        Self {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: b64(&bytes[1..33]),
            y: b64(&bytes[33..65]),
            kid: None,
            use_: None,
            alg: None,
        }
    }

    /// The JWK of a public key given as SEC1 bytes (compressed or uncompressed).
    pub fn from_sec1(bytes: &[u8]) -> Result<Self> {
        Ok(Self::from_verifying_key(&verifying_key_from_sec1(bytes)?))
    }

    /// Sets the key id, use and algorithm, as published in a JWKS.
    pub fn published(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self.use_ = Some("sig".into());
        self.alg = Some(ES256.into());
        self
    }

    /// The verifying key, after checking the key type, curve and that the point is on the curve.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey> {
        if self.kty != "EC" || self.crv != "P-256" {
            return Err(ProtocolError::InvalidKey(format!(
                "expected EC P-256, got {} {}",
                self.kty, self.crv
            )));
        }
        let x = b64_decode(&self.x, "jwk.x")?;
        let y = b64_decode(&self.y, "jwk.y")?;
        if x.len() != 32 || y.len() != 32 {
            return Err(ProtocolError::InvalidKey(
                "coordinates must be 32 bytes".into(),
            ));
        }
        let mut sec1 = Vec::with_capacity(65);
        sec1.push(0x04);
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        verifying_key_from_sec1(&sec1)
    }

    /// RFC 7638 thumbprint: base64url SHA-256 of the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            self.crv, self.kty, self.x, self.y
        );
        sha256_b64(canonical)
    }
}

/// A JSON Web Key Set, as served at the JWKS URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The key with this `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Parses a SEC1-encoded P-256 public key.
pub fn verifying_key_from_sec1(bytes: &[u8]) -> Result<VerifyingKey> {
    VerifyingKey::from_sec1_bytes(bytes)
        .map_err(|_| ProtocolError::InvalidKey("not a P-256 point".into()))
}

/// Something that can produce ES256 signatures: a software key, or a key held by the platform
/// keystore. Returns the raw 64-byte `r || s` signature over SHA-256 of `message`.
pub trait Es256Signer {
    /// The error the signer can fail with (user cancelled, key invalidated, ...).
    type Error;
    /// Signs `message`.
    fn sign_es256(&self, message: &[u8]) -> std::result::Result<Vec<u8>, Self::Error>;
}

impl Es256Signer for SigningKey {
    type Error = std::convert::Infallible;
    fn sign_es256(&self, message: &[u8]) -> std::result::Result<Vec<u8>, Self::Error> {
        // p256 does not normalise s itself (NIST P-256 allows both forms); we only accept low S.
        // The signature is already parsed here, so it is normalised directly rather than
        // through `low_s_signature`, which would add an error case that cannot happen.
        let signature: Signature = self.sign(message);
        Ok(signature.normalize_s().to_bytes().to_vec())
    }
}

/// The low-S form of a raw 64-byte ES256 signature (`r || s`): `(r, n - s)` where s > n/2, the
/// signature unchanged otherwise. Both forms are valid ECDSA, but [`verify_es256`] accepts only
/// the low one, so a signer whose output we do not control (a platform keystore) passes its
/// signatures through this. Anything but 64 bytes holding two scalars in range is refused.
pub fn low_s_signature(signature: &[u8]) -> Result<Vec<u8>> {
    let parsed = Signature::from_slice(signature).map_err(|_| {
        ProtocolError::malformed("signature", "not a raw 64-byte r || s ES256 signature")
    })?;
    Ok(parsed.normalize_s().to_bytes().to_vec())
}

/// Verifies a raw 64-byte ES256 signature over `message`; `what` names the message in the error.
///
/// A high-S signature (s > n/2) is refused even though ECDSA would accept it: (r, s) and
/// (r, n - s) both verify, so accepting both would give one signature two encodings, and
/// anything that tells signatures or whole messages apart by their bytes (a replay cache, the
/// hash a response is bound to) could be fooled by the twin.
pub fn verify_es256(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
    what: &'static str,
) -> Result<()> {
    // Parsing refuses r or s outside [1, n), whichever backend then checks the equation.
    let signature =
        Signature::from_slice(signature).map_err(|_| ProtocolError::BadSignature(what))?;
    if bool::from(signature.s().is_high()) {
        return Err(ProtocolError::BadSignature(what));
    }
    if ecdsa_verifies(key, message, &signature) {
        Ok(())
    } else {
        Err(ProtocolError::BadSignature(what))
    }
}

/// The ECDSA equation itself, by RustCrypto's `p256`.
#[cfg(not(feature = "ring"))]
fn ecdsa_verifies(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    key.verify(message, signature).is_ok()
}

/// The ECDSA equation itself, by `ring` (the `ring` feature): the same answer as `p256` for
/// every input (the test `ring_and_p256_agree` holds them to it), in about a quarter of the time.
#[cfg(feature = "ring")]
fn ecdsa_verifies(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    let point = key.to_sec1_point(false);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_bytes())
        .verify(message, &signature.to_bytes())
        .is_ok()
}

/// A P-256 signing key held by `ring` (the `ring` feature), for a signer that signs often: the
/// server signs every action request and ID token, and `ring` signs in about a tenth of
/// `p256`'s time. Its signatures are normalised to low S like every signer's here.
///
/// `ring` does not wipe its copy of the private scalar when the key is dropped, as `p256`'s
/// `SigningKey` does: hold one for the life of the process (the server's keys), not per use.
#[cfg(feature = "ring")]
pub struct RingSigningKey {
    pair: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

#[cfg(feature = "ring")]
impl RingSigningKey {
    /// The same key as `key`, held by `ring`.
    pub fn from_p256(key: &SigningKey) -> Result<Self> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let secret = zeroize::Zeroizing::new(key.to_bytes());
        let public = key.verifying_key().to_sec1_point(false);
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            secret.as_slice(),
            public.as_bytes(),
            &rng,
        )
        .map_err(|e| ProtocolError::InvalidKey(format!("ring refused the key: {e}")))?;
        Ok(Self { pair, rng })
    }
}

// Nothing secret is shown: ring's key pair prints only its public key.
#[cfg(feature = "ring")]
impl std::fmt::Debug for RingSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSigningKey").finish_non_exhaustive()
    }
}

#[cfg(feature = "ring")]
impl Es256Signer for RingSigningKey {
    type Error = ProtocolError;
    fn sign_es256(&self, message: &[u8]) -> std::result::Result<Vec<u8>, Self::Error> {
        let signature = self
            .pair
            .sign(&self.rng, message)
            .map_err(|_| ProtocolError::InvalidKey("ring could not sign".into()))?;
        low_s_signature(signature.as_ref())
    }
}

/// Whether `signature`, a raw ES256 signature in base64url as request bodies carry one (a proof
/// of possession, a signature by the current PIN key), verifies over `message` with `key`. One
/// that is not base64url, or that is high-S, does not verify, as in [`verify_es256`].
pub fn verifies_b64(key: &VerifyingKey, message: impl AsRef<[u8]>, signature: &str) -> bool {
    b64_decode(signature, "signature")
        .is_ok_and(|raw| verify_es256(key, message.as_ref(), &raw, "signature").is_ok())
}

/// The protected header of every JWS in the protocol.
///
/// A received header is decoded by [`UnverifiedJws::parse`] or [`GeneralJws`], which refuse a
/// header with `crit`; this struct has no field for it because nothing we send carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `ES256`.
    pub alg: String,
    /// The message type (`sleutel-action+jwt`, `sleutel-dpop+jwt`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Which key signed: a published key id, or a role (`device`, `pin`) in responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The signer's public key, where the receiver does not know it yet (DPoP proofs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
}

impl Header {
    /// An ES256 header with the given type.
    pub fn es256(typ: &str) -> Self {
        Self {
            alg: ES256.into(),
            typ: Some(typ.into()),
            kid: None,
            jwk: None,
        }
    }

    /// Sets `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets `jwk`.
    pub fn with_jwk(mut self, jwk: Jwk) -> Self {
        self.jwk = Some(jwk);
        self
    }

    /// Refuses anything but ES256 and, where given, any type other than `typ`.
    pub fn expect(&self, typ: &str) -> Result<()> {
        if self.alg != ES256 {
            return Err(ProtocolError::UnexpectedHeader(format!(
                "alg {} (only ES256 is accepted)",
                self.alg
            )));
        }
        if self.typ.as_deref() != Some(typ) {
            return Err(ProtocolError::UnexpectedHeader(format!(
                "typ {:?}, expected {typ}",
                self.typ
            )));
        }
        Ok(())
    }
}

/// Decodes a received protected header (base64url of JSON), refusing one with a `crit` member:
/// we understand no JWS extension, so RFC 7515 §4.1.11 requires rejecting the JWS. Every
/// received header goes through here, so no verifier can skip the check. The member is refused
/// whatever its value, even `null` or an empty list, which the RFC forbids anyway.
fn decode_header(protected: &str, what: &'static str) -> Result<Header> {
    let json = b64_decode(protected, what)?;
    let critical: CriticalMember = serde_json::from_slice(&json)
        .map_err(|e| ProtocolError::malformed(what, format!("header: {e}")))?;
    if critical.crit {
        return Err(ProtocolError::CriticalHeader(what));
    }
    serde_json::from_slice(&json)
        .map_err(|e| ProtocolError::malformed(what, format!("header: {e}")))
}

/// Whether a header names a `crit` member. Read apart from [`Header`], so that the header stays
/// what we send and the refusal stays in one place.
#[derive(Deserialize)]
struct CriticalMember {
    #[serde(default, deserialize_with = "member_present")]
    crit: bool,
}

/// True for any value: only called when the member is there (absent, `default` gives false).
fn member_present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// The signing input of a JWS: `base64url(header) || '.' || base64url(payload)`.
pub fn signing_input(header: &Header, payload: &[u8]) -> String {
    format!("{}.{}", encode_header(header), b64(payload))
}

/// base64url of the header's JSON. Serialising these plain structs cannot fail; if it ever did,
/// the empty header would be refused by every receiver, never taken for another one.
fn encode_header(header: &Header) -> String {
    b64(serde_json::to_vec(header).unwrap_or_default())
}

/// Signs `payload` as a compact JWS with `header`.
pub fn sign_compact<S: Es256Signer>(
    header: &Header,
    payload: &[u8],
    signer: &S,
) -> std::result::Result<String, S::Error> {
    let input = signing_input(header, payload);
    let signature = signer.sign_es256(input.as_bytes())?;
    Ok(format!("{input}.{}", b64(signature)))
}

/// A compact JWS split into its parts, not yet verified.
#[derive(Debug, Clone)]
pub struct UnverifiedJws {
    /// The decoded protected header.
    pub header: Header,
    signing_input: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl UnverifiedJws {
    /// Splits and decodes a compact JWS, refusing oversize or malformed input and a header with
    /// critical extensions.
    pub fn parse(token: &str, what: &'static str) -> Result<Self> {
        if token.len() > MAX_JWS_BYTES {
            return Err(ProtocolError::TooLarge {
                what,
                size: token.len(),
                max: MAX_JWS_BYTES,
            });
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ProtocolError::malformed(
                what,
                "a compact JWS has three parts",
            ));
        };
        Ok(Self {
            header: decode_header(h, what)?,
            signing_input: format!("{h}.{p}"),
            payload: b64_decode(p, what)?,
            signature: b64_decode(s, what)?,
        })
    }

    /// Verifies the signature with `key` after checking alg and typ, and returns the payload.
    pub fn verify(self, key: &VerifyingKey, typ: &str, what: &'static str) -> Result<Vec<u8>> {
        self.header.expect(typ)?;
        verify_es256(key, self.signing_input.as_bytes(), &self.signature, what)?;
        Ok(self.payload)
    }

    /// Verifies the signature with `key` after checking that alg is ES256, whatever the `typ`,
    /// and returns the payload: for JWTs that other parties' libraries sign, such as client
    /// assertions (RFC 7523 sets no type; libraries send `JWT` or nothing).
    ///
    /// Unlike [`Self::verify`], a high-S signature is accepted: such libraries (WebCrypto, JCA)
    /// return either form, as RFC 7518 allows, and nothing keyed on these tokens reads their
    /// signature bytes (a client assertion's replay is caught by its `jti`), so the twin of a
    /// signature gains an attacker nothing.
    pub fn verify_any_type(self, key: &VerifyingKey, what: &'static str) -> Result<Vec<u8>> {
        if self.header.alg != ES256 {
            return Err(ProtocolError::UnexpectedHeader(format!(
                "alg {} (only ES256 is accepted)",
                self.header.alg
            )));
        }
        let low_s =
            low_s_signature(&self.signature).map_err(|_| ProtocolError::BadSignature(what))?;
        verify_es256(key, self.signing_input.as_bytes(), &low_s, what)?;
        Ok(self.payload)
    }

    /// The payload without verification: only for choosing a key, or for reading back a JWS
    /// this party signed and stored itself; never for a decision on what another party sent.
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Parses JSON claims, naming the message in the error.
pub fn parse_claims<T: DeserializeOwned>(payload: &[u8], what: &'static str) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| ProtocolError::malformed(what, e.to_string()))
}

/// One signature of a general JSON serialization JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwsSignature {
    /// base64url of the protected header.
    pub protected: String,
    /// base64url of the raw signature.
    pub signature: String,
}

/// A JWS in general JSON serialization (RFC 7515 §7.2.1): one payload, several signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralJws {
    /// base64url of the payload.
    pub payload: String,
    /// The signatures, each with its own protected header.
    pub signatures: Vec<JwsSignature>,
}

impl GeneralJws {
    /// Starts a JWS over `payload` with no signature yet.
    pub fn new(payload: &[u8]) -> Self {
        Self {
            payload: b64(payload),
            signatures: Vec::new(),
        }
    }

    /// Adds a signature under `header` made by `signer`.
    pub fn add_signature<S: Es256Signer>(
        &mut self,
        header: &Header,
        signer: &S,
    ) -> std::result::Result<(), S::Error> {
        // The protected text is encoded once, so what is sent is exactly what was signed.
        let protected = encode_header(header);
        let signature = signer.sign_es256(format!("{protected}.{}", self.payload).as_bytes())?;
        self.signatures.push(JwsSignature {
            protected,
            signature: b64(signature),
        });
        Ok(())
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>> {
        b64_decode(&self.payload, "jws payload")
    }

    /// The decoded header of every signature, in order; any header with critical extensions
    /// refuses the whole JWS.
    pub fn headers(&self) -> Result<Vec<Header>> {
        self.signatures
            .iter()
            .map(|s| decode_header(&s.protected, "jws protected header"))
            .collect()
    }

    /// Verifies the signature at `index` with `key`, after checking alg and typ.
    pub fn verify_signature(
        &self,
        index: usize,
        key: &VerifyingKey,
        typ: &str,
        what: &'static str,
    ) -> Result<()> {
        let entry = self
            .signatures
            .get(index)
            .ok_or_else(|| ProtocolError::malformed(what, "signature missing"))?;
        decode_header(&entry.protected, what)?.expect(typ)?;
        let input = format!("{}.{}", entry.protected, self.payload);
        verify_es256(
            key,
            input.as_bytes(),
            &b64_decode(&entry.signature, what)?,
            what,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::Generate;

    fn key() -> SigningKey {
        SigningKey::generate()
    }

    #[test]
    fn jwk_round_trips_and_has_stable_thumbprint() {
        let k = key();
        let jwk = Jwk::from_verifying_key(k.verifying_key());
        assert_eq!(&jwk.to_verifying_key().unwrap(), k.verifying_key());
        assert_eq!(jwk.thumbprint(), jwk.clone().published("x").thumbprint());
    }

    #[test]
    fn rfc7638_thumbprint_matches_known_vector() {
        // The sample key of RFC 9449 §4.1 and its `jkt` from §6.1.
        let jwk = Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs".into(),
            y: "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA".into(),
            kid: None,
            use_: None,
            alg: None,
        };
        assert_eq!(
            jwk.thumbprint(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        assert!(jwk.to_verifying_key().is_ok());
    }

    #[test]
    fn point_off_curve_is_refused() {
        let mut jwk = Jwk::from_verifying_key(key().verifying_key());
        jwk.y = jwk.x.clone();
        assert!(matches!(
            jwk.to_verifying_key(),
            Err(ProtocolError::InvalidKey(_))
        ));
    }

    #[test]
    fn compact_jws_verifies_and_tamper_fails() {
        let k = key();
        let token = sign_compact(&Header::es256("t"), b"{\"a\":1}", &k).unwrap();
        let payload = UnverifiedJws::parse(&token, "t")
            .unwrap()
            .verify(k.verifying_key(), "t", "t")
            .unwrap();
        assert_eq!(payload, b"{\"a\":1}");

        let mut parts: Vec<&str> = token.split('.').collect();
        let other = b64(b"{\"a\":2}");
        parts[1] = &other;
        let tampered = parts.join(".");
        let err = UnverifiedJws::parse(&tampered, "t")
            .unwrap()
            .verify(k.verifying_key(), "t", "t");
        assert_eq!(err, Err(ProtocolError::BadSignature("t")));
    }

    #[test]
    fn alg_none_and_wrong_typ_are_refused() {
        let k = key();
        let mut header = Header::es256("t");
        header.alg = "none".into();
        let token = sign_compact(&header, b"{}", &k).unwrap();
        let jws = UnverifiedJws::parse(&token, "t").unwrap();
        assert!(matches!(
            jws.verify(k.verifying_key(), "t", "t"),
            Err(ProtocolError::UnexpectedHeader(_))
        ));
        let token = sign_compact(&Header::es256("u"), b"{}", &k).unwrap();
        let jws = UnverifiedJws::parse(&token, "t").unwrap();
        assert!(matches!(
            jws.verify(k.verifying_key(), "t", "t"),
            Err(ProtocolError::UnexpectedHeader(_))
        ));
    }

    #[test]
    fn any_type_verification_accepts_the_high_s_twin_a_library_may_sign() {
        let k = key();
        let token = sign_compact(&Header::es256("JWT"), b"{}", &k).unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let high = b64(twin(&b64_decode(signature, "s").unwrap()));
        let jws = UnverifiedJws::parse(&format!("{input}.{high}"), "t").unwrap();
        assert_eq!(jws.verify_any_type(k.verifying_key(), "t").unwrap(), b"{}");
    }

    #[test]
    fn any_type_verification_refuses_a_signature_by_another_key() {
        let token = sign_compact(&Header::es256("JWT"), b"{}", &key()).unwrap();
        let jws = UnverifiedJws::parse(&token, "t").unwrap();
        let other = key();
        assert!(matches!(
            jws.verify_any_type(other.verifying_key(), "t"),
            Err(ProtocolError::BadSignature(_))
        ));
    }

    #[test]
    fn any_type_verification_accepts_any_typ_but_only_es256() {
        let k = key();
        let token = sign_compact(&Header::es256("JWT"), b"{}", &k).unwrap();
        let jws = UnverifiedJws::parse(&token, "t").unwrap();
        assert_eq!(jws.verify_any_type(k.verifying_key(), "t").unwrap(), b"{}");
        let mut header = Header::es256("JWT");
        header.alg = "HS256".into();
        let token = sign_compact(&header, b"{}", &k).unwrap();
        let jws = UnverifiedJws::parse(&token, "t").unwrap();
        assert!(matches!(
            jws.verify_any_type(k.verifying_key(), "t"),
            Err(ProtocolError::UnexpectedHeader(_))
        ));
    }

    #[test]
    fn malformed_and_oversize_compact_jws_are_refused() {
        assert!(UnverifiedJws::parse("a.b", "t").is_err());
        assert!(UnverifiedJws::parse("a.b.c.d", "t").is_err());
        assert!(UnverifiedJws::parse("!!.b.c", "t").is_err());
        let big = "a".repeat(MAX_JWS_BYTES + 1);
        assert!(matches!(
            UnverifiedJws::parse(&big, "t"),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    /// The other valid ECDSA encoding of `signature`: (r, n - s).
    fn twin(signature: &[u8]) -> Vec<u8> {
        let parsed = Signature::from_slice(signature).unwrap();
        let (r, _) = parsed.split_bytes();
        let negated = -*parsed.s();
        Signature::from_scalars(r, negated.to_bytes())
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    /// A compact JWS whose header carries `header_json` as sent, signed by `key`.
    fn compact_with_header(header_json: &str, key: &SigningKey) -> String {
        let input = format!("{}.{}", b64(header_json), b64(b"{}"));
        let signature = key.sign_es256(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature))
    }

    /// The `ring` backend gives p256's answer on valid signatures, signatures by another key,
    /// tampered messages and tampered signatures, and `RingSigningKey` signs what p256 verifies.
    #[cfg(feature = "ring")]
    #[test]
    fn ring_and_p256_agree() {
        use p256::elliptic_curve::Generate;
        for i in 0..32u8 {
            let signer = SigningKey::generate();
            let other = SigningKey::generate();
            let key = signer.verifying_key();
            let message = [i; 40];
            let good = signer.sign_es256(&message).unwrap();
            let mut bent = good.clone();
            bent[usize::from(i) % SIGNATURE_LEN] ^= 1 << (i % 8);
            let cases: [(&[u8], &[u8]); 4] = [
                (&message, &good),
                (&message[1..], &good),
                (&message, &other.sign_es256(&message).unwrap()),
                (&message, &bent),
            ];
            for (n, (msg, sig)) in cases.into_iter().enumerate() {
                let Ok(parsed) = Signature::from_slice(sig) else {
                    continue;
                };
                assert_eq!(
                    ecdsa_verifies(key, msg, &parsed),
                    key.verify(msg, &parsed).is_ok(),
                    "case {n} of round {i}"
                );
            }
            assert!(ecdsa_verifies(
                key,
                &message,
                &Signature::from_slice(&good).unwrap()
            ));

            let held = RingSigningKey::from_p256(&signer).unwrap();
            let signature = held.sign_es256(&message).unwrap();
            assert_eq!(low_s_signature(&signature).unwrap(), signature);
            let parsed = Signature::from_slice(&signature).unwrap();
            assert!(key.verify(&message, &parsed).is_ok());
            assert_eq!(verify_es256(key, &message, &signature, "m"), Ok(()));
        }
    }

    /// Signatures that are no ECDSA signature at all are refused before either library sees
    /// them: r or s zero, equal to the group order n, or above it. (This test runs with and
    /// without the `ring` feature: `cargo test -p sleutel-protocol` builds the crate without it.)
    #[test]
    fn out_of_range_signatures_are_refused_by_either_library() {
        let k = key();
        let good = k.sign_es256(b"message").unwrap();
        let n: [u8; 32] = [
            0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2,
            0xFC, 0x63, 0x25, 0x51,
        ];
        let (r, s) = good.split_at(32);
        let values: [&[u8]; 3] = [&[0u8; 32], &n, &[0xFF; 32]];
        for bad in values {
            for signature in [[bad, s].concat(), [r, bad].concat()] {
                assert_eq!(
                    verify_es256(k.verifying_key(), b"message", &signature, "m"),
                    Err(ProtocolError::BadSignature("m"))
                );
            }
        }
        assert_eq!(
            verify_es256(k.verifying_key(), b"message", &good, "m"),
            Ok(())
        );
    }

    #[test]
    fn signing_key_signatures_are_low_s() {
        let k = key();
        // Half of all raw ECDSA signatures are high-S; forty in a row low-S is no accident.
        for i in 0..40u8 {
            let signature = k.sign_es256(&[i]).unwrap();
            assert_eq!(low_s_signature(&signature).unwrap(), signature);
        }
    }

    #[test]
    fn a_high_s_signature_is_refused_while_its_low_s_twin_verifies() {
        let k = key();
        let low = k.sign_es256(b"message").unwrap();
        let high = twin(&low);
        assert_ne!(high, low);
        // Plain ECDSA accepts both forms: the twin is a real signature, not garbage.
        let parsed = Signature::from_slice(&high).unwrap();
        assert!(k.verifying_key().verify(b"message", &parsed).is_ok());

        assert_eq!(
            verify_es256(k.verifying_key(), b"message", &high, "m"),
            Err(ProtocolError::BadSignature("m"))
        );
        assert_eq!(
            verify_es256(k.verifying_key(), b"message", &low, "m"),
            Ok(())
        );
    }

    #[test]
    fn low_s_signature_normalises_the_high_twin_and_refuses_bad_lengths() {
        let low = key().sign_es256(b"message").unwrap();
        assert_eq!(low_s_signature(&twin(&low)).unwrap(), low);
        assert_eq!(low_s_signature(&low).unwrap(), low);
        for bad in [&low[..63], &[0u8; 64][..], &[]] {
            assert!(matches!(
                low_s_signature(bad),
                Err(ProtocolError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn a_compact_jws_with_a_high_s_signature_is_refused() {
        let k = key();
        let token = sign_compact(&Header::es256("t"), b"{}", &k).unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let high = format!(
            "{input}.{}",
            b64(twin(&b64_decode(signature, "t").unwrap()))
        );
        let jws = UnverifiedJws::parse(&high, "t").unwrap();
        assert_eq!(
            jws.verify(k.verifying_key(), "t", "t"),
            Err(ProtocolError::BadSignature("t"))
        );
    }

    #[test]
    fn a_compact_jws_with_crit_is_refused() {
        let k = key();
        for header in [
            r#"{"alg":"ES256","typ":"t","crit":["exp"],"exp":1}"#,
            r#"{"alg":"ES256","typ":"t","crit":[]}"#,
            r#"{"alg":"ES256","typ":"t","crit":null}"#,
        ] {
            let token = compact_with_header(header, &k);
            assert!(
                matches!(
                    UnverifiedJws::parse(&token, "t"),
                    Err(ProtocolError::CriticalHeader("t"))
                ),
                "{header}"
            );
        }
        // The same header without `crit` is fine: the refusal is about that member.
        let token = compact_with_header(r#"{"alg":"ES256","typ":"t","exp":1}"#, &k);
        let jws = UnverifiedJws::parse(&token, "t").unwrap();
        assert!(jws.verify(k.verifying_key(), "t", "t").is_ok());
    }

    #[test]
    fn a_general_jws_signature_with_crit_is_refused() {
        let k = key();
        let mut jws = GeneralJws::new(b"{}");
        jws.add_signature(&Header::es256("r").with_kid("device"), &k)
            .unwrap();
        let protected = b64(r#"{"alg":"ES256","typ":"r","kid":"pin","crit":["b64"],"b64":false}"#);
        let signature = k
            .sign_es256(format!("{protected}.{}", jws.payload).as_bytes())
            .unwrap();
        jws.signatures.push(JwsSignature {
            protected,
            signature: b64(signature),
        });
        assert_eq!(
            jws.headers(),
            Err(ProtocolError::CriticalHeader("jws protected header"))
        );
        assert_eq!(
            jws.verify_signature(1, k.verifying_key(), "r", "r"),
            Err(ProtocolError::CriticalHeader("r"))
        );
    }

    #[test]
    fn a_general_jws_with_a_high_s_signature_is_refused() {
        let k = key();
        let mut jws = GeneralJws::new(b"{}");
        jws.add_signature(&Header::es256("r"), &k).unwrap();
        let low = b64_decode(&jws.signatures[0].signature, "r").unwrap();
        jws.signatures[0].signature = b64(twin(&low));
        assert_eq!(
            jws.verify_signature(0, k.verifying_key(), "r", "r"),
            Err(ProtocolError::BadSignature("r"))
        );
    }

    #[test]
    fn general_jws_holds_two_independent_signatures() {
        let (a, b) = (key(), key());
        let mut jws = GeneralJws::new(b"{}");
        jws.add_signature(&Header::es256("r").with_kid("device"), &a)
            .unwrap();
        jws.add_signature(&Header::es256("r").with_kid("pin"), &b)
            .unwrap();
        assert!(jws.verify_signature(0, a.verifying_key(), "r", "r").is_ok());
        assert!(jws.verify_signature(1, b.verifying_key(), "r", "r").is_ok());
        assert!(
            jws.verify_signature(1, a.verifying_key(), "r", "r")
                .is_err()
        );
        assert!(
            jws.verify_signature(2, a.verifying_key(), "r", "r")
                .is_err()
        );
    }
}
