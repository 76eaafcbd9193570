//! The server's keys and secrets as stored (generated once): one row per name, the value's raw
//! bytes. What a value means, and whether it is usable, is `keys.rs`'s to decide.

use zeroize::Zeroizing;

use super::{DbError, OptionalRow, Sql};
use crate::params;

/// The stored value of the key or secret `name`, or `None` before it was first generated.
pub(crate) fn load(conn: &impl Sql, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, DbError> {
    Ok(conn
        .query_row(
            "SELECT value FROM secrets WHERE name = ?1",
            params![name],
            |row| row.get::<Vec<u8>>(0),
        )
        .optional()?
        .map(Zeroizing::new))
}

/// Stores a newly generated key or secret `name`. A name stored already is refused (the primary
/// key): a secret is generated once and never replaced.
pub(crate) fn insert(conn: &impl Sql, name: &str, value: &[u8], now: i64) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO secrets (name, value, created_at) VALUES (?1, ?2, ?3)",
        params![name, value, now],
    )?;
    Ok(())
}
