//! The flood measurement (`sleutel-harness flood`): does the server stay responsive for others,
//! and its memory bounded, while strangers flood it?
//!
//! `--connections` workers flood the server for `--duration` seconds with one kind of request,
//! from `--sources` loopback addresses (`127.2.0.x`), while a legitimate relying party from
//! 127.0.0.1 logs an enrolled citizen in every 1.5 s (a full CIBA login: request, the phone's
//! fetch and approval, the token) and measures each login. The server's resident memory
//! is read from `/proc` every 100 ms. It prints the flood's answers by status, the legitimate
//! logins' latency, and the memory at the start, at its peak and at the end.
//!
//! The kinds of flood:
//! - `unauthenticated`: calls that need credentials, without them: the backchannel endpoint with
//!   a wrong client secret, and the phone's request list without a proof.
//! - `bad-proofs`: phone calls with a well-formed proof for the very call whose signature does
//!   not verify, so that the server does the signature check each time.
//! - `unknown-numbers`: backchannel requests of a registered relying party (another than the
//!   legitimate one) for numbers nobody enrolled.
//! - `slow-headers`: connections that send a request head one byte a second and never finish it
//!   (slowloris).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use serde::Serialize;
use sleutel_core::{Approval, Bank};
use sleutel_protocol::api::{self, oidc};
use sleutel_protocol::dpop::{self, PROOF_HEADER};
use sleutel_protocol::jose::Jwk;
use tokio::io::AsyncWriteExt;

use crate::load::{Percentiles, percentiles, process_rss_kib};
use crate::phone::{VirtualPhone, silent};
use crate::rp::{LoginRequest, RelyingParty};
use crate::{HarnessError, Result};

/// The legitimate relying party the spawned server registers (`--rp`).
pub const LEGIT_CLIENT: (&str, &str) = ("legit", "legit-secret-for-the-flood-measurement");

/// The flooding relying party the spawned server registers (`--rp`).
pub const FLOOD_CLIENT: (&str, &str) = ("flood", "flood-secret-for-the-flood-measurement");

/// The legitimate citizen's number.
const LEGIT_NUMBER: &str = "+32473900000";

/// The first of the unknown numbers the `unknown-numbers` flood asks for.
const FIRST_UNKNOWN: u64 = 32_474_000_000;

/// How often the legitimate relying party starts a login: below the default backchannel
/// limit of 60 calls a minute per relying party, so that its own limit never refuses it.
const LEGIT_LOGIN_EVERY: Duration = Duration::from_millis(1500);

/// How long a flood call may take before it counts as timed out.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The kinds of flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FloodKind {
    /// Calls without credentials.
    Unauthenticated,
    /// Phone calls whose proofs do not verify.
    BadProofs,
    /// Backchannel requests for numbers nobody enrolled.
    UnknownNumbers,
    /// Request heads sent a byte a second, never finished.
    SlowHeaders,
}

/// What a flood run does.
#[derive(Debug, Clone)]
pub struct FloodOptions {
    /// The server's base URL.
    pub server: String,
    /// The server's process id, to read its memory.
    pub server_pid: Option<u32>,
    /// Where the legitimate phone keeps its state.
    pub state_dir: PathBuf,
    /// What the flood sends.
    pub kind: FloodKind,
    /// Flooding connections.
    pub connections: usize,
    /// Loopback addresses the flood comes from.
    pub sources: usize,
    /// How long the flood lasts.
    pub duration: Duration,
}

/// What a flood run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    /// The kind of flood.
    pub kind: FloodKind,
    /// Flooding connections.
    pub connections: usize,
    /// Seconds of flood.
    pub seconds: f64,
    /// The flood's answers by status (or by what became of the connection).
    pub flood_answers: BTreeMap<String, u64>,
    /// The legitimate logins completed.
    pub logins: u64,
    /// The legitimate logins' failures by kind.
    pub login_errors: BTreeMap<String, u64>,
    /// The legitimate logins' latency.
    pub login_latency: Percentiles,
    /// The server's CPU time (user and system) over the flood, in milliseconds.
    pub server_cpu_ms: Option<f64>,
    /// The server's CPU time per flood answer, in milliseconds (the legitimate logins' share
    /// included, which is small beside the flood's).
    pub server_cpu_ms_per_flood_answer: Option<f64>,
    /// The server's resident memory before the flood, in KiB.
    pub rss_start_kib: Option<u64>,
    /// Its peak during the flood.
    pub rss_peak_kib: Option<u64>,
    /// At the end, with the flood's connections closed.
    pub rss_end_kib: Option<u64>,
}

