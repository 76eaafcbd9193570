//! The load benchmark (`sleutel-harness load`): simulated citizens enrolled once, then full CIBA
//! logins driven against a server in another process, closed-loop (a number of logins in
//! flight) or open-loop (a fixed arrival rate, so that the latency under a given load is not
//! flattered by the generator slowing down with the server). It reads the server's CPU time and
//! memory from `/proc`, so the figure that matters, server CPU per login, does not depend on the
//! generator sharing the machine.
//!
//! The phones are the real core ([`VirtualPhone`]); they derive their PIN key once through the
//! core's own derivation and reuse it ([`sleutel_core::testing::reuse_pin_keys`]), so each
//! approval costs the generator milliseconds instead of an Argon2id derivation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sleutel_core::{Approval, Bank};
use sleutel_protocol::api;
use sleutel_protocol::jose::Jwks;

use crate::phone::{VirtualPhone, silent};
use crate::rp::{LoginRequest, RelyingParty};
use crate::{HarnessError, Result};

/// The code every load citizen chooses.
pub const LOAD_CODE: &str = crate::demo::DEMO_CODE;

/// The first phone number of the load citizens; phone `i` has this number plus `i`. The
/// `+32 470 9…` block keeps them apart from the demo's and the tests' numbers.
const FIRST_NUMBER: u64 = 32_470_900_000;

/// Most phones one run enrolls: the numbers above stay Belgian mobile numbers up to here.
pub const MAX_PHONES: usize = 100_000;

/// Linux reports process CPU time in clock ticks of `USER_HZ`, which is 100 on every
/// architecture Linux supports (the kernel converts for user space whatever its own HZ).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// The raised limits a load test needs, as a policy file for the server (`--policy-file`):
/// one relying party starts every login (60 a minute by default), every enrollment comes from
/// loopback (30 a minute from one address by default), and every phone connects from 127.0.0.1,
/// directly or through the harness's balancer (256 connections from one address by default).
/// Every other value stays the production one.
pub const LOAD_POLICY_JSON: &str = r#"{
  "max_backchannel_per_client_per_minute": 100000000,
  "max_enrollment_starts_per_source_per_minute": 1000000,
  "max_enrollment_starts_per_minute": 1000000,
  "max_connections_per_address": 2048
}"#;

/// How the logins arrive.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// This many logins in flight, each followed at once by the next.
    Closed {
        /// Logins in flight.
        concurrency: usize,
    },
    /// Logins started at this rate per second, whatever the server's answers take.
    Open {
        /// Logins started per second.
        rate: f64,
    },
}

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The server's base URL.
    pub server: String,
    /// The server's process ids (one per instance), to read their CPU time and memory.
    pub server_pids: Vec<u32>,
    /// The PostgreSQL server's process id (its postmaster), to read the CPU time of it and its
    /// backends; `None` for SQLite (inside the server) or a database measured elsewhere.
    pub database_pid: Option<u32>,
    /// The server's database file, to measure its growth.
    pub server_db: Option<PathBuf>,
    /// Where the phones keep their state; a second run finds them enrolled.
    pub state_dir: PathBuf,
    /// Enrolled citizens to log in.
    pub phones: usize,
    /// Enrollments at a time while enrolling.
    pub enroll_concurrency: usize,
    /// How logins arrive.
    pub mode: Mode,
    /// How long logins are driven.
    pub duration: Duration,
}

/// Latency percentiles of one step, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Measurements.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// The process figures over one phase, where the server's pid is known.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFigures {
    /// Server CPU time (user + system) over the phase, in milliseconds.
    pub cpu_ms: Option<f64>,
    /// Resident memory at the end of the phase, in KiB.
    pub rss_kib: Option<u64>,
}

