//! `sleutel-server`: runs the reference server until Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sleutel_server::config::{DEFAULT_DB_PATH, DEFAULT_LISTEN};
use sleutel_server::{
    ApnsConfig, ApnsEnvironment, AppLinksConfig, Database, FcmConfig, Policy, PushConfig,
    RelyingPartyConfig, ServerConfig, StartError,
};

/// Sleutel reference server: enrollment, action requests, OpenID Connect CIBA and simulators.
///
/// This is a test server: its simulators (under /sim/) show SMS codes and mint identities to
/// anyone who asks. It listens on loopback only, unless --allow-remote is given.
#[derive(Debug, Parser)]
#[command(version, after_help = AFTER_HELP)]
struct Args {
    /// Address to listen on; port 0 picks a free port. Only a loopback address (127.0.0.1,
    /// ::1) is accepted without --allow-remote.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Allow listening on a non-loopback address. Only on a closed test network: anyone who
    /// reaches the server can read SMS codes and mint identities through the simulators.
    #[arg(long)]
    allow_remote: bool,
    /// Where the server keeps its state: a SQLite file (created with mode 0600 if missing), or
    /// a PostgreSQL database as `postgres://user@host:port/dbname`, which several server
    /// instances may share.
    #[arg(long, alias = "db", value_name = "PATH|URL", default_value = DEFAULT_DB_PATH)]
    database: String,
    /// File with the key (64 hex digits, e.g. from `openssl rand -hex 32`) that seals the
    /// relying parties' ping tokens in the database. Required with PostgreSQL: instances that
    /// share a database need the same key.
    #[arg(long, value_name = "PATH")]
    notification_key_file: Option<PathBuf>,
    /// Public base URL, if phones and relying parties reach the server under another address.
    #[arg(long)]
    public_url: Option<String>,
    /// A relying party as ID:SECRET:NAME, or as ID:NAME (ID::NAME if the name has colons) with
    /// the secret in the environment variable SLEUTEL_RP_SECRET_<ID> (see below); repeat for
    /// several. Without any, the demo relying party "online-overheid" with the public secret
    /// "demo-secret" is registered.
    #[arg(long = "rp", value_name = "ID[:SECRET]:NAME", value_parser = parse_rp)]
    relying_parties: Vec<RelyingPartyConfig>,
    /// A JSON file of relying-party registrations (see below): display name, secret (or the
    /// environment variable) or public keys (private_key_jwt), allowed claims, delivery mode,
    /// notification endpoint, redirect URIs. May be combined with --rp.
    #[arg(long, value_name = "FILE")]
    rp_file: Option<PathBuf>,
    /// A JSON file of policy values (see below): the values it names replace the defaults, as
    /// a load test raises the per-client call rates.
    #[arg(long, value_name = "FILE")]
    policy_file: Option<PathBuf>,
    /// Push to Android phones through FCM with this service account's JSON key file. Without
    /// it, pushes to FCM tokens go to the simulator's outbox.
    #[arg(long, value_name = "FILE")]
    fcm_service_account: Option<PathBuf>,
    /// The Firebase project to send through (default: the key file's project_id).
    #[arg(long, value_name = "ID", requires = "fcm_service_account")]
    fcm_project_id: Option<String>,
    /// The FCM API's base URL (default: https://fcm.googleapis.com), for a test bench.
    #[arg(long, value_name = "URL", requires = "fcm_service_account")]
    fcm_endpoint: Option<String>,
    /// The OAuth token endpoint (default: the key file's token_uri), for a test bench.
    #[arg(long, value_name = "URL", requires = "fcm_service_account")]
    fcm_token_uri: Option<String>,
    /// Push to iPhones through APNs with this signing key (.p8); needs --apns-key-id,
    /// --apns-team-id and --apns-topic. Without it, pushes to APNs tokens go to the outbox.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["apns_key_id", "apns_team_id", "apns_topic"]
    )]
    apns_key: Option<PathBuf>,
    /// The APNs signing key's id.
    #[arg(long, value_name = "ID", requires = "apns_key")]
    apns_key_id: Option<String>,
    /// The Apple developer team's id.
    #[arg(long, value_name = "ID", requires = "apns_key")]
    apns_team_id: Option<String>,
    /// The app's bundle id (the apns-topic).
    #[arg(long, value_name = "BUNDLE_ID", requires = "apns_key")]
    apns_topic: Option<String>,
    /// The APNs environment of the app's build.
    #[arg(
        long,
        value_name = "ENV",
        default_value = "production",
        value_parser = ["production", "sandbox"],
        requires = "apns_key"
    )]
    apns_environment: String,
    /// The APNs base URL in place of the environment's, for a test bench.
    #[arg(long, value_name = "URL", requires = "apns_key")]
    apns_endpoint: Option<String>,
    /// An iOS app that opens the sign-in links (universal links), as TEAMID.bundle.id;
    /// repeatable. Published in /.well-known/apple-app-site-association.
    #[arg(long, value_name = "APP_ID")]
    ios_app_id: Vec<String>,
    /// The Android app that opens the sign-in links (app links); needs --android-cert-sha256.
    /// Published in /.well-known/assetlinks.json.
    #[arg(long, value_name = "PACKAGE", requires = "android_cert_sha256")]
    android_package: Option<String>,
    /// SHA-256 fingerprint (AB:CD:...) of the Android app's signing certificate; repeatable.
    #[arg(long, value_name = "FINGERPRINT", requires = "android_package")]
    android_cert_sha256: Vec<String>,
}

