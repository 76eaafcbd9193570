//! What the server "sent": the SMS outbox (per phone number), the e-mail outbox (per address)
//! and the push outbox (per account), read by the harness in place of a real inbox.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use sleutel_protocol::api::sim::{EmailOutbox, PushOutbox, SmsOutbox};
use sleutel_protocol::phone;

use crate::error::{Result, ServerError};
use crate::extract::Params;
use crate::server::AppState;
use crate::store::{Sql, outboxes};

/// Messages returned per outbox read at most; a reader pages on with `after`.
pub(crate) const MAX_OUTBOX_MESSAGES: i64 = 100;

/// How long the simulated outboxes keep a message: a day beyond the longest-lived thing one can
/// carry (the counter's activation link, 14 days by default). The SMS outbox holds control
/// codes and the e-mail outbox counter links in the clear, so they are not kept for ever.
pub(crate) const OUTBOX_RETENTION_SECS: i64 = 15 * 86_400;

/// Deletes outbox messages older than [`OUTBOX_RETENTION_SECS`]; returns how many.
pub(crate) fn purge(conn: &impl Sql, now: i64) -> Result<usize> {
    Ok(outboxes::purge_sent_before(
        conn,
        now - OUTBOX_RETENTION_SECS,
    )?)
}

/// `GET /sim/outbox/sms?phone_number=+32...`: every SMS to that number, oldest first (the
/// newest [`MAX_OUTBOX_MESSAGES`]).
pub(crate) async fn sms(State(state): State<AppState>, uri: Uri) -> Result<Json<SmsOutbox>> {
    let params = Params::query(&uri)?;
    let number = phone::normalize_belgian_mobile(params.required("phone_number")?)
        .map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
    let messages = state
        .db(move |_, conn| Ok(outboxes::sms_to(conn, &number, MAX_OUTBOX_MESSAGES)?))
        .await?;
    Ok(Json(SmsOutbox { messages }))
}

/// Puts an e-mail in the outbox (the simulator's mail server).
pub(crate) fn send_email(
    conn: &impl Sql,
    email: &str,
    subject: &str,
    text: &str,
    now: i64,
) -> Result<()> {
    Ok(outboxes::queue_email(conn, email, subject, text, now)?)
}

/// `GET /sim/outbox/email?email=...`: every e-mail to that address, oldest first (the newest
/// [`MAX_OUTBOX_MESSAGES`]).
pub(crate) async fn email(State(state): State<AppState>, uri: Uri) -> Result<Json<EmailOutbox>> {
    let params = Params::query(&uri)?;
    let address = crate::sim::check_email(params.required("email")?)?;
    let messages = state
        .db(move |_, conn| Ok(outboxes::emails_to(conn, &address, MAX_OUTBOX_MESSAGES)?))
        .await?;
    Ok(Json(EmailOutbox { messages }))
}

/// `GET /sim/outbox/push?account_id=...&after=SEQ`: push messages for the account with a
/// sequence number above `after` (default 0), oldest first.
pub(crate) async fn push(State(state): State<AppState>, uri: Uri) -> Result<Json<PushOutbox>> {
    let params = Params::query(&uri)?;
    let account_id = params.required_id("account_id")?.to_owned();
    let after = match params.optional("after") {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| ServerError::InvalidRequest("after must be a sequence number".into()))?,
    };
    let messages = state
        .db(move |_, conn| {
            Ok(outboxes::pushes_for(
                conn,
                &account_id,
                after,
                MAX_OUTBOX_MESSAGES,
            )?)
        })
        .await?;
    Ok(Json(PushOutbox { messages }))
}
