//! The SMS step: sending the control code (and resending it, throttled), and checking it, with
//! wrong codes counted on the enrollment and per day on the phone number.

use crate::store::Tx;
use crate::store::enrollments::{self, SentSmsCode};
use axum::Json;
use axum::extract::State;
use sleutel_protocol::api::{SmsSent, SmsVerified, VerifySms};
use sleutel_protocol::limits::SMS_CODE_LENGTH;
use subtle::ConstantTimeEq;

use crate::auth::PhoneCall;
use crate::error::{Result, ServerError};
use crate::extract::{self, PathId};
use crate::rate::{self, Bucket, Limit};
use crate::server::{App, AppState};
use crate::{clock, random, sms};

use super::{Enrollment, Step, open_enrollment};

/// Makes a fresh code, stores its hash (replacing any earlier code) and sends it; `sends` is the
/// number of codes sent so far including this one. The wrong codes typed so far still count: a
/// new code gives no new tries, or every resend would buy `sms_max_attempts` more guesses.
///
/// Beyond `max_sms_per_number_per_hour` texts to the number (all enrollments together) the
/// answer is `rate_limited` and the caller's transaction must not commit: nothing is sent or
/// used up (an identity code stays unused, the enrollment stays at its step).
pub(super) fn send_sms_code(
    app: &App,
    tx: &Tx<'_>,
    enrollment: &Enrollment,
    now: i64,
    sends: u32,
) -> Result<SmsSent> {
    let texts = Bucket::SmsSentToNumber(&enrollment.phone_number);
    let limit = Limit::per_hour(app.policy.max_sms_per_number_per_hour);
    if let Err(exceeded) = rate::take(tx, texts, limit, now)? {
        return Err(ServerError::RateLimited {
            retry_after: exceeded.retry_after,
            detail: "too many SMS codes sent to this number; try again later".into(),
        });
    }
    let code = zeroize::Zeroizing::new(random::digits(SMS_CODE_LENGTH)?);
    let hash = app.keys.sms_code_hash(&enrollment.id, &code)?;
    let expires_at = now + app.policy.sms_code_ttl_secs;
    enrollments::set_sms_code(
        tx,
        &enrollment.id,
        &SentSmsCode {
            hash: &hash,
            expires_at,
            sent_at: now,
            sends,
        },
    )?;
    let text = zeroize::Zeroizing::new(sms::control_code_text(&code));
    app.sms.send(tx, &enrollment.phone_number, &text)?;
    Ok(SmsSent {
        phone_number_masked: sms::mask_phone_number(&enrollment.phone_number),
        expires_at,
        resend_after: now + app.policy.sms_resend_after_secs,
    })
}

/// `POST /v1/enrollments/{id}/sms/resend`: a new code, at most every `sms_resend_after_secs`
/// and at most `sms_max_sends` codes per enrollment.
pub(super) async fn resend_sms(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsSent>> {
    let sent = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Sms], now)?;
            let next_allowed =
                enrollment.sms_sent_at.unwrap_or(now) + app.policy.sms_resend_after_secs;
            if now < next_allowed {
                return Err(ServerError::ResendTooSoon {
                    retry_after: u64::try_from(next_allowed - now).unwrap_or(1),
                    detail: "wait before asking for another code".into(),
                });
            }
            if enrollment.sms_sends >= app.policy.sms_max_sends {
                // No new code before this enrollment ends; the last code can still be used.
                return Err(ServerError::ResendTooSoon {
                    retry_after: u64::try_from(enrollment.expires_at - now).unwrap_or(1),
                    detail: format!(
                        "at most {} codes per activation; use the last one or start again later",
                        app.policy.sms_max_sends
                    ),
                });
            }
            let sent = send_sms_code(app, &tx, &enrollment, now, enrollment.sms_sends + 1)?;
            tx.commit()?;
            Ok(sent)
        })
        .await?;
    Ok(Json(sent))
}

/// `POST /v1/enrollments/{id}/sms`: checks the control code. Wrong codes count on the
/// enrollment (all its codes together: `sms_max_attempts` ends it) and per day on the phone
/// number, by this person and by anyone (beyond either, `rate_limited` before any comparison).
pub(super) async fn verify_sms(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsVerified>> {
    let body: VerifySms = extract::json(&call.body)?;
    let code = zeroize::Zeroizing::new(body.code);
    if code.len() != SMS_CODE_LENGTH || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServerError::InvalidRequest(format!(
            "the code has {SMS_CODE_LENGTH} digits"
        )));
    }
    let verified = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Sms, Step::Keys], now)?;
            if enrollment.step == Step::Keys {
                // Already verified: the phone lost the answer and asks again. The code was
                // erased, but the device-key proof binds the caller to this enrollment, which
                // was verified for this very device; answering again reveals nothing new.
                return Ok(SmsVerified {
                    display_name: enrollment.identity()?.display_name(),
                });
            }
            let (Some(stored), Some(expires_at)) =
                (&enrollment.sms_code_hash, enrollment.sms_expires_at)
            else {
                return Err(ServerError::Internal("SMS step without a code".into()));
            };
            if now >= expires_at {
                return Err(ServerError::SmsCodeExpired);
            }
            // Wrong codes for this number in any enrollment, by this person and by anyone: a
            // script starting enrollment after enrollment for one number gets no more guesses
            // than the policy's daily numbers. Beyond them the check is refused, not the
            // enrollment ended, and the person's own count is apart from strangers'.
            let person = &enrollment.identity()?.national_register_number;
            let daily = [
                (
                    Bucket::SmsFailuresByPersonAndNumber(person, &enrollment.phone_number),
                    Limit::per_day(app.policy.max_sms_failures_per_person_and_number_per_day),
                ),
                (
                    Bucket::SmsFailuresByNumber(&enrollment.phone_number),
                    Limit::per_day(app.policy.max_sms_failures_per_number_per_day),
                ),
            ];
            for (bucket, limit) in daily {
                if let Err(exceeded) = rate::check(&tx, bucket, limit, now)? {
                    return Err(ServerError::RateLimited {
                        retry_after: exceeded.retry_after,
                        detail: "too many wrong SMS codes for this number today".into(),
                    });
                }
            }
            let given = app.keys.sms_code_hash(&enrollment.id, &code)?;
            if !bool::from(given.ct_eq(stored)) {
                for (bucket, limit) in daily {
                    rate::record(&tx, bucket, limit, now)?;
                }
                let failures = enrollment.sms_failures + 1;
                if failures >= app.policy.sms_max_attempts {
                    enrollments::fail_on_sms(&tx, &enrollment.id, failures)?;
                    tx.commit()?;
                    return Err(ServerError::TooManyAttempts);
                }
                enrollments::set_sms_failures(&tx, &enrollment.id, failures)?;
                tx.commit()?;
                return Err(ServerError::WrongSmsCode {
                    attempts_left: app.policy.sms_max_attempts - failures,
                });
            }
            if !enrollments::sms_verified(&tx, &enrollment.id)? {
                // Unreachable within this transaction, which found the enrollment at step sms;
                // the write checks it again so that a code is used once.
                return Err(ServerError::WrongStep(
                    "the enrollment is past step sms".into(),
                ));
            }
            tx.commit()?;
            Ok(SmsVerified {
                display_name: enrollment.identity()?.display_name(),
            })
        })
        .await?;
    Ok(Json(verified))
}
