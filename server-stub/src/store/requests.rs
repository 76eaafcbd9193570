//! Action requests and their answers: pending requests of an account, the phone's answer with
//! its evidence, supersession, closing on a block.
//!
//! The domain ([`crate::requests`], [`crate::oidc`]) decides; these functions read and write,
//! inside the caller's transaction where a decision rests on what they read. The answer, the
//! token issue and the block are conditional updates: they change a request only from the state
//! the caller saw, and say whether they did.

use sleutel_protocol::action::{ActionKind, UserVerification};
use sleutel_protocol::jose;
use sleutel_protocol::response::UvMethod;

use super::{DbError, FromValue, OptionalRow, Sql, Tx, ValueRef};
use crate::error::{Result, ServerError};
use crate::params;

/// The state of an action request (the `status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Waiting for the person.
    Pending,
    /// Approved with the code.
    Approved,
    /// Declined by the person.
    Declined,
    /// Closed by the server (the account was blocked, or a newer request superseded it).
    Denied,
}

impl Status {
    const ALL: [Status; 4] = [
        Status::Pending,
        Status::Approved,
        Status::Declined,
        Status::Denied,
    ];

    /// The name stored in the `status` column and answered to the phone.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Declined => "declined",
            Status::Denied => "denied",
        }
    }
}

impl FromValue for Status {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        let text = String::from_value(value)?;
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| DbError::Value(format!("unknown request status {text:?}")))
    }
}

/// Why the person declined (the `decline_reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeclineReason {
    /// The person cancelled.
    Cancelled,
    /// The person reported that they did not start the request.
    NotMe,
    /// The person picked another number than the one the relying party showed.
    WrongNumber,
}

impl DeclineReason {
    const ALL: [DeclineReason; 3] = [
        DeclineReason::Cancelled,
        DeclineReason::NotMe,
        DeclineReason::WrongNumber,
    ];

    /// The name stored in the `decline_reason` column.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DeclineReason::Cancelled => "cancelled",
            DeclineReason::NotMe => "not_me",
            DeclineReason::WrongNumber => "wrong_number",
        }
    }
}

impl FromValue for DeclineReason {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        let text = String::from_value(value)?;
        DeclineReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
            .ok_or_else(|| DbError::Value(format!("unknown decline reason {text:?}")))
    }
}

/// Why the server closed a request (the `closed_reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClosedReason {
    /// The account was blocked.
    Blocked,
    /// A newer request of the same relying party to the same person replaced it.
    Superseded,
}

impl FromValue for ClosedReason {
    fn from_value(value: ValueRef<'_>) -> Result<Self, DbError> {
        match String::from_value(value)?.as_str() {
            "blocked" => Ok(ClosedReason::Blocked),
            "superseded" => Ok(ClosedReason::Superseded),
            other => Err(DbError::Value(format!("unknown closed reason {other:?}"))),
        }
    }
}

/// The stored form of a user-verification requirement: its protocol name (`pin`,
/// `pin_or_biometric`).
fn uv_to_column(uv: UserVerification) -> Result<String> {
    match serde_json::to_value(uv) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        _ => Err(ServerError::Internal(
            "user verification without a name".into(),
        )),
    }
}

fn uv_from_column(name: String) -> Result<UserVerification> {
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|e| ServerError::Internal(format!("stored user verification unreadable: {e}")))
}

/// The stored name of an approval's method (`pin`, `biometric`).
fn method_to_column(method: UvMethod) -> &'static str {
    match method {
        UvMethod::Pin => "pin",
        UvMethod::Biometric => "biometric",
    }
}

fn method_from_column(name: &str) -> Result<UvMethod, DbError> {
    match name {
        "pin" => Ok(UvMethod::Pin),
        "biometric" => Ok(UvMethod::Biometric),
        other => Err(DbError::Value(format!("unknown approval method {other:?}"))),
    }
}

