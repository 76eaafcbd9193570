//! The DPoP-style proof (RFC 9449 shape) that every phone request carries.
//!
//! The phone signs, with its device key, the method, the URL, the time, a unique id and the
//! SHA-256 of the body. The public key travels in the header, so the server can both verify the
//! proof and identify the device by the key's thumbprint. The server refuses stale proofs and
//! remembers every proof id for [`PROOF_REMEMBER_SECS`](crate::limits::PROOF_REMEMBER_SECS)
//! (the maximum age plus the clock skew) to refuse replays.

use p256::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::jose::{self, Es256Signer, Header, Jwk, UnverifiedJws};
use crate::limits::{CLOCK_SKEW_SECS, MAX_ID_CHARS, PROOF_MAX_AGE_SECS};
use crate::{ProtocolError, Result};

/// The `typ` of a proof.
pub const PROOF_TYP: &str = "sleutel-dpop+jwt";

/// The HTTP header that carries the proof.
pub const PROOF_HEADER: &str = "DPoP";

/// The claims of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofClaims {
    /// Unique id of this proof.
    pub jti: String,
    /// HTTP method, upper case.
    pub htm: String,
    /// The full URL of the request, without fragment.
    pub htu: String,
    /// When the proof was made (Unix seconds).
    pub iat: i64,
    /// base64url SHA-256 of the request body (of the empty string for a body-less request).
    pub bh: String,
}

/// Makes a proof for a request. `jti` must be fresh and random for every request.
pub fn make_proof<S: Es256Signer>(
    signer: &S,
    jwk: &Jwk,
    method: &str,
    url: &str,
    body: &[u8],
    jti: &str,
    now: i64,
) -> std::result::Result<String, S::Error> {
    let claims = ProofClaims {
        jti: jti.to_owned(),
        htm: method.to_ascii_uppercase(),
        htu: url.to_owned(),
        iat: now,
        bh: jose::sha256_b64(body),
    };
    let header = Header::es256(PROOF_TYP).with_jwk(jwk.clone());
    let payload = serde_json::to_vec(&claims).unwrap_or_default();
    jose::sign_compact(&header, &payload, signer)
}

/// A proof whose signature, method, path, body hash and age were checked.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The device key that signed it.
    pub jwk: Jwk,
    /// The same key, parsed: verifies the device's other signatures without parsing it again.
    pub key: VerifyingKey,
    /// RFC 7638 thumbprint of that key: how the server finds the device.
    pub jkt: String,
    /// The proof id, for the server's replay cache.
    pub jti: String,
    /// When it was made.
    pub iat: i64,
}

/// Verifies a proof against the request the server received. `path_and_query` is the request
/// target as the server saw it; the proof's `htu` must name the same path and query.
///
/// Replay is not checked here: the caller must record `jti` and refuse one it has seen.
pub fn verify_proof(
    token: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: i64,
) -> Result<VerifiedProof> {
    let jws = UnverifiedJws::parse(token, "proof")?;
    let jwk = jws
        .header
        .jwk
        .clone()
        .ok_or_else(|| ProtocolError::malformed("proof", "header has no jwk"))?;
    let key = jwk.to_verifying_key()?;
    let payload = jws.verify(&key, PROOF_TYP, "proof")?;
    let claims: ProofClaims = jose::parse_claims(&payload, "proof")?;

    if claims.jti.is_empty() || claims.jti.len() > MAX_ID_CHARS {
        return Err(ProtocolError::invalid("proof.jti", "length"));
    }
    if !claims.htm.eq_ignore_ascii_case(method) {
        return Err(ProtocolError::mismatch(
            "proof.htm",
            format!("{} vs {method}", claims.htm),
        ));
    }
    // The origin is not compared: a phone may reach the server under another host name than
    // the one the server listens on, and the device key is bound to this one server anyway.
    let htu = url::Url::parse(&claims.htu)
        .map_err(|e| ProtocolError::malformed("proof.htu", e.to_string()))?;
    let proof_target = match htu.query() {
        Some(q) => format!("{}?{q}", htu.path()),
        None => htu.path().to_owned(),
    };
    if proof_target != path_and_query {
        return Err(ProtocolError::mismatch(
            "proof.htu",
            format!("{proof_target} vs {path_and_query}"),
        ));
    }
    if claims.iat > now + CLOCK_SKEW_SECS {
        return Err(ProtocolError::NotYetValid("proof"));
    }
    if claims.iat < now - PROOF_MAX_AGE_SECS {
        return Err(ProtocolError::Expired("proof"));
    }
    if claims.bh != jose::sha256_b64(body) {
        return Err(ProtocolError::mismatch("proof.bh", "body hash differs"));
    }
    Ok(VerifiedProof {
        jkt: jwk.thumbprint(),
        jwk,
        key,
        jti: claims.jti,
        iat: claims.iat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::elliptic_curve::Generate;

    const NOW: i64 = 1_800_000_000;

    fn proof(key: &SigningKey, url: &str, body: &[u8], iat: i64) -> String {
        let jwk = Jwk::from_verifying_key(key.verifying_key());
        make_proof(key, &jwk, "post", url, body, "id-1", iat).unwrap()
    }

    #[test]
    fn valid_proof_identifies_the_key() {
        let key = SigningKey::generate();
        let token = proof(&key, "http://h:1/v1/requests?x=1", b"{}", NOW);
        let v = verify_proof(&token, "POST", "/v1/requests?x=1", b"{}", NOW).unwrap();
        assert_eq!(
            v.jkt,
            Jwk::from_verifying_key(key.verifying_key()).thumbprint()
        );
        assert_eq!(v.jti, "id-1");
        assert_eq!(&v.key, key.verifying_key());
    }

    #[test]
    fn a_proof_whose_header_has_crit_is_refused() {
        let key = SigningKey::generate();
        let jwk = serde_json::to_string(&Jwk::from_verifying_key(key.verifying_key())).unwrap();
        let header = format!(r#"{{"alg":"ES256","typ":"{PROOF_TYP}","jwk":{jwk},"crit":["x"]}}"#);
        let claims = format!(
            r#"{{"jti":"id-1","htm":"POST","htu":"http://h/v1/a","iat":{NOW},"bh":"{}"}}"#,
            jose::sha256_b64(b"{}")
        );
        let input = format!("{}.{}", jose::b64(header), jose::b64(claims));
        let Ok(signature) = jose::Es256Signer::sign_es256(&key, input.as_bytes());
        let token = format!("{input}.{}", jose::b64(signature));
        assert_eq!(
            verify_proof(&token, "POST", "/v1/a", b"{}", NOW).unwrap_err(),
            ProtocolError::CriticalHeader("proof")
        );
    }

    #[test]
    fn other_path_method_body_or_time_is_refused() {
        let key = SigningKey::generate();
        let token = proof(&key, "http://h/v1/a", b"{}", NOW);
        assert!(verify_proof(&token, "POST", "/v1/b", b"{}", NOW).is_err());
        assert!(verify_proof(&token, "GET", "/v1/a", b"{}", NOW).is_err());
        assert!(verify_proof(&token, "POST", "/v1/a", b"{\"x\":1}", NOW).is_err());
        assert_eq!(
            verify_proof(&token, "POST", "/v1/a", b"{}", NOW + PROOF_MAX_AGE_SECS + 1).unwrap_err(),
            ProtocolError::Expired("proof")
        );
        assert_eq!(
            verify_proof(&token, "POST", "/v1/a", b"{}", NOW - CLOCK_SKEW_SECS - 1).unwrap_err(),
            ProtocolError::NotYetValid("proof")
        );
    }
}
