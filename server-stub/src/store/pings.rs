//! The pings of ping-mode relying parties (`pings`, schema v17, and `unanswerable_pings` for
//! requests nobody can answer, schema v20): registered with the request, taken once by
//! whichever instance records its outcome. The token column holds only the sealed form (see
//! `crate::notify`).

use super::{DbError, Sql, Tx};
use crate::params;

/// A registered ping as stored: its token still sealed.
pub(crate) struct Sealed {
    /// The request the ping belongs to (the seal's associated data): a person's request's id,
    /// or the `auth_req_id` of a request nobody can answer.
    pub request_id: String,
    /// The request's id at the relying party.
    pub auth_req_id: String,
    /// The relying party's notification endpoint.
    pub endpoint: String,
    /// Nonce, then the token's ciphertext and tag.
    pub sealed_token: Vec<u8>,
}

/// Registers the ping of request `request_id`, in the transaction that stores the request.
pub(crate) fn register(
    tx: &Tx<'_>,
    request_id: &str,
    auth_req_id: &str,
    endpoint: &str,
    sealed_token: &[u8],
    forget_at: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO pings (request_id, auth_req_id, endpoint, sealed_token, forget_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![request_id, auth_req_id, endpoint, sealed_token, forget_at],
    )?;
    Ok(())
}

/// Registers the ping of the request nobody can answer `auth_req_id`, in the transaction that
/// records it. Its `auth_req_id` is also its key and the seal's associated data.
pub(crate) fn register_unanswerable(
    tx: &Tx<'_>,
    auth_req_id: &str,
    endpoint: &str,
    sealed_token: &[u8],
    forget_at: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO unanswerable_pings (auth_req_id, endpoint, sealed_token, forget_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![auth_req_id, endpoint, sealed_token, forget_at],
    )?;
    Ok(())
}

/// Takes (deletes and returns) the registered pings of `request_ids`, each a person's request's
/// id or the `auth_req_id` of a request nobody can answer: of concurrent takers of one ping,
/// exactly one gets it.
pub(crate) fn take(conn: &impl Sql, request_ids: &[String]) -> crate::error::Result<Vec<Sealed>> {
    let sealed = |row: &super::Row<'_>| {
        Ok(Sealed {
            request_id: row.get(0)?,
            auth_req_id: row.get(1)?,
            endpoint: row.get(2)?,
            sealed_token: row.get(3)?,
        })
    };
    let mut taken = Vec::new();
    for request_id in request_ids {
        taken.extend(conn.query_map(
            "DELETE FROM pings WHERE request_id = ?1
             RETURNING request_id, auth_req_id, endpoint, sealed_token",
            params![request_id],
            sealed,
        )?);
        taken.extend(conn.query_map(
            "DELETE FROM unanswerable_pings WHERE auth_req_id = ?1
             RETURNING auth_req_id, auth_req_id, endpoint, sealed_token",
            params![request_id],
            sealed,
        )?);
    }
    Ok(taken)
}

/// Deletes the pings whose request can no longer have an outcome worth a ping.
pub(crate) fn purge_expired(conn: &impl Sql, now: i64) -> Result<usize, DbError> {
    Ok(
        conn.execute("DELETE FROM pings WHERE forget_at < ?1", params![now])?
            + conn.execute(
                "DELETE FROM unanswerable_pings WHERE forget_at < ?1",
                params![now],
            )?,
    )
}
