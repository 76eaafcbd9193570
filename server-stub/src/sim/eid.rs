//! The simulated eID website: the person creates an identification token with a phone number
//! and an e-mail address, reads the eID in a card reader with its PIN, and receives an
//! identification code to type into the app.
//!
//! The code is single use, expires after `identification_code_ttl_secs`, is bound to the phone
//! number (typed on an activation for another number it is simply wrong), uses an alphabet
//! without look-alike characters, and stops working after `identity_code_max_failures` wrong
//! tries. Only its keyed hash is stored. A new code for the same number replaces the earlier one.

use crate::store::identity_codes::{self, IssuedBySimulator};
use crate::store::{Sql, outboxes};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sleutel_protocol::api::sim::{EidIdentification, IdentificationCodeIssued};
use sleutel_protocol::identity::{self, Date, IDENTIFICATION_CODE_LENGTH};
use sleutel_protocol::phone;
use subtle::ConstantTimeEq;

use crate::clock;
use crate::error::{Result, ServerError};
use crate::extract::{self, PathId, RawBody};
use crate::server::{App, AppState};
use crate::sim::citizens::{CARD_PIN_DIGITS, card_pin_hash, citizen_identity};
use crate::sim::{check_email, identity_code, keep_counts};

/// Issuer recorded for identities the eID website proved.
pub(crate) const EID_ISSUER: &str = "eid:website";

/// The kind of evidence the eID website records: the card read with its PIN.
pub(crate) const EVIDENCE_EID_CARD: &str = "eid_card";

/// `POST /sim/eid/identification`: checks the eID card and PIN, and issues an identification
/// code bound to the phone number.
pub(crate) async fn identification(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<IdentificationCodeIssued>> {
    let form: EidIdentification = extract::json(&body)?;
    let phone_number = phone::normalize_belgian_mobile(&form.phone_number)
        .map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
    let email = check_email(&form.email)?;
    let pin = zeroize::Zeroizing::new(form.card_pin);
    if pin.len() != CARD_PIN_DIGITS || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServerError::InvalidRequest(format!(
            "the eID PIN has {CARD_PIN_DIGITS} digits"
        )));
    }
    let serial = form.card_serial;
    let issued = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let citizen_id = match check_eid_card(app, &tx, &serial, &pin, now) {
                Ok(id) => id,
                Err(e) => return keep_counts(tx, e),
            };
            let person = citizen_identity(&tx, &citizen_id)?;
            let code = identity_code(IDENTIFICATION_CODE_LENGTH)?;
            let expires_at = now + app.policy.identification_code_ttl_secs;
            // One live code per number: a new one replaces the earlier.
            identity_codes::retire_eid_codes_of_number(&tx, &phone_number, now)?;
            identity_codes::issue_eid_code(
                &tx,
                &IssuedBySimulator {
                    id: &crate::random::id()?,
                    code_hash: &app.keys.identity_code_hash("eid", &code)?,
                    email: &email,
                    person: &person,
                    issuer: EID_ISSUER,
                    evidence_type: EVIDENCE_EID_CARD,
                    evidence_reference: &format!("eID {serial}"),
                    created_at: now,
                    expires_at,
                },
                &phone_number,
            )?;
            tx.commit()?;
            Ok(IdentificationCodeIssued {
                identification_code: identity::format_identity_code(&code),
                expires_at,
            })
        })
        .await?;
    Ok(Json(issued))
}

/// Checks an eID card and its PIN and returns the holder's citizen id. A revoked or expired
/// card is refused before its PIN is tried; a wrong PIN is counted and blocks the card at the
/// policy's limit (the caller commits `tx` after that error: [`keep_counts`]).
pub(crate) fn check_eid_card(
    app: &App,
    tx: &impl Sql,
    serial: &str,
    pin: &str,
    now: i64,
) -> Result<String> {
    let Some(card) = outboxes::eid_card(tx, serial)? else {
        return Err(ServerError::UnknownCard);
    };
    if card.revoked {
        return Err(ServerError::EidCardRevoked);
    }
    let valid_until = Date::parse(&card.valid_until)
        .map_err(|e| ServerError::Internal(format!("stored card validity unreadable: {e}")))?;
    if valid_until < Date::from_unix(now) {
        return Err(ServerError::EidCardExpired);
    }
    if card.blocked {
        return Err(ServerError::CardBlocked);
    }
    if !bool::from(card_pin_hash(&card.pin_salt, pin)?.ct_eq(&card.pin_hash)) {
        let failures = card.pin_failures.saturating_add(1);
        let max = app.policy.card_pin_max_failures;
        outboxes::record_eid_pin_failure(tx, serial, failures, (failures >= max).then_some(now))?;
        return Err(super::wrong_card_pin(failures, max));
    }
    outboxes::clear_eid_pin_failures(tx, serial)?;
    Ok(card.citizen_id)
}

/// The answer of the card revocation.
#[derive(Serialize)]
pub(crate) struct Revoked {
    status: &'static str,
}

/// `POST /sim/eid/cards/{serial}/revoke`: the card is reported lost or stolen.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    PathId(serial): PathId,
) -> Result<Json<Revoked>> {
    state
        .db(move |_, conn| {
            if !outboxes::revoke_eid_card(conn, &serial, clock::now())? {
                return Err(ServerError::NotFound("no such eID card".into()));
            }
            Ok(())
        })
        .await?;
    Ok(Json(Revoked { status: "revoked" }))
}
