//! Crash consistency: the server binary killed with SIGKILL at random moments under the load of
//! simulated citizens, and the phone core killed in the middle of its steps. Each run prints its
//! seed; `SLEUTEL_CRASH_SEED=<seed>` replays it (docs/reliability.md).

use std::time::Duration;

use sleutel_harness::crash::{CrashOptions, run_server_crashes, seed_from_env};

/// Kills of the server in one run: enough for the kills to land in every kind of call.
const SERVER_KILLS: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_server_under_load_loses_nothing_it_acknowledged() {
    let seed = seed_from_env("server crash run").unwrap();
    let report = run_server_crashes(&CrashOptions {
        seed,
        kills: SERVER_KILLS,
        citizens: 6,
        min_uptime: Duration::from_millis(150),
        max_uptime: Duration::from_millis(900),
    })
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