impl FloodReport {
    /// The figures as text.
    pub fn summary(&self) -> String {
        let kib =
            |v: Option<u64>| v.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        let l = &self.login_latency;
        format!(
            "flood {:?}, {} connections, {:.1} s\n\
             flood answers: {:?}\n\
             legitimate logins: {} ({:.1}/s), p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; errors {:?}\n\
             server CPU: {} ms, {} ms per flood answer\n\
             server RSS: start {}, peak {}, end {}\n",
            self.kind,
            self.connections,
            self.seconds,
            self.flood_answers,
            self.logins,
            self.logins as f64 / self.seconds.max(f64::MIN_POSITIVE),
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.max_ms,
            self.login_errors,
            self.server_cpu_ms
                .map_or("?".into(), |ms| format!("{ms:.0}")),
            self.server_cpu_ms_per_flood_answer
                .map_or("?".into(), |ms| format!("{ms:.3}")),
            kib(self.rss_start_kib),
            kib(self.rss_peak_kib),
            kib(self.rss_end_kib),
        )
    }
}

/// The flood's answers, counted by the workers.
#[derive(Default)]
struct Answers(Mutex<BTreeMap<String, u64>>);

impl Answers {
    fn count(&self, what: impl Into<String>) {
        let mut answers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *answers.entry(what.into()).or_default() += 1;
    }

    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What a reqwest failure counts as.
fn failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect-error"
    } else {
        "connection-error"
    }
}

fn source(worker: usize, sources: usize) -> IpAddr {
    let n = (worker % sources.max(1)) as u32 + 1;
    let [_, _, hi, lo] = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 2, hi, lo))
}

/// Runs the measurement.
pub async fn run(options: &FloodOptions) -> Result<FloodReport> {
    if options.connections == 0 || options.sources == 0 {
        return Err(HarnessError::Usage(
            "--connections and --sources must be at least 1".into(),
        ));
    }
    sleutel_core::testing::reuse_pin_keys();
    let phone = VirtualPhone::open(&options.server, &options.state_dir.join("legit-phone"))?;
    if phone.account()?.is_none() {
        phone
            .enroll_new_citizen(Bank::Kbc, LEGIT_NUMBER, crate::demo::DEMO_CODE, &silent)
            .await?;
    }
    let legit = RelyingParty::new(&options.server, LEGIT_CLIENT.0, LEGIT_CLIENT.1)?;
    legit.discovery().await?;

    let pid = options.server_pid.map(|p| p.to_string());
    let rss = || pid.as_deref().and_then(process_rss_kib);
    let rss_start = rss();
    let cpu = || pid.as_deref().and_then(crate::load::process_cpu_ms);
    let cpu_start = cpu();
    let peak = Arc::new(AtomicU64::new(rss_start.unwrap_or(0)));
    let started = Instant::now();
    let deadline = started + options.duration;
    let sampler = {
        let (peak, pid) = (peak.clone(), pid.clone());
        tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Some(now) = pid.as_deref().and_then(process_rss_kib) {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let answers = Arc::new(Answers::default());
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..options.connections {
        let (answers, server) = (answers.clone(), options.server.clone());
        let (kind, from) = (options.kind, source(worker, options.sources));
        flood.spawn(async move {
            if let Err(e) = flood_worker(kind, &server, from, worker, deadline, &answers).await {
                answers.count(format!("worker-failed: {e}"));
            }
        });
    }
    // Let the flood build up before the first login.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut times = Vec::new();
    let mut login_errors: BTreeMap<String, u64> = BTreeMap::new();
    while Instant::now() < deadline {
        let at = Instant::now();
        let next = tokio::time::Instant::now() + LEGIT_LOGIN_EVERY;
        match legit_login(&legit, &phone).await {
            Ok(()) => times.push(at.elapsed()),
            Err(e) => {
                let kind = match &e {
                    HarnessError::Api(api) => format!("api:{}", api.error),
                    other => format!("{other}"),
                };
                *login_errors.entry(kind).or_default() += 1;
            }
        }
        tokio::time::sleep_until(next).await;
    }
    while flood.join_next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu_ms = cpu_start.zip(cpu()).map(|(start, end)| end - start);
    sampler.abort();
    // Give the server a moment to drop the closed connections before the last reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_end = rss();
    let flood_answers = answers.take();
    let answered: u64 = flood_answers
        .iter()
        .filter(|(what, _)| what.bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, count)| count)
        .sum();
    Ok(FloodReport {
        kind: options.kind,
        connections: options.connections,
        seconds,
        server_cpu_ms,
        server_cpu_ms_per_flood_answer: server_cpu_ms
            .filter(|_| answered > 0)
            .map(|ms| ms / answered as f64),
        flood_answers,
        logins: times.len() as u64,
        login_errors,
        login_latency: percentiles(times),
        rss_start_kib: rss_start,
        rss_peak_kib: rss_start.map(|_| peak.load(Ordering::Relaxed)),
        rss_end_kib: rss_end,
    })
}

/// One full CIBA login of the legitimate relying party.
async fn legit_login(rp: &RelyingParty, phone: &VirtualPhone) -> Result<()> {
    let started = rp
        .backchannel_authorize(&LoginRequest::new(LEGIT_NUMBER).openid_only())
        .await?;
    let auth = phone.authenticator();
    let view = auth
        .refresh_pending()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Missing("the request on the phone".into()))?;
    auth.approve(view.request_id, Approval::code(crate::demo::DEMO_CODE))
        .await?;
    rp.poll_token(&started.auth_req_id).await?;
    Ok(())
}

