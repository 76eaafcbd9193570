//! The phone's side of action requests: listing pending requests, fetching one, and answering
//! with a response signed by the device key (and, for an approval, the PIN key).
//!
//! Every answer is decided and written in one `BEGIN IMMEDIATE` transaction: the failure count,
//! a block, the closing of the account's open requests, and the request's new state commit
//! together or not at all.

use crate::store::requests::{self as stored, AnswerEvidence, Approval};
use crate::store::{Conn, Sql, Tx};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use sleutel_protocol::action::UserVerification;
use sleutel_protocol::api::{self, PendingRequests, RequestEnvelope, ResponseAccepted};
use sleutel_protocol::jose::{GeneralJws, Jwk};
use sleutel_protocol::response::{Decision, DeclineReason, DeviceSignedResponse, UvMethod};

use crate::auth::{self, PhoneCall};
use crate::code_attempts::CodeState;
use crate::error::{Result, ServerError};
use crate::extract::{self, PathId};
use crate::server::{App, AppState};
use crate::{clock, events};

/// The phone API routes of action requests.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::PATH_REQUESTS, get(list))
        .route(&api::path_request("{id}"), get(fetch))
        .route(&api::path_request_response("{id}"), post(respond))
}

pub(crate) use crate::store::requests::Status;

/// The request `id` if it belongs to `account_id`; otherwise `unknown_request` (never a hint
/// that it exists for someone else).
fn account_request(conn: &impl Sql, id: &str, account_id: &str) -> Result<stored::AccountRequest> {
    stored::find_for_account(conn, id, account_id)?.ok_or(ServerError::UnknownRequest)
}

/// `GET /v1/requests`: the device's account's pending, unexpired requests, oldest first, at
/// most `max_pending_per_account` of them. `bc-authorize` keeps to that bound; the limit here
/// holds it even for requests made before the operator lowered it.
async fn list(State(state): State<AppState>, call: PhoneCall) -> Result<Json<PendingRequests>> {
    let requests = state
        .db(move |app, conn| {
            let device = auth::active_device(conn, &call.jkt)?;
            Ok(stored::pending_of_account(
                conn,
                &device.account_id,
                clock::now(),
                app.policy.max_pending_per_account,
            )?)
        })
        .await?;
    Ok(Json(PendingRequests { requests }))
}

