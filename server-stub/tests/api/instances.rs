//! Several server instances on one PostgreSQL database, each its own `sleutel-server` process,
//! behind one public name as a load balancer would put them: both listen on the same port, one
//! on 127.0.0.2 and one on 127.0.0.3, and each test client resolves the public name to the
//! instance it wants. What one instance starts, the other finishes; what must happen once
//! happens once between them.
//!
//! These tests need a PostgreSQL cluster (`SLEUTEL_TEST_POSTGRES`), so they are ignored in a
//! plain `cargo test`; `scripts/test-all` runs them with
//! `scripts/with-postgres cargo test -p sleutel-server --test api -- --ignored instances`.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_harness::ping::PingReceiver;
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_harness::server::{POSTGRES_ENV, fresh_postgres_database};
use sleutel_protocol::api::{self, codes};
use sleutel_server::RelyingPartyConfig;
use tokio::task::JoinSet;

use crate::common::*;

/// The public name of the service; the clients resolve it to one instance or the other.
const PUBLIC_HOST: &str = "sleutel.test";
const SHOP_ID: &str = "shop";
const SHOP_SECRET: &str = "shop-secret-for-the-instances-test";
const NOTIFICATION_TOKEN: &str = "shop-notification-token-0123456789";
const WAIT: Duration = Duration::from_secs(15);

/// Held while a test of this file chooses a port and starts its instances on it.
static PORT_CHOICE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One `sleutel-server` process.
struct Instance {
    child: Option<Child>,
    url: String,
    http: reqwest::Client,
}

impl Serves for Instance {
    fn url(&self) -> String {
        self.url.clone()
    }
    fn http(&self) -> reqwest::Client {
        self.http.clone()
    }
}

impl Instance {
    /// Starts `sleutel-server` on 127.0.0.`last_octet`:`port`, or `None` when it could not
    /// listen there (the port was taken).
    fn spawn(
        last_octet: u8,
        port: u16,
        url: &str,
        database: &str,
        key: &std::path::Path,
        registrations: &std::path::Path,
    ) -> Option<Self> {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet));
        let mut child = Command::new(env!("CARGO_BIN_EXE_sleutel-server"))
            .arg("--listen")
            .arg(SocketAddr::new(ip, port).to_string())
            .arg("--public-url")
            .arg(url)
            .arg("--database")
            .arg(database)
            .arg("--notification-key-file")
            .arg(key)
            .arg("--rp-file")
            .arg(registrations)
            .env("RUST_LOG", "warn")
            .env_remove("SLEUTEL_RP_SECRET_SHOP")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if !line.starts_with("listening on ") {
            // The process said why on its standard error; it has exited or is about to.
            let _ = child.kill();
            child.wait().unwrap();
            return None;
        }
        let http = sleutel_harness::http_client_to(PUBLIC_HOST, SocketAddr::new(ip, port)).unwrap();
        Some(Instance {
            child: Some(child),
            url: url.to_owned(),
            http,
        })
    }

    /// Kills the process at once (SIGKILL), as a crash or a lost machine would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn rp(&self, client_id: &str, secret: &str) -> RelyingParty {
        RelyingParty::with_client(self.http.clone(), &self.url, client_id, secret)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two instances on one fresh PostgreSQL database, and the ping receiver of the shop.
struct Pair {
    a: Instance,
    b: Instance,
    receiver: PingReceiver,
    database: String,
    _dir: tempfile::TempDir,
}

