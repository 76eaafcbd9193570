//! Crash consistency: the server binary killed with SIGKILL at random moments under the load of
//! simulated citizens, and the phone core killed in the middle of its steps. Each run prints its
//! seed; `SLEUTEL_CRASH_SEED=<seed>` replays it (docs/reliability.md).

use std::time::Duration;

use sleutel_harness::crash::{
    CrashOptions, StoredAccount, StoredEnrollment, StoredRequest, StoredState, run_server_crashes,
    seed_from_env,
};
use sleutel_server::{Database, OpenedDatabase};

/// Kills of the server in one run: enough for the kills to land in every kind of call.
const SERVER_KILLS: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_server_under_load_loses_nothing_it_acknowledged() {
    let seed = seed_from_env("server crash run").unwrap();
    let report = run_server_crashes(
        &CrashOptions {
            seed,
            kills: SERVER_KILLS,
            citizens: 6,
            min_uptime: Duration::from_millis(150),
            max_uptime: Duration::from_millis(900),
        },
        &open_database,
    )
    .await
    .unwrap();
    eprintln!("{}", report.summary());
    assert!(
        report.violations.is_empty(),
        "replay with SLEUTEL_CRASH_SEED={seed}:\n{}",
        report.violations.join("\n")
    );
    assert!(report.kills > SERVER_KILLS, "{}", report.summary());
    // The kills landed among every kind of call: each was acknowledged at least once.
    for kind in [
        "enrollments completed",
        "identity codes used",
        "SMS resends",
        "wrong SMS codes",
        "logins approved",
        "logins declined",
        "wrong codes",
        "tokens collected",
    ] {
        assert!(
            report.counts.get(kind).copied().unwrap_or(0) > 0,
            "nothing of {kind:?}: {}",
            report.summary()
        );
    }
}

/// The database as the next start finds it, through the server's testing hook.
fn open_database(database: &Database) -> Result<Box<dyn StoredState>, String> {
    Ok(Box::new(Stored(
        OpenedDatabase::open(database).map_err(|e| e.to_string())?,
    )))
}

struct Stored(OpenedDatabase);

impl StoredState for Stored {
    fn half_completed_enrollments(&self) -> Result<Vec<String>, String> {
        self.0.half_completed_enrollments().map_err(|e| e.to_string())
    }
    fn account(&self, national_register_number: &str) -> Result<Option<StoredAccount>, String> {
        let parts = self
            .0
            .account(national_register_number)
            .map_err(|e| e.to_string())?;
        Ok(parts.map(|p| StoredAccount {
            account_id: p.account_id,
            active_devices: p.active_devices,
            wrong_codes: p.wrong_codes,
            blocked: p.blocked,
        }))
    }
    fn request(&self, request_id: &str) -> Result<Option<StoredRequest>, String> {
        let state = self.0.request(request_id).map_err(|e| e.to_string())?;
        Ok(state.map(|r| StoredRequest {
            status: r.status,
            token_issued: r.token_issued,
        }))
    }
    fn enrollment(&self, enrollment_id: &str) -> Result<Option<StoredEnrollment>, String> {
        let state = self.0.enrollment(enrollment_id).map_err(|e| e.to_string())?;
        Ok(state.map(|e| StoredEnrollment {
            step: e.step,
            sms_sends: e.sms_sends,
        }))
    }
}
