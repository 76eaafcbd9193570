//! Sliding-window rate limits kept in the database: how many events of one kind, for one key,
//! happened in the last window. Enrollment starts (per device key, per source address, overall),
//! SMS codes sent per phone number, wrong SMS codes (per person and number, per number), wrong
//! codes per device over a month, wrong identity codes (per source address, overall), failed
//! client authentications (per source address, per client id), failed phone proofs per source
//! address and backchannel calls per relying party are all counted here, in `rate_counts`: one row
//! per bucket and second, with the number of events in that second (events are stamped in whole
//! seconds, so nothing is lost), so a window's count reads at most one row per second of it
//! however busy the bucket (schema v16).
//!
//! A source address is counted as the network a single host can freely use: an IPv4 address
//! whole, an IPv6 address by its /64 prefix (a host picks any address in its /64).
//!
//! Counting and deciding happen in the caller's transaction, so two requests at once cannot
//! both take the last place. Rows outlive their window only until the housekeeping purge.

use std::net::IpAddr;

use crate::store::{Sql, rate_counts};

use crate::error::Result;

/// What is counted, and for whom. Each names one bucket of `rate_counts`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bucket<'a> {
    /// Enrollments started with one device key.
    EnrollmentStartsByKey(&'a str),
    /// Enrollments started from one source address.
    EnrollmentStartsBySource(IpAddr),
    /// Enrollments started, all together.
    EnrollmentStarts,
    /// SMS control codes sent to one phone number, in any enrollment.
    SmsSentToNumber(&'a str),
    /// Wrong SMS control codes typed by one person (national register number) for one phone
    /// number, in any enrollment.
    SmsFailuresByPersonAndNumber(&'a str, &'a str),
    /// Wrong SMS control codes typed for one phone number, whoever typed them.
    SmsFailuresByNumber(&'a str),
    /// Wrong codes (the person's 5-digit code) typed on one device.
    WrongCodesByDevice(&'a str),
    /// Wrong identity codes (identification or activation codes) from one source address.
    WrongIdentityCodesBySource(IpAddr),
    /// Wrong identity codes, all together.
    WrongIdentityCodes,
    /// Failed client authentications naming one client id.
    ClientAuthFailuresByClient(&'a str),
    /// Failed client authentications from one source address.
    ClientAuthFailuresBySource(IpAddr),
    /// Backchannel authentication calls of one relying party.
    BackchannelCalls(&'a str),
    /// Phone numbers sent through the sign-in page's form from one source address.
    SignInFormsBySource(IpAddr),
    /// Browser sessions opened at the authorization endpoint from one source address.
    SignInSessionsBySource(IpAddr),
    /// Phone calls from one source address whose proof failed.
    ProofFailuresBySource(IpAddr),
}

impl Bucket<'_> {
    /// The bucket's name in `rate_counts`: a kind prefix that no key can contain a copy of.
    fn name(self) -> String {
        match self {
            Bucket::EnrollmentStartsByKey(jkt) => format!("enroll-start/key/{jkt}"),
            Bucket::EnrollmentStartsBySource(ip) => {
                format!("enroll-start/source/{}", source_network(ip))
            }
            Bucket::EnrollmentStarts => "enroll-start/all".to_owned(),
            Bucket::SmsSentToNumber(number) => format!("sms-sent/number/{number}"),
            Bucket::SmsFailuresByPersonAndNumber(nrn, number) => {
                format!("sms-failure/person/{nrn}/number/{number}")
            }
            Bucket::SmsFailuresByNumber(number) => format!("sms-failure/number/{number}"),
            Bucket::WrongCodesByDevice(jkt) => format!("wrong-code/device/{jkt}"),
            Bucket::WrongIdentityCodesBySource(ip) => {
                format!("wrong-identity-code/source/{}", source_network(ip))
            }
            Bucket::WrongIdentityCodes => "wrong-identity-code/all".to_owned(),
            Bucket::ClientAuthFailuresByClient(id) => format!("client-auth-failure/client/{id}"),
            Bucket::ClientAuthFailuresBySource(ip) => {
                format!("client-auth-failure/source/{}", source_network(ip))
            }
            Bucket::BackchannelCalls(id) => format!("backchannel/client/{id}"),
            Bucket::SignInFormsBySource(ip) => {
                format!("sign-in-form/source/{}", source_network(ip))
            }
            Bucket::SignInSessionsBySource(ip) => {
                format!("sign-in-session/source/{}", source_network(ip))
            }
            Bucket::ProofFailuresBySource(ip) => {
                format!("proof-failure/source/{}", source_network(ip))
            }
        }
    }
}

/// The network one host can use freely: the IPv4 address itself (an IPv4-mapped IPv6 address
/// counts as its IPv4 address), or the /64 prefix of an IPv6 address.
pub(crate) fn source_network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = v6.octets();
            let mut network = [0u8; 16];
            network[..8].copy_from_slice(&prefix[..8]);
            format!("{}/64", std::net::Ipv6Addr::from(network))
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
    pub(crate) fn per_minute(max: u32) -> Self {
        Self {
            max,
            window_secs: 60,
        }
    }

    /// `max` events per hour.
    pub(crate) fn per_hour(max: u32) -> Self {
        Self {
            max,
            window_secs: 3600,
        }
    }

    /// `max` events per day.
    pub(crate) fn per_day(max: u32) -> Self {
        Self {
            max,
            window_secs: 86_400,
        }
    }

    /// `max` events per 30 days.
    pub(crate) fn per_month(max: u32) -> Self {
        Self {
            max,
            window_secs: 30 * 86_400,
        }
    }
}

/// A full bucket: the seconds until its oldest event leaves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    /// Seconds to wait before one more event fits (at least 1).
    pub retry_after: u64,
}

/// The events in `bucket` within `limit`'s window, and the time of the oldest.
fn window(
    conn: &impl Sql,
    bucket: Bucket<'_>,
    limit: Limit,
    now: i64,
) -> Result<(u32, Option<i64>)> {
    let window = rate_counts::events_after(conn, &bucket.name(), now - limit.window_secs)?;
    Ok((
        u32::try_from(window.count).unwrap_or(u32::MAX),
        window.oldest,
    ))
}

/// How many more events fit in `bucket` under `limit` now.
pub(crate) fn room(conn: &impl Sql, bucket: Bucket<'_>, limit: Limit, now: i64) -> Result<u32> {
    let (count, _) = window(conn, bucket, limit, now)?;
    Ok(limit.max.saturating_sub(count))
}

/// Whether one more event fits in `bucket` under `limit`, without counting it.
pub(crate) fn check(
    conn: &impl Sql,
    bucket: Bucket<'_>,
    limit: Limit,
    now: i64,
) -> Result<std::result::Result<(), Exceeded>> {
    let (count, oldest) = window(conn, bucket, limit, now)?;
    if count < limit.max {
        return Ok(Ok(()));
    }
    let retry_after = (oldest.unwrap_or(now) + limit.window_secs - now).max(1);
    Ok(Err(Exceeded {
        retry_after: u64::try_from(retry_after).unwrap_or(1),
    }))
}

/// Counts one event in `bucket`, kept as long as `limit`'s window needs it.
pub(crate) fn record(conn: &impl Sql, bucket: Bucket<'_>, limit: Limit, now: i64) -> Result<()> {
    Ok(rate_counts::count_event(
        conn,
        &bucket.name(),
        now,
        now + limit.window_secs,
    )?)
}

/// Counts one event in `bucket` if it fits under `limit`; otherwise counts nothing.
pub(crate) fn take(
    conn: &impl Sql,
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

/// Deletes the counts that no window reads any more; returns how many rows (seconds of a
/// bucket) went.
pub(crate) fn purge(conn: &impl Sql, now: i64) -> Result<usize> {
    Ok(rate_counts::purge(conn, now)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, crate::store::Store) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        (dir, db)
    }

    #[test]
    fn a_bucket_takes_up_to_its_limit_then_says_when_to_retry() {
        let (_dir, db) = db();
        let limit = Limit::per_minute(2);
        let bucket = Bucket::SmsSentToNumber("+32470000001");
        db.run(|conn| {
            assert_eq!(take(conn, bucket, limit, 1000)?, Ok(()));
            assert_eq!(take(conn, bucket, limit, 1010)?, Ok(()));
            assert_eq!(
                take(conn, bucket, limit, 1020)?,
                Err(Exceeded { retry_after: 40 })
            );
            // Another key has its own bucket.
            let other = Bucket::SmsSentToNumber("+32470000002");
            assert_eq!(take(conn, other, limit, 1020)?, Ok(()));
            // Once the oldest event leaves the window, one more fits.
            assert_eq!(take(conn, bucket, limit, 1060)?, Ok(()));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_prefix_and_ipv4_by_its_address() {
        let name = |ip: &str| Bucket::ClientAuthFailuresBySource(ip.parse().unwrap()).name();
        assert_eq!(name("2001:db8:1:2::1"), name("2001:db8:1:2:ffff::9"));
        assert_ne!(name("2001:db8:1:2::1"), name("2001:db8:1:3::1"));
        assert_eq!(name("::ffff:192.0.2.7"), name("192.0.2.7"));
        assert_ne!(name("192.0.2.7"), name("192.0.2.8"));
    }

    #[test]
    fn events_in_one_second_each_count() {
        let (_dir, db) = db();
        let limit = Limit::per_minute(3);
        let bucket = Bucket::BackchannelCalls("rp");
        db.run(|conn| {
            for _ in 0..3 {
                assert_eq!(take(conn, bucket, limit, 1000)?, Ok(()));
            }
            assert_eq!(
                take(conn, bucket, limit, 1000)?,
                Err(Exceeded { retry_after: 60 })
            );
            assert_eq!(room(conn, bucket, limit, 1059)?, 0);
            assert_eq!(room(conn, bucket, limit, 1060)?, 3);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_room_left_counts_down_to_zero() {
        let (_dir, db) = db();
        let limit = Limit::per_month(2);
        let bucket = Bucket::WrongCodesByDevice("jkt");
        db.run(|conn| {
            assert_eq!(room(conn, bucket, limit, 0)?, 2);
            record(conn, bucket, limit, 0)?;
            record(conn, bucket, limit, 1)?;
            record(conn, bucket, limit, 2)?;
            assert_eq!(room(conn, bucket, limit, 3)?, 0);
            assert_eq!(room(conn, bucket, limit, 30 * 86_400 + 1)?, 1);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_refused_event_is_not_counted() {
        let (_dir, db) = db();
        let limit = Limit::per_minute(1);
        let bucket = Bucket::EnrollmentStarts;
        db.run(|conn| {
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
        db.run(|conn| {
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
