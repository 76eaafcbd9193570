//! Crash-consistency machinery: the server binary run as a child process that a test kills with
//! SIGKILL and starts again on the same database, a seeded schedule of kills that a failure can
//! replay, and simulated citizens that record every answer they saw acknowledged, so that the
//! database after each crash can be held to what the clients were told.
//!
//! [`run_server_crashes`] is the whole run: citizens enroll (bank and eID, SMS resends, wrong SMS
//! codes), log in (approved, declined, wrong codes up to a block) and collect tokens while the
//! server is killed at random moments; between a kill and the restart the database is opened
//! as the next start finds it ([`sleutel_server::OpenedDatabase`]) and checked, and after the
//! restart what only the server's answers show (a token still collectable, a used identity
//! code still refused) is asked over HTTP. The phone's side is [`phone_step`]: one step of the
//! phone core in a process of its own, for a test to kill.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sleutel_core::{Approval, Bank, CoreError, DeclineReason};
use sleutel_protocol::api::sim::{Citizen, NewCitizen};
use sleutel_server::Database;
use tokio::sync::RwLock;

use crate::phone::VirtualPhone;
use crate::rp::RelyingParty;
use crate::server::{POSTGRES_ENV, TestDatabase};
use crate::sim::SimClient;
use crate::{HarnessError, Result};

/// The environment variable that fixes the seed of a crash run, to replay a failure.
pub const SEED_ENV: &str = "SLEUTEL_CRASH_SEED";

/// The environment variable naming the server binary to kill (default: `sleutel-server` built
/// beside the test binary, built first if needed).
pub const SERVER_BIN_ENV: &str = "SLEUTEL_SERVER_BIN";

/// The 5-digit code of the crash runs' citizens.
pub const CODE: &str = "13579";

/// A wrong 5-digit code.
const WRONG_CODE: &str = "24680";

/// Raised limits: every enrollment and login comes from loopback and one relying party, far
/// beyond the per-minute limits meant for one person; an SMS may be sent again after a second,
/// so that a resend fits between two kills. Every other value stays the production one.
const CRASH_POLICY_JSON: &str = r#"{
  "max_backchannel_per_client_per_minute": 100000000,
  "max_enrollment_starts_per_source_per_minute": 1000000,
  "max_enrollment_starts_per_minute": 1000000,
  "sms_resend_after_secs": 1
}"#;

/// How long a citizen waits for an SMS or a request before giving the step up.
const STEP_WAIT: Duration = Duration::from_secs(5);

/// How long the server may take to say where it listens after a start.
const START_WAIT: Duration = Duration::from_secs(30);

/// A small seeded generator (SplitMix64): the same seed gives the same schedule of kills and
/// the same choices of the citizens, which is all a replay needs (the server's own timing still
/// varies, so a replay hits the same neighbourhood, not the same instruction).
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `range` (empty ranges give their start).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// A duration between `low` and `high`.
    pub fn duration(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis() as u64;
        low + Duration::from_millis(self.below(span + 1))
    }

    /// True with probability `percent` in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The seed of a crash run: [`SEED_ENV`] if set, else a fresh one. Printed, so that a failing
/// run can be replayed with `SLEUTEL_CRASH_SEED=<seed>`.
pub fn seed_from_env(what: &str) -> Result<u64> {
    let seed = match std::env::var(SEED_ENV) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse::<u64>()
            .map_err(|e| HarnessError::Usage(format!("{SEED_ENV}={text}: {e}")))?,
        _ => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| HarnessError::State(e.to_string()))?;
            u64::from_le_bytes(bytes)
        }
    };
    eprintln!("{what}: seed {seed} (replay with {SEED_ENV}={seed})");
    Ok(seed)
}

/// Where the binaries of this build are: the directory above the test binary's `deps/`.
fn build_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| HarnessError::State(e.to_string()))?;
    let mut dir = exe
        .parent()
        .ok_or_else(|| HarnessError::State("the test binary has no directory".into()))?
        .to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir)
}

/// The server binary to run: [`SERVER_BIN_ENV`] as given, or `sleutel-server` beside the test
/// binary. An integration test does not build another package's binaries, and a build started
/// from inside a test would run with the test's environment and make cargo rebuild the
/// dependencies whose build scripts read it; so a binary older than a source it was built from
/// (cargo's dep-info file beside it) is refused with the command that brings it up to date
/// (`cargo test --workspace` builds it).
pub fn server_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(SERVER_BIN_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let binary = build_dir()?.join("sleutel-server");
    let build = "cargo build -p sleutel-server";
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .map_err(|e| HarnessError::Server(format!("{}: {e}; run `{build}`", binary.display())))?;
    // Cargo lists the sources the binary was built from beside it; any changed since is news
    // the binary does not have.
    let mut dep_info = binary.as_os_str().to_owned();
    dep_info.push(".d");
    let sources = std::fs::read_to_string(&dep_info).unwrap_or_default();
    let newer = sources
        .lines()
        .filter_map(|line| line.split_once(": "))
        .flat_map(|(_, files)| files.split_whitespace())
        .map(Path::new)
        .find(|file| {
            std::fs::metadata(file)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > built)
        });
    if let Some(newer) = newer {
        return Err(HarnessError::Server(format!(
            "{} is older than {}; run `{build}` (or set {SERVER_BIN_ENV})",
            binary.display(),
            newer.display()
        )));
    }
    Ok(binary)
}