const AFTER_HELP: &str = "\
Relying-party secrets:
  A secret on the command line is visible to every user of the machine (ps, /proc). To keep it
  out, give --rp ID:NAME and put the secret in SLEUTEL_RP_SECRET_<ID>, the id in capitals with
  '-' and '.' written as '_':
      SLEUTEL_RP_SECRET_WEB_SHOP=s3cret sleutel-server --rp 'web-shop:Web shop'
  A secret given both ways is refused.

Relying-party registrations (--rp-file):
  [{\"client_id\": \"web-shop\", \"name\": \"Web shop\", \"secret\": \"s3cret\",
    \"allowed_claims\": [\"age_over_18\", \"name\"], \"delivery_mode\": \"ping\",
    \"notification_endpoint\": \"https://shop.example/ciba/ping\",
    \"redirect_uris\": [\"https://shop.example/oidc/callback\"]}]
  \"secret\" may be left out for SLEUTEL_RP_SECRET_<ID>. Claims: name, given_name, family_name,
  birthdate, national_register_number, phone_number, age_over_18; without a list, the name.
  \"redirect_uris\" (https, or http on loopback) opens the authorization code flow; each is
  compared exactly.
  \"token_endpoint_auth_method\": \"private_key_jwt\" with \"jwks\": {\"keys\": [{\"kty\": \"EC\",
  \"crv\": \"P-256\", \"kid\": \"k1\", \"x\": ..., \"y\": ...}]} (public keys only, each with its
  own kid; no secret) makes the client sign ES256 client assertions instead of sending a
  secret; the default is \"client_secret_basic\".
  --rp ID:SECRET:NAME registers a poll-mode relying party allowed the name.

Policy (--policy-file):
  {\"max_backchannel_per_client_per_minute\": 1000000, \"max_enrollment_starts_per_source_per_minute\": 100000}
  Any field of the server's Policy by name (lifetimes in seconds, limits as counts); the others
  keep their defaults. An unknown name, or a value the server refuses, keeps it from starting.

Push:
  Phones register a push token (FCM or APNs). A token of a platform whose service is configured
  (--fcm-service-account, --apns-key) is pushed through it; every other push goes to the
  simulator's outbox (GET /sim/outbox/push), which is all there is without either. The key
  files are read at start; the server does not start with one it cannot use.";

fn parse_rp(spec: &str) -> Result<RelyingPartyConfig, String> {
    RelyingPartyConfig::parse(spec).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr: stdout carries only the "listening on" line scripts wait for.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let push = match push_config(&args) {
        Ok(push) => push,
        Err(e) => {
            eprintln!("sleutel-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut relying_parties = args.relying_parties;
    if let Some(path) = &args.rp_file {
        let registered = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|json| RelyingPartyConfig::parse_file(&json).map_err(|e| e.to_string()));
        match registered {
            Ok(registered) => relying_parties.extend(registered),
            Err(e) => {
                eprintln!("sleutel-server: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let policy = match &args.policy_file {
        None => Ok(Policy::default()),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|json| {
                Policy::from_json(&json).map_err(|e| format!("{}: {e}", path.display()))
            }),
    };
    let policy = match policy {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("sleutel-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let database = match Database::parse(&args.database) {
        Ok(database) => database,
        Err(e) => {
            eprintln!("sleutel-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = ServerConfig {
        listen: args.listen,
        db_path: match &database {
            Database::Sqlite(path) => path.clone(),
            Database::Postgres(_) => PathBuf::from(DEFAULT_DB_PATH),
        },
        database_url: match database {
            Database::Postgres(url) => Some(url),
            Database::Sqlite(_) => None,
        },
        notification_key_file: args.notification_key_file,
        public_url: args.public_url,
        relying_parties,
        policy: Policy {
            // The flag can only widen what the file says, never narrow it.
            allow_remote_listen: args.allow_remote || policy.allow_remote_listen,
            ..policy
        },
        push,
        app_links: AppLinksConfig {
            apple_app_ids: args.ios_app_id,
            android_package: args.android_package,
            android_cert_fingerprints: args.android_cert_sha256,
        },
    };
    let server = match sleutel_server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("sleutel-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let announced = writeln!(stdout, "listening on http://{}", server.local_addr())
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = announced {
        eprintln!("sleutel-server: cannot write to stdout: {e}");
    }
    wait_for_stop().await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// The push services the command line configures.
fn push_config(args: &Args) -> Result<PushConfig, StartError> {
    let fcm = args.fcm_service_account.as_ref().map(|file| FcmConfig {
        service_account_file: file.clone(),
        project_id: args.fcm_project_id.clone(),
        api_base: args.fcm_endpoint.clone(),
        token_uri: args.fcm_token_uri.clone(),
    });
    let apns = match &args.apns_key {
        None => None,
        Some(file) => Some(ApnsConfig {
            key_file: file.clone(),
            // clap requires the three with --apns-key; an empty value is refused at start.
            key_id: args.apns_key_id.clone().unwrap_or_default(),
            team_id: args.apns_team_id.clone().unwrap_or_default(),
            topic: args.apns_topic.clone().unwrap_or_default(),
            environment: ApnsEnvironment::parse(&args.apns_environment)?,
            endpoint: args.apns_endpoint.clone(),
        }),
    };
    Ok(PushConfig { fcm, apns })
}

/// Waits for Ctrl-C or, on Unix, SIGTERM.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
