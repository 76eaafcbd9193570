//! The phone's side of a login, as the real core does it: the PIN key derivation (Argon2id), the
//! approval with a PIN key derived once before (what a phone spends besides Argon2id; the round
//! trip to an in-process server on loopback is included, so this is an upper bound), the same
//! approval as the phone's own CPU time (the server's work left out, see
//! `approve_thread_cpu`), and the cold open of the authenticator with 10 accounts. Run with
//! `cargo bench -p sleutel-harness`; `cargo test` does not run them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use keyring_core::sample;
use sleutel_core::testing::TestKeystore;
use sleutel_core::{Approval, Authenticator, Bank, SoftwareKeystore};
use sleutel_harness::load::{LOAD_CODE, phone_number};
use sleutel_harness::phone::{VirtualPhone, silent};
use sleutel_harness::server::InProcessServer;
use sleutel_server::{Policy, RelyingPartyConfig};

/// Accounts on the phone that is opened cold, as in the goal.
const ACCOUNTS: usize = 10;

fn benchmarks(c: &mut Criterion) {
    let salt = [7u8; 16];
    c.bench_function("phone: PIN key derivation (Argon2id 19 MiB, t=2)", |b| {
        b.iter(|| sleutel_core::testing::derive_pin_key(LOAD_CODE, &salt))
    });

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let policy = Policy {
        max_backchannel_per_client_per_minute: 100_000_000,
        ..Policy::default()
    };
    let server = runtime
        .block_on(InProcessServer::start_with(
            policy,
            vec![RelyingPartyConfig::demo()],
        ))
        .expect("the server starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let phone_dir = dir.path().join("phone");
    let phone = VirtualPhone::open(&server.url(), &phone_dir).expect("the phone opens");
    for index in 0..ACCOUNTS {
        runtime
            .block_on(phone.enroll_new_citizen(Bank::Kbc, &phone_number(index), LOAD_CODE, &silent))
            .expect("the citizen enrolls");
    }
    phone.save().expect("the phone's secrets are saved");

    sleutel_core::testing::reuse_pin_keys();
    let rp = server.rp();
    let number = phone_number(0);
    c.bench_function(
        "phone: approve with a PIN key derived before (loopback round trip included)",
        |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    runtime.block_on(async {
                        rp.start_login(&number).await.expect("the request starts");
                        let auth = phone.authenticator();
                        let view = auth
                            .refresh_pending()
                            .await
                            .expect("the phone fetches")
                            .into_iter()
                            .next()
                            .expect("the request is on the phone");
                        let at = Instant::now();
                        auth.approve(view.request_id, Approval::code(LOAD_CODE))
                            .await
                            .expect("the approval is accepted");
                        spent += at.elapsed();
                    });
                }
                spent
            })
        },
    );
    drop(phone);

    let secrets_file = phone_dir.join(sleutel_harness::phone::TEST_SECRET_FILE);
    let data_dir = phone_dir.to_string_lossy().into_owned();
    let open_phone = || {
        let store = sample::Store::new_with_backing(&secrets_file.to_string_lossy())
            .expect("the keystore file opens");
        let credentials: Arc<keyring_core::CredentialStore> = store;
        let keystore = TestKeystore::new(SoftwareKeystore::new(credentials, "sleutel-harness"));
        Authenticator::open(data_dir.clone(), server.url(), Arc::new(keystore), None)
            .expect("the authenticator opens")
    };

    if thread_cpu_time().is_some() {
        approve_thread_cpu(c, &runtime, &server, &number, open_phone());
    } else {
        eprintln!("phone: approve, the phone's own CPU: skipped (no /proc/thread-self/schedstat)");
    }
    c.bench_function(
        "phone: cold open of the authenticator with 10 accounts",
        |b| {
            b.iter(|| {
                let auth = open_phone();
                assert_eq!(
                    auth.accounts().expect("the accounts are read").len(),
                    ACCOUNTS
                );
            })
        },
    );
}

/// `approve` as the phone's own CPU time: the CPU time of the thread that runs the phone, read
/// before and after each approval. The phone runs on a current-thread runtime of its own, so
/// everything it does for the approval runs on that thread: the core (reading the request,
/// signing with the device key — in software here, where a phone's keystore signs in hardware —
/// and with the PIN key, the device proof, the store's writes), its HTTP client (hyper's
/// connection task included) and the kernel's side of its socket calls. The server runs on the
/// other runtime's worker threads, so its verification is not counted, nor is the time spent
/// waiting for its answer. The PIN key is derived before (no Argon2id). Fetching the request
/// happens outside the measurement.
fn approve_thread_cpu(
    c: &mut Criterion,
    server_runtime: &tokio::runtime::Runtime,
    server: &InProcessServer,
    number: &str,
    auth: Authenticator,
) {
    let phone_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let rp = server.rp();
    c.bench_function(
        "phone: approve with a PIN key derived before, the phone's own CPU (thread CPU time)",
        |b| {
            b.iter_custom(|iterations| {
                let mut spent = Duration::ZERO;
                for _ in 0..iterations {
                    server_runtime
                        .block_on(rp.start_login(number))
                        .expect("the request starts");
                    let view = phone_runtime
                        .block_on(auth.refresh_pending())
                        .expect("the phone fetches")
                        .into_iter()
                        .next()
                        .expect("the request is on the phone");
                    let before = thread_cpu_time().expect("the thread's CPU time");
                    phone_runtime
                        .block_on(auth.approve(view.request_id, Approval::code(LOAD_CODE)))
                        .expect("the approval is accepted");
                    let after = thread_cpu_time().expect("the thread's CPU time");
                    spent += after.saturating_sub(before);
                }
                spent
            })
        },
    );
}

/// The CPU time this thread has run, in nanoseconds from Linux's scheduler statistics (the first
/// field of `/proc/thread-self/schedstat`: user and kernel time); `None` where there are none.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benchmarks(&mut criterion);
    criterion.final_summary();
}