/// Where a crash run's server keeps its state: a SQLite file in the run's directory, or a
/// fresh PostgreSQL database when [`POSTGRES_ENV`] names a cluster.
pub struct CrashDatabase {
    database: Database,
    /// Dropped with the run.
    _postgres: Option<TestDatabase>,
}

impl CrashDatabase {
    /// A database for a run whose files live in `dir`: PostgreSQL if [`POSTGRES_ENV`] is set,
    /// else SQLite.
    pub async fn for_run(dir: &Path) -> Result<Self> {
        match std::env::var(POSTGRES_ENV) {
            Ok(cluster) if !cluster.is_empty() => {
                let postgres = TestDatabase::create(&cluster).await?;
                Ok(Self {
                    database: Database::Postgres(postgres.url().to_owned()),
                    _postgres: Some(postgres),
                })
            }
            _ => Ok(Self {
                database: Database::Sqlite(dir.join("sleutel-server.db")),
                _postgres: None,
            }),
        }
    }

    /// The database, as the server's `--database` and [`OpenedDatabase::open`] take it.
    pub fn database(&self) -> &Database {
        &self.database
    }

    fn argument(&self) -> String {
        match &self.database {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => url.clone(),
        }
    }
}

/// The server binary running as a child process on a fixed loopback port and one database,
/// killed and started again by the test. Killed when dropped.
pub struct ServerProcess {
    binary: PathBuf,
    dir: PathBuf,
    database_argument: String,
    port: u16,
    child: Option<Child>,
    starts: u32,
}

impl ServerProcess {
    /// Starts `binary` on `database`, with its key, policy and log files in `dir`, on a free
    /// loopback port that every restart keeps (the phones know the server by its URL).
    pub fn start(binary: &Path, database: &CrashDatabase, dir: &Path) -> Result<Self> {
        let failed = |e: std::io::Error| HarnessError::Server(e.to_string());
        std::fs::write(dir.join("crash-policy.json"), CRASH_POLICY_JSON).map_err(failed)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| HarnessError::Server(e.to_string()))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(dir.join("notification.key"), hex).map_err(failed)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(failed)?
            .port();
        let mut server = Self {
            binary: binary.to_owned(),
            dir: dir.to_owned(),
            database_argument: database.argument(),
            port,
            child: None,
            starts: 0,
        };
        server.launch()?;
        Ok(server)
    }

    /// The server's base URL (the same across restarts).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log (its stderr over every start), for a failure's message.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Kills the server with SIGKILL, as a power cut or the OOM killer would, and waits for it
    /// to be gone.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // std's kill is SIGKILL on Unix: no handler runs, nothing is flushed.
            child
                .kill()
                .map_err(|e| HarnessError::Server(format!("kill: {e}")))?;
            child
                .wait()
                .map_err(|e| HarnessError::Server(format!("wait: {e}")))?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and database.
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.launch()
    }

    fn launch(&mut self) -> Result<()> {
        let failed = |e: std::io::Error| HarnessError::Server(e.to_string());
        let deadline = Instant::now() + START_WAIT;
        loop {
            self.starts += 1;
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_path())
                .map_err(failed)?;
            let mut child = Command::new(&self.binary)
                .arg("--listen")
                .arg(format!("127.0.0.1:{}", self.port))
                .arg("--database")
                .arg(&self.database_argument)
                .arg("--notification-key-file")
                .arg(self.dir.join("notification.key"))
                .arg("--policy-file")
                .arg(self.dir.join("crash-policy.json"))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log))
                .spawn()
                .map_err(|e| HarnessError::Server(format!("{}: {e}", self.binary.display())))?;
            let mut line = String::new();
            if let Some(stdout) = child.stdout.take() {
                std::io::BufReader::new(stdout)
                    .read_line(&mut line)
                    .map_err(failed)?;
            }
            if line.starts_with("listening on ") {
                self.child = Some(child);
                return Ok(());
            }
            // It stopped without listening: the port may still be held by the killed process's
            // sockets for a moment. Try again, up to the deadline.
            let _ = child.kill();
            let _ = child.wait();
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(HarnessError::Server(format!(
                    "the server did not start again (start {}); its log ends:\n{tail}",
                    self.starts
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The server's database as a kill left it, read through the server's `testing` hooks
/// (`sleutel_server::OpenedDatabase`): the tests implement it, since the harness library is
/// also the `sleutel-harness` binary, which is built without those hooks.
pub trait StoredState {
    /// Accounts or enrollments a completion cut short would leave, one line each.
    fn half_completed_enrollments(&self) -> Result<Vec<String>, String>;
    /// The account of the person with `national_register_number`.
    fn account(&self, national_register_number: &str) -> Result<Option<StoredAccount>, String>;
    /// The action request the phone knows as `request_id`.
    fn request(&self, request_id: &str) -> Result<Option<StoredRequest>, String>;
    /// The enrollment `enrollment_id`.
    fn enrollment(&self, enrollment_id: &str) -> Result<Option<StoredEnrollment>, String>;
}

/// Opens the database of a run as the next start would find it.
pub type OpenStoredState = dyn Fn(&Database) -> Result<Box<dyn StoredState>, String> + Sync;

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The account id.
    pub account_id: String,
    /// Devices not revoked.
    pub active_devices: u32,
    /// Consecutive wrong codes since the last right one.
    pub wrong_codes: u32,
    /// Whether it is blocked.
    pub blocked: bool,
}

/// An action request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    /// `pending`, `approved`, `declined` or `denied`.
    pub status: String,
    /// Whether its token was issued.
    pub token_issued: bool,
}

/// An enrollment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnrollment {
    /// `identity`, `sms`, `keys`, `done` or `failed`.
    pub step: String,
    /// SMS codes sent for it.
    pub sms_sends: u32,
}

