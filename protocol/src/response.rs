//! The phone's answer to an action request.
//!
//! A JWS in general JSON serialization with one payload and, for an approval, two signatures: the
//! device key (possession of this phone) and the user-verification key (knowledge of the code, or
//! the biometric key). A decline is signed by the device key alone. The payload binds the answer
//! to the exact request by the SHA-256 of the request JWS.

use serde::{Deserialize, Serialize};

use crate::jose::{self, GeneralJws, Header};
use crate::limits::{CLOCK_SKEW_SECS, MAX_ID_CHARS, PROOF_MAX_AGE_SECS};
use crate::{ProtocolError, Result};
use p256::ecdsa::VerifyingKey;

/// The `typ` of every signature on a response.
pub const RESPONSE_TYP: &str = "sleutel-response+jws";

/// The `kid` of the device-key signature.
pub const KID_DEVICE: &str = "device";
/// The `kid` of the PIN-key signature.
pub const KID_PIN: &str = "pin";
/// The `kid` of the biometric-key signature.
pub const KID_BIOMETRIC: &str = "biometric";

/// What the person decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Decision {
    /// Confirmed.
    Approve,
    /// Refused.
    Decline,
}

/// Why the person declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum DeclineReason {
    /// The person did not start this: a possible attack.
    NotMe,
    /// The person simply cancelled.
    Cancelled,
}

/// How the person verified an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum UvMethod {
    /// The 5-digit code.
    Pin,
    /// A biometric check.
    Biometric,
}

impl UvMethod {
    /// The `kid` of the signature this method produces.
    pub fn kid(self) -> &'static str {
        match self {
            UvMethod::Pin => KID_PIN,
            UvMethod::Biometric => KID_BIOMETRIC,
        }
    }
}

/// The payload of a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionResponse {
    /// The request answered.
    pub request_id: String,
    /// base64url SHA-256 of the request's compact JWS, exactly as received.
    pub request_hash: String,
    /// The decision.
    pub decision: Decision,
    /// Why, for a decline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeclineReason>,
    /// How the person verified, for an approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<UvMethod>,
    /// The claims the person consented to share.
    #[serde(default)]
    pub claims: Vec<String>,
    /// The number the person picked, under number matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    /// When the answer was made (Unix seconds).
    pub iat: i64,
}

impl ActionResponse {
    /// The payload bytes to sign.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The header of the device-key signature.
    pub fn device_header() -> Header {
        Header::es256(RESPONSE_TYP).with_kid(KID_DEVICE)
    }

    /// The header of the user-verification signature for `method`.
    pub fn uv_header(method: UvMethod) -> Header {
        Header::es256(RESPONSE_TYP).with_kid(method.kid())
    }

    /// Checks the payload's internal consistency and its binding to `request_id` / `request_jws`.
    pub fn validate(&self, request_id: &str, request_jws: &str, now: i64) -> Result<()> {
        if self.request_id.len() > MAX_ID_CHARS || self.request_id != request_id {
            return Err(ProtocolError::mismatch(
                "response.request_id",
                "other request",
            ));
        }
        if self.request_hash != jose::sha256_b64(request_jws) {
            return Err(ProtocolError::mismatch(
                "response.request_hash",
                "other request",
            ));
        }
        if self.iat > now + CLOCK_SKEW_SECS {
            return Err(ProtocolError::NotYetValid("response"));
        }
        if self.iat < now - PROOF_MAX_AGE_SECS {
            return Err(ProtocolError::Expired("response"));
        }
        match self.decision {
            Decision::Approve if self.method.is_none() || self.reason.is_some() => Err(
                ProtocolError::invalid("response", "an approval has a method and no reason"),
            ),
            Decision::Decline if self.reason.is_none() || self.method.is_some() => Err(
                ProtocolError::invalid("response", "a decline has a reason and no method"),
            ),
            _ => Ok(()),
        }
    }
}

/// A response whose payload was decoded and whose device signature verified. The
/// user-verification signature is checked separately (the server counts failures of that one).
#[derive(Debug, Clone)]
pub struct DeviceSignedResponse {
    /// The payload.
    pub response: ActionResponse,
    jws: GeneralJws,
}

impl DeviceSignedResponse {
    /// Decodes `jws` and verifies the device signature (always the first) with `device_key`.
    /// An approval must carry exactly one more signature, by the key of its method; a decline
    /// none.
    pub fn verify(jws: GeneralJws, device_key: &VerifyingKey) -> Result<Self> {
        let response: ActionResponse = jose::parse_claims(&jws.payload_bytes()?, "response")?;
        let headers = jws.headers()?;
        let expected = match response.decision {
            Decision::Approve => 2,
            Decision::Decline => 1,
        };
        if headers.len() != expected {
            return Err(ProtocolError::malformed(
                "response",
                format!("{expected} signature(s) expected, got {}", headers.len()),
            ));
        }
        if headers[0].kid.as_deref() != Some(KID_DEVICE) {
            return Err(ProtocolError::malformed(
                "response",
                "first signature must be the device's",
            ));
        }
        jws.verify_signature(0, device_key, RESPONSE_TYP, "response device signature")?;
        if let Some(method) = response.method
            && headers.get(1).and_then(|h| h.kid.as_deref()) != Some(method.kid())
        {
            return Err(ProtocolError::malformed(
                "response",
                "second signature must match method",
            ));
        }
        Ok(Self { response, jws })
    }