/// One flooding connection until `deadline`.
async fn flood_worker(
    kind: FloodKind,
    server: &str,
    from: IpAddr,
    worker: usize,
    deadline: Instant,
    answers: &Answers,
) -> Result<()> {
    if kind == FloodKind::SlowHeaders {
        return slow_headers(server, from, deadline, answers).await;
    }
    let http = reqwest::Client::builder()
        .local_address(from)
        .pool_max_idle_per_host(1)
        .timeout(CALL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let key = SigningKey::generate();
    let jwk = Jwk::from_verifying_key(key.verifying_key());
    let flooder = RelyingParty::with_client(http.clone(), server, FLOOD_CLIENT.0, FLOOD_CLIENT.1);
    let wrong = RelyingParty::with_client(http.clone(), server, FLOOD_CLIENT.0, "not-the-secret");
    let mut turn = 0u64;
    while Instant::now() < deadline {
        turn += 1;
        let sent = match kind {
            FloodKind::Unauthenticated if turn.is_multiple_of(2) => {
                let form = LoginRequest::new(LEGIT_NUMBER).form();
                wrong.backchannel_authorize_raw(&form).await.map_err(Some)
            }
            FloodKind::Unauthenticated => http
                .get(format!("{server}{}", api::PATH_REQUESTS))
                .send()
                .await
                .map_err(|e| {
                    answers.count(failure(&e));
                    None
                }),
            FloodKind::BadProofs => {
                let url = format!("{server}{}", api::PATH_REQUESTS);
                let proof = bad_proof(&key, &jwk, &url, worker, turn)?;
                http.get(&url)
                    .header(PROOF_HEADER, proof)
                    .send()
                    .await
                    .map_err(|e| {
                        answers.count(failure(&e));
                        None
                    })
            }
            FloodKind::UnknownNumbers => {
                let n = FIRST_UNKNOWN + (worker as u64 * 1_000_003 + turn) % 1_000_000;
                let form = LoginRequest::new(&format!("+{n}")).openid_only().form();
                flooder.backchannel_authorize_raw(&form).await.map_err(Some)
            }
            FloodKind::SlowHeaders => return Ok(()),
        };
        match sent {
            Ok(response) => {
                answers.count(response.status().as_u16().to_string());
                // Read the body, so the connection can carry the next call.
                let _ = response.bytes().await;
            }
            Err(Some(HarnessError::Http(e))) => answers.count(format!("error: {e}")),
            Err(Some(other)) => answers.count(format!("error: {other}")),
            Err(None) => {}
        }
    }
    Ok(())
}

/// A proof for `GET url` made as the phone makes it, with its signature spoilt: it parses and
/// names the very call, so the server gets as far as verifying the signature.
fn bad_proof(key: &SigningKey, jwk: &Jwk, url: &str, worker: usize, turn: u64) -> Result<String> {
    let jti = format!("flood-{worker}-{turn}-{}", std::process::id());
    let proof = dpop::make_proof(
        key,
        jwk,
        "GET",
        url,
        b"",
        &jti,
        sleutel_protocol::clock::now(),
    )
    .map_err(|e| HarnessError::Verification(e.to_string()))?;
    // The signature's first character changed to another base64url character: still 64
    // bytes, no longer the key's signature.
    let cut = proof.rfind('.').map_or(0, |dot| dot + 1);
    let mut spoilt = proof.into_bytes();
    if let Some(c) = spoilt.get_mut(cut) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(spoilt).map_err(|e| HarnessError::Verification(e.to_string()))
}

/// A slowloris connection: sends a request head a byte a second, never finishing it; when the
/// server closes it, counts how and opens another.
async fn slow_headers(
    server: &str,
    from: IpAddr,
    deadline: Instant,
    answers: &Answers,
) -> Result<()> {
    let addr: SocketAddr = server
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            HarnessError::Usage(format!("slow-headers needs http://IP:PORT: {server}"))
        })?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Slow: {}",
        oidc::PATH_TOKEN,
        "a".repeat(4096)
    );
    while Instant::now() < deadline {
        let io = |e: std::io::Error| HarnessError::Http(format!("slow-headers socket: {e}"));
        let socket = tokio::net::TcpSocket::new_v4().map_err(io)?;
        socket.bind(SocketAddr::new(from, 0)).map_err(io)?;
        let opened = Instant::now();
        let mut stream = match socket.connect(addr).await {
            Ok(stream) => stream,
            Err(_) => {
                answers.count("connect-error");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut closed = false;
        for byte in head.as_bytes() {
            if Instant::now() >= deadline {
                break;
            }
            if stream.write_all(&[*byte]).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if closed {
            // Rounded to whole seconds: the byte that failed shows when the server closed.
            answers.count(format!(
                "closed by the server after ~{} s",
                opened.elapsed().as_secs()
            ));
        } else {
            answers.count("held open to the end");
        }
    }
    Ok(())
}