/// What one enrollment's clients saw acknowledged.
#[derive(Debug, Clone, Default)]
struct EnrollmentSeen {
    national_register_number: String,
    /// SMS codes the server said it sent (the first and acknowledged resends).
    sms_sent: u32,
    /// The completion (the chosen code) was acknowledged.
    completed: bool,
}

/// What one account's clients saw acknowledged about its codes.
#[derive(Debug, Clone, Default)]
struct CodesSeen {
    /// Wrong codes acknowledged since the last right code was sent (a right code whose answer
    /// was lost may have cleared the count, so sending one resets this).
    wrong_since_right: u32,
    /// The block was acknowledged.
    blocked: bool,
}

/// What the relying party saw of one approved or declined request.
#[derive(Debug, Clone, Default)]
struct AnswerSeen {
    auth_req_id: String,
    approved: bool,
    /// The token was handed over.
    token_collected: bool,
    /// A token call went out whose answer was lost.
    token_call_lost: bool,
}

/// Every answer the clients saw acknowledged.
#[derive(Debug, Default)]
struct Ledger {
    enrollments: BTreeMap<String, EnrollmentSeen>,
    codes: BTreeMap<String, CodesSeen>,
    /// By the phone's request id.
    answers: BTreeMap<String, AnswerSeen>,
    /// eID identification codes whose use was acknowledged, with the phone number.
    used_identity_codes: Vec<(String, String)>,
    /// Counts of what was done, for the report.
    counts: BTreeMap<&'static str, u64>,
}

impl Ledger {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

/// What a crash run did and found.
#[derive(Debug, Default, Clone)]
pub struct CrashReport {
    /// The seed (replay with [`SEED_ENV`]).
    pub seed: u64,
    /// SIGKILLs sent.
    pub kills: u32,
    /// Wall time of the run.
    pub duration: Duration,
    /// Acknowledged actions by kind (`enrollments completed`, `approvals`, ...).
    pub counts: BTreeMap<String, u64>,
    /// Invariants broken, one line each; empty for a good run.
    pub violations: Vec<String>,
    /// Time spent waiting, after a kill, for the calls in flight to come back.
    pub waiting_for_calls: Duration,
    /// Time spent checking the database and the answers, restarts included.
    pub checking: Duration,
    /// Approved logins whose token was issued in a commit whose answer the crash then lost
    /// (the relying party is told `invalid_grant`, already issued).
    pub tokens_lost_in_flight: u64,
}

impl CrashReport {
    /// One paragraph for a test's output.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "seed {}: {} kills in {:.1} s ({:.1} s waiting for the calls in flight after \
             the kills, {:.1} s checking and restarting); acknowledged: {}; tokens issued but lost with the \
             answer: {}; violations: {}",
            self.seed,
            self.kills,
            self.duration.as_secs_f64(),
            self.waiting_for_calls.as_secs_f64(),
            self.checking.as_secs_f64(),
            counts.join(", "),
            self.tokens_lost_in_flight,
            self.violations.len()
        )
    }
}

/// What a crash run does.
#[derive(Debug, Clone)]
pub struct CrashOptions {
    /// The seed of the kills and of the citizens' choices.
    pub seed: u64,
    /// SIGKILLs to send.
    pub kills: u32,
    /// Citizens acting at once.
    pub citizens: usize,
    /// The server lives between `min_uptime` and `max_uptime` before each kill.
    pub min_uptime: Duration,
    /// See `min_uptime`.
    pub max_uptime: Duration,
}

/// Shared by the citizens and the killer.
struct Shared {
    url: String,
    ledger: Mutex<Ledger>,
    /// Each acknowledged call holds it for reading until its answer is in the ledger; the
    /// checker takes it for writing after a kill, so it sees every answer that was given
    /// before the kill, and no citizen calls while it checks.
    gate: RwLock<()>,
    stop: std::sync::atomic::AtomicBool,
    next_number: std::sync::atomic::AtomicU64,
    /// The phones' state directories.
    phones_dir: PathBuf,
}