    /// Verifies the user-verification signature with `uv_key` (the PIN key or biometric key).
    pub fn verify_user(&self, uv_key: &VerifyingKey) -> Result<()> {
        self.jws.verify_signature(
            1,
            uv_key,
            RESPONSE_TYP,
            "response user-verification signature",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::elliptic_curve::Generate;

    const NOW: i64 = 1_800_000_000;

    fn approval(jws: &str) -> ActionResponse {
        ActionResponse {
            request_id: "r1".into(),
            request_hash: jose::sha256_b64(jws),
            decision: Decision::Approve,
            reason: None,
            method: Some(UvMethod::Pin),
            claims: vec![],
            number: None,
            iat: NOW,
        }
    }

    #[test]
    fn approval_needs_both_signatures() {
        let (device, pin) = (SigningKey::generate(), SigningKey::generate());
        let payload = approval("req-jws");
        let mut jws = GeneralJws::new(&payload.to_payload());
        jws.add_signature(&ActionResponse::device_header(), &device)
            .unwrap();
        jws.add_signature(&ActionResponse::uv_header(UvMethod::Pin), &pin)
            .unwrap();
        let verified = DeviceSignedResponse::verify(jws.clone(), device.verifying_key()).unwrap();
        verified.response.validate("r1", "req-jws", NOW).unwrap();
        assert!(verified.verify_user(pin.verifying_key()).is_ok());
        assert!(verified.verify_user(device.verifying_key()).is_err());
        assert!(verified.response.validate("r1", "other-jws", NOW).is_err());

        jws.signatures.pop();
        assert!(DeviceSignedResponse::verify(jws, device.verifying_key()).is_err());
    }

    /// A signed approval: device signature first, then the code's.
    fn signed_approval(device: &SigningKey, pin: &SigningKey) -> GeneralJws {
        let mut jws = GeneralJws::new(&approval("req-jws").to_payload());
        jws.add_signature(&ActionResponse::device_header(), device)
            .unwrap();
        jws.add_signature(&ActionResponse::uv_header(UvMethod::Pin), pin)
            .unwrap();
        jws
    }

    /// Replaces signature `index` by its high-S twin (r, n - s), which plain ECDSA accepts.
    fn make_high_s(jws: &mut GeneralJws, index: usize) {
        let raw = jose::b64_decode(&jws.signatures[index].signature, "test").unwrap();
        let low = p256::ecdsa::Signature::from_slice(&raw).unwrap();
        let (r, _) = low.split_bytes();
        let high = p256::ecdsa::Signature::from_scalars(r, (-*low.s()).to_bytes()).unwrap();
        jws.signatures[index].signature = jose::b64(high.to_bytes());
    }

    #[test]
    fn a_high_s_device_signature_is_refused() {
        let (device, pin) = (SigningKey::generate(), SigningKey::generate());
        let mut jws = signed_approval(&device, &pin);
        make_high_s(&mut jws, 0);
        assert_eq!(
            DeviceSignedResponse::verify(jws, device.verifying_key()).unwrap_err(),
            ProtocolError::BadSignature("response device signature")
        );
    }

    #[test]
    fn a_high_s_user_verification_signature_is_refused() {
        let (device, pin) = (SigningKey::generate(), SigningKey::generate());
        let mut jws = signed_approval(&device, &pin);
        make_high_s(&mut jws, 1);
        let verified = DeviceSignedResponse::verify(jws, device.verifying_key()).unwrap();
        assert_eq!(
            verified.verify_user(pin.verifying_key()),
            Err(ProtocolError::BadSignature(
                "response user-verification signature"
            ))
        );
    }

    #[test]
    fn a_response_signature_header_with_crit_is_refused() {
        let (device, pin) = (SigningKey::generate(), SigningKey::generate());
        let mut jws = signed_approval(&device, &pin);
        // The code's signature names a critical extension; the device's is unchanged.
        let protected = jose::b64(format!(
            r#"{{"alg":"ES256","typ":"{RESPONSE_TYP}","kid":"pin","crit":["x"],"x":1}}"#
        ));
        let input = format!("{protected}.{}", jws.payload);
        let Ok(signature) = jose::Es256Signer::sign_es256(&pin, input.as_bytes());
        jws.signatures[1] = jose::JwsSignature {
            protected,
            signature: jose::b64(signature),
        };
        assert!(matches!(
            DeviceSignedResponse::verify(jws, device.verifying_key()),
            Err(ProtocolError::CriticalHeader(_))
        ));
    }

    #[test]
    fn decline_with_a_method_is_inconsistent() {
        let mut r = approval("x");
        r.decision = Decision::Decline;
        assert!(r.validate("r1", "x", NOW).is_err());
        r.method = None;
        r.reason = Some(DeclineReason::NotMe);
        assert!(r.validate("r1", "x", NOW).is_ok());
    }
}
