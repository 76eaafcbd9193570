//! The rate counts (`rate_counts`): per bucket and second, how many events happened. The
//! domain ([`crate::rate`]) names the buckets and decides what a count allows; these functions
//! count, read a window and purge, in the caller's transaction so that two requests at once
//! cannot both take the last place.

use super::{DbError, Sql};
use crate::params;

/// The events of one bucket within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// How many events.
    pub(crate) count: i64,
    /// When the oldest of them happened (Unix seconds), if any did.
    pub(crate) oldest: Option<i64>,
}

/// The events of `bucket` after `since`.
pub(crate) fn events_after(conn: &impl Sql, bucket: &str, since: i64) -> Result<Window, DbError> {
    conn.query_row(
        "SELECT CAST(coalesce(sum(count), 0) AS BIGINT), min(at) FROM rate_counts
         WHERE bucket = ?1 AND at > ?2",
        params![bucket, since],
        |row| {
            Ok(Window {
                count: row.get(0)?,
                oldest: row.get(1)?,
            })
        },
    )
}

/// Counts one event of `bucket` at `at`, kept until at least `keep_until`.
pub(crate) fn count_event(
    conn: &impl Sql,
    bucket: &str,
    at: i64,
    keep_until: i64,
) -> Result<(), DbError> {
    // A bucket is always counted under the same limit, but should two limits ever share one,
    // the row is kept for the longer window.
    conn.execute(
        "INSERT INTO rate_counts (bucket, at, count, expires_at) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (bucket, at) DO UPDATE
         SET count = rate_counts.count + 1,
             expires_at = CASE WHEN rate_counts.expires_at > excluded.expires_at
                               THEN rate_counts.expires_at ELSE excluded.expires_at END",
        params![bucket, at, keep_until],
    )?;
    Ok(())
}

/// Deletes the counts kept only until `now` or before; returns how many rows (seconds of a
/// bucket) went.
pub(crate) fn purge(conn: &impl Sql, now: i64) -> Result<usize, DbError> {
    conn.execute(
        "DELETE FROM rate_counts WHERE expires_at <= ?1",
        params![now],
    )
}