impl Shared {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A phone number no other citizen of the run has (a block of numbers of its own).
    fn new_number(&self) -> String {
        let n = self
            .next_number
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("+{}", 32_470_800_000 + n)
    }
}

/// Runs the server binary on a database of its own and kills it `options.kills` times under
/// the load of `options.citizens` citizens, checking after each kill and at the end that the
/// database and the server keep everything the clients were told.
pub async fn run_server_crashes(
    options: &CrashOptions,
    open: &OpenStoredState,
) -> Result<CrashReport> {
    let started = Instant::now();
    let dir = tempfile::tempdir().map_err(|e| HarnessError::State(e.to_string()))?;
    let database = CrashDatabase::for_run(dir.path()).await?;
    let binary = server_binary()?;
    let mut server = {
        let (binary, dir_path) = (binary.clone(), dir.path().to_owned());
        let database_ref = &database;
        // The first start reads a line from the child: off the async workers.
        tokio::task::block_in_place(|| ServerProcess::start(&binary, database_ref, &dir_path))?
    };
    let shared = Arc::new(Shared {
        url: server.url(),
        ledger: Mutex::default(),
        gate: RwLock::new(()),
        stop: false.into(),
        next_number: (options.seed % 50_000).into(),
        phones_dir: dir.path().join("phones"),
    });
    let mut report = CrashReport {
        seed: options.seed,
        ..CrashReport::default()
    };
    let mut citizens = tokio::task::JoinSet::new();
    for index in 0..options.citizens {
        let shared = shared.clone();
        let rng = SeededRng::new(options.seed ^ ((index as u64 + 1) << 32));
        citizens.spawn(async move { citizen(shared, rng, index).await });
    }
    let mut rng = SeededRng::new(options.seed);
    let mut checked = Checked::default();
    let result: Result<()> = async {
        for _ in 0..options.kills {
            tokio::time::sleep(rng.duration(options.min_uptime, options.max_uptime)).await;
            tokio::task::block_in_place(|| server.kill())?;
            report.kills += 1;
            let killed = Instant::now();
            let gate = shared.gate.write().await;
            let quiet = Instant::now();
            report.waiting_for_calls += quiet - killed;
            check_database(&shared, open, database.database(), &mut report).await?;
            tokio::task::block_in_place(|| server.restart())?;
            check_answers(&shared, &mut checked, &mut report).await?;
            drop(gate);
            report.checking += quiet.elapsed();
        }
        Ok(())
    }
    .await;
    shared
        .stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(joined) = citizens.join_next().await {
        if let Err(e) = joined {
            report
                .violations
                .push(format!("a citizen's task failed: {e}"));
        }
    }
    result?;
    // The last word: one more kill with everything settled, then every check again.
    let gate = shared.gate.write().await;
    tokio::task::block_in_place(|| server.kill())?;
    report.kills += 1;
    check_database(&shared, open, database.database(), &mut report).await?;
    tokio::task::block_in_place(|| server.restart())?;
    // Every answer once more, the settled ones too: nothing single-use came back.
    check_answers(&shared, &mut Checked::default(), &mut report).await?;
    check_identity_codes(&shared, &mut report).await?;
    drop(gate);
    tokio::task::block_in_place(|| server.kill())?;
    report.counts = shared
        .ledger()
        .counts
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    report.duration = started.elapsed();
    if !report.violations.is_empty() {
        let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
        let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
        if !panics.is_empty() {
            report.violations.push(format!("server panics: {panics:?}"));
        }
    }
    Ok(report)
}