/// A list of claim names as stored (a JSON array).
fn claims_to_column(claims: &[String]) -> Result<String> {
    serde_json::to_string(claims).map_err(|e| ServerError::Internal(e.to_string()))
}

fn claims_from_column(json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json)
        .map_err(|e| ServerError::Internal(format!("stored claims unreadable: {e}")))
}

// --- The phone's side -------------------------------------------------------------------------

/// An action request as the phone side reads it.
#[derive(Debug)]
pub(crate) struct AccountRequest {
    /// The request as the server signed it (compact JWS).
    pub(crate) jws: String,
    /// Required claims.
    pub(crate) claims: Vec<String>,
    /// Claims the person may choose to share.
    pub(crate) optional_claims: Vec<String>,
    /// How the person must confirm.
    pub(crate) uv: UserVerification,
    /// When the request expires (Unix seconds).
    pub(crate) expires_at: i64,
    /// Where it stands.
    pub(crate) status: Status,
    /// Under number matching, the number the relying party shows.
    pub(crate) match_number: Option<u8>,
    /// The relying party that asked.
    pub(crate) client_id: String,
}

/// The request `id` if it belongs to `account_id`; `None` otherwise, whether it does not exist
/// or is someone else's.
pub(crate) fn find_for_account(
    conn: &impl Sql,
    id: &str,
    account_id: &str,
) -> Result<Option<AccountRequest>> {
    let row = conn
        .query_row(
            "SELECT jws, claims, uv, expires_at, status, optional_claims, match_number,
                    client_id
             FROM action_requests
             WHERE id = ?1 AND account_id = ?2",
            params![id, account_id],
            |row| {
                Ok((
                    (
                        row.get::<String>(0)?,
                        row.get::<String>(1)?,
                        row.get::<String>(2)?,
                        row.get::<i64>(3)?,
                        row.get::<Status>(4)?,
                    ),
                    (
                        row.get::<String>(5)?,
                        row.get::<Option<u8>>(6)?,
                        row.get::<String>(7)?,
                    ),
                ))
            },
        )
        .optional()?;
    let Some(((jws, claims, uv, expires_at, status), (optional_claims, match_number, client_id))) =
        row
    else {
        return Ok(None);
    };
    Ok(Some(AccountRequest {
        jws,
        claims: claims_from_column(&claims)?,
        optional_claims: claims_from_column(&optional_claims)?,
        uv: uv_from_column(uv)?,
        expires_at,
        status,
        match_number,
        client_id,
    }))
}

/// The signed requests (JWS) of `account_id` pending and unexpired at `now`, oldest first, at
/// most `limit` of them.
pub(crate) fn pending_of_account(
    conn: &impl Sql,
    account_id: &str,
    now: i64,
    limit: u32,
) -> Result<Vec<String>, DbError> {
    conn.query_map(
        "SELECT jws FROM action_requests
         WHERE account_id = ?1 AND status = 'pending' AND expires_at > ?2
         ORDER BY created_at, rowid
         LIMIT ?3",
        params![account_id, now, limit],
        |row| row.get::<String>(0),
    )
}

/// The phone's answer as the server keeps it for evidence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnswerEvidence<'a> {
    /// The signed response exactly as received.
    pub(crate) response_jws: &'a str,
    /// The device key (JWK) its first signature verified with.
    pub(crate) device_jwk: &'a str,
}

/// Records the person's decline of the pending request `id`, with `reason` when they gave one;
/// `false` (nothing written) when the request is no longer pending.
pub(crate) fn record_decline(
    tx: &Tx<'_>,
    id: &str,
    reason: Option<DeclineReason>,
    evidence: AnswerEvidence<'_>,
    now: i64,
) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE action_requests SET status = 'declined', answered_at = ?2,
             decline_reason = ?3, response_jws = ?4, response_device_jwk = ?5
         WHERE id = ?1 AND status = 'pending'",
        params![
            id,
            now,
            reason.map(DeclineReason::as_str),
            evidence.response_jws,
            evidence.device_jwk
        ],
    )?;
    Ok(changed > 0)
}

