//! The simulated "block my key" page, for a lost or stolen phone: the person proves their
//! identity through any source (bank card, eID, or the counter's activation link with the code
//! handed out there) and the account is blocked at once. Its open requests are closed as denied,
//! no phone can approve anything, and relying parties are refused. Activating a phone again (any
//! source) lifts it.

use std::net::{IpAddr, SocketAddr};

use crate::store::{Sql, identity_codes, requests};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use sleutel_protocol::api::sim::{BlockMyKey, KeyBlocked};
use sleutel_protocol::identity::{self, ACTIVATION_CODE_LENGTH, IdentitySource};

use crate::enrollment::{CounterCheck, check_counter_activation};
use crate::error::{Result, ServerError};
use crate::extract::{self, RawBody};
use crate::server::{App, AppState};
use crate::sim::citizens::citizen_identity;
use crate::sim::{bank, eid, keep_counts};
use crate::{clock, events};

/// `POST /sim/block-my-key`. The page needs no key at all, so its activation codes are bounded
/// like the phone's: the wrong ones from the caller's address and on the whole server count
/// towards the same limits, checked before a code is compared.
pub(crate) async fn block_my_key(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
            let nrn = match proven_identity(app, &tx, source, &form, peer.ip(), now) {
                Ok(nrn) => nrn,
                Err(Refused::Counted(e)) => {
                    tx.commit()?;
                    return Err(e);
                }
                Err(Refused::Other(e)) => return keep_counts(tx, e),
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

/// Why the form proves no identity.
enum Refused {
    /// A guess that was counted (an unknown activation link): the count is kept, the refusal
    /// is not one that [`keep_counts`] keeps.
    Counted(ServerError),
    /// Any other refusal, ended by [`keep_counts`].
    Other(ServerError),
}

impl From<ServerError> for Refused {
    fn from(e: ServerError) -> Self {
        Refused::Other(e)
    }
}

/// The national register number the form proves, through the source it names; `peer` is the
/// caller's address, which a guess of an activation code counts on.
fn proven_identity(
    app: &App,
    tx: &impl Sql,
    source: IdentitySource,
    form: &BlockMyKey,
    peer: IpAddr,
    now: i64,
) -> std::result::Result<String, Refused> {
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
            return match check_counter_activation(app, tx, peer, &token, &code, now)? {
                CounterCheck::Proven { code_id, identity } => {
                    // The statement itself uses the code once, not only the check above.
                    if !identity_codes::use_up(tx, &code_id, now).map_err(ServerError::from)? {
                        return Err(ServerError::IdentityCodeUsed.into());
                    }
                    Ok(identity.national_register_number().to_owned())
                }
                CounterCheck::UnknownLink => Err(Refused::Counted(ServerError::NotFound(
                    "no such activation link".into(),
                ))),
                CounterCheck::WrongCode { attempts_left } => {
                    Err(ServerError::WrongIdentityCode { attempts_left }.into())
                }
            };
        }
    };
    Ok(citizen_identity(tx, &citizen_id)?.national_register_number)
}