/// Reads the database as the crash left it and holds it to the ledger.
async fn check_database(
    shared: &Shared,
    open: &OpenStoredState,
    database: &Database,
    report: &mut CrashReport,
) -> Result<()> {
    let opened = tokio::task::block_in_place(|| open(database))
        .map_err(|e| HarnessError::Database(format!("after a kill: {e}")))?;
    let db = HarnessError::Database;
    let (enrollments, codes, answers) = {
        let ledger = shared.ledger();
        (
            ledger.enrollments.clone(),
            ledger.codes.clone(),
            ledger.answers.clone(),
        )
    };
    let violations = &mut report.violations;
    let kill = report.kills;
    tokio::task::block_in_place(|| -> Result<()> {
        for half in opened.half_completed_enrollments().map_err(db)? {
            violations.push(format!("after kill {kill}: half-completed: {half}"));
        }
        for (id, seen) in &enrollments {
            let state = opened.enrollment(id).map_err(db)?;
            if seen.completed {
                match opened.account(&seen.national_register_number).map_err(db)? {
                    Some(parts) if parts.active_devices > 0 || parts.blocked => {}
                    other => violations.push(format!(
                        "after kill {kill}: enrollment {id} was acknowledged complete, \
                         its account is {other:?}"
                    )),
                }
                if state.as_ref().is_some_and(|s| s.step != "done") {
                    violations.push(format!(
                        "after kill {kill}: enrollment {id} was acknowledged complete, \
                         it is {state:?}"
                    ));
                }
            } else if let Some(state) = &state
                && state.step != "done"
                && state.sms_sends < seen.sms_sent
            {
                violations.push(format!(
                    "after kill {kill}: enrollment {id}: {} SMS acknowledged, {} counted",
                    seen.sms_sent, state.sms_sends
                ));
            }
        }
        for (register_number, seen) in &codes {
            let Some(parts) = opened.account(register_number).map_err(db)? else {
                violations.push(format!(
                    "after kill {kill}: the account of a citizen who typed codes is gone"
                ));
                continue;
            };
            if seen.blocked && !parts.blocked {
                violations.push(format!(
                    "after kill {kill}: account {} was acknowledged blocked, it is not",
                    parts.account_id
                ));
            }
            if !parts.blocked && parts.wrong_codes < seen.wrong_since_right {
                violations.push(format!(
                    "after kill {kill}: account {}: {} wrong codes acknowledged, {} counted",
                    parts.account_id, seen.wrong_since_right, parts.wrong_codes
                ));
            }
        }
        for (request_id, seen) in &answers {
            let expected = if seen.approved {
                "approved"
            } else {
                "declined"
            };
            match opened.request(request_id).map_err(db)? {
                Some(state)
                    if state.status == expected
                        && (state.token_issued || !seen.token_collected) => {}
                other => violations.push(format!(
                    "after kill {kill}: request {request_id} was acknowledged {expected}{}, \
                     it is {other:?}",
                    if seen.token_collected {
                        " with its token collected"
                    } else {
                        ""
                    }
                )),
            }
        }
        Ok(())
    })?;
    drop(opened);
    Ok(())
}

/// Requests whose final answer at the token endpoint was already checked.
#[derive(Default)]
struct Checked {
    settled: BTreeSet<String>,
}

/// After a restart: every acknowledged approval gives its token (or a typed error: expired,
/// or already issued when the crash lost the answer that carried it), a collected token is not
/// given twice, and a declined login is refused.
async fn check_answers(
    shared: &Shared,
    checked: &mut Checked,
    report: &mut CrashReport,
) -> Result<()> {
    let rp = RelyingParty::demo(&shared.url)?;
    let answers = shared.ledger().answers.clone();
    for (request_id, seen) in answers {
        if checked.settled.contains(&request_id) {
            continue;
        }
        let response = rp.token_raw(&seen.auth_req_id).await?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let error = body["error"].as_str().unwrap_or_default().to_owned();
        let description = body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let kill = report.kills;
        match (seen.approved, seen.token_collected, status, error.as_str()) {
            (true, false, 200, _) if body["id_token"].is_string() => {
                if let Some(answer) = shared.ledger().answers.get_mut(&request_id) {
                    answer.token_collected = true;
                }
                shared.ledger().count("tokens collected after a restart");
            }
            (true, false, 400, "expired_token") => {
                checked.settled.insert(request_id);
            }
            (true, false, 400, "invalid_grant")
                if seen.token_call_lost && description.contains("already issued") =>
            {
                report.tokens_lost_in_flight += 1;
                checked.settled.insert(request_id);
            }
            (true, true, 400, "invalid_grant") | (false, _, 400, "access_denied") => {
                checked.settled.insert(request_id);
            }
            _ => report.violations.push(format!(
                "after kill {kill}: request {request_id} (approved: {}, token collected: {}) \
                 answered {status} {error} {description}",
                seen.approved, seen.token_collected
            )),
        }
    }
    Ok(())
}

/// At the end: a used identity code stays used.
async fn check_identity_codes(shared: &Shared, report: &mut CrashReport) -> Result<()> {
    let used = shared.ledger().used_identity_codes.clone();
    for (index, (number, code)) in used.into_iter().enumerate() {
        let dir = shared.phones_dir.join(format!("reuse-{index}"));
        let phone = VirtualPhone::open(&shared.url, &dir)?;
        match phone
            .authenticator()
            .start_eid_enrollment(number.clone(), code)
            .await
        {
            Err(CoreError::IdentityCodeUsed) => {}
            other => report.violations.push(format!(
                "a used identification code for {number} answered {other:?} when used again"
            )),
        }
    }
    Ok(())
}

/// An enrolled account a citizen logs in with.
struct Enrolled {
    phone: VirtualPhone,
    register_number: String,
    phone_number: String,
}

/// One citizen's life until the run stops: enroll, then log in, now and then enroll again.
async fn citizen(shared: Arc<Shared>, mut rng: SeededRng, index: usize) {
    let mut enrolled: Option<Enrolled> = None;
    let mut attempt = 0u32;
    while !shared.stopped() {
        attempt += 1;
        let dir = shared.phones_dir.join(format!("c{index}-{attempt}"));
        match enrolled.take() {
            Some(account) if !rng.chance(10) => {
                enrolled = login(&shared, &mut rng, account).await;
            }
            kept => {
                let eid = rng.chance(30);
                match enroll(&shared, &mut rng, &dir, eid).await {
                    Some(account) => enrolled = Some(account),
                    None => enrolled = kept,
                }
            }
        }
        // A pause before the next step, and room for the checker while the server is down.
        tokio::time::sleep(Duration::from_millis(20 + rng.below(30))).await;
    }
}

