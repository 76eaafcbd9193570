//! The purge, at start and then periodically, of what no longer counts for anything: proof ids
//! past their replay window, rate-limit events past their window, enrollments a while after they
//! expired, requests with their evidence past the policy's retention, sign-in sessions,
//! authorization codes, access tokens and the kept ids of client assertions past their life,
//! the code changes declared void once no proof could carry them any more, and the simulators'
//! outbox messages past theirs. Without it each of
//! these tables would grow with every request, refused ones included.

use std::time::Duration;

use crate::store::Conn;

use crate::config::Policy;
use crate::error::Result;
use crate::server::AppState;
use crate::{auth, clock, device, enrollment, oidc, rate, requests, sim};

/// How often the purge runs. Every table it purges is bounded by a rate limit times a window
/// of minutes, so a minute's backlog is small.
pub(crate) const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// What one purge deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Purged {
    /// Proof ids past their replay window.
    pub proofs: usize,
    /// Rate-limit counts (a bucket's events in one second) no window reads any more.
    pub rate_counts: usize,
    /// Enrollments past their lifetime and retention.
    pub enrollments: usize,
    /// Requests, with the phone's signed answers, past `request_retention_secs`.
    pub requests: usize,
    /// Requests nobody can answer (numbers without a usable key), kept as long as requests.
    pub unanswerable_requests: usize,
    /// Simulated SMS, e-mail and push messages past their retention.
    pub outbox_messages: usize,
    /// Sign-in sessions, authorization codes, access tokens and client assertion ids past their
    /// life.
    pub sign_ins: usize,
    /// Pings whose request can no longer have an outcome.
    pub pings: usize,
    /// Void code changes whose request could no longer be accepted anyway.
    pub void_code_changes: usize,
}

/// Purges once, in one transaction.
pub(crate) fn purge(conn: &mut Conn<'_>, policy: &Policy, now: i64) -> Result<Purged> {
    let tx = conn.immediate()?;
    let purged = Purged {
        proofs: auth::purge_proofs(&tx, now)?,
        rate_counts: rate::purge(&tx, now)?,
        enrollments: enrollment::purge_expired(&tx, now)?,
        requests: requests::purge_old_requests(&tx, now, policy.request_retention_secs)?,
        unanswerable_requests: crate::store::unanswerable::purge_expired_before(
            &tx,
            now.saturating_sub(policy.request_retention_secs),
        )?,
        outbox_messages: sim::outbox::purge(&tx, now)?,
        sign_ins: oidc::purge_expired(&tx, now)?,
        pings: crate::store::pings::purge_expired(&tx, now)?,
        void_code_changes: device::purge_void_code_changes(&tx, now)?,
    };
    tx.commit()?;
    Ok(purged)
}

/// Runs [`purge`] every [`HOUSEKEEPING_INTERVAL`], the first time one interval from now (the
/// server purges once before it serves), until the returned task is aborted. A failed purge is
/// logged and tried again at the next tick.
pub(crate) fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = tokio::time::Instant::now() + HOUSEKEEPING_INTERVAL;
        let mut ticks = tokio::time::interval_at(first, HOUSEKEEPING_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match state
                .db_blocking(|app, conn| purge(conn, &app.policy, clock::now()))
                .await
            {
                Ok(purged) => tracing::debug!(?purged, "housekeeping purge"),
                Err(e) => tracing::warn!(error = %e, "housekeeping purge failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::params;

    use super::*;
    use crate::rate::{Bucket, Limit};
    use crate::store::Sql;

    #[test]
    fn the_purge_deletes_only_what_no_longer_counts() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        let now = 1_000_000;
        let purged = db
            .run(|conn| {
                for (id, expires_at) in [
                    ("long-gone", now - enrollment::ENROLLMENT_RETENTION_SECS - 1),
                    ("recently-expired", now - 10),
                    ("alive", now + 600),
                ] {
                    conn.execute(
                        "INSERT INTO enrollments (id, nonce, device_jkt, phone_number, source,
                             step, created_at, expires_at)
                         VALUES (?1, 'n', 'jkt', '+32470000000', 'eid', 'identity', 0, ?2)",
                        params![id, expires_at],
                    )?;
                }
                auth::record_proof(conn, "jkt", "old", now - 1000)?;
                auth::record_proof(conn, "jkt", "fresh", now)?;
                rate::record(
                    conn,
                    Bucket::EnrollmentStarts,
                    Limit::per_minute(9),
                    now - 61,
                )?;
                rate::record(conn, Bucket::EnrollmentStarts, Limit::per_minute(9), now)?;
                for (code, expires_at) in [
                    // Past its life and its access token's: it can revoke nothing any more.
                    ("old-code", now - 10_000),
                    // Past its life only: a replay must still revoke its token.
                    ("recent-code", now - 10),
                ] {
                    conn.execute(
                        "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri,
                             code_challenge, auth_req_id, expires_at)
                         VALUES (?1, 'rp', 'https://rp.example/cb', 'c', 'a', ?2)",
                        params![code, expires_at],
                    )?;
                }
                conn.execute(
                    "INSERT INTO accounts (id, national_register_number, given_name,
                         family_name, birthdate, identity_source, identity_issuer,
                         evidence_type, evidence_reference, created_at, updated_at)
                     VALUES ('a', '85073003328', 'Jan', 'Peeters', '1985-07-30', 'bank',
                         'kbc', 'bank', 'r', 0, 0)",
                    params![],
                )?;
                conn.execute(
                    "INSERT INTO devices (jkt, account_id, jwk, phone_number, enrolled_at)
                     VALUES ('jkt', 'a', '{}', '+32470000000', 0)",
                    params![],
                )?;
                // A void code change is needed only while a proof could still carry it.
                crate::store::accounts::void_code_change(conn, "jkt", "gone", now - 1)?;
                crate::store::accounts::void_code_change(conn, "jkt", "kept", now)?;
                purge(conn, &Policy::default(), now)
            })
            .unwrap();

        assert_eq!(
            purged,
            Purged {
                proofs: 1,
                rate_counts: 1,
                enrollments: 1,
                requests: 0,
                unanswerable_requests: 0,
                outbox_messages: 0,
                sign_ins: 1,
                pings: 0,
                void_code_changes: 1,
            }
        );
        let left: Vec<String> = db
            .run(|conn| {
                Ok(
                    conn.query_map("SELECT id FROM enrollments ORDER BY id", params![], |row| {
                        row.get(0)
                    })?,
                )
            })
            .unwrap();
        assert_eq!(left, ["alive", "recently-expired"]);
    }

    #[test]
    fn the_purge_deletes_the_ids_of_expired_client_assertions_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        let now = 1_000_000;
        let left: Vec<String> = db
            .run(|conn| {
                for (jti_hash, expires_at) in [("expired", now - 1), ("alive", now + 60)] {
                    conn.execute(
                        "INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at)
                         VALUES ('rp', ?1, ?2)",
                        params![jti_hash, expires_at],
                    )?;
                }
                purge(conn, &Policy::default(), now)?;
                Ok(conn.query_map(
                    "SELECT jti_hash FROM client_assertion_jtis",
                    params![],
                    |row| row.get(0),
                )?)
            })
            .unwrap();

        assert_eq!(left, ["alive"]);
    }
}