/// The enrollment phase.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentReport {
    /// Phones enrolled by this run (the others were found enrolled).
    pub enrolled: usize,
    /// Wall time of the phase, in seconds.
    pub seconds: f64,
    /// Server CPU per enrollment (bank source, SMS code, 5-digit code, and the simulators'
    /// calls: the citizen, the bank's page, the SMS outbox), in milliseconds.
    pub server_cpu_ms_per_enrollment: Option<f64>,
    /// Failed enrollments by kind.
    pub errors: BTreeMap<String, u64>,
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// `closed` or `open`.
    pub mode: &'static str,
    /// Logins in flight (closed loop).
    pub concurrency: Option<usize>,
    /// Target logins per second (open loop).
    pub target_rate: Option<f64>,
    /// Citizens logging in.
    pub phones: usize,
    /// The enrollment phase.
    pub enrollment: EnrollmentReport,
    /// Wall time of the login phase, in seconds.
    pub seconds: f64,
    /// Logins completed (ID token verified).
    pub logins: u64,
    /// Logins completed per second.
    pub logins_per_sec: f64,
    /// Server CPU per completed login (all instances together), in milliseconds.
    pub server_cpu_ms_per_login: Option<f64>,
    /// PostgreSQL's CPU per completed login (postmaster and backends), in milliseconds.
    pub database_cpu_ms_per_login: Option<f64>,
    /// This generator's own CPU per completed login, in milliseconds (it shares the machine).
    pub generator_cpu_ms_per_login: Option<f64>,
    /// The server's process figures over the login phase.
    pub server: ServerFigures,
    /// Growth of the server's database (file and write-ahead log) over the login phase, bytes.
    pub db_growth_bytes: Option<i64>,
    /// Latency by step: `bc_authorize`, `fetch`, `answer`, `token`, and `login` (the whole,
    /// from its planned start in open loop, so that queueing counts).
    pub latency: BTreeMap<&'static str, Percentiles>,
    /// Failed logins by kind.
    pub errors: BTreeMap<String, u64>,
}

impl LoadReport {
    /// The report as lines for a person.
    pub fn summary(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
        let mut out = String::new();
        out.push_str(&format!(
            "enrollment: {} enrolled in {:.1}s, server CPU per enrollment {} ms, errors {:?}\n",
            self.enrollment.enrolled,
            self.enrollment.seconds,
            opt(self.enrollment.server_cpu_ms_per_enrollment),
            self.enrollment.errors
        ));
        let load = match (self.concurrency, self.target_rate) {
            (Some(c), _) => format!("closed loop, {c} in flight"),
            (_, Some(r)) => format!("open loop, {r}/s"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "logins: {} in {:.1}s ({load}, {} phones): {:.1} logins/s\n",
            self.logins, self.seconds, self.phones, self.logins_per_sec
        ));
        out.push_str(&format!(
            "server CPU per login: {} ms; database (PostgreSQL) CPU per login: {} ms; \
             generator CPU per login: {} ms\n",
            opt(self.server_cpu_ms_per_login),
            opt(self.database_cpu_ms_per_login),
            opt(self.generator_cpu_ms_per_login)
        ));
        out.push_str(&format!(
            "server RSS: {} KiB; database growth: {} bytes\n",
            self.server
                .rss_kib
                .map_or("n/a".to_owned(), |v| v.to_string()),
            self.db_growth_bytes
                .map_or("n/a".to_owned(), |v| v.to_string())
        ));
        for (step, p) in &self.latency {
            out.push_str(&format!(
                "{step:>13}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({})\n",
                p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms, p.count
            ));
        }
        out.push_str(&format!("errors: {:?}\n", self.errors));
        out
    }
}

/// The phone number of load phone `index`.
pub fn phone_number(index: usize) -> String {
    format!("+{}", FIRST_NUMBER + index as u64)
}

/// The CPU time (user + system) of process `pid` so far, in milliseconds.
pub fn process_cpu_ms(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // Fields 14 and 15 of proc(5), utime and stime; the state (field 3) is fields[0] here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1000.0 / CLOCK_TICKS_PER_SEC)
}

