//! The phone's own device on its account: a new code (PIN key), the biometric key, the push
//! token, and deactivation. Every call carries the device-key proof of an active device; a code
//! change and the biometric key are also authorised by the current PIN key, so a stolen unlocked
//! phone without the code can change neither.

use crate::store::{Conn, Sql, accounts};
use axum::extract::State;
use axum::routing::{post, put};
use axum::{Json, Router};
use p256::ecdsa::VerifyingKey;
use sleutel_protocol::ProtocolError;
use sleutel_protocol::api::{
    self, ChangePin, CodeChangeOutcome, CodeChangeResolved, DeviceUpdated, RegisterBiometricKey,
    RegisterPushToken, ResolveCodeChange,
};
use sleutel_protocol::jose::{self, Jwk};
use sleutel_protocol::limits::{MAX_ID_CHARS, PROOF_REMEMBER_SECS};

use crate::auth::{self, PhoneCall};
use crate::code_attempts::CodeState;
use crate::error::{Result, ServerError};
use crate::extract;
use crate::server::{App, AppState};
use crate::{clock, events, push_tokens};

/// The phone API routes of the device itself.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::PATH_DEVICE_PIN, post(change_pin))
        .route(api::PATH_DEVICE_PIN_RESOLVE, post(resolve_pin_change))
        .route(
            api::PATH_DEVICE_BIOMETRIC,
            post(enable_biometric).delete(disable_biometric),
        )
        .route(api::PATH_DEVICE_DEACTIVATE, post(deactivate))
        .route(api::PATH_DEVICE_PUSH_TOKEN, put(register_push_token))
}

fn updated(status: &str) -> Json<DeviceUpdated> {
    Json(DeviceUpdated {
        status: status.to_owned(),
    })
}

/// The calling device's standing for code checks, refused when the device is not active or the
/// account is blocked.
fn active_code_state(conn: &impl Sql, jkt: &str) -> Result<CodeState> {
    auth::active_device(conn, jkt)?;
    let code = CodeState::load(conn, jkt)?;
    if code.blocked {
        return Err(ServerError::AccountBlocked);
    }
    Ok(code)
}

/// A public key from the body, refused with `invalid_request` when unusable.
fn key_of(jwk: &Jwk, what: &str) -> Result<VerifyingKey> {
    jwk.to_verifying_key()
        .map_err(|e| ServerError::InvalidRequest(format!("{what}: {e}")))
}

/// `POST /v1/device/pin`: replaces the device's PIN key. The current PIN key's signature is a
/// code attempt like an approval: a wrong one counts towards the block. Repeating a change that
/// was applied (the phone lost the answer) is answered again: the new key, proven by its own
/// signature, is already the device's. The change is known by its proof id: the device row
/// keeps the id of the change applied last, which `POST /v1/device/pin/resolve` answers from,
/// and a change declared void there is refused (`code_change_void`) before anything is
/// checked.
async fn change_pin(State(state): State<AppState>, call: PhoneCall) -> Result<Json<DeviceUpdated>> {
    let body: ChangePin = extract::json(&call.body)?;
    state
        .db(move |app, conn| apply_pin_change(app, conn, &call, &body))
        .await?;
    Ok(updated("pin_changed"))
}

