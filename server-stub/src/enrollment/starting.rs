//! `POST /v1/enrollments`: starting an activation, within the rate limits, bound to the proof's
//! device key (and, for an unblock from the same phone, naming the device it replaces).

use std::net::{IpAddr, SocketAddr};

use crate::store::Tx;
use crate::store::enrollments::{self, NewEnrollment};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use sleutel_protocol::api::{self, EnrollmentStarted, StartEnrollment};
use sleutel_protocol::identity::IdentitySource;
use sleutel_protocol::phone;

use crate::auth::{self, VerifiedProof};
use crate::error::{Result, ServerError};
use crate::extract::{self};
use crate::rate::{self, Bucket, Limit};
use crate::server::{App, AppState};
use crate::{clock, random};

/// Refuses a start beyond the policy's rates (per device key, per source address, overall) and
/// otherwise counts it in each. Nothing is counted for a refused start.
///
/// No count is kept per phone number here: a bare start sends nothing to the number, and such a
/// count would let a stranger who knows the number hold up its activation. The number is
/// counted where an SMS goes out (`send_sms_code`), after an identity was proven.
fn count_start(app: &App, tx: &Tx<'_>, jkt: &str, source: IpAddr, now: i64) -> Result<()> {
    let policy = &app.policy;
    let limits = [
        (
            Bucket::EnrollmentStarts,
            Limit::per_minute(policy.max_enrollment_starts_per_minute),
            "enrollments started on this server",
        ),
        (
            Bucket::EnrollmentStartsByKey(jkt),
            Limit::per_hour(policy.max_enrollment_starts_per_key_per_hour),
            "enrollments started with this device key",
        ),
        (
            Bucket::EnrollmentStartsBySource(source),
            Limit::per_minute(policy.max_enrollment_starts_per_source_per_minute),
            "enrollments started from this address",
        ),
    ];
    for (bucket, limit, what) in limits {
        if let Err(exceeded) = rate::check(tx, bucket, limit, now)? {
            return Err(ServerError::RateLimited {
                retry_after: exceeded.retry_after,
                detail: format!("too many {what}; try again later"),
            });
        }
    }
    for (bucket, limit, _) in limits {
        rate::record(tx, bucket, limit, now)?;
    }
    Ok(())
}

/// `POST /v1/enrollments`: starts an activation bound to the proof's device key.
///
/// The one call a key the server does not know yet may make, so the one call that could fill
/// the database: its rates are checked before anything is written, and its proof id is
/// remembered (against a replay) only once the start is admitted, in the same transaction.
pub(super) async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    proof: VerifiedProof,
) -> Result<Json<EnrollmentStarted>> {
    let body: StartEnrollment = extract::json(&proof.body)?;
    let phone_number = phone::normalize_belgian_mobile(&body.phone_number)
        .map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
    let source = body.source;
    let bank = match (source, body.bank) {
        (IdentitySource::Bank, Some(bank)) => Some(bank),
        (IdentitySource::Bank, None) => {
            return Err(ServerError::InvalidRequest(
                "source bank needs the field bank".into(),
            ));
        }
        (IdentitySource::Eid | IdentitySource::Counter, None) => None,
        (IdentitySource::Eid | IdentitySource::Counter, Some(_)) => {
            return Err(ServerError::InvalidRequest(
                "the field bank belongs to source bank only".into(),
            ));
        }
    };
    let replaces_jkt = replaced_device(&body, &proof.jkt)?;
    let started = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            count_start(app, &tx, &proof.jkt, peer.ip(), now)?;
            auth::record_proof(&tx, &proof.jkt, &proof.jti, now)?;
            let id = random::id()?;
            let nonce = random::id()?;
            let expires_at = now + app.policy.enrollment_ttl_secs;
            enrollments::create(
                &tx,
                &NewEnrollment {
                    id: &id,
                    nonce: &nonce,
                    device_jkt: &proof.jkt,
                    phone_number: &phone_number,
                    source,
                    bank,
                    created_at: now,
                    expires_at,
                    replaces_jkt: replaces_jkt.as_deref(),
                },
            )?;
            tx.commit()?;
            let handoff_url = bank.map(|bank| {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("enrollment_id", &id)
                    .append_pair("nonce", &nonce)
                    .append_pair("redirect_uri", api::DEEP_LINK_BANK_RETURN)
                    .finish();
                format!("{}{}?{query}", app.url, api::sim::path_bank_authorize(bank))
            });
            Ok(EnrollmentStarted {
                enrollment_id: id,
                nonce,
                handoff_url,
                expires_at,
            })
        })
        .await?;
    Ok(Json(started))
}

/// The thumbprint of the device the start `body` replaces, if it names one, once that device's
/// signature handing its place to the enrollment's key `jkt` verifies: only a holder of the
/// replaced key can name it, and only for this new key. Anything else is `invalid_request`,
/// before anything is written. Whose device it is can only be checked against the identity
/// proven later (`identity_proof::accept_identity`).
fn replaced_device(body: &StartEnrollment, jkt: &str) -> Result<Option<String>> {
    body.replaces
        .as_ref()
        .map(|replaced| replaced.verify(jkt))
        .transpose()
        .map_err(|e| ServerError::InvalidRequest(format!("replaces: {e}")))
}