/// The CPU time of every process in `pids` together, in milliseconds; `None` without pids or
/// when one cannot be read.
pub fn processes_cpu_ms(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|pid| process_cpu_ms(&pid.to_string()))
        .sum()
}

/// The CPU time of PostgreSQL: its postmaster `pid` and every process it started (the
/// backends serving the connections, the background workers), in milliseconds. A backend that
/// ended during the run takes its time with it; the pools' connections live throughout.
pub fn postgres_cpu_ms(pid: u32) -> Option<f64> {
    let mut total = process_cpu_ms(&pid.to_string())?;
    let parent = pid.to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(child) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // After the last ')': state, then the parent's pid.
        let ppid = stat
            .rfind(')')
            .and_then(|end| stat.get(end + 2..))
            .and_then(|rest| rest.split(' ').nth(1));
        if ppid == Some(parent.as_str()) {
            total += process_cpu_ms(child).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// The resident memory of process `pid`, in KiB.
pub fn process_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The size of a SQLite database with its write-ahead log, in bytes.
/// CPU milliseconds per completed item between two readings; `None` without both readings or
/// without an item.
fn cpu_per(before: Option<f64>, after: Option<f64>, items: u64) -> Option<f64> {
    match (before, after) {
        (Some(before), Some(after)) if items > 0 => Some((after - before) / items as f64),
        _ => None,
    }
}

fn db_size(db: &Path) -> i64 {
    let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len() as i64);
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db.to_owned()) + size(PathBuf::from(wal))
}

/// A short name for a failure, to count failures by kind.
fn error_kind(e: &HarnessError) -> String {
    match e {
        HarnessError::Api(api) => format!("api:{}", api.error),
        HarnessError::Core(core) => {
            // The variant's name only: the details differ from one failure to the next.
            let debug = format!("{core:?}");
            let name: String = debug
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            format!("phone:{name}")
        }
        HarnessError::Http(_) => "http".into(),
        HarnessError::Verification(_) => "verification".into(),
        HarnessError::Timeout(_) => "timeout".into(),
        HarnessError::Missing(_) => "missing".into(),
        other => format!("{:?}", std::mem::discriminant(other)),
    }
}

/// The measurements the workers add to.
#[derive(Default)]
struct Record {
    steps: BTreeMap<&'static str, Vec<Duration>>,
    errors: BTreeMap<String, u64>,
    logins: u64,
}

impl Record {
    fn failed(&mut self, e: &HarnessError) {
        *self.errors.entry(error_kind(e)).or_default() += 1;
    }
}

