//! Activation of a phone: start (phone number, identity source), the identity (a bank's identity
//! token, an identification code of the eID website, or an activation code of the counter), SMS
//! control code, and registration of the device and PIN keys.
//!
//! An enrollment moves `identity` -> `sms` -> `keys` -> `done`; too many wrong codes end it in
//! `failed`. The SMS check and the completion may be repeated after they succeeded (a phone that
//! lost the answer asks again) and give the same answer; the identity token is single-use. Every
//! call must carry a proof by the device key that started the enrollment; for any other key the
//! enrollment does not exist (`unknown_enrollment`), so one phone can never learn about another's
//! activation.
//!
//! One module per step: [`starting`], [`identity_proof`], [`sms_code`], [`completion`]; this one
//! holds the enrollment row, its steps and the checks every step makes first.
//!
//! Phone numbers: a number reaches exactly one account, the one whose enrollment last verified
//! it by SMS. A later activation of the same number by another person takes the number over
//! (operators recycle numbers, and the SMS proved current possession); the earlier account keeps
//! its device but relying parties no longer reach it through that number.

use crate::store::{DbError, FromValue, ValueRef};
use crate::store::{OptionalRow, Sql};
use axum::Router;
use axum::routing::post;
use sleutel_protocol::api;
use sleutel_protocol::identity::IdentitySource;
use subtle::ConstantTimeEq;

use crate::error::{Result, ServerError};
use crate::params;
use crate::server::AppState;

mod completion;
mod identity_proof;
mod sms_code;
mod starting;

pub(crate) use identity_proof::{CounterCheck, check_counter_activation};

/// The phone API routes of enrollment.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::PATH_ENROLLMENTS, post(starting::start))
        .route(
            &api::path_enrollment_identity("{id}"),
            post(identity_proof::submit_identity),
        )
        .route(
            &api::path_enrollment_code("{id}"),
            post(identity_proof::submit_code),
        )
        .route(
            &api::path_enrollment_sms("{id}"),
            post(sms_code::verify_sms),
        )
        .route(
            &api::path_enrollment_sms_resend("{id}"),
            post(sms_code::resend_sms),
        )
        .route(
            &api::path_enrollment_complete("{id}"),
            post(completion::complete),
        )
}

/// Where an enrollment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Identity,
    Sms,
    Keys,
    Done,
    Failed,
}

impl Step {
    const ALL: [Step; 5] = [
        Step::Identity,
        Step::Sms,
        Step::Keys,
        Step::Done,
        Step::Failed,
    ];

    /// The name stored in the `step` column.
    fn as_str(self) -> &'static str {
        match self {
            Step::Identity => "identity",
            Step::Sms => "sms",
            Step::Keys => "keys",
            Step::Done => "done",
            Step::Failed => "failed",
        }
    }
}

impl FromValue for Step {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        let text = String::from_value(value)?;
        Step::ALL
            .into_iter()
            .find(|step| step.as_str() == text)
            .ok_or_else(|| DbError::Value(format!("unknown enrollment step {text:?}")))
    }
}

/// The identity an enrollment proved, as stored with it. No `Debug`: personal data stays out
/// of logs.
#[derive(Clone)]
pub(crate) struct ProvenIdentity {
    given_name: String,
    family_name: String,
    birthdate: String,
    national_register_number: String,
    issuer: String,
    evidence_type: String,
    evidence_reference: String,
}

impl ProvenIdentity {
    fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    /// The person's national register number.
    pub(crate) fn national_register_number(&self) -> &str {
        &self.national_register_number
    }
}

/// An enrollment row. No `Debug`: it holds the SMS code's hash.
struct Enrollment {
    id: String,
    nonce: String,
    device_jkt: String,
    phone_number: String,
    /// How the identity is proven.
    source: IdentitySource,
    /// The bank the activation was started with (`Bank::id`).
    bank: Option<String>,
    step: Step,
    expires_at: i64,
    identity: Option<ProvenIdentity>,
    sms_code_hash: Option<Vec<u8>>,
    sms_expires_at: Option<i64>,
    sms_sent_at: Option<i64>,
    sms_sends: u32,
    sms_failures: u32,
    /// Wrong identification or activation codes typed in this enrollment.
    code_failures: u32,
    /// The account the completion created or renewed (step `done`).
    account_id: Option<String>,
    /// The thumbprint of the device this enrollment replaces (an unblock from the same phone),
    /// revoked at completion.
    replaces_jkt: Option<String>,
}

impl Enrollment {
    fn identity(&self) -> Result<&ProvenIdentity> {
        self.identity
            .as_ref()
            .ok_or_else(|| ServerError::Internal("enrollment past identity without one".into()))
    }
}