impl Pair {
    async fn start() -> Self {
        let cluster = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
            panic!("{POSTGRES_ENV} is not set: run through scripts/with-postgres")
        });
        let database = fresh_postgres_database(&cluster).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("notification.key");
        std::fs::write(&key, "5a".repeat(32)).unwrap();
        let receiver = PingReceiver::start().await.unwrap();
        let registrations = dir.path().join("rps.json");
        std::fs::write(
            &registrations,
            serde_json::json!([
                {
                    "client_id": RelyingPartyConfig::DEMO_CLIENT_ID,
                    "name": "Online overheid",
                    "secret": RelyingPartyConfig::DEMO_SECRET,
                },
                {
                    "client_id": SHOP_ID,
                    "name": "Webwinkel",
                    "secret": SHOP_SECRET,
                    "delivery_mode": "ping",
                    "notification_endpoint": receiver.url(),
                },
            ])
            .to_string(),
        )
        .unwrap();
        // Another test may take the chosen port between its choice and the instances' bind
        // (the kernel hands a just-freed port out again), so a failed start is retried on a
        // new port. Tests of this file choose and bind one at a time.
        let choosing = PORT_CHOICE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut attempts = 0;
        let (a, b) = loop {
            attempts += 1;
            let port = free_port_on_both();
            let url = format!("http://{PUBLIC_HOST}:{port}");
            let spawn = |last_octet: u8| {
                Instance::spawn(last_octet, port, &url, &database, &key, &registrations)
            };
            // The first migrates the fresh database; the second finds it migrated.
            if let Some(a) = spawn(2)
                && let Some(b) = spawn(3)
            {
                break (a, b);
            }
            assert!(
                attempts < 5,
                "no instance pair started after {attempts} ports"
            );
        };
        drop(choosing);
        Pair {
            a,
            b,
            receiver,
            database,
            _dir: dir,
        }
    }

    /// The integer the query `sql` (PostgreSQL, one text parameter) answers, read straight
    /// from the shared database.
    async fn count(&self, sql: &str, param: &str) -> i64 {
        let (client, connection) = tokio_postgres::connect(&self.database, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.query_one(sql, &[&param]).await.unwrap().get(0)
    }
}

/// A port free on both 127.0.0.2 and 127.0.0.3 (the two instances' addresses).
fn free_port_on_both() -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
}

