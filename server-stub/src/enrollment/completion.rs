//! The completion: checking the device and PIN keys, registering them and creating or renewing
//! the person's account in one transaction, and answering a repeat after a lost answer.

use crate::store::accounts::{self, NewDevice};
use crate::store::{Tx, enrollments};
use axum::Json;
use axum::extract::State;
use p256::ecdsa::VerifyingKey;
use sleutel_protocol::api::{self, CompleteEnrollment, EnrollmentCompleted};
use sleutel_protocol::jose::{self, Jwk};
use sleutel_protocol::limits::COMPLETION_REPEAT_SECS;

use crate::auth::PhoneCall;
use crate::code_attempts::CodeState;
use crate::error::{Result, ServerError};
use crate::extract::{self, PathId};
use crate::server::{App, AppState};
use crate::{clock, events, random};

use super::{Enrollment, ProvenIdentity, Step, open_enrollment};

/// `POST /v1/enrollments/{id}/complete`: registers the device and PIN keys and creates (or
/// renews) the person's account, all in one transaction.
///
/// Repeating a completion that succeeded (the phone lost the answer) gives the same answer
/// again while the enrollment's lifetime lasts (at least [`COMPLETION_REPEAT_SECS`] after the
/// completion), as long as it carries the same device and PIN
/// keys with valid proofs, the account is still the one this enrollment registered, and the
/// device is still active on it. A repeat with another PIN key is a wrong code (see
/// [`repeated_completion`]). After the lifetime, and for anything else after completion, the
/// answer is `wrong_step`.
pub(super) async fn complete(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<EnrollmentCompleted>> {
    let body: CompleteEnrollment = extract::json(&call.body)?;
    let completed = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Keys, Step::Done], now)?;
            let keys = check_keys(&body, &enrollment)?;
            let identity = enrollment.identity()?.clone();
            let account_id = if enrollment.step == Step::Done {
                repeated_completion(app, tx, &enrollment, &body, now)?
            } else {
                let account_id = register(app, &tx, &enrollment, &identity, &keys, now)?;
                // A completion late in the enrollment's lifetime still leaves the phone time to
                // ask again for a lost answer.
                let repeat_until = now + COMPLETION_REPEAT_SECS;
                if !enrollments::complete(&tx, &enrollment.id, &account_id, repeat_until)? {
                    // Unreachable within this transaction, which found the enrollment at step
                    // keys; the write checks it again so that an enrollment completes once.
                    return Err(ServerError::WrongStep(
                        "the enrollment is past step keys".into(),
                    ));
                }
                tx.commit()?;
                account_id
            };
            Ok(EnrollmentCompleted {
                account_id,
                display_name: identity.display_name(),
                issuer: app.url.clone(),
                server_keys: app.keys.jwks().clone(),
            })
        })
        .await?;
    Ok(Json(completed))
}

/// The account of a completed `enrollment`, if the repeated completion `body` carries the PIN
/// key that completed it: the device this enrollment registered is still active on the account
/// this enrollment created or renewed, with that PIN key. A device gone from that account is
/// `wrong_step`; a blocked account is `account_blocked`.
///
/// Another PIN key is a wrong code, counted like any other (it blocks at the limit). The body
/// proves possession of its PIN key, and whoever copied the phone's files (device key, salt,
/// enrollment id and nonce) can derive the key of any code and prove possession of it, so an
/// uncounted comparison would let them test all 100,000 codes. The right key is the right code
/// and clears the counts.
fn repeated_completion(
    app: &App,
    tx: Tx<'_>,
    enrollment: &Enrollment,
    body: &CompleteEnrollment,
    now: i64,
) -> Result<String> {
    let already = || {
        ServerError::WrongStep(
            "the enrollment is at step done, this call belongs to step keys".into(),
        )
    };
    let Some(account_id) = &enrollment.account_id else {
        return Err(already());
    };
    let device_account = accounts::account_of_active_device(&tx, &enrollment.device_jkt)?;
    if device_account.as_ref() != Some(account_id) {
        return Err(already());
    }
    let code = CodeState::load(&tx, &enrollment.device_jkt)?;
    if code.blocked {
        return Err(ServerError::AccountBlocked);
    }
    if code.pin_jwk.thumbprint() != body.pin_key.thumbprint() {
        return code.wrong_code(app, tx, now);
    }
    code.right_code(&tx, now)?;
    tx.commit()?;
    Ok(account_id.clone())
}

/// What the account history says about an activation: the source and its evidence (never the
/// person's data beyond what the evidence reference already shows).
fn evidence_detail(source: &str, identity: &ProvenIdentity) -> String {
    format!(
        "source {source}, {} ({}: {})",
        identity.issuer, identity.evidence_type, identity.evidence_reference
    )
}

/// The device and PIN keys of a completion, checked and parsed.
struct CheckedKeys {
    device: VerifyingKey,
    pin: VerifyingKey,
    /// The phone's statement that the device key is in secure hardware (not attested).
    device_in_hardware: bool,
}