/// Records the pending request `id` as declined for a wrong number picked; `false` (nothing
/// written) when the request is no longer pending.
pub(crate) fn record_wrong_number(
    tx: &Tx<'_>,
    id: &str,
    evidence: AnswerEvidence<'_>,
    now: i64,
) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE action_requests SET status = 'declined', answered_at = ?2,
             decline_reason = 'wrong_number', response_jws = ?3,
             response_device_jwk = ?4
         WHERE id = ?1 AND status = 'pending'",
        params![id, now, evidence.response_jws, evidence.device_jwk],
    )?;
    Ok(changed > 0)
}

/// An approval as recorded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Approval<'a> {
    /// How the person confirmed.
    pub(crate) method: UvMethod,
    /// The claims the person agreed to share.
    pub(crate) consented_claims: &'a [String],
    /// The signed response and its device key.
    pub(crate) evidence: AnswerEvidence<'a>,
    /// The key (JWK) the user-verification signature verified with: a code change or a new
    /// biometric key replaces it on the device, so the evidence keeps it.
    pub(crate) uv_jwk: &'a str,
    /// The approving device, whose key-in-hardware statement goes with the approval.
    pub(crate) device_jkt: &'a str,
}

/// Records the approval of the pending request `id`; `false` (nothing written) when the
/// request is no longer pending.
pub(crate) fn record_approval(
    tx: &Tx<'_>,
    id: &str,
    approval: &Approval<'_>,
    now: i64,
) -> Result<bool> {
    let changed = tx.execute(
        "UPDATE action_requests SET status = 'approved', answered_at = ?2, auth_time = ?2,
             method = ?4, consented_claims = ?3, response_jws = ?5,
             response_device_jwk = ?6, response_uv_jwk = ?7,
             device_key_in_hardware =
                 (SELECT key_in_hardware FROM devices WHERE jkt = ?8)
         WHERE id = ?1 AND status = 'pending'",
        params![
            id,
            now,
            claims_to_column(approval.consented_claims)?,
            method_to_column(approval.method),
            approval.evidence.response_jws,
            approval.evidence.device_jwk,
            approval.uv_jwk,
            approval.device_jkt
        ],
    )?;
    Ok(changed > 0)
}

/// Closes every pending request of `account_id` as denied for a block; returns their ids.
pub(crate) fn close_pending_of_account(
    tx: &Tx<'_>,
    account_id: &str,
    now: i64,
) -> Result<Vec<String>, DbError> {
    let ids = tx.query_map(
        "SELECT id FROM action_requests WHERE account_id = ?1 AND status = 'pending'",
        params![account_id],
        |row| row.get::<String>(0),
    )?;
    tx.execute(
        "UPDATE action_requests SET status = 'denied', answered_at = ?2,
             closed_reason = 'blocked'
         WHERE account_id = ?1 AND status = 'pending'",
        params![account_id, now],
    )?;
    Ok(ids)
}

/// Deletes the requests settled (answered or closed, or else expired) at or before `cutoff`,
/// with the phone's signed responses kept as evidence; returns how many went. One statement,
/// atomic on its own.
pub(crate) fn purge_settled_before(conn: &impl Sql, cutoff: i64) -> Result<usize, DbError> {
    // The expression is the one of the index action_requests_settled (schema v8).
    conn.execute(
        "DELETE FROM action_requests WHERE coalesce(answered_at, expires_at) <= ?1",
        params![cutoff],
    )
}

// --- The relying party's side: new requests ---------------------------------------------------

/// The time of the newest request made for `account_id` at or after `since`, if any.
pub(crate) fn latest_created_since(
    conn: &impl Sql,
    account_id: &str,
    since: i64,
) -> Result<Option<i64>, DbError> {
    conn.query_row(
        "SELECT max(created_at) FROM action_requests WHERE account_id = ?1 AND created_at >= ?2",
        params![account_id, since],
        |row| row.get(0),
    )
}