fn lock(record: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    // A worker that panicked left the record as it was: still worth reporting.
    record
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
        samples
            .get(index.min(samples.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Percentiles {
        count: samples.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// One load citizen's phone, used by one login at a time.
struct LoadPhone {
    phone: VirtualPhone,
    number: String,
    busy: tokio::sync::Mutex<()>,
}

/// What every login needs besides its phone.
struct Shared {
    rp: RelyingParty,
    jwks: Jwks,
    issuer: String,
    record: Mutex<Record>,
}

/// Opens the phones in `options.state_dir`, enrolling those without an account.
async fn open_phones(options: &LoadOptions) -> Result<(Vec<Arc<LoadPhone>>, EnrollmentReport)> {
    let cpu_before = processes_cpu_ms(&options.server_pids);
    let started = Instant::now();
    let mut phones = Vec::with_capacity(options.phones);
    let mut to_enroll = Vec::new();
    for index in 0..options.phones {
        let dir = options.state_dir.join(format!("phone-{index:05}"));
        let phone = VirtualPhone::open(&options.server, &dir)?;
        if phone.account()?.is_none() {
            to_enroll.push(index);
        }
        phones.push(Arc::new(LoadPhone {
            phone,
            number: phone_number(index),
            busy: tokio::sync::Mutex::new(()),
        }));
    }
    let errors = Arc::new(Mutex::new(Record::default()));
    let queue = Arc::new(Mutex::new(to_enroll.clone()));
    let mut workers = Vec::new();
    for _ in 0..options.enroll_concurrency.max(1) {
        let (queue, errors, phones) = (queue.clone(), errors.clone(), phones.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .pop();
                let Some(index) = next else { break };
                let Some(load) = phones.get(index) else { break };
                let enrolled = load
                    .phone
                    .enroll_new_citizen(Bank::Kbc, &load.number, LOAD_CODE, &silent)
                    .await;
                if let Err(e) = enrolled {
                    lock(&errors).failed(&e);
                }
            }
        }));
    }
    for worker in workers {
        worker
            .await
            .map_err(|e| HarnessError::State(format!("enrollment worker: {e}")))?;
    }
    let failed: u64 = lock(&errors).errors.values().sum();
    let enrolled = to_enroll.len().saturating_sub(failed as usize);
    let cpu_after = processes_cpu_ms(&options.server_pids);
    let report = EnrollmentReport {
        enrolled,
        seconds: started.elapsed().as_secs_f64(),
        server_cpu_ms_per_enrollment: cpu_per(cpu_before, cpu_after, enrolled as u64),
        errors: lock(&errors).errors.clone(),
    };
    Ok((phones, report))
}

/// One full CIBA login of `load`'s citizen: the relying party's backchannel request, the phone
/// fetching and approving it with the code, the relying party's token request and the ID
/// token's verification. Step times go into the record.
async fn login(shared: &Shared, load: &LoadPhone, planned: Instant) {
    let _busy = load.busy.lock().await;
    let mut steps: Vec<(&'static str, Duration)> = Vec::with_capacity(5);
    let result = login_steps(shared, load, &mut steps).await;
    let mut record = lock(&shared.record);
    for (step, took) in steps {
        record.steps.entry(step).or_default().push(took);
    }
    match result {
        Ok(()) => {
            record.logins += 1;
            record
                .steps
                .entry("login")
                .or_default()
                .push(planned.elapsed());
        }
        Err(e) => record.failed(&e),
    }
}

async fn login_steps(
    shared: &Shared,
    load: &LoadPhone,
    steps: &mut Vec<(&'static str, Duration)>,
) -> Result<()> {
    let request = LoginRequest::new(&load.number);
    let at = Instant::now();
    let started = shared.rp.backchannel_authorize(&request).await?;
    steps.push(("bc_authorize", at.elapsed()));

    let at = Instant::now();
    let auth = load.phone.authenticator();
    let view = auth
        .refresh_pending()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Missing("the request on the phone".into()))?;
    steps.push(("fetch", at.elapsed()));

    let at = Instant::now();
    auth.approve(view.request_id, Approval::code(LOAD_CODE))
        .await?;
    steps.push(("answer", at.elapsed()));

    let at = Instant::now();
    let token = shared.rp.poll_token(&started.auth_req_id).await?;
    let claims = api::oidc::verify_id_token(
        &token.id_token,
        &shared.jwks,
        &shared.issuer,
        shared.rp.client_id(),
        sleutel_protocol::clock::now(),
    )
    .map_err(|e| HarnessError::Verification(e.to_string()))?;
    request.check_approved(&claims.sleutel_action)?;
    steps.push(("token", at.elapsed()));
    Ok(())
}

/// Enrolls what is missing, then drives logins as `options` says and reports.
pub async fn run(options: &LoadOptions) -> Result<LoadReport> {
    if options.phones == 0 || options.phones > MAX_PHONES {
        return Err(HarnessError::Usage(format!(
            "--phones must be between 1 and {MAX_PHONES}"
        )));
    }
    sleutel_core::testing::reuse_pin_keys();
    let (phones, enrollment) = open_phones(options).await?;
    let phones: Vec<Arc<LoadPhone>> = phones
        .into_iter()
        .filter(|p| p.phone.account().ok().flatten().is_some())
        .collect();
    if phones.is_empty() {
        return Err(HarnessError::Missing(format!(
            "an enrolled phone (enrollment errors: {:?})",
            enrollment.errors
        )));
    }
    let rp = RelyingParty::demo(&options.server)?;
    let issuer = rp.discovery().await?.issuer.clone();
    let jwks = rp.jwks().await?;
    let shared = Arc::new(Shared {
        rp,
        jwks,
        issuer,
        record: Mutex::new(Record::default()),
    });

    let own_pid = std::process::id().to_string();
    let cpu_before = processes_cpu_ms(&options.server_pids);
    let database_before = options.database_pid.and_then(postgres_cpu_ms);
    let own_before = process_cpu_ms(&own_pid);
    let db_before = options.server_db.as_deref().map(db_size);
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    match options.mode {
        Mode::Closed { concurrency } => {
            // Worker w takes phones w, w + C, w + 2C, ...: no two workers share a phone.
            let concurrency = concurrency.clamp(1, phones.len());
            for worker in 0..concurrency {
                let (shared, phones) = (shared.clone(), phones.clone());
                tasks.spawn(async move {
                    let mine: Vec<_> = phones.iter().skip(worker).step_by(concurrency).collect();
                    let mut turn = 0usize;
                    while Instant::now() < deadline {
                        if let Some(load) = mine.get(turn % mine.len()) {
                            login(&shared, load, Instant::now()).await;
                        }
                        turn += 1;
                    }
                });
            }
        }
        Mode::Open { rate } => {
            let every = Duration::from_secs_f64(1.0 / rate.max(f64::MIN_POSITIVE));
            let mut next = tokio::time::Instant::now();
            let mut turn = 0usize;
            while Instant::now() < deadline {
                tokio::time::sleep_until(next).await;
                let planned = Instant::now();
                if let Some(load) = phones.get(turn % phones.len()) {
                    let (shared, load) = (shared.clone(), load.clone());
                    tasks.spawn(async move { login(&shared, &load, planned).await });
                }
                turn += 1;
                next += every;
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = processes_cpu_ms(&options.server_pids);
    let database_after = options.database_pid.and_then(postgres_cpu_ms);
    let own_after = process_cpu_ms(&own_pid);

    let record = std::mem::take(&mut *lock(&shared.record));
    let logins = record.logins;
    let (mode, concurrency, target_rate) = match options.mode {
        Mode::Closed { concurrency } => ("closed", Some(concurrency), None),
        Mode::Open { rate } => ("open", None, Some(rate)),
    };
    Ok(LoadReport {
        mode,
        concurrency,
        target_rate,
        phones: phones.len(),
        enrollment,
        seconds,
        logins,
        logins_per_sec: logins as f64 / seconds,
        server_cpu_ms_per_login: cpu_per(cpu_before, cpu_after, logins),
        database_cpu_ms_per_login: cpu_per(database_before, database_after, logins),
        generator_cpu_ms_per_login: cpu_per(own_before, own_after, logins),
        server: ServerFigures {
            cpu_ms: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
            rss_kib: options
                .server_pids
                .iter()
                .map(|pid| process_rss_kib(&pid.to_string()))
                .sum(),
        },
        db_growth_bytes: options
            .server_db
            .as_deref()
            .map(db_size)
            .zip(db_before)
            .map(|(after, before)| after - before),
        latency: record
            .steps
            .into_iter()
            .map(|(step, samples)| (step, percentiles(samples)))
            .collect(),
        errors: record.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_sample_at_or_above_the_rank() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(samples);
        assert_eq!(
            (p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
    }

    #[test]
    fn the_cpu_time_of_this_process_is_read_from_proc() {
        let cpu = process_cpu_ms(&std::process::id().to_string());
        assert!(cpu.is_some_and(|ms| ms >= 0.0), "{cpu:?}");
    }

    #[test]
    fn load_phone_numbers_are_distinct_belgian_mobile_numbers() {
        assert_eq!(phone_number(0), "+32470900000");
        assert_eq!(phone_number(MAX_PHONES - 1), "+32470999999");
    }
}
