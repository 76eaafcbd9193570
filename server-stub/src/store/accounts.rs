//! Accounts and their devices: the person's identity, the devices' keys, the wrong-code
//! counts, the account history, the devices' push tokens, and the proof ids seen (replay cache).
//! The rules (when a count blocks, which device may do what, who keeps a push token) are the
//! domain modules'; here the reading and writing.

use std::fmt;

use sleutel_protocol::api::PushPlatform;

use super::{DbError, OptionalRow, Sql, Tx};
use crate::params;

// --- Proof ids (replay cache) --------------------------------------------------------------------

/// Whether `jkt` is a key the server knows: a device's (active or revoked) or an enrollment's.
pub(crate) fn is_known_key(conn: &impl Sql, jkt: &str) -> Result<bool, DbError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE jkt = ?1)
                 OR EXISTS (SELECT 1 FROM enrollments WHERE device_jkt = ?1)",
        params![jkt],
        |row| row.get(0),
    )
}

/// Remembers the proof id `jti` of key `jkt` until `expires_at`. Conditional: `false` (nothing
/// written) when the key's proof with that id was remembered already, so a proof is accepted
/// once.
pub(crate) fn remember_proof(
    conn: &impl Sql,
    jkt: &str,
    jti: &str,
    expires_at: i64,
) -> Result<bool, DbError> {
    let inserted = conn.execute(
        "INSERT INTO proof_jtis (jkt, jti, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![jkt, jti, expires_at],
    )?;
    Ok(inserted > 0)
}

/// Forgets the proof ids remembered until before `now`. Returns how many.
pub(crate) fn forget_expired_proofs(conn: &impl Sql, now: i64) -> Result<usize, DbError> {
    conn.execute("DELETE FROM proof_jtis WHERE expires_at < ?1", params![now])
}

// --- Devices -------------------------------------------------------------------------------------

/// A registered device, active or revoked.
pub(crate) struct DeviceStatus {
    /// The account it belongs to.
    pub account_id: String,
    /// When it was revoked (`None`: active).
    pub revoked_at: Option<i64>,
}

/// The device with key thumbprint `jkt`, if one was ever registered.
pub(crate) fn find_device(conn: &impl Sql, jkt: &str) -> Result<Option<DeviceStatus>, DbError> {
    conn.query_row(
        "SELECT account_id, revoked_at FROM devices WHERE jkt = ?1",
        params![jkt],
        |row| {
            Ok(DeviceStatus {
                account_id: row.get(0)?,
                revoked_at: row.get(1)?,
            })
        },
    )
    .optional()
}

/// Revokes the device `jkt` at its user's request, dropping its biometric key.
pub(crate) fn deactivate_device(tx: &Tx<'_>, jkt: &str, now: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE devices SET revoked_at = ?2, revoked_reason = 'deactivated',
             biometric_jwk = NULL
         WHERE jkt = ?1",
        params![jkt, now],
    )?;
    Ok(())
}

/// Sets the PIN public key (a JWK, JSON) of device `jkt`.
pub(crate) fn set_pin_key(tx: &Tx<'_>, jkt: &str, pin_jwk: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE devices SET pin_jwk = ?2 WHERE jkt = ?1",
        params![jkt, pin_jwk],
    )?;
    Ok(())
}

/// Sets the biometric public key (a JWK, JSON) of device `jkt`, replacing any earlier one.
pub(crate) fn set_biometric_key(
    tx: &Tx<'_>,
    jkt: &str,
    biometric_jwk: &str,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE devices SET biometric_jwk = ?2 WHERE jkt = ?1",
        params![jkt, biometric_jwk],
    )?;
    Ok(())
}

/// Forgets the biometric key of device `jkt`. Returns whether it had one.
pub(crate) fn forget_biometric_key(tx: &Tx<'_>, jkt: &str) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE devices SET biometric_jwk = NULL WHERE jkt = ?1 AND biometric_jwk IS NOT NULL",
        params![jkt],
    )?;
    Ok(changed > 0)
}

// --- Accounts and wrong-code counts --------------------------------------------------------------

/// What the code checks read of a device and its account.
pub(crate) struct CodeStanding {
    /// The account the device belongs to.
    pub account_id: String,
    /// The device's PIN public key, a JWK (JSON); `None` only in a damaged row.
    pub pin_jwk: Option<String>,
    /// Wrong codes on the account since the last right code (any phone).
    pub account_failures: u32,
    /// Wrong codes on this device since its last right code.
    pub device_failures: u32,
    /// Whether the account is blocked.
    pub blocked: bool,
}

/// The code standing of device `jkt`; [`DbError::NoRow`] when there is no such device.
pub(crate) fn code_standing(conn: &impl Sql, jkt: &str) -> Result<CodeStanding, DbError> {
    conn.query_row(
        "SELECT d.account_id, d.pin_jwk, a.pin_failures, d.pin_failures,
                    a.blocked_at IS NOT NULL
                 FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.jkt = ?1",
        params![jkt],
        |row| {
            Ok(CodeStanding {
                account_id: row.get(0)?,
                pin_jwk: row.get(1)?,
                account_failures: row.get(2)?,
                device_failures: row.get(3)?,
                blocked: row.get(4)?,
            })
        },
    )
}

