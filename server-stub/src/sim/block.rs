//! The simulated "block my key" page, for a lost or stolen phone: the person proves their
//! identity through any source (bank card, eID, or an activation code from the counter) and the
//! account is blocked at once. Its open requests are closed as denied, no phone can approve
//! anything, and relying parties are refused. Activating a phone again (any source) lifts it.

use axum::Json;
use axum::extract::State;
use rusqlite::{Connection, OptionalExtension, params};
use sleutel_protocol::api::{BlockMyKey, KeyBlocked};
use sleutel_protocol::identity::{self, ACTIVATION_CODE_LENGTH, IdentitySource};

use crate::error::{Result, ServerError};
use crate::extract::{self, RawBody};
use crate::server::{App, AppState};
use crate::sim::citizens::citizen_identity;
use crate::sim::{bank, eid, keep_counts};
use crate::{clock, db, events};

/// `POST /sim/block-my-key`.
pub(crate) async fn block_my_key(
    State(state): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<KeyBlocked>> {
    let form: BlockMyKey = extract::json(&body)?;
    let source = form
        .source
        .ok_or_else(|| ServerError::InvalidRequest("source is missing".into()))?;
    state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let nrn = match proven_identity(app, &tx, source, &form, now) {
                Ok(nrn) => nrn,
                Err(e) => return keep_counts(tx, e),
            };
            let account: Option<String> = tx
                .query_row(
                    "SELECT id FROM accounts WHERE national_register_number = ?1",
                    [&nrn],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(account_id) = account else {
                return Err(ServerError::NotFound(
                    "this person has no digital key".into(),
                ));
            };
            tx.execute(
                "UPDATE accounts SET blocked_at = COALESCE(blocked_at, ?2), updated_at = ?2
                 WHERE id = ?1",
                params![account_id, now],
            )?;
            let closed = crate::requests::close_open_requests(&tx, &account_id, now)?;
            events::record(
                &tx,
                &account_id,
                events::BLOCKED,
                &format!(
                    "blocked from the block-my-key page ({})",
                    source_name(source)
                ),
                now,
            )?;
            tx.commit()?;
            app.notifier.notify(&closed);
            tracing::info!("an account was blocked from the block-my-key page");
            Ok(())
        })
        .await?;
    Ok(Json(KeyBlocked {
        status: "blocked".into(),
    }))
}

fn source_name(source: IdentitySource) -> &'static str {
    match source {
        IdentitySource::Bank => "bank",
        IdentitySource::Eid => "eid",
        IdentitySource::Counter => "counter",
    }
}

/// The national register number the form proves, through the source it names.
fn proven_identity(
    app: &App,
    tx: &Connection,
    source: IdentitySource,
    form: &BlockMyKey,
    now: i64,
) -> Result<String> {
    let field = |value: &Option<String>, name: &str| -> Result<String> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ServerError::InvalidRequest(format!("{name} is missing")))
    };
    let citizen_id = match source {
        IdentitySource::Bank => {
            let number: String = field(&form.card_number, "card_number")?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let pin = zeroize::Zeroizing::new(field(&form.card_pin, "card_pin")?);
            bank::check_debit_card(app, tx, None, &number, &pin, now)?
        }
        IdentitySource::Eid => {
            let serial = field(&form.card_serial, "card_serial")?;
            let pin = zeroize::Zeroizing::new(field(&form.card_pin, "card_pin")?);
            eid::check_eid_card(app, tx, &serial, &pin, now)?
        }
        IdentitySource::Counter => {
            let typed = zeroize::Zeroizing::new(field(&form.activation_code, "activation_code")?);
            let code = zeroize::Zeroizing::new(
                identity::normalize_identity_code(&typed, ACTIVATION_CODE_LENGTH)
                    .map_err(|e| ServerError::InvalidRequest(e.to_string()))?,
            );
            let hash = app.keys.identity_code_hash("counter", &code)?;
            let row: Option<(String, i64, bool)> = tx
                .query_row(
                    "SELECT id, expires_at, used_at IS NOT NULL FROM identity_codes
                     WHERE kind = 'counter' AND code_hash = ?1",
                    [&hash],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let Some((id, expires_at, used)) = row else {
                return Err(ServerError::NotFound("no such activation code".into()));
            };
            if used {
                return Err(ServerError::IdentityCodeUsed);
            }
            if now >= expires_at {
                return Err(ServerError::IdentityCodeExpired);
            }
            tx.execute(
                "UPDATE identity_codes SET used_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            return Ok(tx.query_row(
                "SELECT national_register_number FROM identity_codes WHERE id = ?1",
                [&id],
                |row| row.get(0),
            )?);
        }
    };
    Ok(citizen_identity(tx, &citizen_id)?.national_register_number)
}