/// How many requests of `client_id` to `account_id` made after `since` the person left
/// unanswered: still pending, or superseded by a newer one.
pub(crate) fn count_unanswered_of_client(
    conn: &impl Sql,
    account_id: &str,
    client_id: &str,
    since: i64,
) -> Result<i64, DbError> {
    conn.query_row(
        "SELECT count(*) FROM action_requests
         WHERE account_id = ?1 AND client_id = ?2 AND created_at > ?3
           AND (status = 'pending' OR closed_reason = 'superseded')",
        params![account_id, client_id, since],
        |row| row.get(0),
    )
}

/// Closes the pending requests of `client_id` to `account_id` as superseded; returns the ids of
/// those still unexpired at `now` (the ones a relying party may still be waiting on).
pub(crate) fn supersede_pending_of_client(
    tx: &Tx<'_>,
    account_id: &str,
    client_id: &str,
    now: i64,
) -> Result<Vec<String>, DbError> {
    let superseded = tx.query_map(
        "SELECT id FROM action_requests
         WHERE account_id = ?1 AND client_id = ?2 AND status = 'pending' AND expires_at > ?3",
        params![account_id, client_id, now],
        |row| row.get::<String>(0),
    )?;
    tx.execute(
        "UPDATE action_requests SET status = 'denied', answered_at = ?3,
             closed_reason = 'superseded'
         WHERE account_id = ?1 AND client_id = ?2 AND status = 'pending'",
        params![account_id, client_id, now],
    )?;
    Ok(superseded)
}

/// How many requests of `account_id` are pending and unexpired at `now`, all relying parties
/// together.
pub(crate) fn count_open_of_account(
    conn: &impl Sql,
    account_id: &str,
    now: i64,
) -> Result<i64, DbError> {
    conn.query_row(
        "SELECT count(*) FROM action_requests
         WHERE account_id = ?1 AND status = 'pending' AND expires_at > ?2",
        params![account_id, now],
        |row| row.get(0),
    )
}

/// A new action request, as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewRequest<'a> {
    /// The request id (the `jti` of the signed request, the id the phone fetches).
    pub(crate) id: &'a str,
    /// The id the relying party polls with.
    pub(crate) auth_req_id: &'a str,
    /// The relying party.
    pub(crate) client_id: &'a str,
    /// The person's account.
    pub(crate) account_id: &'a str,
    /// The signed request (compact JWS); its hash is stored beside it, for lookups by the
    /// `request_hash` an ID token carries.
    pub(crate) jws: &'a str,
    /// The scope asked.
    pub(crate) scope: &'a str,
    /// Required claims.
    pub(crate) claims: &'a [String],
    /// Claims the person may choose to share.
    pub(crate) optional_claims: &'a [String],
    /// How the person must confirm.
    pub(crate) uv: UserVerification,
    /// What is asked.
    pub(crate) kind: ActionKind,
    /// Under number matching, the number the relying party shows.
    pub(crate) match_number: Option<u8>,
    /// When it was made (Unix seconds).
    pub(crate) created_at: i64,
    /// When it expires (Unix seconds).
    pub(crate) expires_at: i64,
}

/// Stores a new pending request.
pub(crate) fn insert(tx: &Tx<'_>, new: &NewRequest<'_>) -> Result<()> {
    let kind_name = match serde_json::to_value(new.kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => return Err(ServerError::Internal("request kind without a name".into())),
    };
    tx.execute(
        "INSERT INTO action_requests (id, auth_req_id, client_id, account_id, jws, scope, claims,
             uv, created_at, expires_at, status, kind, optional_claims, match_number,
             request_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?13, ?14)",
        params![
            new.id,
            new.auth_req_id,
            new.client_id,
            new.account_id,
            new.jws,
            new.scope,
            claims_to_column(new.claims)?,
            uv_to_column(new.uv)?,
            new.created_at,
            new.expires_at,
            kind_name,
            claims_to_column(new.optional_claims)?,
            new.match_number,
            jose::sha256_b64(new.jws),
        ],
    )?;
    Ok(())
}

