//! Authentication of phone calls: the DPoP-style proof on every `/v1/` request, the replay cache
//! of proof ids, and finding the registered device behind a proof key.

use std::net::{IpAddr, SocketAddr};

use crate::rate::{self, Bucket, Limit};
use crate::store::{Sql, accounts};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use p256::ecdsa::VerifyingKey;
use sleutel_protocol::dpop::{self, PROOF_HEADER};
use sleutel_protocol::limits::PROOF_REMEMBER_SECS;

use crate::clock;
use crate::error::{Result, ServerError};
use crate::extract::RawBody;
use crate::server::AppState;

/// A phone request whose DPoP-style proof verified: signature, method, target, body hash and
/// age. Not yet remembered against replay: [`PhoneCall`] remembers it for every call of a key
/// the server knows, and the enrollment start remembers it itself, after its rate limits.
pub(crate) struct VerifiedProof {
    /// Thumbprint of the key that signed the proof.
    pub jkt: String,
    /// The proof's unique id.
    pub jti: String,
    /// The key that signed the proof.
    pub key: VerifyingKey,
    /// The raw request body, the exact bytes the proof's body hash covers.
    pub body: Bytes,
}

// The body may carry an SMS code: Debug shows only its length.
impl std::fmt::Debug for VerifiedProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedProof")
            .field("jkt", &self.jkt)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl FromRequest<AppState> for VerifiedProof {
    type Rejection = ServerError;

    /// Refuses a call that carries a proof from an address past its failed proofs before
    /// looking at the proof, and counts a proof that fails.
    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        // A call without a proof header is refused before anything costly, so it is neither
        // counted nor checked: counting would make the cheapest refusal cost a database write.
        let source = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip())
            .filter(|_| req.headers().contains_key(PROOF_HEADER));
        if let Some(source) = source {
            state
                .db(move |app, conn| check_proof_failures(app, conn, source))
                .await?;
        }
        let verified = Self::verify(req, state).await;
        if let (Err(ServerError::InvalidProof(_)), Some(source)) = (&verified, source) {
            state
                .db(move |app, conn| count_proof_failure(app, conn, source))
                .await?;
        }
        verified
    }
}

/// The policy's limit on failed proofs from one source address.
fn proof_failure_limit(app: &crate::server::App) -> Limit {
    Limit::per_minute(app.policy.max_proof_failures_per_source_per_minute)
}

/// Refuses a phone call from `source` while its failed proofs of the last minute are at the
/// policy's limit, before its proof is verified: a flood of bad proofs then costs the server a
/// read of one count each instead of a signature check.
fn check_proof_failures(
    app: &crate::server::App,
    conn: &mut crate::store::Conn<'_>,
    source: IpAddr,
) -> Result<()> {
    let limit = proof_failure_limit(app);
    rate::check(
        conn,
        Bucket::ProofFailuresBySource(source),
        limit,
        clock::now(),
    )?
    .map_err(|exceeded| ServerError::RateLimited {
        retry_after: exceeded.retry_after,
        detail: "too many failed proofs from this address".into(),
    })
}

/// Counts a failed proof from `source`, in the database like every limit, so that the
/// instances sharing a database count together.
fn count_proof_failure(
    app: &crate::server::App,
    conn: &mut crate::store::Conn<'_>,
    source: IpAddr,
) -> Result<()> {
    let limit = proof_failure_limit(app);
    rate::record(
        conn,
        Bucket::ProofFailuresBySource(source),
        limit,
        clock::now(),
    )
}

impl VerifiedProof {
    /// Reads the proof header and the body and verifies the proof.
    async fn verify(req: Request, state: &AppState) -> Result<Self> {
        let method = req.method().as_str().to_owned();
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| req.uri().path().to_owned());
        let mut proofs = req.headers().get_all(PROOF_HEADER).iter();
        // RFC 9449 §4.3: exactly one proof header.
        let token = match (proofs.next(), proofs.next()) {
            (Some(value), None) => value
                .to_str()
                .map_err(|_| ServerError::InvalidProof("the DPoP header is not text".into()))?
                .to_owned(),
            (None, _) => {
                return Err(ServerError::InvalidProof(
                    "the DPoP header is missing".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ServerError::InvalidProof(
                    "more than one DPoP header".into(),
                ));
            }
        };
        let RawBody(body) = RawBody::from_request(req, state).await?;
        let proof = dpop::verify_proof(&token, &method, &target, &body, clock::now())
            .map_err(|e| ServerError::InvalidProof(e.to_string()))?;
        Ok(Self {
            jkt: proof.jkt,
            jti: proof.jti,
            key: proof.key,
            body,
        })
    }
}