fn apply_pin_change(
    app: &App,
    conn: &mut Conn<'_>,
    call: &PhoneCall,
    body: &ChangePin,
) -> Result<()> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let code = active_code_state(&tx, &call.jkt)?;
    // Checked in the transaction that would apply the change, so that a resolve and the late
    // request itself cannot both win: either the change is applied and the resolve answers
    // `applied`, or it is void and stays so. Nothing is compared, so nothing is counted.
    if accounts::is_void_code_change(&tx, &call.jkt, &call.jti)? {
        return Err(ServerError::CodeChangeVoid);
    }
    let new_key = key_of(&body.new_pin_key, "new_pin_key")?;
    let new_jkt = body.new_pin_key.thumbprint();
    let message = api::pin_change_message(&call.jkt, &new_jkt);
    if !jose::verifies_b64(&new_key, &message, &body.new_pin_pop) {
        return Err(ServerError::InvalidRequest(
            "new_pin_pop does not verify with the new PIN key".into(),
        ));
    }
    if new_jkt == call.jkt {
        return Err(ServerError::InvalidRequest(
            "the PIN key must differ from the device key".into(),
        ));
    }
    if new_jkt == code.pin_jwk.thumbprint() {
        // Applied before; the answer was lost. Only a key derived from the right code can be
        // the registered one, and any other key goes on to the check below, which counts it:
        // this answer is no way to test guesses for free. The repeat becomes the change the key
        // came from last, so that a resolve of its proof id, should this answer be lost too,
        // says `applied`.
        accounts::set_pin_change_id(&tx, &call.jkt, &call.jti)?;
        tx.commit()?;
        return Ok(());
    }
    if !jose::verifies_b64(&code.pin_key()?, &message, &body.current_pin_signature) {
        return code.wrong_code(app, tx, now);
    }
    let stored = serde_json::to_string(&Jwk::from_verifying_key(&new_key))
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    accounts::set_pin_key(&tx, &call.jkt, &stored, &call.jti)?;
    code.right_code(&tx, now)?;
    events::record(
        &tx,
        &code.account_id,
        events::CODE_CHANGED,
        "the code was changed on a phone",
        now,
    )?;
    tx.commit()?;
    Ok(())
}

/// How many code changes of one device may be declared void while their marks live (about
/// three minutes each). A phone has one change pending at a time and asks about it until it
/// has an answer, so it needs one; the limit bounds what a holder of a device key can make the
/// server remember with made-up ids. Beyond it the question is refused with 429 until the
/// oldest mark is forgotten; asking again about a change already void is always answered.
const MAX_VOID_CODE_CHANGES_PER_DEVICE: i64 = 8;

