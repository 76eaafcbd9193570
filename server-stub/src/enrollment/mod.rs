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
//! holds the checks every step makes first. The enrollment row and its steps are read and
//! written through `store::enrollments`, the identity codes through `store::identity_codes`.
//!
//! Phone numbers: a number reaches exactly one account, the one whose enrollment last verified
//! it by SMS. A later activation of the same number by another person takes the number over
//! (operators recycle numbers, and the SMS proved current possession); the earlier account keeps
//! its device but relying parties no longer reach it through that number.

use crate::store::{Sql, enrollments};
use axum::Router;
use axum::routing::post;
use sleutel_protocol::api;
use subtle::ConstantTimeEq;

use crate::error::{Result, ServerError};
use crate::server::AppState;

mod completion;
pub(crate) mod identity_proof;
mod sms_code;
mod starting;

pub(crate) use crate::store::enrollments::ProvenIdentity;
use crate::store::enrollments::{Enrollment, Step};
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
    let Some(enrollment) = enrollments::load(conn, id)? else {
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

/// How long an enrollment row is kept after it expired before the housekeeping purge deletes
/// it: long enough that a phone coming back late still hears `enrollment_expired`, short
/// enough that the table stays bounded by the start rate (policy) times lifetime plus this.
pub(crate) const ENROLLMENT_RETENTION_SECS: i64 = 3600;

/// Deletes enrollments past their lifetime and [`ENROLLMENT_RETENTION_SECS`], done ones too:
/// a completion is answered again only within the lifetime. Returns how many.
pub(crate) fn purge_expired(conn: &impl Sql, now: i64) -> Result<usize> {
    Ok(enrollments::delete_expired_before(
        conn,
        now - ENROLLMENT_RETENTION_SECS,
    )?)
}