/// A phone request whose proof verified and was not seen before. The body is the exact bytes
/// the proof's body hash covers.
pub(crate) struct PhoneCall {
    /// Thumbprint of the key that signed the proof: the device (or enrollment) binding.
    pub jkt: String,
    /// That key: a registered device's key, when [`active_device`] finds one for `jkt`.
    pub key: VerifyingKey,
    /// The proof's id, unique per key: a code change is known by it.
    pub jti: String,
    /// The raw request body.
    pub body: Bytes,
}

// The body may carry an SMS code: Debug shows only its length.
impl std::fmt::Debug for PhoneCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneCall")
            .field("jkt", &self.jkt)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl FromRequest<AppState> for PhoneCall {
    type Rejection = ServerError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        let proof = VerifiedProof::from_request(req, state).await?;
        let (jkt, jti) = (proof.jkt.clone(), proof.jti.clone());
        state
            .db(move |_, conn| {
                if is_known_key(conn, &jkt)? {
                    record_proof(conn, &jkt, &jti, clock::now())?;
                }
                Ok(())
            })
            .await?;
        Ok(PhoneCall {
            jkt: proof.jkt,
            key: proof.key,
            jti: proof.jti,
            body: proof.body,
        })
    }
}

/// Whether `jkt` is a key the server knows: a device's (active or revoked) or an enrollment's.
///
/// The proof of any other key is not remembered. Such a key can change nothing: every endpoint
/// but the enrollment start looks its device or enrollment up by the key and refuses, and a
/// replay is refused the same way. Remembering those proofs would only let anyone with a fresh
/// key fill the table.
fn is_known_key(conn: &impl Sql, jkt: &str) -> Result<bool> {
    Ok(accounts::is_known_key(conn, jkt)?)
}

/// Remembers a proof id for as long as the proof could be accepted, refusing one already seen
/// for the same key. Expired ids are purged by the housekeeping task.
pub(crate) fn record_proof(conn: &impl Sql, jkt: &str, jti: &str, now: i64) -> Result<()> {
    if !accounts::remember_proof(conn, jkt, jti, now + PROOF_REMEMBER_SECS)? {
        return Err(ServerError::ProofReplayed);
    }
    Ok(())
}

/// Deletes proof ids past the window in which their proofs could be accepted.
pub(crate) fn purge_proofs(conn: &impl Sql, now: i64) -> Result<usize> {
    Ok(accounts::forget_expired_proofs(conn, now)?)
}

/// A registered, not revoked device. Its key is the proof's ([`PhoneCall::key`]): the device
/// was found by that key's thumbprint.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    /// The account it belongs to.
    pub account_id: String,
}

/// The active device whose key signed the proof: `unknown_device` if there is none,
/// `device_revoked` if a newer activation replaced it.
pub(crate) fn active_device(conn: &impl Sql, jkt: &str) -> Result<Device> {
    let Some(device) = accounts::find_device(conn, jkt)? else {
        return Err(ServerError::UnknownDevice);
    };
    if device.revoked_at.is_some() {
        return Err(ServerError::DeviceRevoked);
    }
    Ok(Device {
        account_id: device.account_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_body() {
        let call = PhoneCall {
            jkt: "thumbprint".into(),
            key: *p256::ecdsa::SigningKey::from_slice(&[7; 32])
                .unwrap()
                .verifying_key(),
            jti: "proof-1".into(),
            body: Bytes::from_static(br#"{"code":"123456"}"#),
        };
        let shown = format!("{call:?}");
        assert!(shown.contains("thumbprint"), "{shown}");
        assert!(!shown.contains("123456"), "{shown}");
    }
}
