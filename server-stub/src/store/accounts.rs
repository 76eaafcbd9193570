//! Accounts and their devices: the person's identity, the devices' keys, the wrong-code
//! counts, the account history, the devices' push tokens, and the proof ids seen (replay cache).
//! The rules (when a count blocks, which device may do what, who keeps a push token) are the
//! domain modules'; here the reading and writing.

use std::fmt;

use sleutel_protocol::api::PushPlatform;
use sleutel_protocol::identity::IdentitySource;

use super::enrollments::{ProvenIdentity, source_name};
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

/// The account of the active (not revoked) device `jkt`, if there is one.
pub(crate) fn account_of_active_device(
    conn: &impl Sql,
    jkt: &str,
) -> Result<Option<String>, DbError> {
    conn.query_row(
        "SELECT account_id FROM devices WHERE jkt = ?1 AND revoked_at IS NULL",
        params![jkt],
        |row| row.get(0),
    )
    .optional()
}

/// The national register number of the person whose account has the active device `jkt`, if
/// there is one.
pub(crate) fn person_of_active_device(
    conn: &impl Sql,
    jkt: &str,
) -> Result<Option<String>, DbError> {
    conn.query_row(
        "SELECT a.national_register_number FROM devices d JOIN accounts a ON a.id = d.account_id
         WHERE d.jkt = ?1 AND d.revoked_at IS NULL",
        params![jkt],
        |row| row.get(0),
    )
    .optional()
}

/// The national register number of the person whose account has (or had) the device `jkt`,
/// active or revoked, if it was ever registered.
pub(crate) fn person_of_device(conn: &impl Sql, jkt: &str) -> Result<Option<String>, DbError> {
    conn.query_row(
        "SELECT a.national_register_number FROM devices d
         JOIN accounts a ON a.id = d.account_id WHERE d.jkt = ?1",
        params![jkt],
        |row| row.get(0),
    )
    .optional()
}

/// A device being registered by a completion.
pub(crate) struct NewDevice<'a> {
    /// Its key's thumbprint.
    pub jkt: &'a str,
    /// The account it joins.
    pub account_id: &'a str,
    /// Its public key, as a JWK (JSON).
    pub jwk: &'a str,
    /// Its PIN public key, as a JWK (JSON).
    pub pin_jwk: &'a str,
    /// The phone number verified for it.
    pub phone_number: &'a str,
    /// When it was registered.
    pub enrolled_at: i64,
    /// The phone's statement that the key is in secure hardware.
    pub key_in_hardware: bool,
}

/// Registers a device, or registers again a device key that comes back: its account, keys and
/// number are the new ones, it is active again, and its biometric key and wrong-code count are
/// dropped.
pub(crate) fn register_device(tx: &Tx<'_>, device: &NewDevice<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO devices (jkt, account_id, jwk, pin_jwk, phone_number, enrolled_at,
             revoked_at, key_in_hardware)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)
         ON CONFLICT (jkt) DO UPDATE SET account_id = excluded.account_id, jwk = excluded.jwk,
             pin_jwk = excluded.pin_jwk, phone_number = excluded.phone_number,
             enrolled_at = excluded.enrolled_at, revoked_at = NULL, revoked_reason = NULL,
             biometric_jwk = NULL, pin_failures = 0,
             key_in_hardware = excluded.key_in_hardware",
        params![
            device.jkt,
            device.account_id,
            device.jwk,
            device.pin_jwk,
            device.phone_number,
            device.enrolled_at,
            device.key_in_hardware
        ],
    )?;
    Ok(())
}

/// Revokes the device `jkt` as replaced, if it is an active device of `account_id`. Returns
/// whether it was.
pub(crate) fn revoke_replaced_device(
    tx: &Tx<'_>,
    jkt: &str,
    account_id: &str,
    now: i64,
) -> Result<bool, DbError> {
    let revoked = tx.execute(
        "UPDATE devices SET revoked_at = ?3, revoked_reason = 'replaced'
         WHERE jkt = ?1 AND account_id = ?2 AND revoked_at IS NULL",
        params![jkt, account_id, now],
    )?;
    Ok(revoked > 0)
}

/// Revokes as replaced the active devices of `account_id` other than `kept_jkt`, except the
/// `keep_others` most recently enrolled of them. Returns how many were revoked.
pub(crate) fn revoke_all_but_newest(
    tx: &Tx<'_>,
    account_id: &str,
    kept_jkt: &str,
    keep_others: u32,
    now: i64,
) -> Result<usize, DbError> {
    tx.execute(
        "UPDATE devices SET revoked_at = ?3, revoked_reason = 'replaced'
         WHERE account_id = ?1 AND revoked_at IS NULL AND jkt != ?2
           AND jkt NOT IN (SELECT jkt FROM devices
                           WHERE account_id = ?1 AND revoked_at IS NULL AND jkt != ?2
                           ORDER BY enrolled_at DESC, rowid DESC LIMIT ?4)",
        params![account_id, kept_jkt, now, keep_others],
    )
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

/// Sets the PIN public key (a JWK, JSON) of device `jkt`, changed by the code change whose id
/// is `change_id`.
pub(crate) fn set_pin_key(
    tx: &Tx<'_>,
    jkt: &str,
    pin_jwk: &str,
    change_id: &str,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE devices SET pin_jwk = ?2, pin_change_id = ?3 WHERE jkt = ?1",
        params![jkt, pin_jwk, change_id],
    )?;
    Ok(())
}

