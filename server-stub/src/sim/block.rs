//! The simulated "block my key" page, for a lost or stolen phone: the person proves their
//! identity through any source (bank card, eID, or the counter's activation link with the code
//! handed out there) and the account is blocked at once. Its open requests are closed as denied,
//! no phone can approve anything, and relying parties are refused. Activating a phone again (any
//! source) lifts it.

use crate::store::{Sql, identity_codes, requests};
use axum::Json;
use axum::extract::State;
use sleutel_protocol::api::sim::{BlockMyKey, KeyBlocked};
use sleutel_protocol::identity::{self, ACTIVATION_CODE_LENGTH, IdentitySource};

use crate::enrollment::{CounterCheck, check_counter_activation};
use crate::error::{Result, ServerError};
use crate::extract::{self, RawBody};
use crate::server::{App, AppState};
use crate::sim::citizens::citizen_identity;
use crate::sim::{bank, eid, keep_counts};
use crate::{clock, events};

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
            let tx = conn.immediate()?;
            let nrn = match proven_identity(app, &tx, source, &form, now) {
                Ok(nrn) => nrn,
                Err(e) => return keep_counts(tx, e),
            };
            let Some(account_id) = crate::store::accounts::account_of_person(&tx, &nrn)? else {
                return Err(ServerError::NotFound(
                    "this person has no digital key".into(),
                ));
            };
            requests::block_account(&tx, &account_id, now)?;
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
    tx: &impl Sql,
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
            let token = zeroize::Zeroizing::new(field(&form.activation_token, "activation_token")?);
            let code = zeroize::Zeroizing::new(
                identity::normalize_identity_code(&typed, ACTIVATION_CODE_LENGTH)
                    .map_err(|e| ServerError::InvalidRequest(e.to_string()))?,
            );
            // Both factors, as for an activation: a wrong code counts on the link's code.
            return match check_counter_activation(app, tx, &token, &code, now)? {
                CounterCheck::Proven { code_id, identity } => {
                    // The statement itself uses the code once, not only the check above.
                    if !identity_codes::use_up(tx, &code_id, now)? {
                        return Err(ServerError::IdentityCodeUsed);
                    }
                    Ok(identity.national_register_number().to_owned())
                }
                CounterCheck::UnknownLink => {
                    Err(ServerError::NotFound("no such activation link".into()))
                }
                CounterCheck::WrongCode { attempts_left } => {
                    Err(ServerError::WrongIdentityCode { attempts_left })
                }
            };
        }
    };
    Ok(citizen_identity(tx, &citizen_id)?.national_register_number)
}