/// `GET /v1/requests/{id}`: one request of the device's account, while it can be answered.
async fn fetch(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<RequestEnvelope>> {
    let request = state
        .db(move |_, conn| {
            let device = auth::active_device(conn, &call.jkt)?;
            let request = account_request(conn, &id, &device.account_id)?;
            if clock::now() >= request.expires_at {
                return Err(ServerError::RequestExpired);
            }
            if request.status != Status::Pending {
                return Err(ServerError::RequestAlreadyAnswered);
            }
            Ok(request.jws)
        })
        .await?;
    Ok(Json(RequestEnvelope { request }))
}

/// `POST /v1/requests/{id}/response`: the person's answer.
async fn respond(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<ResponseAccepted>> {
    let notify_id = id.clone();
    let answered = state
        .db(move |app, conn| answer(app, conn, &id, &call))
        .await;
    // The relying party of a ping-mode request learns of every outcome, a wrong number too;
    // a wrong code leaves the request open, and a block lists what it closed.
    match &answered {
        Ok(_) | Err(ServerError::WrongNumber) => state.notifier.notify(&[notify_id]),
        Err(_) => {}
    }
    let status = answered?;
    Ok(Json(ResponseAccepted {
        status: status.as_str().to_owned(),
    }))
}

/// Checks and records an answer in one transaction. A wrong code is recorded (and may block
/// the account) even though the call fails, so the transaction commits before that error.
fn answer(app: &App, conn: &mut Conn<'_>, id: &str, call: &PhoneCall) -> Result<Status> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let device = auth::active_device(&tx, &call.jkt)?;
    let jws: GeneralJws = extract::json(&call.body)?;
    // Kept as the evidence of the answer exactly as received: the bytes the signatures were
    // checked on (JSON text, so UTF-8 once it parsed).
    let received = std::str::from_utf8(&call.body)
        .map_err(|_| ServerError::InvalidRequest("the response is not UTF-8 text".into()))?;
    let request = account_request(&tx, id, &device.account_id)?;
    if now >= request.expires_at {
        return Err(ServerError::RequestExpired);
    }
    // The PIN key is the answering device's own (each phone has its own code); the failure
    // counts are the account's and the device's (code_attempts).
    let code = CodeState::load(&tx, &call.jkt)?;
    let biometric_jwk = stored::biometric_key_of_device(&tx, &call.jkt)?;
    // Checked before "already answered": the requests of a blocked account were closed, and the
    // person must learn that the account is blocked, even when trying the right code.
    if code.blocked {
        return Err(ServerError::AccountBlocked);
    }
    if request.status != Status::Pending {
        return Err(ServerError::RequestAlreadyAnswered);
    }
    // The proof's key is the device's: the device was found by its thumbprint.
    let signed = DeviceSignedResponse::verify(jws, &call.key)
        .map_err(|e| ServerError::InvalidResponse(e.to_string()))?;
    let device_jwk = serde_json::to_string(&Jwk::from_verifying_key(&call.key))
        .map_err(|e| ServerError::Internal(e.to_string()))?;
    let response = &signed.response;
    response
        .validate(id, &request.jws, now)
        .map_err(|e| ServerError::InvalidResponse(e.to_string()))?;
    let evidence = AnswerEvidence {
        response_jws: received,
        device_jwk: &device_jwk,
    };

    match response.decision {
        Decision::Decline => {
            let reason = response.reason.map(|reason| match reason {
                DeclineReason::NotMe => stored::DeclineReason::NotMe,
                DeclineReason::Cancelled => stored::DeclineReason::Cancelled,
            });
            if !stored::record_decline(&tx, id, reason, evidence, now)? {
                return Err(ServerError::RequestAlreadyAnswered);
            }
            let mut closed = Vec::new();
            if response.reason == Some(DeclineReason::NotMe) {
                closed = suspicious(
                    app,
                    &tx,
                    &device.account_id,
                    &request.client_id,
                    events::NOT_ME_REPORTED,
                    now,
                )?;
            }
            tx.commit()?;
            app.notifier.notify(&closed);
            Ok(Status::Declined)
        }
        Decision::Approve => {
            let method = response.method.ok_or_else(|| {
                ServerError::InvalidResponse("an approval names its method".into())
            })?;
            let biometric_jwk = match (request.uv, method) {
                (_, UvMethod::Pin) => None,
                (UserVerification::Pin, UvMethod::Biometric) => {
                    return Err(ServerError::UvMethodNotAllowed(
                        "this request must be confirmed with the code".into(),
                    ));
                }
                (UserVerification::PinOrBiometric, UvMethod::Biometric) => {
                    Some(biometric_jwk.ok_or_else(|| {
                        ServerError::UvMethodNotAllowed(
                            "no biometric key is registered for this device".into(),
                        )
                    })?)
                }
            };
            if let Some(claim) = response
                .claims
                .iter()
                .find(|c| !request.claims.contains(c) && !request.optional_claims.contains(c))
            {
                return Err(ServerError::InvalidResponse(format!(
                    "consent to claim {claim:?} that the request did not ask for"
                )));
            }
            // Refusing a required claim is a decline, which the phone sends as such.
            if let Some(claim) = request.claims.iter().find(|c| !response.claims.contains(c)) {
                return Err(ServerError::InvalidResponse(format!(
                    "an approval shares every required claim; {claim:?} is missing"
                )));
            }
            // Number matching, checked before the code so that a wrong pick costs no attempt:
            // the person was not looking at the relying party's screen, or someone else started
            // the request. Either way it is declined and recorded as suspicious.
            if let Some(expected) = request.match_number {
                match response.number {
                    None => {
                        return Err(ServerError::InvalidResponse(
                            "this request needs the number the relying party shows".into(),
                        ));
                    }
                    Some(picked) if picked != expected => {
                        // The evidence is the approval as sent: its device signature verified
                        // and its payload names the number picked; its code signature was not
                        // checked, so that a wrong pick costs no attempt.
                        if !stored::record_wrong_number(&tx, id, evidence, now)? {
                            return Err(ServerError::RequestAlreadyAnswered);
                        }
                        let closed = suspicious(
                            app,
                            &tx,
                            &device.account_id,
                            &request.client_id,
                            events::WRONG_NUMBER,
                            now,
                        )?;
                        tx.commit()?;
                        app.notifier.notify(&closed);
                        return Err(ServerError::WrongNumber);
                    }
                    Some(_) => {}
                }
            }
            // The key the user-verification signature verified with, kept with the evidence:
            // a code change or a new biometric key replaces it on the device.
            let uv_jwk = if let Some(biometric_jwk) = biometric_jwk {
                // The biometric key is gated by the platform: a signature that does not verify
                // is no guess of the person's, so it is refused without counting a failure.
                let key = stored_key(&biometric_jwk, "biometric")?;
                if signed.verify_user(&key).is_err() {
                    return Err(ServerError::InvalidResponse(
                        "the biometric signature does not verify".into(),
                    ));
                }
                biometric_jwk
            } else {
                if signed.verify_user(&code.pin_key()?).is_err() {
                    return code.wrong_code(app, tx, now);
                }
                // Only the right code clears the wrong codes. A biometric proves that the
                // person is present, not that whoever guessed before knows the code: were it
                // to clear the count, someone with the phone now and then would get a few more
                // guesses after each of the person's fingerprint approvals, without end.
                code.right_code(&tx, now)?;
                serde_json::to_string(&code.pin_jwk)
                    .map_err(|e| ServerError::Internal(e.to_string()))?
            };
            let approval = Approval {
                method,
                consented_claims: &response.claims,
                evidence,
                uv_jwk: &uv_jwk,
                device_jkt: &call.jkt,
            };
            if !stored::record_approval(&tx, id, &approval, now)? {
                return Err(ServerError::RequestAlreadyAnswered);
            }
            tx.commit()?;
            Ok(Status::Approved)
        }
    }
}

/// Deletes the requests settled more than `retention_secs` before `now` (answered or closed by
/// the server, or else expired unanswered), and with them the phone's signed response kept as
/// evidence; returns how many were deleted. One statement, so it is atomic on its own; a
/// periodic housekeeping task calls it with the policy's `request_retention_secs`.
/// `Policy::validate` keeps the retention above every window that reads past requests (token
/// pickup, the throttle after a suspicious answer), so the purge never changes a decision.
pub(crate) fn purge_old_requests(conn: &impl Sql, now: i64, retention_secs: i64) -> Result<usize> {
    let deleted = stored::purge_settled_before(conn, now.saturating_sub(retention_secs))?;
    if deleted > 0 {
        tracing::info!(deleted, "requests past their retention were deleted");
    }
    Ok(deleted)
}

/// Records a suspicious event (a "this was not me" report, a wrong number), alerts the account
/// holder by SMS on the account's phone numbers, and, when the policy says so for a report,
/// blocks the account. Returns the ids of the requests a block closed. Further requests are
/// throttled by `bc-authorize`, which reads the event, and after a "not me" refused for
/// `client_id`.
fn suspicious(
    app: &App,
    tx: &Tx<'_>,
    account_id: &str,
    client_id: &str,
    event: &str,
    now: i64,
) -> Result<Vec<String>> {
    let rp_name = app
        .clients
        .name(client_id)
        .unwrap_or_else(|| client_id.to_owned());
    let detail = match event {
        events::WRONG_NUMBER => format!("a wrong number was picked for a request of {rp_name}"),
        _ => format!("a request of {rp_name} was reported as not the person's"),
    };
    // The relying party is kept with the event: after a "not me" it is refused new requests
    // to the person for the whole suspicious window.
    events::record_of_client(tx, account_id, event, &detail, client_id, now)?;
    let numbers = stored::phone_numbers_of_account(tx, account_id)?;
    let text = suspicious_alert_text(&rp_name);
    for number in &numbers {
        app.sms.send(tx, number, &text)?;
    }
    tracing::info!(event, "a suspicious answer was recorded");
    if event == events::NOT_ME_REPORTED && app.policy.block_on_not_me {
        stored::block_account(tx, account_id, now)?;
        let closed = close_open_requests(tx, account_id, now)?;
        events::record(
            tx,
            account_id,
            events::BLOCKED,
            "blocked after a request was reported as not the person's",
            now,
        )?;
        return Ok(closed);
    }
    Ok(Vec::new())
}

/// The alert the account holder gets after a suspicious answer, in Dutch as the person reads it.
pub(crate) fn suspicious_alert_text(rp_name: &str) -> String {
    let rp_name = sleutel_protocol::display::clean_display_text(
        rp_name,
        sleutel_protocol::limits::MAX_RP_NAME_CHARS,
    );
    format!(
        "Sleutel: een aanvraag van {rp_name} werd geweigerd omdat ze niet van u kwam. Deed u \
         dit niet zelf, of vertrouwt u het niet, blokkeer dan uw digitale sleutel."
    )
}

/// Closes the account's open requests as denied (its key is blocked) and returns their ids, for
/// the pings.
pub(crate) fn close_open_requests(tx: &Tx<'_>, account_id: &str, now: i64) -> Result<Vec<String>> {
    Ok(stored::close_pending_of_account(tx, account_id, now)?)
}

/// A public key stored as a JWK.
fn stored_key(jwk: &str, what: &str) -> Result<p256::ecdsa::VerifyingKey> {
    let jwk: Jwk = serde_json::from_str(jwk)
        .map_err(|e| ServerError::Internal(format!("stored {what} key unreadable: {e}")))?;
    jwk.to_verifying_key()
        .map_err(|e| ServerError::Internal(format!("stored {what} key unusable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params;

    const NOW: i64 = 1_800_000_000;
    const RETENTION: i64 = crate::config::DEFAULT_REQUEST_RETENTION_SECS;

    /// A real database file with one account and the requests `(id, expires_at, answered_at)`.
    fn database_with(
        requests: &[(&str, i64, Option<i64>)],
    ) -> (tempfile::TempDir, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        db.run(|conn| {
            conn.execute(
                "INSERT INTO accounts (id, national_register_number, given_name, family_name,
                     birthdate, identity_source, identity_issuer, evidence_type,
                     evidence_reference, created_at, updated_at)
                 VALUES ('acct', '85073003328', 'An', 'Peeters', '1985-07-30', 'bank',
                     'bank:kbc', 'bank_debit_card', '1234', 0, 0)",
                params![],
            )?;
            for (id, expires_at, answered_at) in requests {
                conn.execute(
                    "INSERT INTO action_requests (id, auth_req_id, client_id, account_id, jws,
                         scope, claims, uv, created_at, expires_at, status, answered_at,
                         response_jws)
                     VALUES (?1, 'a-' || ?1, 'rp', 'acct', 'h.p.s', 'openid', '[]', 'pin',
                         ?2 - 300, ?2, ?3, ?4, ?5)",
                    params![
                        id,
                        expires_at,
                        if answered_at.is_some() {
                            "approved"
                        } else {
                            "pending"
                        },
                        answered_at,
                        answered_at.map(|_| "{\"payload\":\"\",\"signatures\":[]}"),
                    ],
                )?;
            }
            Ok(())
        })
        .unwrap();
        (dir, db)
    }

    fn remaining(db: &crate::store::Store) -> Vec<String> {
        db.run(|conn| {
            Ok(conn.query_map(
                "SELECT id FROM action_requests ORDER BY id",
                params![],
                |row| row.get(0),
            )?)
        })
        .unwrap()
    }

    #[test]
    fn the_purge_deletes_requests_settled_before_the_retention_with_their_evidence() {
        let cutoff = NOW - RETENTION;
        let (_dir, db) = database_with(&[
            ("answered-long-ago", cutoff + 200, Some(cutoff - 1)),
            ("answered-at-the-cutoff", cutoff + 200, Some(cutoff)),
            ("expired-unanswered-long-ago", cutoff - 1, None),
            ("answered-just-inside", cutoff - 200, Some(cutoff + 1)),
            ("expired-unanswered-just-inside", cutoff + 1, None),
            ("answered-today", NOW + 200, Some(NOW - 10)),
            ("pending", NOW + 200, None),
        ]);

        let deleted = db
            .run(|conn| purge_old_requests(conn, NOW, RETENTION))
            .unwrap();

        assert_eq!(deleted, 3);
        assert_eq!(
            remaining(&db),
            vec![
                "answered-just-inside",
                "answered-today",
                "expired-unanswered-just-inside",
                "pending"
            ]
        );
    }

    #[test]
    fn the_purge_counts_from_the_answer_not_from_the_creation() {
        // Made and expiring before the cutoff, but answered (or closed) after it: the answer is
        // what a dispute is about, so the whole retention counts from it.
        let cutoff = NOW - RETENTION;
        let (_dir, db) = database_with(&[("answered-late", cutoff - 1, Some(cutoff + 1))]);

        let deleted = db
            .run(|conn| purge_old_requests(conn, NOW, RETENTION))
            .unwrap();

        assert_eq!(deleted, 0);
        assert_eq!(remaining(&db), vec!["answered-late"]);
    }
}
