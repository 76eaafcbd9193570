//! Storage of the devices' push tokens (`push_tokens`, schema v10): one token per device, one
//! device per token. The database itself drops a token when its device is revoked or its
//! account blocked (the schema's triggers), so the domain modules that revoke and block need no
//! push code. Tokens address one app install: they are never logged, and only their platform
//! appears in `Debug` output.

use rusqlite::{Connection, params};
use sleutel_protocol::api::PushPlatform;

use crate::error::Result;

/// Makes `token` the push token of the device `device_jkt`, replacing the one it had. A device
/// that registered the same token before gives it up: the token addresses one app install,
/// which is now this device's.
pub(crate) fn register(
    conn: &Connection,
    device_jkt: &str,
    platform: PushPlatform,
    token: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM push_tokens WHERE platform = ?1 AND token = ?2 AND device_jkt != ?3",
    )?
    .execute(params![platform.as_str(), token, device_jkt])?;
    conn.prepare_cached(
        "INSERT INTO push_tokens (device_jkt, platform, token, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_jkt) DO UPDATE SET platform = excluded.platform,
             token = excluded.token, updated_at = excluded.updated_at",
    )?
    .execute(params![device_jkt, platform.as_str(), token, now])?;
    Ok(())
}