/// `e`, its phone sent to `instance`.
fn on(e: &Enrolled, instance: &Instance) -> Enrolled {
    Enrolled {
        phone: e.phone.via(instance.http.clone()),
        pin: e.pin.clone(),
        citizen: e.citizen.clone(),
        number: e.number.clone(),
        started: e.started.clone(),
        completed: e.completed.clone(),
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres cargo test -p sleutel-server --test api -- --ignored instances"]
async fn instances_a_login_asked_at_one_instance_and_approved_at_the_other_is_pinged_and_collected()
{
    let pair = Pair::start().await;
    let enrolled_at_a = enroll(&pair.a, "+32470001301").await;
    let shop = pair.a.rp(SHOP_ID, SHOP_SECRET);
    let started = shop
        .backchannel_authorize(
            &LoginRequest::new(&enrolled_at_a.number)
                .openid_only()
                .with_notification_token(NOTIFICATION_TOKEN),
        )
        .await
        .unwrap();

    let phone_at_b = on(&enrolled_at_a, &pair.b);
    let (request, jws) = phone_at_b.the_request().await;
    let accepted: api::ResponseAccepted = ok(phone_at_b
        .answer(
            &request,
            &phone_at_b.approval(&request, &jws, &phone_at_b.pin),
        )
        .await)
    .await;

    assert_eq!(accepted.status, "approved");
    let token = shop
        .token_after_ping(&started, &pair.receiver, NOTIFICATION_TOKEN, WAIT)
        .await
        .unwrap();
    shop.verify_id_token(&token.id_token).await.unwrap();
    assert_eq!(pair.receiver.pings().len(), 1);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres cargo test -p sleutel-server --test api -- --ignored instances"]
async fn instances_ten_concurrent_wrong_codes_over_both_block_the_account_after_exactly_three() {
    let pair = Pair::start().await;
    let e = enroll(&pair.a, "+32470001302").await;
    pair.a
        .rp(
            RelyingPartyConfig::DEMO_CLIENT_ID,
            RelyingPartyConfig::DEMO_SECRET,
        )
        .start_login(&e.number)
        .await
        .unwrap();
    let (request, jws) = e.the_request().await;
    let phones = [Arc::new(on(&e, &pair.a)), Arc::new(on(&e, &pair.b))];

    let mut tasks = JoinSet::new();
    for i in 0..10 {
        let (phone, request, jws) = (phones[i % 2].clone(), request.clone(), jws.clone());
        tasks.spawn(async move {
            let wrong = SigningKey::generate();
            let answer = phone
                .answer(&request, &phone.approval(&request, &jws, &wrong))
                .await;
            err(answer).await.1
        });
    }
    let mut wrong_pins = Vec::new();
    let mut blocked = 0;
    while let Some(done) = tasks.join_next().await {
        let error = done.unwrap();
        match error.error.as_str() {
            codes::WRONG_PIN => wrong_pins.push(error.attempts_left),
            codes::ACCOUNT_BLOCKED => blocked += 1,
            // A guess that lost its conflicts is refused and counts nothing.
            codes::TEMPORARILY_UNAVAILABLE => {}
            other => panic!("unexpected answer to a wrong code: {other}"),
        }
    }

    wrong_pins.sort();
    assert_eq!(
        wrong_pins,
        vec![Some(1), Some(2)],
        "the first two wrong codes"
    );
    assert!(blocked >= 1, "the third blocks");
    let account = &e.completed.account_id;
    let counted = pair
        .count(
            "SELECT count(*) FROM account_events WHERE account_id = $1 AND event = 'wrong_code'",
            account,
        )
        .await;
    assert_eq!(counted, 3, "exactly three wrong codes were counted");
    let is_blocked = pair
        .count(
            "SELECT count(*) FROM accounts WHERE id = $1 AND blocked_at IS NOT NULL",
            account,
        )
        .await;
    assert_eq!(is_blocked, 1);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres cargo test -p sleutel-server --test api -- --ignored instances"]
async fn instances_one_request_approved_at_one_and_declined_at_the_other_at_once_has_one_answer() {
    let pair = Pair::start().await;
    let e = enroll(&pair.a, "+32470001303").await;
    let rp = pair.a.rp(
        RelyingPartyConfig::DEMO_CLIENT_ID,
        RelyingPartyConfig::DEMO_SECRET,
    );
    let started = rp.start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let (at_a, at_b) = (on(&e, &pair.a), on(&e, &pair.b));
    let approval = at_a.approval(&request, &jws, &at_a.pin);
    let decline = at_b.decline(&request, &jws);

    let (approved, declined) = tokio::join!(
        at_a.answer(&request, &approval),
        at_b.answer(&request, &decline)
    );

    let statuses = [approved.status(), declined.status()];
    let winners = statuses.iter().filter(|s| s.is_success()).count();
    assert_eq!(winners, 1, "{statuses:?}");
    let (loser, approval_won) = if approved.status().is_success() {
        (declined, true)
    } else {
        (approved, false)
    };
    let (status, error) = err(loser).await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT);
    assert_eq!(error.error, codes::REQUEST_ALREADY_ANSWERED);
    let outcome = rp.token_raw(&started.auth_req_id).await.unwrap();
    assert_eq!(outcome.status().is_success(), approval_won);
    let answers = pair
        .count(
            "SELECT count(*) FROM action_requests WHERE id = $1 AND response_jws IS NOT NULL",
            &request.jti,
        )
        .await;
    assert_eq!(answers, 1);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/with-postgres cargo test -p sleutel-server --test api -- --ignored instances"]
async fn instances_an_instance_killed_in_the_middle_of_a_login_leaves_the_other_to_complete_it() {
    let mut pair = Pair::start().await;
    let e = enroll(&pair.a, "+32470001304").await;
    let started = pair
        .a
        .rp(
            RelyingPartyConfig::DEMO_CLIENT_ID,
            RelyingPartyConfig::DEMO_SECRET,
        )
        .start_login(&e.number)
        .await
        .unwrap();
    // The phone has fetched the request from A when A dies.
    let (request, jws) = e.the_request().await;

    pair.a.kill();

    // The load balancer sends the phone and the relying party to B from now on.
    let phone_at_b = on(&e, &pair.b);
    let accepted: api::ResponseAccepted = ok(phone_at_b
        .answer(
            &request,
            &phone_at_b.approval(&request, &jws, &phone_at_b.pin),
        )
        .await)
    .await;
    assert_eq!(accepted.status, "approved");
    let rp_at_b = pair.b.rp(
        RelyingPartyConfig::DEMO_CLIENT_ID,
        RelyingPartyConfig::DEMO_SECRET,
    );
    let token: api::oidc::TokenResponse = ok(rp_at_b.token_raw(&started.auth_req_id).await).await;
    rp_at_b.verify_id_token(&token.id_token).await.unwrap();
}