/// The device key must be the enrollment's, both keys must prove possession over the
/// enrollment id and nonce, and the PIN key must be a key of its own.
fn check_keys(body: &CompleteEnrollment, enrollment: &Enrollment) -> Result<CheckedKeys> {
    let device_jkt = body.device_key.thumbprint();
    if device_jkt != enrollment.device_jkt {
        return Err(ServerError::InvalidRequest(
            "device_key is not the key that signed this enrollment's requests".into(),
        ));
    }
    if body.pin_key.thumbprint() == device_jkt {
        return Err(ServerError::InvalidRequest(
            "pin_key must differ from device_key".into(),
        ));
    }
    let checked = |role: &str, jwk: &Jwk, pop: &str| -> Result<VerifyingKey> {
        let key = jwk
            .to_verifying_key()
            .map_err(|e| ServerError::InvalidRequest(format!("{role} key: {e}")))?;
        let signature = jose::b64_decode(pop, "proof of possession")
            .map_err(|e| ServerError::InvalidRequest(format!("{role}_pop: {e}")))?;
        let message = api::enrollment_pop_message(role, &enrollment.id, &enrollment.nonce);
        jose::verify_es256(&key, message.as_bytes(), &signature, "proof of possession").map_err(
            |_| {
                ServerError::InvalidRequest(format!(
                    "{role}_pop does not verify with the {role} key"
                ))
            },
        )?;
        Ok(key)
    };
    Ok(CheckedKeys {
        device: checked("device", &body.device_key, &body.device_pop)?,
        pin: checked("pin", &body.pin_key, &body.pin_pop)?,
        device_in_hardware: body.device_key_in_hardware,
    })
}

/// Creates or renews the account of `identity`, registers the device with its PIN key, revokes
/// the device the enrollment replaces and devices beyond the policy's limit, unblocks the account
/// and points the phone number at it. Returns the account id.
///
/// The PIN key is the device's, not the account's: with `max_devices > 1` every phone derives its
/// own PIN key (its own salt), and an earlier phone that stays active keeps its code. The failure
/// count stays the account's, so the person has the same few tries whichever phone guesses.
fn register(
    app: &App,
    tx: &Tx<'_>,
    enrollment: &Enrollment,
    identity: &ProvenIdentity,
    keys: &CheckedKeys,
    now: i64,
) -> Result<String> {
    // Only the key is stored, without any kid/use/alg the phone may have sent.
    let stored = |key: &VerifyingKey| {
        serde_json::to_string(&Jwk::from_verifying_key(key))
            .map_err(|e| ServerError::Internal(e.to_string()))
    };
    let (device_jwk, pin_jwk) = (stored(&keys.device)?, stored(&keys.pin)?);
    let existing = accounts::account_of_person(tx, &identity.national_register_number)?;
    let source = enrollments::source_name(enrollment.source);
    let account_id = match existing {
        Some(id) => {
            let was_blocked = accounts::is_blocked(tx, &id)?;
            // A new activation proves the identity again: fresh names and evidence, and the
            // failure count and block lifted (the unblock flow).
            accounts::renew_account(tx, &id, identity, enrollment.source, now)?;
            let detail = evidence_detail(source, identity);
            if was_blocked {
                events::record(tx, &id, events::UNBLOCKED, &detail, now)?;
            }
            events::record(tx, &id, events::REACTIVATED, &detail, now)?;
            id
        }
        None => {
            let id = random::id()?;
            accounts::create_account(tx, &id, identity, enrollment.source, now)?;
            events::record(
                tx,
                &id,
                events::ACTIVATED,
                &evidence_detail(source, identity),
                now,
            )?;
            id
        }
    };
    // The same device key may come back (an unblock from the same phone by an app that predates
    // key replacement): it is re-registered, with the new code's PIN key. A biometric key
    // registered under the old code is dropped: the person enables biometrics again after
    // proving who they are.
    accounts::register_device(
        tx,
        &NewDevice {
            jkt: &enrollment.device_jkt,
            account_id: &account_id,
            jwk: &device_jwk,
            pin_jwk: &pin_jwk,
            phone_number: &enrollment.phone_number,
            enrolled_at: now,
            key_in_hardware: keys.device_in_hardware,
        },
    )?;
    // An unblock from the same phone replaces the device key it had: that key, and any copy of
    // the phone's files holding it, stops working now, whatever max_devices would keep. (The
    // identity step checked that the device is this account's.)
    if let Some(replaced) = &enrollment.replaces_jkt
        && accounts::revoke_replaced_device(tx, replaced, &account_id, now)?
    {
        events::record(
            tx,
            &account_id,
            events::DEVICE_REVOKED,
            "the phone's earlier device key was replaced by an unblock from that phone",
            now,
        )?;
    }
    // Keep this device and the newest (max_devices - 1) others; revoke the rest.
    let keep_others = app.policy.max_devices.saturating_sub(1);
    let revoked =
        accounts::revoke_all_but_newest(tx, &account_id, &enrollment.device_jkt, keep_others, now)?;
    for _ in 0..revoked {
        events::record(
            tx,
            &account_id,
            events::DEVICE_REVOKED,
            "an earlier phone was revoked by a newer activation (max_devices)",
            now,
        )?;
    }
    accounts::point_phone_number(tx, &enrollment.phone_number, &account_id, now)?;
    Ok(account_id)
}