/// Loads the enrollment `id` for the device `jkt` and checks that it is alive and at one of the
/// `accepted` steps (the first is the step the call belongs to; the others are steps at which a
/// repeated call is answered again).
///
/// A `done` enrollment is answered again (where accepted) only within its lifetime: a repeated
/// completion compares a PIN key, and after the lifetime nothing is compared any more. Past it, a
/// `done` enrollment is `wrong_step`, whatever the call.
fn open_enrollment(
    conn: &impl Sql,
    id: &str,
    jkt: &str,
    accepted: &[Step],
    now: i64,
) -> Result<Enrollment> {
    let enrollment = conn
        .query_row(
            "SELECT id, nonce, device_jkt, phone_number, step, expires_at,
                    given_name, family_name, birthdate, national_register_number,
                    identity_issuer, evidence_type, evidence_reference,
                    sms_code_hash, sms_expires_at, sms_sent_at, sms_sends, sms_failures,
                    bank, account_id, source, code_failures, replaces_jkt
             FROM enrollments WHERE id = ?1",
            params![id],
            |row| {
                let identity = match (
                    row.get::<Option<String>>(6)?,
                    row.get::<Option<String>>(7)?,
                    row.get::<Option<String>>(8)?,
                    row.get::<Option<String>>(9)?,
                    row.get::<Option<String>>(10)?,
                    row.get::<Option<String>>(11)?,
                    row.get::<Option<String>>(12)?,
                ) {
                    (Some(g), Some(f), Some(b), Some(n), Some(i), Some(t), Some(r)) => {
                        Some(ProvenIdentity {
                            given_name: g,
                            family_name: f,
                            birthdate: b,
                            national_register_number: n,
                            issuer: i,
                            evidence_type: t,
                            evidence_reference: r,
                        })
                    }
                    _ => None,
                };
                Ok(Enrollment {
                    id: row.get(0)?,
                    nonce: row.get(1)?,
                    device_jkt: row.get(2)?,
                    phone_number: row.get(3)?,
                    bank: row.get(18)?,
                    step: row.get(4)?,
                    expires_at: row.get(5)?,
                    identity,
                    sms_code_hash: row.get(13)?,
                    sms_expires_at: row.get(14)?,
                    sms_sent_at: row.get(15)?,
                    sms_sends: row.get(16)?,
                    sms_failures: row.get(17)?,
                    account_id: row.get(19)?,
                    source: source_from_column(row.get(20)?)?,
                    code_failures: row.get(21)?,
                    replaces_jkt: row.get(22)?,
                })
            },
        )
        .optional()?;
    let Some(enrollment) = enrollment else {
        return Err(ServerError::UnknownEnrollment);
    };
    // Another device's enrollment is indistinguishable from none at all.
    if !bool::from(enrollment.device_jkt.as_bytes().ct_eq(jkt.as_bytes())) {
        return Err(ServerError::UnknownEnrollment);
    }
    if enrollment.step == Step::Failed {
        return Err(ServerError::TooManyAttempts);
    }
    let expired = now >= enrollment.expires_at;
    if expired && enrollment.step != Step::Done {
        return Err(ServerError::EnrollmentExpired);
    }
    if !accepted.contains(&enrollment.step) || expired {
        return Err(ServerError::WrongStep(format!(
            "the enrollment is at step {}, this call belongs to step {}",
            enrollment.step.as_str(),
            accepted.first().map_or("?", |step| step.as_str())
        )));
    }
    Ok(enrollment)
}

/// The stored name of an identity source (`bank`, `eid`, `counter`).
pub(crate) fn source_to_column(source: IdentitySource) -> &'static str {
    match source {
        IdentitySource::Bank => "bank",
        IdentitySource::Eid => "eid",
        IdentitySource::Counter => "counter",
    }
}

fn source_from_column(name: String) -> Result<IdentitySource, DbError> {
    [
        IdentitySource::Bank,
        IdentitySource::Eid,
        IdentitySource::Counter,
    ]
    .into_iter()
    .find(|source| source_to_column(*source) == name)
    .ok_or_else(|| DbError::Value(format!("unknown identity source {name:?}")))
}

/// How long an enrollment row is kept after it expired before the housekeeping purge deletes
/// it: long enough that a phone coming back late still hears `enrollment_expired`, short
/// enough that the table stays bounded by the start rate (policy) times lifetime plus this.
pub(crate) const ENROLLMENT_RETENTION_SECS: i64 = 3600;

/// Deletes enrollments past their lifetime and [`ENROLLMENT_RETENTION_SECS`], done ones too:
/// a completion is answered again only within the lifetime. Returns how many.
pub(crate) fn purge_expired(conn: &impl Sql, now: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM enrollments WHERE expires_at < ?1",
        params![now - ENROLLMENT_RETENTION_SECS],
    )?)
}
