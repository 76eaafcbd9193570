//! Requests nobody can answer (`unanswerable_requests`, schema v19): the backchannel requests
//! and sign-in forms for a number without a usable digital key, kept so that they are polled,
//! limited and superseded exactly as a registered person's requests are (decision 0030). A row
//! names the number only by its keyed hash.

use super::{DbError, OptionalRow, Sql, Tx};
use crate::params;

/// A new request nobody can answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewUnanswerable<'a> {
    /// The id the relying party polls with.
    pub auth_req_id: &'a str,
    /// The relying party.
    pub client_id: &'a str,
    /// The keyed hash of the number asked for.
    pub number_hash: &'a [u8],
    /// When it was made.
    pub created_at: i64,
    /// When it expires, as a registered person's request of the same ask would.
    pub expires_at: i64,
}

/// A request nobody can answer, as the token endpoint reads it.
#[derive(Debug, Clone)]
pub(crate) struct UnanswerableGrant {
    /// The relying party that made it.
    pub client_id: String,
    /// When it expires.
    pub expires_at: i64,
    /// The previous poll, for `slow_down`.
    pub last_poll_at: Option<i64>,
    /// Whether a newer request of the same relying party for the same number closed it.
    pub superseded: bool,
}

/// Stores a new request nobody can answer.
pub(crate) fn insert(tx: &Tx<'_>, new: &NewUnanswerable<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO unanswerable_requests
             (auth_req_id, client_id, number_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            new.auth_req_id,
            new.client_id,
            new.number_hash,
            new.created_at,
            new.expires_at
        ],
    )?;
    Ok(())
}

/// The requests of `client_id` for the number whose hash is `number_hash` made after `since`
/// and not answered: all of them, since nobody answers (the count a registered person's
/// unanswered requests are limited by).
pub(crate) fn count_unanswered_of_client(
    conn: &impl Sql,
    number_hash: &[u8],
    client_id: &str,
    since: i64,
) -> Result<i64, DbError> {
    conn.query_row(
        "SELECT count(*) FROM unanswerable_requests
         WHERE number_hash = ?1 AND client_id = ?2 AND created_at > ?3",
        params![number_hash, client_id, since],
        |row| row.get(0),
    )
}

/// Closes the open requests of `client_id` for the number as superseded, as a registered
/// person's are when the same relying party asks again, and returns their `auth_req_id`s (for
/// their pings). As for a person's requests, every open one is closed, expired or not, and
/// only those still unexpired at `now` are returned: an expired request is not pinged.
pub(crate) fn supersede_open_of_client(
    tx: &Tx<'_>,
    number_hash: &[u8],
    client_id: &str,
    now: i64,
) -> Result<Vec<String>, DbError> {
    let closed = tx.query_map(
        "UPDATE unanswerable_requests SET superseded_at = ?3
         WHERE number_hash = ?1 AND client_id = ?2 AND superseded_at IS NULL
         RETURNING auth_req_id, expires_at",
        params![number_hash, client_id, now],
        |row| Ok((row.get::<String>(0)?, row.get::<i64>(1)?)),
    )?;
    Ok(closed
        .into_iter()
        .filter(|(_, expires_at)| *expires_at > now)
        .map(|(auth_req_id, _)| auth_req_id)
        .collect())
}

/// The open requests for the number, of every relying party: not superseded, not expired.
pub(crate) fn count_open(conn: &impl Sql, number_hash: &[u8], now: i64) -> Result<i64, DbError> {
    conn.query_row(
        "SELECT count(*) FROM unanswerable_requests
         WHERE number_hash = ?1 AND superseded_at IS NULL AND expires_at > ?2",
        params![number_hash, now],
        |row| row.get(0),
    )
}

/// The request the relying party polls as `auth_req_id`, if it is one nobody can answer.
pub(crate) fn grant(
    conn: &impl Sql,
    auth_req_id: &str,
) -> Result<Option<UnanswerableGrant>, DbError> {
    conn.query_row(
        "SELECT client_id, expires_at, last_poll_at, superseded_at IS NOT NULL
         FROM unanswerable_requests WHERE auth_req_id = ?1",
        params![auth_req_id],
        |row| {
            Ok(UnanswerableGrant {
                client_id: row.get(0)?,
                expires_at: row.get(1)?,
                last_poll_at: row.get(2)?,
                superseded: row.get(3)?,
            })
        },
    )
    .optional()
}

/// Records a poll of `auth_req_id` at `now`.
pub(crate) fn record_poll(tx: &Tx<'_>, auth_req_id: &str, now: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE unanswerable_requests SET last_poll_at = ?2 WHERE auth_req_id = ?1",
        params![auth_req_id, now],
    )?;
    Ok(())
}

/// Deletes the requests that expired before `before`: kept as long as requests are, so that
/// the token endpoint answers a late poll of either alike.
pub(crate) fn purge_expired_before(conn: &impl Sql, before: i64) -> Result<usize, DbError> {
    conn.execute(
        "DELETE FROM unanswerable_requests WHERE expires_at < ?1",
        params![before],
    )
}
