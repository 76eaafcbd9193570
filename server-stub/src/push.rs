//! Push notifications. The message carries only the account id and the request id; the phone
//! fetches the signed request over the authenticated API, so nothing secret rides on FCM or
//! APNs. The server writes every message to an outbox table the simulator serves
//! (`GET /sim/outbox/push`); the sender is a trait inside the crate, so FCM/APNs would be
//! another implementation chosen in `server::start`, not a plug-in from outside. Phones also
//! poll, so nothing depends on push arriving.

use rusqlite::{Connection, params};
use sleutel_protocol::api::PushMessage;

use crate::clock;
use crate::error::Result;

/// Delivers a push message to the phones of an account.
pub(crate) trait PushSender: Send + Sync + 'static {
    /// Sends `message`. `db` is the connection of the transaction that created the request, so
    /// an outbox write commits or rolls back with it.
    fn send(&self, db: &Connection, message: &PushMessage) -> Result<()>;
}

/// The default sender: the simulator's push outbox.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OutboxPush;

impl PushSender for OutboxPush {
    fn send(&self, db: &Connection, message: &PushMessage) -> Result<()> {
        db.execute(
            "INSERT INTO push_outbox (account_id, request_id, created_at) VALUES (?1, ?2, ?3)",
            params![message.account_id, message.request_id, clock::now()],
        )?;
        Ok(())
    }
}