/// Records `change_id` as the change device `jkt`'s PIN key came from last: a repeat of a change
/// already applied.
pub(crate) fn set_pin_change_id(tx: &Tx<'_>, jkt: &str, change_id: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE devices SET pin_change_id = ?2 WHERE jkt = ?1",
        params![jkt, change_id],
    )?;
    Ok(())
}

/// The id of the last code change applied to device `jkt`, if any.
pub(crate) fn last_pin_change(conn: &impl Sql, jkt: &str) -> Result<Option<String>, DbError> {
    Ok(conn
        .query_row(
            "SELECT pin_change_id FROM devices WHERE jkt = ?1",
            params![jkt],
            |row| row.get::<Option<String>>(0),
        )
        .optional()?
        .flatten())
}

/// Records that code change `change_id` of device `jkt` did not take effect, until
/// `forget_at`. Idempotent: asking again about a void change changes nothing.
pub(crate) fn void_code_change(
    conn: &impl Sql,
    jkt: &str,
    change_id: &str,
    forget_at: i64,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO void_code_changes (device_jkt, change_id, forget_at) VALUES (?1, ?2, ?3)
         ON CONFLICT DO NOTHING",
        params![jkt, change_id, forget_at],
    )?;
    Ok(())
}

/// Whether code change `change_id` of device `jkt` was declared void.
pub(crate) fn is_void_code_change(
    conn: &impl Sql,
    jkt: &str,
    change_id: &str,
) -> Result<bool, DbError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM void_code_changes WHERE device_jkt = ?1 AND change_id = ?2)",
        params![jkt, change_id],
        |row| row.get(0),
    )
}

/// How many void code changes of device `jkt` are still remembered at `now`, and when the
/// first of them is forgotten.
pub(crate) fn live_void_code_changes(
    conn: &impl Sql,
    jkt: &str,
    now: i64,
) -> Result<(i64, Option<i64>), DbError> {
    conn.query_row(
        "SELECT count(*), min(forget_at) FROM void_code_changes
         WHERE device_jkt = ?1 AND forget_at >= ?2",
        params![jkt, now],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

/// Forgets the void code changes remembered until before `now`. Returns how many.
pub(crate) fn forget_void_code_changes(conn: &impl Sql, now: i64) -> Result<usize, DbError> {
    conn.execute(
        "DELETE FROM void_code_changes WHERE forget_at < ?1",
        params![now],
    )
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

/// The account of the person with national register number `nrn`, if there is one.
pub(crate) fn account_of_person(conn: &impl Sql, nrn: &str) -> Result<Option<String>, DbError> {
    conn.query_row(
        "SELECT id FROM accounts WHERE national_register_number = ?1",
        params![nrn],
        |row| row.get(0),
    )
    .optional()
}

/// Whether account `id` is blocked; [`DbError::NoRow`] when there is no such account.
pub(crate) fn is_blocked(conn: &impl Sql, id: &str) -> Result<bool, DbError> {
    conn.query_row(
        "SELECT blocked_at IS NOT NULL FROM accounts WHERE id = ?1",
        params![id],
        |row| row.get(0),
    )
}

/// Creates account `id` for `identity`, proven through `source`, not blocked.
pub(crate) fn create_account(
    tx: &Tx<'_>,
    id: &str,
    identity: &ProvenIdentity,
    source: IdentitySource,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO accounts (id, national_register_number, given_name, family_name,
             birthdate, identity_source, identity_issuer, evidence_type,
             evidence_reference, pin_failures, blocked_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?10, ?6, ?7, ?8, 0, NULL, ?9, ?9)",
        params![
            id,
            identity.national_register_number,
            identity.given_name,
            identity.family_name,
            identity.birthdate,
            identity.issuer,
            identity.evidence_type,
            identity.evidence_reference,
            now,
            source_name(source)
        ],
    )?;
    Ok(())
}

/// Renews account `id` with `identity`, proven again through `source`: fresh names and
/// evidence, its wrong-code count cleared and its block lifted.
pub(crate) fn renew_account(
    tx: &Tx<'_>,
    id: &str,
    identity: &ProvenIdentity,
    source: IdentitySource,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE accounts SET given_name = ?2, family_name = ?3, birthdate = ?4,
             identity_source = ?9, identity_issuer = ?5, evidence_type = ?6,
             evidence_reference = ?7, pin_failures = 0, blocked_at = NULL,
             updated_at = ?8
         WHERE id = ?1",
        params![
            id,
            identity.given_name,
            identity.family_name,
            identity.birthdate,
            identity.issuer,
            identity.evidence_type,
            identity.evidence_reference,
            now,
            source_name(source)
        ],
    )?;
    Ok(())
}

/// Makes `phone_number` reach account `account_id`, verified at `now`, taking it from any
/// account it reached before.
pub(crate) fn point_phone_number(
    tx: &Tx<'_>,
    phone_number: &str,
    account_id: &str,
    now: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO phone_numbers (phone_number, account_id, verified_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (phone_number) DO UPDATE SET account_id = excluded.account_id,
             verified_at = excluded.verified_at",
        params![phone_number, account_id, now],
    )?;
    Ok(())
}

// --- History -------------------------------------------------------------------------------------

/// Adds `event` with `detail` at `now` to the history of account `account_id`; `client_id`
/// names the relying party the event concerns, if any (a "this was not me" report).
pub(crate) fn record_event(
    conn: &impl Sql,
    account_id: &str,
    event: &str,
    detail: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO account_events (account_id, event, detail, client_id, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![account_id, event, detail, client_id, now],
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
