//! `sleutel-server`: runs the reference server until Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sleutel_server::config::{DEFAULT_DB_PATH, DEFAULT_LISTEN};
use sleutel_server::{Policy, RelyingPartyConfig, ServerConfig};

/// Sleutel reference server: enrollment, action requests, OpenID Connect CIBA and simulators.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// SQLite database file (created with mode 0600 if missing).
    #[arg(long, default_value = DEFAULT_DB_PATH)]
    db: PathBuf,
    /// Public base URL, if phones and relying parties reach the server under another address.
    #[arg(long)]
    public_url: Option<String>,
    /// A relying party as ID:SECRET:NAME; repeat for several. Without any, the demo relying
    /// party "online-overheid" with secret "demo-secret" is registered.
    #[arg(long = "rp", value_parser = parse_rp)]
    relying_parties: Vec<RelyingPartyConfig>,
}

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
    let config = ServerConfig {
        listen: args.listen,
        db_path: args.db,
        public_url: args.public_url,
        relying_parties: args.relying_parties,
        policy: Policy::default(),
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
