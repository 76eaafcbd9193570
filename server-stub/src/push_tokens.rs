//! Storage of the devices' push tokens (`push_tokens`, schemas v10 and v12): one token per
//! device, and within an account one device per token (a phone with several accounts has one
//! token and a device per account). The database itself drops a token when its device is revoked or its
//! account blocked (the schema's triggers), so the domain modules that revoke and block need no
//! push code. Tokens address one app install: they are never logged, and only their platform
//! appears in `Debug` output.

use std::fmt;

use crate::params;
use crate::store::Sql;
use sleutel_protocol::api::PushPlatform;

use crate::error::{Result, ServerError};

/// Where one device receives its pushes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PushTarget {
    /// The device's key thumbprint.
    pub device_jkt: String,
    /// The push service.
    pub platform: PushPlatform,
    /// The platform's token, in its canonical form.
    pub token: String,
}

impl fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushTarget")
            .field("device_jkt", &self.device_jkt)
            .field("platform", &self.platform)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Makes `token` the push token of the device `device_jkt`, replacing the one it had. Another
/// device of the same account that registered the same token gives it up: the token addresses
/// one app install, which is now this device's. Devices of other accounts keep it: they are the
/// same install's other accounts, and a stranger who registers someone's token must not take
/// that person's pushes away.
pub(crate) fn register(
    conn: &impl Sql,
    device_jkt: &str,
    platform: PushPlatform,
    token: &str,
    now: i64,
) -> Result<()> {
    conn.execute(
        "DELETE FROM push_tokens WHERE platform = ?1 AND token = ?2 AND device_jkt != ?3
             AND device_jkt IN (SELECT jkt FROM devices WHERE account_id =
                 (SELECT account_id FROM devices WHERE jkt = ?3))",
        params![platform.as_str(), token, device_jkt],
    )?;
    conn.execute(
        "INSERT INTO push_tokens (device_jkt, platform, token, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_jkt) DO UPDATE SET platform = excluded.platform,
             token = excluded.token, updated_at = excluded.updated_at",
        params![device_jkt, platform.as_str(), token, now],
    )?;
    Ok(())
}

/// One entry per active device of `account_id`, oldest first: where it receives pushes, or
/// `None` for a device that registered no token.
pub(crate) fn targets_of_account(
    conn: &impl Sql,
    account_id: &str,
) -> Result<Vec<Option<PushTarget>>> {
    let rows = conn.query_map(
        "SELECT d.jkt, t.platform, t.token FROM devices d
         LEFT JOIN push_tokens t ON t.device_jkt = d.jkt
         WHERE d.account_id = ?1 AND d.revoked_at IS NULL
         ORDER BY d.enrolled_at, d.rowid",
        params![account_id],
        |row| {
            Ok((
                row.get::<String>(0)?,
                row.get::<Option<String>>(1)?,
                row.get::<Option<String>>(2)?,
            ))
        },
    )?;
    let mut targets = Vec::new();
    for row in rows {
        let target = match row {
            (device_jkt, Some(platform), Some(token)) => Some(PushTarget {
                device_jkt,
                platform: PushPlatform::from_name(&platform).ok_or_else(|| {
                    ServerError::Internal(format!("unknown push platform {platform:?} stored"))
                })?,
                token,
            }),
            _ => None,
        };
        targets.push(target);
    }
    Ok(targets)
}

/// Forgets the token of `target`, on every device that holds it, after its service said it no
/// longer reaches the app: the install is gone for all its accounts. A token a device registered
/// since (the app got a new one) stays. Returns whether one was dropped.
pub(crate) fn forget_unreachable(conn: &impl Sql, target: &PushTarget) -> Result<bool> {
    let deleted = conn.execute(
        "DELETE FROM push_tokens WHERE platform = ?1 AND token = ?2",
        params![target.platform.as_str(), target.token],
    )?;
    Ok(deleted > 0)
}