/// The request id (the one the phone fetches) of the request the relying party knows as
/// `auth_req_id`; [`DbError::NoRow`] when there is none.
pub(crate) fn id_of_auth_req(conn: &impl Sql, auth_req_id: &str) -> Result<String, DbError> {
    conn.query_row(
        "SELECT id FROM action_requests WHERE auth_req_id = ?1",
        params![auth_req_id],
        |row| row.get(0),
    )
}

// --- The relying party's side: grants and sign-ins -------------------------------------------

/// A grant (a request as the token endpoint sees it), with the person's identity it may
/// release.
pub(crate) struct Grant {
    /// The relying party that asked.
    pub(crate) client_id: String,
    /// The person's account.
    pub(crate) account_id: String,
    /// Where the request stands.
    pub(crate) status: Status,
    /// When the request expires (Unix seconds).
    pub(crate) expires_at: i64,
    /// When the relying party last polled (Unix seconds).
    pub(crate) last_poll_at: Option<i64>,
    /// When a token was issued for it, if one was.
    pub(crate) token_issued_at: Option<i64>,
    /// When the person approved.
    pub(crate) auth_time: Option<i64>,
    /// The claims the person agreed to share (a JSON array).
    pub(crate) consented_claims: Option<String>,
    /// The person's given name.
    pub(crate) given_name: String,
    /// The person's family name.
    pub(crate) family_name: String,
    /// How the approval was verified.
    pub(crate) method: Option<UvMethod>,
    /// Why the server closed the request.
    pub(crate) closed_reason: Option<ClosedReason>,
    /// Why the person declined.
    pub(crate) decline_reason: Option<DeclineReason>,
    /// The person's birth date (ISO 8601).
    pub(crate) birthdate: String,
    /// The person's national register number.
    pub(crate) national_register_number: String,
    /// The account's most recently verified phone number.
    pub(crate) phone_number: Option<String>,
    /// The action request as signed and stored: what the phone showed and signed the hash of.
    pub(crate) request_jws: String,
    /// Whether the approving phone said its device key is in secure hardware.
    pub(crate) device_key_in_hardware: bool,
}

/// The grant `auth_req_id`, if there is one.
pub(crate) fn grant(conn: &impl Sql, auth_req_id: &str) -> Result<Option<Grant>, DbError> {
    conn.query_row(
        "SELECT r.client_id, r.account_id, r.status, r.expires_at, r.last_poll_at,
                r.token_issued_at, r.auth_time, r.consented_claims,
                a.given_name, a.family_name, r.method, r.closed_reason, r.decline_reason,
                a.birthdate, a.national_register_number,
                (SELECT p.phone_number FROM phone_numbers p WHERE p.account_id = a.id
                 ORDER BY p.verified_at DESC LIMIT 1),
                r.jws, r.device_key_in_hardware
         FROM action_requests r JOIN accounts a ON a.id = r.account_id
         WHERE r.auth_req_id = ?1",
        params![auth_req_id],
        |row| {
            Ok(Grant {
                client_id: row.get(0)?,
                account_id: row.get(1)?,
                status: row.get(2)?,
                expires_at: row.get(3)?,
                last_poll_at: row.get(4)?,
                token_issued_at: row.get(5)?,
                auth_time: row.get(6)?,
                consented_claims: row.get(7)?,
                given_name: row.get(8)?,
                family_name: row.get(9)?,
                method: row
                    .get::<Option<String>>(10)?
                    .map(|name| method_from_column(&name))
                    .transpose()?,
                closed_reason: row.get(11)?,
                decline_reason: row.get(12)?,
                birthdate: row.get(13)?,
                national_register_number: row.get(14)?,
                phone_number: row.get(15)?,
                request_jws: row.get(16)?,
                device_key_in_hardware: row.get::<Option<bool>>(17)?.unwrap_or(false),
            })
        },
    )
    .optional()
}

