//! What the fuzz targets share: the fixed keys, names and time they check messages against, and
//! the signing of a fuzzed payload, so that a target reaches the checks behind a signature
//! (a fuzzer cannot forge ES256; it can only mutate what is signed for it).
//!
//! A signed target reads its input as a mode byte and the rest: with [`SIGNED`] set, the rest
//! is a payload the target signs before handing the token over; otherwise the rest is the token
//! as received. The seeds (`examples/make_seeds.rs`) come in both modes.

use std::sync::OnceLock;

use p256::ecdsa::SigningKey;
use sleutel_protocol::jose::{self, Es256Signer, GeneralJws, Header, Jwk, Jwks, RingSigningKey};
use sleutel_protocol::response::{ActionResponse, KID_DEVICE, KID_PIN, RESPONSE_TYP};

/// The time every target checks at (2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// The server's base URL, the issuer of action requests and ID tokens.
pub const SERVER_URL: &str = "https://sleutel.example";

/// The account action requests are for.
pub const ACCOUNT_ID: &str = "acct-1";

/// The enrollment identity tokens and bank return links are for, with its nonce.
pub const ENROLLMENT_ID: &str = "enr-1";

/// The nonce of [`ENROLLMENT_ID`].
pub const NONCE: &str = "nonce-1";

/// The relying party ID tokens are for.
pub const CLIENT_ID: &str = "online-overheid";

/// The relying party that authenticates with `private_key_jwt` and [`signing_key`].
pub const KEY_CLIENT_ID: &str = "rp-keys";

/// The key id of [`signing_key`] where a JWKS publishes it.
pub const KID: &str = "k1";

/// The request an answer in the `general_jws` target answers.
pub const REQUEST_ID: &str = "req-1";

/// The compact JWS of [`REQUEST_ID`], whose hash an answer must carry.
pub const REQUEST_JWS: &str = "e30.e30.c2ln";

/// The mode bit of a signed target's first byte: the rest is a payload to sign.
pub const SIGNED: u8 = 1;

/// The one key that signs everything the targets sign: the server's, every bank's, the
/// phone's device and PIN keys, the relying party's. Fixed, so that seeds made once stay
/// verifiable.
pub fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        // A fixed scalar far below the group order: always a valid key.
        let mut scalar = [0u8; 32];
        scalar[31] = 0x2a;
        scalar[0] = 0x11;
        match SigningKey::from_slice(&scalar) {
            Ok(key) => key,
            Err(_) => unreachable!("a fixed scalar below the order is a key"),
        }
    })
}

/// The public key of [`signing_key`] as a JWK.
pub fn jwk() -> Jwk {
    Jwk::from_verifying_key(signing_key().verifying_key())
}

/// [`jwk`] published under `kid`, alone in a set.
pub fn jwks(kid: &str) -> Jwks {
    Jwks {
        keys: vec![jwk().published(kid)],
    }
}

/// The RFC 7638 thumbprint of [`jwk`]: the key id the server gives its own and the banks' keys.
pub fn thumbprint() -> String {
    jwk().thumbprint()
}

/// [`signing_key`] held by `ring`, which every target signs with. RustCrypto's `p256` would
/// sign through coverage-instrumented field arithmetic, which took most of each execution of a
/// signed target; `ring`'s is assembly that the instrumentation does not reach. Its nonces are
/// random (hedged with the key and message), so a signature differs from run to run; what a
/// target checks never depends on the signature's bytes, only on whether it verifies.
fn signer() -> &'static RingSigningKey {
    static SIGNER: OnceLock<RingSigningKey> = OnceLock::new();
    SIGNER.get_or_init(|| match RingSigningKey::from_p256(signing_key()) {
        Ok(signer) => signer,
        Err(_) => unreachable!("ring takes every P-256 key p256 does"),
    })
}

/// `payload` signed with [`signing_key`] (through `ring`) as a compact JWS under `header`: what
/// a target signs at each execution.
pub fn sign(header: &Header, payload: &[u8]) -> String {
    match jose::sign_compact(header, payload, signer()) {
        Ok(token) => token,
        Err(_) => unreachable!("ring signs unless the system's randomness fails"),
    }
}

/// `payload` signed with [`signing_key`] by `p256`, whose signatures are deterministic (RFC
/// 6979), as a compact JWS under `header`: what the seeds hold, so that the generator writes
/// the same bytes each time (the test `seeds_are_valid` compares them).
pub fn sign_for_seed(header: &Header, payload: &[u8]) -> String {
    match jose::sign_compact(header, payload, signing_key()) {
        Ok(token) => token,
        Err(e) => match e {},
    }
}

/// A phone's answer over `payload`, signed through `ring` by the device key and (when
/// `approve`) the PIN key, both [`signing_key`], as general-JSON JWS.
pub fn sign_response(payload: &[u8], approve: bool) -> GeneralJws {
    response_signed_by(signer(), payload, approve)
}

/// [`sign_response`] with `p256`'s deterministic signatures, for the seeds.
pub fn sign_response_for_seed(payload: &[u8], approve: bool) -> GeneralJws {
    response_signed_by(signing_key(), payload, approve)
}

fn response_signed_by<S: Es256Signer>(signer: &S, payload: &[u8], approve: bool) -> GeneralJws {
    let mut jws = GeneralJws::new(payload);
    let mut headers = vec![ActionResponse::device_header()];
    if approve {
        headers.push(Header::es256(RESPONSE_TYP).with_kid(KID_PIN));
    }
    for header in &headers {
        if jws.add_signature(header, signer).is_err() {
            unreachable!("both signers sign unless the system's randomness fails");
        }
    }
    debug_assert_eq!(jws.signatures.len(), headers.len());
    debug_assert!(headers[0].kid.as_deref() == Some(KID_DEVICE));
    jws
}

/// A signed target's input: whether the rest is a payload to sign, and the rest.
pub fn mode(data: &[u8]) -> Option<(bool, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((first & SIGNED != 0, rest))
}

/// Input that is text, as every reader here takes text (links, tokens, JSON read as a string).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

pub mod seeds;
pub mod targets;