/// The outcome of one acknowledged-or-not call.
fn is_lost(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Network { .. } | CoreError::ServerUnavailable { .. }
    )
}

/// One enrollment through the bank or the eID with SMS resends and wrong SMS codes; `None`
/// when it did not complete (a kill, a refusal).
async fn enroll(shared: &Shared, rng: &mut SeededRng, dir: &Path, eid: bool) -> Option<Enrolled> {
    let sim = SimClient::new(&shared.url).ok()?;
    let number = shared.new_number();
    let phone = VirtualPhone::open(&shared.url, dir).ok()?;
    let citizen: Citizen = {
        let _call = shared.gate.read().await;
        sim.create_citizen(&NewCitizen {
            bank: Some(Bank::Kbc),
            ..NewCitizen::default()
        })
        .await
        .ok()?
    };
    let auth = phone.authenticator();
    let enrollment_id;
    if eid {
        let issued = {
            let _call = shared.gate.read().await;
            sim.eid_identification(
                &number,
                &VirtualPhone::email_of(&citizen),
                &citizen.eid_card.serial,
                &citizen.eid_card.pin,
            )
            .await
            .ok()?
        };
        let _call = shared.gate.read().await;
        auth.start_eid_enrollment(number.clone(), issued.identification_code.clone())
            .await
            .ok()?;
        enrollment_id = auth.enrollment_in_progress().ok()??.enrollment_id;
        let mut ledger = shared.ledger();
        ledger.count("identity codes used");
        ledger
            .used_identity_codes
            .push((number.clone(), issued.identification_code));
        ledger.enrollments.insert(
            enrollment_id.clone(),
            EnrollmentSeen {
                national_register_number: citizen.national_register_number.clone(),
                sms_sent: 1,
                completed: false,
            },
        );
    } else {
        let handoff = {
            let _call = shared.gate.read().await;
            auth.start_bank_enrollment(number.clone(), Bank::Kbc)
                .await
                .ok()?
        };
        enrollment_id = handoff.enrollment_id.clone();
        shared.ledger().enrollments.insert(
            enrollment_id.clone(),
            EnrollmentSeen {
                national_register_number: citizen.national_register_number.clone(),
                ..EnrollmentSeen::default()
            },
        );
        let link = {
            let _call = shared.gate.read().await;
            sim.bank_authorize(
                &handoff.handoff_url,
                &citizen.debit_card.number,
                &citizen.debit_card.pin,
            )
            .await
            .ok()?
        };
        let _call = shared.gate.read().await;
        auth.complete_bank_handoff(link).await.ok()?;
        if let Some(seen) = shared.ledger().enrollments.get_mut(&enrollment_id) {
            seen.sms_sent += 1;
        }
    }
    shared.ledger().count("enrollments started");
    if rng.chance(25) {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let _call = shared.gate.read().await;
        match auth.resend_sms_code().await {
            Ok(_) => {
                let mut ledger = shared.ledger();
                ledger.count("SMS resends");
                if let Some(seen) = ledger.enrollments.get_mut(&enrollment_id) {
                    seen.sms_sent += 1;
                }
            }
            Err(CoreError::ResendTooSoon { .. }) => {}
            Err(_) => return None,
        }
    }
    if rng.chance(25) {
        let _call = shared.gate.read().await;
        match auth.verify_sms_code("000000".into()).await {
            Err(CoreError::WrongSmsCode { .. }) => shared.ledger().count("wrong SMS codes"),
            _ => return None,
        }
    }
    let sms = {
        let _call = shared.gate.read().await;
        let messages = sim.sms_messages(&number).await.ok()?.messages;
        // The last code sent is the one that counts.
        crate::sim::sms_code_in(&messages.last()?.text)?
    };
    {
        let _call = shared.gate.read().await;
        auth.verify_sms_code(sms).await.ok()?;
    }
    let _call = shared.gate.read().await;
    match auth.choose_code(CODE.into(), CODE.into()).await {
        Ok(_) => {
            let mut ledger = shared.ledger();
            ledger.count("enrollments completed");
            if let Some(seen) = ledger.enrollments.get_mut(&enrollment_id) {
                seen.completed = true;
            }
            ledger.codes.insert(
                citizen.national_register_number.clone(),
                CodesSeen::default(),
            );
        }
        Err(e) if is_lost(&e) => return None,
        Err(_) => return None,
    }
    let _ = phone.save();
    Some(Enrolled {
        phone,
        register_number: citizen.national_register_number,
        phone_number: number,
    })
}