/// Records a poll of the grant `auth_req_id` at `now`.
pub(crate) fn record_poll(tx: &Tx<'_>, auth_req_id: &str, now: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE action_requests SET last_poll_at = ?2 WHERE auth_req_id = ?1",
        params![auth_req_id, now],
    )?;
    Ok(())
}

/// Records that a token was issued for the grant `auth_req_id` at `now`; `false` (nothing
/// written) when one was issued before.
pub(crate) fn mark_token_issued(tx: &Tx<'_>, auth_req_id: &str, now: i64) -> Result<bool, DbError> {
    let changed = tx.execute(
        "UPDATE action_requests SET token_issued_at = ?2
         WHERE auth_req_id = ?1 AND token_issued_at IS NULL",
        params![auth_req_id, now],
    )?;
    Ok(changed > 0)
}

/// Where the request behind a sign-in stands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignInRequest {
    /// Its state.
    pub(crate) status: Status,
    /// When it expires (Unix seconds).
    pub(crate) expires_at: i64,
    /// Why the server closed it, if it did.
    pub(crate) closed_reason: Option<ClosedReason>,
}

/// Where the request the relying party knows as `auth_req_id` stands, if it exists.
pub(crate) fn sign_in_request(
    conn: &impl Sql,
    auth_req_id: &str,
) -> Result<Option<SignInRequest>, DbError> {
    conn.query_row(
        "SELECT status, expires_at, closed_reason FROM action_requests
         WHERE auth_req_id = ?1",
        params![auth_req_id],
        |row| {
            Ok(SignInRequest {
                status: row.get(0)?,
                expires_at: row.get(1)?,
                closed_reason: row.get(2)?,
            })
        },
    )
    .optional()
}

// --- Accounts, as requests read and block them -----------------------------------------------
//
// These read and write the accounts aggregate (accounts, devices, phone numbers, history) for
// the request flows and the block page; they belong with `store::accounts` and move there once
// that module has its functions.

/// The biometric key (JWK) registered on the device `jkt`, if any; [`DbError::NoRow`] for no
/// such device.
pub(crate) fn biometric_key_of_device(
    conn: &impl Sql,
    jkt: &str,
) -> Result<Option<String>, DbError> {
    conn.query_row(
        "SELECT biometric_jwk FROM devices WHERE jkt = ?1",
        params![jkt],
        |row| row.get(0),
    )
}

/// The phone numbers of `account_id`.
pub(crate) fn phone_numbers_of_account(
    conn: &impl Sql,
    account_id: &str,
) -> Result<Vec<String>, DbError> {
    conn.query_map(
        "SELECT phone_number FROM phone_numbers WHERE account_id = ?1",
        params![account_id],
        |row| row.get::<String>(0),
    )
}

/// Blocks `account_id` (a block already in place keeps its time).
pub(crate) fn block_account(tx: &Tx<'_>, account_id: &str, now: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE accounts SET blocked_at = COALESCE(blocked_at, ?2), updated_at = ?2
         WHERE id = ?1",
        params![account_id, now],
    )?;
    Ok(())
}

/// The account a relying party reaches through a phone number.
#[derive(Debug, Clone)]
pub(crate) struct LoginAccount {
    /// The account.
    pub(crate) id: String,
    /// Whether it is blocked.
    pub(crate) blocked: bool,
    /// How many of its devices are active.
    pub(crate) active_devices: i64,
}

/// The account whose phone number is `phone_number`, if any.
pub(crate) fn account_of_phone_number(
    conn: &impl Sql,
    phone_number: &str,
) -> Result<Option<LoginAccount>, DbError> {
    conn.query_row(
        "SELECT a.id, a.blocked_at IS NOT NULL,
                (SELECT count(*) FROM devices d
                 WHERE d.account_id = a.id AND d.revoked_at IS NULL)
         FROM phone_numbers p JOIN accounts a ON a.id = p.account_id
         WHERE p.phone_number = ?1",
        params![phone_number],
        |row| {
            Ok(LoginAccount {
                id: row.get(0)?,
                blocked: row.get(1)?,
                active_devices: row.get(2)?,
            })
        },
    )
    .optional()
}