/// `POST /v1/device/pin/resolve`: what became of the code change whose proof id the phone names,
/// for a phone that lost the answer. `applied` when it is the change the device's PIN key came
/// from last; otherwise `void`, and it is recorded as such for as long as its proof could still
/// be accepted, so that the request, should it arrive late, is refused: the device never ends
/// with a PIN key whose salt the phone dropped. No code is checked and nothing is counted; any
/// active device may ask, a blocked one too, about at most
/// [`MAX_VOID_CODE_CHANGES_PER_DEVICE`] changes that turn out void within the marks' life.
async fn resolve_pin_change(
    State(state): State<AppState>,
    call: PhoneCall,
) -> Result<Json<CodeChangeResolved>> {
    let body: ResolveCodeChange = extract::json(&call.body)?;
    if body.change_id.is_empty() || body.change_id.len() > MAX_ID_CHARS {
        return Err(ServerError::InvalidRequest(format!(
            "change_id must have 1 to {MAX_ID_CHARS} characters"
        )));
    }
    let outcome = state
        .db(move |_, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            auth::active_device(&tx, &call.jkt)?;
            let outcome = if accounts::last_pin_change(&tx, &call.jkt)?.as_deref()
                == Some(body.change_id.as_str())
            {
                CodeChangeOutcome::Applied
            } else if accounts::is_void_code_change(&tx, &call.jkt, &body.change_id)? {
                CodeChangeOutcome::Void
            } else {
                let (live, first_forgotten) =
                    accounts::live_void_code_changes(&tx, &call.jkt, now)?;
                if live >= MAX_VOID_CODE_CHANGES_PER_DEVICE {
                    let retry_after = first_forgotten.map_or(1, |at| at - now + 1);
                    return Err(ServerError::RateLimited {
                        retry_after: u64::try_from(retry_after.max(1)).unwrap_or(1),
                        detail: "too many code changes of this device declared void at once".into(),
                    });
                }
                // A request signed before now is accepted until PROOF_REMEMBER_SECS after its
                // signing at the latest, so the mark outlives every proof it could meet.
                accounts::void_code_change(
                    &tx,
                    &call.jkt,
                    &body.change_id,
                    now + PROOF_REMEMBER_SECS,
                )?;
                CodeChangeOutcome::Void
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await?;
    Ok(Json(CodeChangeResolved { outcome }))
}

/// Forgets the void code changes no request could carry any more: their proofs have expired.
pub(crate) fn purge_void_code_changes(conn: &impl Sql, now: i64) -> Result<usize> {
    Ok(accounts::forget_void_code_changes(conn, now)?)
}

/// `POST /v1/device/biometric`: registers (or replaces) the device's biometric key, authorised
/// by the PIN key. A wrong PIN signature counts as a wrong code.
async fn enable_biometric(
    State(state): State<AppState>,
    call: PhoneCall,
) -> Result<Json<DeviceUpdated>> {
    let body: RegisterBiometricKey = extract::json(&call.body)?;
    state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let code = active_code_state(&tx, &call.jkt)?;
            let bio_key = key_of(&body.biometric_key, "biometric_key")?;
            let bio_jkt = body.biometric_key.thumbprint();
            if bio_jkt == call.jkt {
                return Err(ServerError::InvalidRequest(
                    "the biometric key must differ from the device key".into(),
                ));
            }
            let message = api::biometric_enable_message(&call.jkt, &bio_jkt);
            if !jose::verifies_b64(&bio_key, &message, &body.biometric_pop) {
                return Err(ServerError::InvalidRequest(
                    "biometric_pop does not verify with the biometric key".into(),
                ));
            }
            if !jose::verifies_b64(&code.pin_key()?, &message, &body.pin_signature) {
                return code.wrong_code(app, tx, now);
            }
            let stored = serde_json::to_string(&Jwk::from_verifying_key(&bio_key))
                .map_err(|e| ServerError::Internal(e.to_string()))?;
            accounts::set_biometric_key(&tx, &call.jkt, &stored)?;
            code.right_code(&tx, now)?;
            events::record(
                &tx,
                &code.account_id,
                events::BIOMETRIC_ENABLED,
                "biometrics enabled on a phone",
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(updated("biometric_enabled"))
}

/// `DELETE /v1/device/biometric`: forgets the device's biometric key (turned off, or the
/// platform invalidated it). Forgetting a key that is not there is not an error.
async fn disable_biometric(
    State(state): State<AppState>,
    call: PhoneCall,
) -> Result<Json<DeviceUpdated>> {
    state
        .db(move |_, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let device = auth::active_device(&tx, &call.jkt)?;
            if accounts::forget_biometric_key(&tx, &call.jkt)? {
                events::record(
                    &tx,
                    &device.account_id,
                    events::BIOMETRIC_DISABLED,
                    "biometrics disabled on a phone",
                    now,
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(updated("biometric_disabled"))
}

/// `PUT /v1/device/push-token`: where the device receives its push notifications from now on.
/// The token replaces the device's earlier one, and leaves any other device that had it (see
/// [`push_tokens::register`]). A blocked account registers none: blocking dropped its tokens,
/// and until the person unblocks there is nothing to push.
async fn register_push_token(
    State(state): State<AppState>,
    call: PhoneCall,
) -> Result<Json<DeviceUpdated>> {
    let body: RegisterPushToken = extract::json(&call.body)?;
    let platform = body.platform;
    let token = api::canonical_push_token(platform, &body.token).map_err(|e| match e {
        ProtocolError::InvalidField { detail, .. } => ServerError::InvalidPushToken(detail),
        other => ServerError::InvalidPushToken(other.to_string()),
    })?;
    state
        .db(move |_, conn| {
            let tx = conn.immediate()?;
            active_code_state(&tx, &call.jkt)?;
            push_tokens::register(&tx, &call.jkt, platform, &token, clock::now())?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    tracing::debug!(platform = platform.as_str(), "a push token was registered");
    Ok(updated("push_token_registered"))
}

/// `POST /v1/device/deactivate`: the person removes the digital key from this phone. The device
/// is revoked for good; the account and the person's other phones stay.
async fn deactivate(State(state): State<AppState>, call: PhoneCall) -> Result<Json<DeviceUpdated>> {
    state
        .db(move |_, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let device = auth::active_device(&tx, &call.jkt)?;
            accounts::deactivate_device(&tx, &call.jkt, now)?;
            events::record(
                &tx,
                &device.account_id,
                events::DEACTIVATED,
                "a phone was deactivated by its user",
                now,
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(updated("deactivated"))
}