/// Sets the consecutive wrong codes of device `jkt` to `failures`.
pub(crate) fn set_device_wrong_codes(tx: &Tx<'_>, jkt: &str, failures: u32) -> Result<(), DbError> {
    tx.execute(
        "UPDATE devices SET pin_failures = ?2 WHERE jkt = ?1",
        params![jkt, failures],
    )?;
    Ok(())
}

/// Sets the consecutive wrong codes of account `id` to `failures`.
pub(crate) fn set_account_wrong_codes(
    tx: &Tx<'_>,
    id: &str,
    failures: u32,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE accounts SET pin_failures = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, failures, now],
    )?;
    Ok(())
}

/// Sets the consecutive wrong codes of account `id` to `failures` and blocks it (a block
/// already in place keeps its time).
pub(crate) fn block_after_wrong_codes(
    tx: &Tx<'_>,
    id: &str,
    failures: u32,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE accounts SET pin_failures = ?2, blocked_at = COALESCE(blocked_at, ?3),
                     updated_at = ?3
                 WHERE id = ?1",
        params![id, failures, now],
    )?;
    Ok(())
}

/// Clears the consecutive wrong codes of account `account_id` and of its device `jkt`.
pub(crate) fn clear_wrong_codes(
    tx: &Tx<'_>,
    account_id: &str,
    jkt: &str,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE devices SET pin_failures = 0 WHERE jkt = ?1",
        params![jkt],
    )?;
    tx.execute(
        "UPDATE accounts SET pin_failures = 0, updated_at = ?2 WHERE id = ?1",
        params![account_id, now],
    )?;
    Ok(())
}

// --- History -------------------------------------------------------------------------------------

/// Adds `event` with `detail` at `now` to the history of account `account_id`.
pub(crate) fn record_event(
    conn: &impl Sql,
    account_id: &str,
    event: &str,
    detail: &str,
    now: i64,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO account_events (account_id, event, detail, at) VALUES (?1, ?2, ?3, ?4)",
        params![account_id, event, detail, now],
    )?;
    Ok(())
}

// --- Push tokens ---------------------------------------------------------------------------------

/// Where one device receives its pushes. Tokens address one app install: never logged, and
/// only the platform appears in `Debug` output.
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

/// Takes `token` from every device other than `device_jkt` of `device_jkt`'s own account.
pub(crate) fn take_push_token_within_account(
    conn: &impl Sql,
    device_jkt: &str,
    platform: PushPlatform,
    token: &str,
) -> Result<(), DbError> {
    conn.execute(
        "DELETE FROM push_tokens WHERE platform = ?1 AND token = ?2 AND device_jkt != ?3
             AND device_jkt IN (SELECT jkt FROM devices WHERE account_id =
                 (SELECT account_id FROM devices WHERE jkt = ?3))",
        params![platform.as_str(), token, device_jkt],
    )?;
    Ok(())
}

/// Sets the push token of device `device_jkt`, replacing the one it had.
pub(crate) fn set_push_token(
    conn: &impl Sql,
    device_jkt: &str,
    platform: PushPlatform,
    token: &str,
    now: i64,
) -> Result<(), DbError> {
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
pub(crate) fn push_targets_of_account(
    conn: &impl Sql,
    account_id: &str,
) -> Result<Vec<Option<PushTarget>>, DbError> {
    conn.query_map(
        "SELECT d.jkt, t.platform, t.token FROM devices d
         LEFT JOIN push_tokens t ON t.device_jkt = d.jkt
         WHERE d.account_id = ?1 AND d.revoked_at IS NULL
         ORDER BY d.enrolled_at, d.rowid",
        params![account_id],
        |row| {
            let (device_jkt, platform, token) = (
                row.get::<String>(0)?,
                row.get::<Option<String>>(1)?,
                row.get::<Option<String>>(2)?,
            );
            let (Some(platform), Some(token)) = (platform, token) else {
                return Ok(None);
            };
            let platform = PushPlatform::from_name(&platform).ok_or_else(|| {
                DbError::Value(format!("unknown push platform {platform:?} stored"))
            })?;
            Ok(Some(PushTarget {
                device_jkt,
                platform,
                token,
            }))
        },
    )
}

/// Deletes `token` of `platform` from every device that holds it. Returns whether one held it.
pub(crate) fn forget_push_token(
    conn: &impl Sql,
    platform: PushPlatform,
    token: &str,
) -> Result<bool, DbError> {
    let deleted = conn.execute(
        "DELETE FROM push_tokens WHERE platform = ?1 AND token = ?2",
        params![platform.as_str(), token],
    )?;
    Ok(deleted > 0)
}