/// The time of the latest event of one of `kinds` in the history of `account_id`, if any.
pub(crate) fn latest_event_at(
    conn: &impl Sql,
    account_id: &str,
    kinds: [&str; 2],
) -> Result<Option<i64>, DbError> {
    conn.query_row(
        "SELECT max(at) FROM account_events WHERE account_id = ?1 AND event IN (?2, ?3)",
        params![account_id, kinds[0], kinds[1]],
        |row| row.get(0),
    )
}

/// Whether relying party `client_id` is named by an event `kind` in the history of
/// `account_id` after `since`.
pub(crate) fn client_reported_since(
    conn: &impl Sql,
    account_id: &str,
    kind: &str,
    client_id: &str,
    since: i64,
) -> Result<bool, DbError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM account_events
                        WHERE account_id = ?1 AND event = ?2 AND client_id = ?3 AND at > ?4)",
        params![account_id, kind, client_id, since],
        |row| row.get(0),
    )
}

// --- For tests ----------------------------------------------------------------------------------

/// The evidence of the request `lookup` names, if the server still has it.
#[cfg(feature = "testing")]
pub(crate) fn evidence(
    conn: &impl Sql,
    lookup: crate::testing::RequestLookup<'_>,
) -> Result<Option<crate::testing::RequestEvidence>, DbError> {
    use crate::testing::{RequestEvidence, RequestLookup};
    use sleutel_protocol::jose::Jwk;

    let (column, value) = match lookup {
        RequestLookup::AuthReqId(value) => ("auth_req_id", value),
        RequestLookup::RequestId(value) => ("id", value),
        RequestLookup::RequestHash(value) => ("request_hash", value),
    };
    conn.query_row(
        &format!(
            "SELECT id, auth_req_id, client_id, account_id, status, decline_reason, created_at,
                    answered_at, jws, response_jws, response_device_jwk, response_uv_jwk
             FROM action_requests WHERE {column} = ?1"
        ),
        params![value],
        |row| {
            let key = |index: usize| -> Result<Option<Jwk>, DbError> {
                row.get::<Option<String>>(index)?
                    .map(|jwk| {
                        serde_json::from_str(&jwk).map_err(|e| {
                            DbError::Value(format!("column {index} holds no JWK: {e}"))
                        })
                    })
                    .transpose()
            };
            let request_jws: String = row.get(8)?;
            Ok(RequestEvidence {
                request_id: row.get(0)?,
                auth_req_id: row.get(1)?,
                client_id: row.get(2)?,
                account_id: row.get(3)?,
                status: row.get::<Status>(4)?.as_str().to_owned(),
                decline_reason: row
                    .get::<Option<DeclineReason>>(5)?
                    .map(|reason| reason.as_str().to_owned()),
                created_at: row.get(6)?,
                answered_at: row.get(7)?,
                request_hash: jose::sha256_b64(&request_jws),
                request_jws,
                response_jws: row.get(9)?,
                device_key: key(10)?,
                user_verification_key: key(11)?,
            })
        },
    )
    .optional()
}

/// One event of an account's history.
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
pub(crate) struct AccountEvent {
    /// What happened (`activated`, `blocked`, ...).
    pub(crate) event: String,
    /// In words, never a secret.
    pub(crate) detail: String,
    /// When (Unix seconds).
    pub(crate) at: i64,
}

