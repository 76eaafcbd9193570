//! `sleutel-harness`: the demo, a virtual phone and a relying party on the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use sleutel_core::{Bank, DeclineReason};
use sleutel_harness::phone::VirtualPhone;
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_harness::{HarnessError, demo};

/// Where `rp login` finds the client secret when `--secret` is not given.
const SECRET_VARIABLE: &str = "SLEUTEL_RP_SECRET";

#[derive(Parser)]
#[command(
    name = "sleutel-harness",
    version,
    about = "Simulated citizens, phones and relying parties for Sleutel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole story: bank enrollment, SMS code, 5-digit code, a confirmed login.
    Demo {
        /// Use this server instead of starting one in-process.
        #[arg(long)]
        server: Option<String>,
    },
    /// A virtual phone: enrolls when its state holds no account, then answers N requests.
    Phone {
        /// Server URL.
        #[arg(long)]
        server: String,
        /// Directory with the phone's app data and test-only secrets.
        #[arg(long)]
        state: PathBuf,
        /// The phone number (Belgian mobile, E.164).
        #[arg(long)]
        phone: String,
        /// Bank of the new citizen, when the phone enrolls.
        #[arg(long, default_value = "kbc")]
        bank: String,
        /// The 5-digit code.
        #[arg(long, default_value = demo::DEMO_CODE)]
        code: String,
        /// How to answer each request.
        #[arg(long, value_enum, default_value_t = Answer::Approve)]
        answer: Answer,
        /// How many requests to answer before exiting.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Seconds to wait for each request.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// A relying party.
    Rp {
        #[command(subcommand)]
        command: RpCommand,
    },
}

#[derive(Subcommand)]
enum RpCommand {
    /// Log a citizen in by phone number (CIBA poll mode); prints the verified ID token claims.
    Login {
        /// Server URL.
        #[arg(long)]
        server: String,
        /// Client id.
        #[arg(long)]
        client_id: String,
        /// Client secret; without it, the environment variable SLEUTEL_RP_SECRET (which, unlike
        /// an argument, does not show in the process list).
        #[arg(long)]
        secret: Option<String>,
        /// The citizen's phone number.
        #[arg(long)]
        phone: String,
        /// Binding message to show on the phone.
        #[arg(long)]
        message: Option<String>,
        /// Seconds to wait for the citizen.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Answer {
    Approve,
    Decline,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Demo { server } => demo::run(server).await.map(|_| ()),
        Command::Phone {
            server,
            state,
            phone,
            bank,
            code,
            answer,
            count,
            timeout,
        } => {
            run_phone(
                &server, &state, &phone, &bank, &code, answer, count, timeout,
            )
            .await
        }
        Command::Rp {
            command:
                RpCommand::Login {
                    server,
                    client_id,
                    secret,
                    phone,
                    message,
                    timeout,
                },
        } => rp_login(&server, &client_id, secret, &phone, message, timeout).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(HarnessError::Api(e)) => {
            println!("{}", serde_json::to_string(&e).unwrap_or_default());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_phone(
    server: &str,
    state: &std::path::Path,
    phone_number: &str,
    bank: &str,
    code: &str,
    answer: Answer,
    count: u32,
    timeout: u64,
) -> Result<(), HarnessError> {
    let bank = Bank::from_id(bank).map_err(|e| HarnessError::State(e.to_string()))?;
    let mut phone = VirtualPhone::open(server, state)?;
    if phone.account()?.is_none() {
        let narrate = |line: &str| eprintln!("enroll: {line}");
        phone
            .enroll_new_citizen(bank, phone_number, code, &narrate)
            .await?;
    }
    for _ in 0..count {
        let view = phone.next_request(Duration::from_secs(timeout)).await?;
        let outcome = match answer {
            Answer::Approve => phone
                .authenticator()
                .approve_with_code(view.request_id.clone(), code.to_owned())
                .await
                .map(|_| "approved"),
            Answer::Decline => phone
                .authenticator()
                .decline(view.request_id.clone(), DeclineReason::Cancelled)
                .await
                .map(|_| "declined"),
        };
        let line = serde_json::json!({
            "request_id": view.request_id,
            "relying_party": view.rp_name,
            "text": view.text,
            "binding_message": view.binding_message,
            "answer": outcome.as_ref().map(|s| s.to_string()).unwrap_or_else(|e| format!("error: {e}")),
        });
        println!("{line}");
        outcome?;
    }
    Ok(())
}

async fn rp_login(
    server: &str,
    client_id: &str,
    secret: Option<String>,
    phone: &str,
    message: Option<String>,
    timeout: u64,
) -> Result<(), HarnessError> {
    let secret = secret
        .or_else(|| std::env::var(SECRET_VARIABLE).ok())
        .ok_or_else(|| HarnessError::Usage(format!("give --secret or set {SECRET_VARIABLE}")))?;
    let rp = RelyingParty::new(server, client_id, &secret)?;
    let mut request = LoginRequest::new(phone);
    request.binding_message = message;
    let claims = rp.login(&request, Duration::from_secs(timeout)).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&claims)
            .map_err(|e| HarnessError::Verification(e.to_string()))?
    );
    Ok(())
}