/// One login: approved, declined, or with wrong codes first. Gives the account back unless it
/// is blocked.
async fn login(shared: &Shared, rng: &mut SeededRng, mut account: Enrolled) -> Option<Enrolled> {
    let Ok(rp) = RelyingParty::demo(&shared.url) else {
        return Some(account);
    };
    let started = {
        let _call = shared.gate.read().await;
        match rp.start_login(&account.phone_number).await {
            Ok(started) => started,
            Err(_) => return Some(account),
        }
    };
    let view = {
        let _call = shared.gate.read().await;
        match account.phone.next_request(STEP_WAIT).await {
            Ok(view) => view,
            Err(_) => return Some(account),
        }
    };
    let request_id = view.request_id.clone();
    let auth = account.phone.authenticator();
    if rng.chance(20) {
        let _call = shared.gate.read().await;
        if auth
            .decline(request_id.clone(), DeclineReason::Cancelled)
            .await
            .is_ok()
        {
            let mut ledger = shared.ledger();
            ledger.count("logins declined");
            ledger.answers.insert(
                request_id,
                AnswerSeen {
                    auth_req_id: started.auth_req_id,
                    approved: false,
                    ..AnswerSeen::default()
                },
            );
        }
        return Some(account);
    }
    let wrong = if rng.chance(35) { 1 + rng.below(3) } else { 0 };
    for _ in 0..wrong {
        let _call = shared.gate.read().await;
        match auth
            .approve(request_id.clone(), Approval::code(WRONG_CODE))
            .await
        {
            Err(CoreError::WrongCode { .. }) => {
                let mut ledger = shared.ledger();
                ledger.count("wrong codes");
                if let Some(seen) = ledger.codes.get_mut(&account.register_number) {
                    seen.wrong_since_right += 1;
                }
            }
            Err(CoreError::AccountBlocked) => {
                let mut ledger = shared.ledger();
                ledger.count("blocks");
                if let Some(seen) = ledger.codes.get_mut(&account.register_number) {
                    seen.blocked = true;
                }
                return None;
            }
            Err(_) | Ok(()) => return Some(account),
        }
    }
    {
        let _call = shared.gate.read().await;
        // Sent: whether or not its answer arrives, the count may have been cleared.
        if let Some(seen) = shared.ledger().codes.get_mut(&account.register_number) {
            seen.wrong_since_right = 0;
        }
        match auth.approve(request_id.clone(), Approval::code(CODE)).await {
            Ok(()) => {
                let mut ledger = shared.ledger();
                ledger.count("logins approved");
                ledger.answers.insert(
                    request_id.clone(),
                    AnswerSeen {
                        auth_req_id: started.auth_req_id.clone(),
                        approved: true,
                        ..AnswerSeen::default()
                    },
                );
            }
            Err(CoreError::AccountBlocked) => {
                let mut ledger = shared.ledger();
                ledger.count("blocks");
                if let Some(seen) = ledger.codes.get_mut(&account.register_number) {
                    seen.blocked = true;
                }
                return None;
            }
            Err(_) => return Some(account),
        }
    }
    if rng.chance(60) {
        let _call = shared.gate.read().await;
        if let Some(seen) = shared.ledger().answers.get_mut(&request_id) {
            seen.token_call_lost = true;
        }
        match rp.token_raw(&started.auth_req_id).await {
            Ok(response) if response.status().is_success() => {
                if response.json::<serde_json::Value>().await.is_ok() {
                    let mut ledger = shared.ledger();
                    ledger.count("tokens collected");
                    if let Some(seen) = ledger.answers.get_mut(&request_id) {
                        seen.token_collected = true;
                        seen.token_call_lost = false;
                    }
                }
            }
            Ok(_) => {
                // A refusal is an answer: the call was not lost.
                if let Some(seen) = shared.ledger().answers.get_mut(&request_id) {
                    seen.token_call_lost = false;
                }
            }
            Err(_) => {}
        }
    }
    Some(account)
}

/// One step of the phone core that a test kills in the middle ([`phone_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PhoneStep {
    /// Enroll through the bank with [`CODE`], going on from wherever an earlier, killed run
    /// of the step left the enrollment.
    Enroll,
    /// Approve with [`CODE`] every request pending for the phone's account.
    Approve,
    /// Enable biometrics for the phone's account with [`CODE`].
    EnableBiometrics,
}

/// What [`phone_step`] needs besides the phone's directory.
#[derive(Debug, Clone)]
pub struct PhoneStepArgs {
    /// The durable phone's directory ([`VirtualPhone::open_durable`]).
    pub dir: PathBuf,
    /// The server's base URL.
    pub server: String,
    /// The step.
    pub step: PhoneStep,
    /// The phone number to enroll.
    pub phone_number: String,
    /// The debit card number the person gives the bank.
    pub card_number: String,
    /// The card's PIN.
    pub card_pin: String,
}

/// Rounds an enrollment may go through before the step gives up: each round is one call,
/// and a round that finds the enrollment gone starts a new one.
const ENROLL_ROUNDS: usize = 12;