/// The history of `account_id`, oldest first.
#[cfg(feature = "testing")]
pub(crate) fn history_of_account(
    conn: &impl Sql,
    account_id: &str,
) -> Result<Vec<AccountEvent>, DbError> {
    conn.query_map(
        "SELECT event, detail, at FROM account_events WHERE account_id = ?1 ORDER BY seq",
        params![account_id],
        |row| {
            Ok(AccountEvent {
                event: row.get(0)?,
                detail: row.get(1)?,
                at: row.get(2)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const NOW: i64 = 1_800_000_000;

    /// A real database file with one account and one pending request, `req` (known to the
    /// relying party as `auth-req`).
    fn store_with_a_pending_request() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        store
            .run(|conn| {
                let tx = conn.immediate()?;
                tx.execute(
                    "INSERT INTO accounts (id, national_register_number, given_name, family_name,
                         birthdate, identity_source, identity_issuer, evidence_type,
                         evidence_reference, created_at, updated_at)
                     VALUES ('acct', '85073003328', 'An', 'Peeters', '1985-07-30', 'bank',
                         'bank:kbc', 'bank_debit_card', '1234', 0, 0)",
                    params![],
                )?;
                insert(
                    &tx,
                    &NewRequest {
                        id: "req",
                        auth_req_id: "auth-req",
                        client_id: "rp",
                        account_id: "acct",
                        jws: "h.p.s",
                        scope: "openid",
                        claims: &[],
                        optional_claims: &[],
                        uv: UserVerification::Pin,
                        kind: ActionKind::Login,
                        match_number: None,
                        created_at: NOW,
                        expires_at: NOW + 300,
                    },
                )?;
                tx.commit()?;
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    const EVIDENCE: AnswerEvidence<'static> = AnswerEvidence {
        response_jws: "{}",
        device_jwk: "{}",
    };

    #[test]
    fn an_answered_request_takes_no_second_answer() {
        let (_dir, store) = store_with_a_pending_request();
        let answers = store
            .run(|conn| {
                let tx = conn.immediate()?;
                let decline =
                    record_decline(&tx, "req", Some(DeclineReason::Cancelled), EVIDENCE, NOW)?;
                let approval = record_approval(
                    &tx,
                    "req",
                    &Approval {
                        method: UvMethod::Pin,
                        consented_claims: &[],
                        evidence: EVIDENCE,
                        uv_jwk: "{}",
                        device_jkt: "jkt",
                    },
                    NOW + 1,
                )?;
                let wrong_number = record_wrong_number(&tx, "req", EVIDENCE, NOW + 2)?;
                tx.commit()?;
                Ok([decline, approval, wrong_number])
            })
            .unwrap();

        assert_eq!(answers, [true, false, false]);
        let request = store
            .run(|conn| find_for_account(conn, "req", "acct"))
            .unwrap()
            .unwrap();
        assert_eq!(request.status, Status::Declined);
    }

    #[test]
    fn a_grant_is_marked_issued_once() {
        let (_dir, store) = store_with_a_pending_request();
        let marks = store
            .run(|conn| {
                let tx = conn.immediate()?;
                let first = mark_token_issued(&tx, "auth-req", NOW)?;
                let second = mark_token_issued(&tx, "auth-req", NOW + 1)?;
                tx.commit()?;
                Ok([first, second])
            })
            .unwrap();

        assert_eq!(marks, [true, false]);
        let grant = store
            .run(|conn| Ok(grant(conn, "auth-req")?))
            .unwrap()
            .unwrap();
        assert_eq!(grant.token_issued_at, Some(NOW));
    }

    #[test]
    fn stored_user_verification_names_stay_the_protocol_names() {
        for (uv, name) in [
            (UserVerification::Pin, "pin"),
            (UserVerification::PinOrBiometric, "pin_or_biometric"),
        ] {
            assert_eq!(uv_to_column(uv).unwrap(), name);
            assert_eq!(uv_from_column(name.to_owned()).unwrap(), uv);
        }
        assert!(uv_from_column("face".to_owned()).is_err());
    }

    #[test]
    fn stored_approval_methods_read_back() {
        for method in [UvMethod::Pin, UvMethod::Biometric] {
            assert_eq!(
                method_from_column(method_to_column(method)).unwrap(),
                method
            );
        }
        assert!(method_from_column("face").is_err());
    }
}
