//! Sliding-window rate limits kept in the database: how many events of one kind, for one key,
//! happened in the last window. Enrollment starts (per device key, per phone number, overall),
//! wrong SMS codes per phone number, failed client authentications (per client id, per source
//! address) and backchannel calls per relying party are all counted here, in `rate_events`.
//!
//! Counting and deciding happen in the caller's transaction, so two requests at once cannot
//! both take the last place. Rows outlive their window only until the housekeeping purge.

use std::net::IpAddr;

use rusqlite::{Connection, params};

use crate::error::Result;

/// What is counted, and for whom. Each names one bucket of `rate_events`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bucket<'a> {
    /// Enrollments started with one device key.
    EnrollmentStartsByKey(&'a str),
    /// Enrollments started for one phone number.
    EnrollmentStartsByNumber(&'a str),
    /// Enrollments started, all together.
    EnrollmentStarts,
    /// Wrong SMS control codes typed for one phone number, in any enrollment.
    SmsFailuresByNumber(&'a str),
    /// Failed client authentications naming one client id.
    ClientAuthFailuresByClient(&'a str),
    /// Failed client authentications from one source address.
    ClientAuthFailuresBySource(IpAddr),
    /// Backchannel authentication calls of one relying party.
    BackchannelCalls(&'a str),
}

impl Bucket<'_> {
    /// The bucket's name in `rate_events`: a kind prefix that no key can contain a copy of.
    fn name(self) -> String {
        match self {
            Bucket::EnrollmentStartsByKey(jkt) => format!("enroll-start/key/{jkt}"),
            Bucket::EnrollmentStartsByNumber(number) => format!("enroll-start/number/{number}"),
            Bucket::EnrollmentStarts => "enroll-start/all".to_owned(),
            Bucket::SmsFailuresByNumber(number) => format!("sms-failure/number/{number}"),
            Bucket::ClientAuthFailuresByClient(id) => format!("client-auth-failure/client/{id}"),
            Bucket::ClientAuthFailuresBySource(ip) => {
                format!("client-auth-failure/source/{}", ip.to_canonical())
            }
            Bucket::BackchannelCalls(id) => format!("backchannel/client/{id}"),
        }
    }
}

/// At most `max` events per `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    /// Events allowed in one window.
    pub max: u32,
    /// The window's length in seconds.
    pub window_secs: i64,
}

impl Limit {
    /// `max` events per minute.
    pub fn per_minute(max: u32) -> Self {
        Self {
            max,
            window_secs: 60,
        }
    }

    /// `max` events per hour.
    pub fn per_hour(max: u32) -> Self {
        Self {
            max,
            window_secs: 3600,
        }
    }

    /// `max` events per day.
    pub fn per_day(max: u32) -> Self {
        Self {
            max,
            window_secs: 86_400,
        }
    }
}

/// A full bucket: the seconds until its oldest event leaves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    /// Seconds to wait before one more event fits (at least 1).
    pub retry_after: u64,
}

/// Whether one more event fits in `bucket` under `limit`, without counting it.
pub(crate) fn check(
    conn: &Connection,
    bucket: Bucket<'_>,
    limit: Limit,
    now: i64,
) -> Result<std::result::Result<(), Exceeded>> {
    let (count, oldest): (i64, Option<i64>) = conn
        .prepare_cached("SELECT count(*), min(at) FROM rate_events WHERE bucket = ?1 AND at > ?2")?
        .query_row(params![bucket.name(), now - limit.window_secs], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    if count < i64::from(limit.max) {
        return Ok(Ok(()));
    }
    let retry_after = (oldest.unwrap_or(now) + limit.window_secs - now).max(1);
    Ok(Err(Exceeded {
        retry_after: u64::try_from(retry_after).unwrap_or(1),
    }))
}

/// Counts one event in `bucket`, kept as long as `limit`'s window needs it.
pub(crate) fn record(conn: &Connection, bucket: Bucket<'_>, limit: Limit, now: i64) -> Result<()> {
    conn.prepare_cached("INSERT INTO rate_events (bucket, at, expires_at) VALUES (?1, ?2, ?3)")?
        .execute(params![bucket.name(), now, now + limit.window_secs])?;
    Ok(())
}

/// Counts one event in `bucket` if it fits under `limit`; otherwise counts nothing.
pub(crate) fn take(
    conn: &Connection,
    bucket: Bucket<'_>,
    limit: Limit,
    now: i64,
) -> Result<std::result::Result<(), Exceeded>> {
    let fits = check(conn, bucket, limit, now)?;
    if fits.is_ok() {
        record(conn, bucket, limit, now)?;
    }
    Ok(fits)
}

/// Deletes events that no window counts any more; returns how many.
pub(crate) fn purge(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM rate_events WHERE expires_at <= ?1", [now])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, crate::db::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(&dir.path().join("s.db")).unwrap();
        (dir, db)
    }

    #[test]
    fn a_bucket_takes_up_to_its_limit_then_says_when_to_retry() {
        let (_dir, db) = db();
        let limit = Limit::per_minute(2);
        let bucket = Bucket::EnrollmentStartsByNumber("+32470000001");
        db.with_conn(|conn| {
            assert_eq!(take(conn, bucket, limit, 1000)?, Ok(()));
            assert_eq!(take(conn, bucket, limit, 1010)?, Ok(()));
            assert_eq!(
                take(conn, bucket, limit, 1020)?,
                Err(Exceeded { retry_after: 40 })
            );
            // Another key has its own bucket.
            let other = Bucket::EnrollmentStartsByNumber("+32470000002");
            assert_eq!(take(conn, other, limit, 1020)?, Ok(()));
            // Once the oldest event leaves the window, one more fits.
            assert_eq!(take(conn, bucket, limit, 1060)?, Ok(()));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_refused_event_is_not_counted() {
        let (_dir, db) = db();
        let limit = Limit::per_minute(1);
        let bucket = Bucket::EnrollmentStarts;
        db.with_conn(|conn| {
            take(conn, bucket, limit, 0)?.unwrap();
            for at in 1..30 {
                assert!(take(conn, bucket, limit, at)?.is_err());
            }
            assert_eq!(take(conn, bucket, limit, 60)?, Ok(()));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_purge_keeps_only_events_some_window_still_counts() {
        let (_dir, db) = db();
        db.with_conn(|conn| {
            record(conn, Bucket::EnrollmentStarts, Limit::per_minute(9), 0)?;
            record(
                conn,
                Bucket::SmsFailuresByNumber("+32470000001"),
                Limit::per_day(9),
                0,
            )?;
            assert_eq!(purge(conn, 60)?, 1);
            assert_eq!(purge(conn, 86_399)?, 0);
            assert_eq!(purge(conn, 86_400)?, 1);
            Ok(())
        })
        .unwrap();
    }
}