/// Performs one step of the phone core on the durable phone in `args.dir`, as the app would
/// after being started again: whatever an earlier run of the step left (killed at any point),
/// it goes on from there. `sleutel-harness phone-step` runs it in a process of its own, which
/// the crash tests kill.
pub async fn phone_step(args: &PhoneStepArgs) -> Result<()> {
    let phone = VirtualPhone::open_durable(&args.server, &args.dir)?;
    match args.step {
        PhoneStep::Enroll => enroll_step(&phone, args).await,
        PhoneStep::Approve => {
            phone
                .account()?
                .ok_or_else(|| HarnessError::Missing("an account on this phone".into()))?;
            for view in phone.authenticator().refresh_pending().await? {
                phone
                    .authenticator()
                    .approve(view.request_id, Approval::code(CODE))
                    .await?;
            }
            Ok(())
        }
        PhoneStep::EnableBiometrics => {
            let account = phone
                .account()?
                .ok_or_else(|| HarnessError::Missing("an account on this phone".into()))?;
            phone
                .authenticator()
                .enable_biometrics(account.account_id, CODE.into())
                .await?;
            Ok(())
        }
    }
}

async fn enroll_step(phone: &VirtualPhone, args: &PhoneStepArgs) -> Result<()> {
    use sleutel_core::EnrollmentStep;
    let auth = phone.authenticator();
    let sim = phone.sim();
    for _ in 0..ENROLL_ROUNDS {
        if phone.account()?.is_some() {
            return Ok(());
        }
        let Some(progress) = auth.enrollment_in_progress()? else {
            auth.start_bank_enrollment(args.phone_number.clone(), Bank::Kbc)
                .await?;
            continue;
        };
        let done = match progress.step {
            EnrollmentStep::BankHandoff => {
                let handoff = progress
                    .handoff_url
                    .ok_or_else(|| HarnessError::Missing("the bank handoff URL".into()))?;
                let link = sim
                    .bank_authorize(&handoff, &args.card_number, &args.card_pin)
                    .await?;
                auth.complete_bank_handoff(link).await.map(|_| ())
            }
            EnrollmentStep::SmsCode => {
                let messages = sim.sms_messages(&args.phone_number).await?.messages;
                let code = messages
                    .last()
                    .and_then(|m| crate::sim::sms_code_in(&m.text))
                    .ok_or_else(|| HarnessError::Missing("an SMS code".into()))?;
                auth.verify_sms_code(code).await
            }
            EnrollmentStep::ChooseCode => {
                auth.choose_code(CODE.into(), CODE.into()).await.map(|_| ())
            }
            EnrollmentStep::IdentityCode => {
                return Err(HarnessError::State(
                    "a bank enrollment waits for an identity code".into(),
                ));
            }
        };
        match done {
            Ok(()) => {}
            // The enrollment ended (the phone dropped it): the next round starts another.
            Err(CoreError::EnrollmentExpired) => {}
            // The server had taken this step from a run that was killed before it heard the
            // answer; the phone followed the server to its step, as an app shows the SMS
            // screen then. The next round goes on from there.
            Err(CoreError::WrongStep { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(HarnessError::State(format!(
        "no account after {ENROLL_ROUNDS} rounds of the enrollment"
    )))
}

/// How a run of [`run_phone_step`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEnd {
    /// SIGKILL landed while the step ran.
    Killed,
    /// The step finished before the kill (or none was asked for), with this success.
    Finished {
        /// Whether it exited successfully.
        success: bool,
    },
}

/// Runs `sleutel-harness phone-step` (`harness` is the binary) with `args`, killing it with
/// SIGKILL after `kill_after` if it still runs then; also returns how long it ran.
pub async fn run_phone_step(
    harness: &Path,
    args: &PhoneStepArgs,
    kill_after: Option<Duration>,
) -> Result<(StepEnd, Duration)> {
    let step = match args.step {
        PhoneStep::Enroll => "enroll",
        PhoneStep::Approve => "approve",
        PhoneStep::EnableBiometrics => "enable-biometrics",
    };
    let started = Instant::now();
    let failed = |e: std::io::Error| HarnessError::State(format!("phone-step: {e}"));
    let mut child = Command::new(harness)
        .arg("phone-step")
        .arg("--dir")
        .arg(&args.dir)
        .args(["--server", &args.server, "--step", step])
        .args(["--phone-number", &args.phone_number])
        .args(["--card-number", &args.card_number])
        .args(["--card-pin", &args.card_pin])
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::State(format!("{}: {e}", harness.display())))?;
    // Polled rather than waited on: the server under test may run on this runtime.
    let deadline = kill_after.map(|delay| started + delay);
    loop {
        if let Some(status) = child.try_wait().map_err(failed)? {
            if kill_after.is_none() && !status.success() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                return Err(HarnessError::State(format!(
                    "phone-step {step} failed: {}",
                    stderr.trim()
                )));
            }
            let end = StepEnd::Finished {
                success: status.success(),
            };
            return Ok((end, started.elapsed()));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // std's kill is SIGKILL on Unix.
            child.kill().map_err(failed)?;
            child.wait().map_err(failed)?;
            return Ok((StepEnd::Killed, started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
