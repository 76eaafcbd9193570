//! `sleutel-harness`: the demo, a virtual phone and a relying party on the command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use sleutel_core::{
    AccountStatus, ActionKind, Approval, Bank, DeclineReason, IdentitySource, SignDocument,
    Transaction, Verification,
};
use sleutel_harness::answering_phone::Answer as WebAnswer;
use sleutel_harness::demo_site::Lang;
use sleutel_harness::phone::VirtualPhone;
use sleutel_harness::ping::PingReceiver;
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_harness::web_demo::{self, ClientAuth, WebDemoOptions};
use sleutel_harness::{HarnessError, demo};
use sleutel_protocol::api::sim::Citizen;
use sleutel_protocol::jose::Jwks;

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
    /// One step of the phone core on a durable phone (its keys written as they are made), for
    /// the crash tests, which kill this process in the middle: enroll through the bank (going on
    /// from wherever a killed earlier run left it), approve what is pending, or enable
    /// biometrics, all with the code 13579.
    PhoneStep {
        /// The phone's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The server's base URL.
        #[arg(long)]
        server: String,
        /// The step.
        #[arg(long, value_enum)]
        step: sleutel_harness::crash::PhoneStep,
        /// The phone number to enroll.
        #[arg(long, default_value = "")]
        phone_number: String,
        /// The debit card number the person gives the bank.
        #[arg(long, default_value = "")]
        card_number: String,
        /// The card's PIN.
        #[arg(long, default_value = "")]
        card_pin: String,
    },
    /// The whole story: bank enrollment, SMS code, 5-digit code, a confirmed login.
    Demo {
        /// Use this server instead of starting one in-process.
        #[arg(long)]
        server: Option<String>,
    },
    /// The login in a browser: the server, the demo site "Online overheid" on the authorization
    /// code flow and a virtual phone that answers; prints the address to open and the number to
    /// type, and runs until Ctrl-C.
    WebDemo {
        /// The demo site's port (0: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The server's port (0: any free one).
        #[arg(long, default_value_t = 0)]
        server_port: u16,
        /// The phone control API's port (0: any free one).
        #[arg(long, default_value_t = 0)]
        control_port: u16,
        /// How the phone answers: at once with the code, declining, "not me", never (wait), or
        /// on a key press here (ask).
        #[arg(long, value_enum, default_value_t = WebAnswer::Approve)]
        answer: WebAnswer,
        /// The demo site's language until the person picks another.
        #[arg(long, value_enum, default_value_t = Lang::Nl)]
        lang: Lang,
        /// The life of a request in seconds (default: the server's policy, 300).
        #[arg(long)]
        request_ttl: Option<i64>,
        /// How the demo site authenticates at the token endpoint: its secret, or a key drawn at
        /// start (private_key_jwt).
        #[arg(long, value_enum, default_value_t = ClientAuth::Secret)]
        client_auth: ClientAuth,
        /// A JWK Set file (public keys only) with which the second relying party, other-client,
        /// authenticates by private_key_jwt instead of its secret.
        #[arg(long, value_name = "FILE")]
        other_client_jwks: Option<PathBuf>,
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
        /// How the new citizen proves their identity when the phone enrolls (and when it
        /// unblocks): the bank's app, the eID website's identification code, or the counter
        /// (the e-mail's activation link opened and the code handed out there typed).
        #[arg(long, value_enum, default_value_t = Source::Bank)]
        source: Source,
        /// Bank of the new citizen, when the phone enrolls.
        #[arg(long, default_value = "kbc")]
        bank: String,
        /// The 5-digit code.
        #[arg(long, default_value = demo::DEMO_CODE)]
        code: String,
        /// Change the code from --code to this one before answering (the new code answers).
        #[arg(long)]
        new_code: Option<String>,
        /// Enable biometrics (simulated sensor) before answering.
        #[arg(long)]
        enable_biometrics: bool,
        /// When the account is blocked, unblock it first through --source, choosing --code as
        /// the new code.
        #[arg(long)]
        unblock: bool,
        /// Deactivate the account on this phone and exit.
        #[arg(long)]
        deactivate: bool,
        /// How to answer each request.
        #[arg(long, value_enum, default_value_t = Answer::Approve)]
        answer: Answer,
        /// Share only these optional claims (comma-separated; empty shares none). Without it,
        /// every claim asked for is shared. Required claims are always shared.
        #[arg(long, value_delimiter = ',')]
        share: Option<Vec<String>>,
        /// The number to pick under number matching (the one the relying party shows).
        #[arg(long)]
        number: Option<u8>,
        /// How many requests to answer before exiting.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Seconds to wait for each request.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// The load benchmark: enrolls --phones citizens once (kept in --state), then drives full
    /// CIBA logins for --duration seconds against a server in another process, closed-loop
    /// (--concurrency) or open-loop (--rate); prints logins/s, the server's CPU per login and
    /// per enrollment, the latency of every step and the errors by kind.
    Load(Box<LoadArgs>),
    /// Whether a registered phone number can be told from an unknown one: enrolls --registered
    /// citizens (and as many blocked and as many deactivated ones), sends --calls backchannel requests and
    /// sign-in forms for each kind of number, interleaved, and prints the answers by status and
    /// body shape and the latency of each kind, with the Kolmogorov-Smirnov statistic.
    Enumeration(Box<EnumerationArgs>),
    /// A legitimate login measured while --connections flood the server with one --kind of
    /// request for --duration seconds; prints the flood's answers, the login latency and the
    /// server's memory.
    Flood(Box<FloodArgs>),
    /// A relying party.
    Rp {
        #[command(subcommand)]
        command: Box<RpCommand>,
    },
}

/// The options of `load`.
#[derive(clap::Args)]
struct LoadArgs {
    /// The server's URL (a server already running; see --spawn-server).
    #[arg(
        long,
        required_unless_present = "spawn_server",
        conflicts_with = "spawn_server"
    )]
    server: Option<String>,
    /// The server's process id, to read its CPU time and memory from /proc (once per instance
    /// when several serve behind one address).
    #[arg(long)]
    server_pid: Vec<u32>,
    /// The PostgreSQL server's process id (the postmaster), to read the CPU time of it and its
    /// backends.
    #[arg(long)]
    database_pid: Option<u32>,
    /// The server's database file, to measure its growth.
    #[arg(long)]
    server_db: Option<PathBuf>,
    /// Start this server binary on loopback with a database in a temporary directory and the
    /// raised limits of a load test (its --policy-file), and stop it at the end.
    #[arg(long, value_name = "PATH")]
    spawn_server: Option<PathBuf>,
    /// With --spawn-server: how many instances to start, behind a round-robin balancer on one
    /// address (more than one needs --database with a PostgreSQL URL).
    #[arg(long, default_value_t = 1, requires = "spawn_server")]
    instances: usize,
    /// With --spawn-server: the database of the spawned instances (a `postgres://` URL; by
    /// default each SQLite server has a file in a temporary directory).
    #[arg(long, value_name = "URL", requires = "spawn_server")]
    database: Option<String>,
    /// Where the phones keep their state, so that a second run against the same server finds
    /// them enrolled (default: a temporary directory).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Citizens to enroll and log in.
    #[arg(long, default_value_t = 200)]
    phones: usize,
    /// Logins in flight (closed loop).
    #[arg(long, default_value_t = 32, conflicts_with = "rate")]
    concurrency: usize,
    /// Logins started per second, whatever the answers take (open loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of logins.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Enrollments at a time.
    #[arg(long, default_value_t = 8)]
    enroll_concurrency: usize,
    /// Write the figures to this file as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The options of `enumeration`.
#[derive(clap::Args)]
struct EnumerationArgs {
    /// Start this server binary on loopback with a database in a temporary directory (the
    /// load test's policy: the relying party's call rate raised), and stop it at the end.
    #[arg(long, value_name = "PATH", required_unless_present = "server")]
    spawn_server: Option<PathBuf>,
    /// The server's URL (a server already running, its limits raised for the calls).
    #[arg(long, conflicts_with = "spawn_server")]
    server: Option<String>,
    /// Citizens with an active key (as many again are blocked, and as many deactivated).
    #[arg(long, default_value_t = 20)]
    registered: usize,
    /// Calls per kind of number and endpoint.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Write the figures to this file as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The options of `flood`.
#[derive(clap::Args)]
struct FloodArgs {
    /// Start this server binary on loopback with a database in a temporary directory, its
    /// default policy, and two relying parties (the legitimate one and the flooder).
    #[arg(long, value_name = "PATH")]
    spawn_server: PathBuf,
    /// What the flood sends.
    #[arg(long, value_enum)]
    kind: sleutel_harness::flood::FloodKind,
    /// Flooding connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Loopback addresses the flood comes from (127.2.0.1 and on).
    #[arg(long, default_value_t = 16)]
    sources: usize,
    /// Seconds of flood.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// A policy file for the spawned server, instead of its defaults.
    #[arg(long, value_name = "FILE")]
    policy_file: Option<PathBuf>,
    /// Write the figures to this file as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RpCommand {
    /// Log a citizen in by phone number (CIBA poll mode); prints the verified ID token claims,
    /// after checking that its `sleutel_action` approves what was asked.
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
        #[command(flatten)]
        ask: RpAsk,
        /// Seconds to wait for the citizen.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

/// What `rp login` asks for besides the login itself.
#[derive(clap::Args)]
struct RpAsk {
    /// Binding message to show on the phone.
    #[arg(long)]
    message: Option<String>,
    /// Accept a biometric confirmation as well as the code (acr_values).
    #[arg(long)]
    allow_biometrics: bool,
    /// The kind of request.
    #[arg(long, value_enum, default_value_t = Kind::Login)]
    kind: Kind,
    /// Scopes (`openid`, `profile` for the name, `phone`).
    #[arg(long, default_value = "openid profile")]
    scope: String,
    /// A required claim (repeat): name, given_name, family_name, birthdate,
    /// national_register_number, phone_number, age_over_18.
    #[arg(long = "claim")]
    claims: Vec<String>,
    /// An optional claim the person may leave out (repeat).
    #[arg(long = "optional-claim")]
    optional_claims: Vec<String>,
    /// acr_values as given (overrides --allow-biometrics).
    #[arg(long)]
    acr: Option<String>,
    /// Payment amount (`12.50`), for --kind confirm-transaction.
    #[arg(long)]
    amount: Option<String>,
    /// Currency of the payment.
    #[arg(long, default_value = "EUR")]
    currency: String,
    /// Payee of the payment.
    #[arg(long)]
    payee: Option<String>,
    /// IBAN of the payee.
    #[arg(long)]
    iban: Option<String>,
    /// Free text to confirm instead of a payment (at most 7,500 characters).
    #[arg(long)]
    text: Option<String>,
    /// Name of the document, for --kind sign.
    #[arg(long)]
    document_name: Option<String>,
    /// SHA-256 of the document (64 lowercase hex digits), for --kind sign.
    #[arg(long)]
    document_sha256: Option<String>,
    /// Show a two-digit number the person picks on the phone (printed on stderr).
    #[arg(long)]
    number_matching: bool,
    /// Ping mode: listen on this loopback address (the client's registered notification
    /// endpoint is http://ADDR/ciba/ping) and fetch the token when pinged.
    #[arg(long, value_name = "ADDR")]
    ping_listen: Option<std::net::SocketAddr>,
    /// The client_notification_token for ping mode.
    #[arg(long, default_value = "harness-notification-token")]
    notification_token: String,
    /// requested_expiry in seconds.
    #[arg(long)]
    expiry: Option<i64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Login,
    ShareData,
    ConfirmTransaction,
    Sign,
}

#[derive(Clone, Copy, ValueEnum)]
enum Answer {
    /// Approve with the code.
    Approve,
    /// Approve with the biometric where the request allows it, else with the code.
    ApproveBiometric,
    /// Decline.
    Decline,
    /// Decline as "this was not me".
    NotMe,
}

#[derive(Clone, Copy, ValueEnum)]
enum Source {
    Bank,
    Eid,
    Counter,
}

impl From<Source> for IdentitySource {
    fn from(source: Source) -> Self {
        match source {
            Source::Bank => IdentitySource::Bank,
            Source::Eid => IdentitySource::Eid,
            Source::Counter => IdentitySource::Counter,
        }
    }
}

/// What `phone` does besides answering requests.
struct PhoneOptions {
    source: Source,
    bank: String,
    code: String,
    new_code: Option<String>,
    enable_biometrics: bool,
    unblock: bool,
    deactivate: bool,
    answer: Answer,
    share: Option<Vec<String>>,
    number: Option<u8>,
    count: u32,
    timeout: u64,
}

/// Where the phone's state keeps the simulated citizen (with card PINs: simulation only), so a
/// later run can prove the same identity again for an unblock.
const CITIZEN_FILE: &str = "test-only-citizen.json";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Demo { server } => demo::run(server).await.map(|_| ()),
        Command::WebDemo {
            port,
            server_port,
            control_port,
            answer,
            lang,
            request_ttl,
            client_auth,
            other_client_jwks,
        } => match other_client_jwks.as_deref().map(read_jwks).transpose() {
            Ok(extra_client_jwks) => {
                web_demo::run(WebDemoOptions {
                    site_port: port,
                    server_port,
                    control_port,
                    answer,
                    lang,
                    request_ttl_secs: request_ttl,
                    client_auth,
                    extra_client_jwks,
                })
                .await
            }
            Err(e) => Err(e),
        },
        Command::Phone {
            server,
            state,
            phone,
            source,
            bank,
            code,
            new_code,
            enable_biometrics,
            unblock,
            deactivate,
            answer,
            share,
            number,
            count,
            timeout,
        } => {
            let options = PhoneOptions {
                share,
                number,
                source,
                bank,
                code,
                new_code,
                enable_biometrics,
                unblock,
                deactivate,
                answer,
                count,
                timeout,
            };
            run_phone(&server, &state, &phone, options).await
        }
        Command::Load(args) => run_load(*args).await,
        Command::PhoneStep {
            dir,
            server,
            step,
            phone_number,
            card_number,
            card_pin,
        } => {
            sleutel_harness::crash::phone_step(&sleutel_harness::crash::PhoneStepArgs {
                dir,
                server,
                step,
                phone_number,
                card_number,
                card_pin,
            })
            .await
        }
        Command::Enumeration(args) => run_enumeration(*args).await,
        Command::Flood(args) => run_flood(*args).await,
        Command::Rp { command } => match *command {
            RpCommand::Login {
                server,
                client_id,
                secret,
                phone,
                ask,
                timeout,
            } => rp_login(&server, &client_id, secret, &phone, ask, timeout).await,
        },
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

/// Reads a JWK Set file.
fn read_jwks(path: &std::path::Path) -> Result<Jwks, HarnessError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HarnessError::Usage(format!("{}: {e}", path.display())))?;
    let not_a_set = |e: serde_json::Error| {
        HarnessError::Usage(format!("{}: not a JWK Set: {e}", path.display()))
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(not_a_set)?;
    // A private key has no place in a registration: refused, as the server refuses it in an
    // --rp-file, rather than silently dropped.
    let keys = value.get("keys").and_then(|k| k.as_array());
    if keys.is_some_and(|keys| keys.iter().any(|key| key.get("d").is_some())) {
        return Err(HarnessError::Usage(format!(
            "{}: holds private key material (\"d\"): give the public keys only",
            path.display()
        )));
    }
    serde_json::from_value(value).map_err(not_a_set)
}

async fn run_phone(
    server: &str,
    state: &std::path::Path,
    phone_number: &str,
    options: PhoneOptions,
) -> Result<(), HarnessError> {
    let bank = Bank::from_id(&options.bank).map_err(|e| HarnessError::State(e.to_string()))?;
    let mut phone = VirtualPhone::open(server, state)?;
    let narrate = |line: &str| eprintln!("phone: {line}");
    let citizen_file = state.join(CITIZEN_FILE);
    let account = match phone.account()? {
        Some(account) => account,
        None => {
            let (citizen, account) = match options.source {
                Source::Bank => {
                    phone
                        .enroll_new_citizen(bank, phone_number, &options.code, &narrate)
                        .await?
                }
                source => {
                    phone
                        .enroll_new_citizen_with(
                            source.into(),
                            phone_number,
                            &options.code,
                            &narrate,
                        )
                        .await?
                }
            };
            let json =
                serde_json::to_vec(&citizen).map_err(|e| HarnessError::State(e.to_string()))?;
            std::fs::write(&citizen_file, json).map_err(|e| HarnessError::State(e.to_string()))?;
            account
        }
    };
    let auth = phone.authenticator();
    let id = account.account_id.clone();
    if options.deactivate {
        auth.deactivate(id).await?;
        narrate("the account is deactivated on this phone");
        return Ok(());
    }
    if options.unblock && account.status == AccountStatus::Blocked {
        let json = std::fs::read(&citizen_file)
            .map_err(|e| HarnessError::State(format!("{}: {e}", citizen_file.display())))?;
        let citizen: Citizen =
            serde_json::from_slice(&json).map_err(|e| HarnessError::State(e.to_string()))?;
        phone
            .unblock(
                &id,
                &citizen,
                options.source.into(),
                &options.code,
                &narrate,
            )
            .await?;
    }
    let mut code = options.code.clone();
    if let Some(new_code) = &options.new_code {
        phone
            .authenticator()
            .change_code(id.clone(), code.clone(), new_code.clone(), new_code.clone())
            .await?;
        narrate("the code is changed");
        code = new_code.clone();
    }
    if options.enable_biometrics {
        phone
            .authenticator()
            .enable_biometrics(id.clone(), code.clone())
            .await?;
        narrate("biometrics are enabled");
    }
    phone.save()?;
    for _ in 0..options.count {
        let view = phone
            .next_request(Duration::from_secs(options.timeout))
            .await?;
        let auth = phone.authenticator();
        let request_id = view.request_id.clone();
        // Without --share, every claim asked for is shared.
        let share = options.share.clone().map(|share| {
            share
                .into_iter()
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        });
        let approval = |how: Verification| Approval {
            verification: how,
            number: options.number,
            optional_claims: share.clone(),
        };
        let outcome = match options.answer {
            Answer::ApproveBiometric if !view.code_only => auth
                .approve(request_id, approval(Verification::Biometric))
                .await
                .map(|_| "approved with biometric"),
            Answer::Approve | Answer::ApproveBiometric => auth
                .approve(
                    request_id,
                    approval(Verification::Code { code: code.clone() }),
                )
                .await
                .map(|_| "approved"),
            Answer::Decline => auth
                .decline(request_id, DeclineReason::Cancelled)
                .await
                .map(|_| "declined"),
            Answer::NotMe => auth
                .decline(request_id, DeclineReason::NotMe)
                .await
                .map(|_| "declined: not me"),
        };
        let line = serde_json::json!({
            "request_id": view.request_id,
            "relying_party": view.rp_name,
            "kind": view.kind,
            "text": view.text,
            "binding_message": view.binding_message,
            "claims": view.claims,
            "optional_claims": view.optional_claims,
            "number_options": view.number_options,
            "transaction": view.transaction,
            "document": view.document,
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
    ask: RpAsk,
    timeout: u64,
) -> Result<(), HarnessError> {
    let secret = secret
        .or_else(|| std::env::var(SECRET_VARIABLE).ok())
        .ok_or_else(|| HarnessError::Usage(format!("give --secret or set {SECRET_VARIABLE}")))?;
    let rp = RelyingParty::new(server, client_id, &secret)?;
    let mut request = LoginRequest::new(phone);
    request.binding_message = ask.message.clone();
    if ask.allow_biometrics {
        request = request.allowing_biometrics();
    }
    request.scope = ask.scope.clone();
    if ask.acr.is_some() {
        request.acr_values = ask.acr.clone();
    }
    for claim in &ask.claims {
        request = request.requiring(claim);
    }
    for claim in &ask.optional_claims {
        request = request.optionally(claim);
    }
    match ask.kind {
        Kind::Login => {}
        Kind::ShareData => request = request.of_kind(ActionKind::ShareData),
        Kind::ConfirmTransaction => {
            let transaction = match (&ask.text, &ask.amount, &ask.payee, &ask.iban) {
                (Some(text), None, None, None) => Transaction::FreeText { text: text.clone() },
                (None, Some(amount), Some(payee), Some(iban)) => Transaction::Payment {
                    amount: amount.clone(),
                    currency: ask.currency.clone(),
                    payee: payee.clone(),
                    iban: iban.clone(),
                },
                _ => {
                    return Err(HarnessError::Usage(
                        "confirm-transaction needs --text, or --amount, --payee and --iban".into(),
                    ));
                }
            };
            request = request.confirming(transaction);
        }
        Kind::Sign => {
            let (Some(name), Some(sha256)) = (&ask.document_name, &ask.document_sha256) else {
                return Err(HarnessError::Usage(
                    "sign needs --document-name and --document-sha256".into(),
                ));
            };
            request = request.signing(SignDocument {
                name: name.clone(),
                sha256: sha256.clone(),
            });
        }
    }
    if ask.number_matching {
        request = request.with_number_matching();
    }
    if let Some(expiry) = ask.expiry {
        request = request.expiring_in(expiry);
    }
    let timeout = Duration::from_secs(timeout);
    let receiver = match ask.ping_listen {
        Some(addr) => {
            request = request.with_notification_token(&ask.notification_token);
            Some(PingReceiver::start_on(addr).await?)
        }
        None => None,
    };
    let started = rp.backchannel_authorize(&request).await?;
    if let Some(number) = started.match_number {
        eprintln!("rp: the number to pick on the phone is {number}");
    }
    let token = match &receiver {
        Some(receiver) => {
            rp.token_after_ping(&started, receiver, &ask.notification_token, timeout)
                .await?
        }
        None => rp.wait_for_token(&started, timeout).await?,
    };
    let claims = rp.verify_approval(&token.id_token, &request).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&claims)
            .map_err(|e| HarnessError::Verification(e.to_string()))?
    );
    Ok(())
}

/// The server instances started by `load --spawn-server`, stopped when dropped.
struct SpawnedServers {
    children: Vec<std::process::Child>,
    url: String,
    /// The SQLite file of a single instance.
    db: Option<PathBuf>,
    _balancer: Option<sleutel_harness::balancer::Balancer>,
    _dir: tempfile::TempDir,
}

impl SpawnedServers {
    /// Starts `instances` of `binary` on free loopback ports with the load policy, on
    /// `database` (PostgreSQL) or on a SQLite file in a temporary directory, and waits for each
    /// one's "listening on" line. Several instances share one public URL, a round-robin
    /// balancer's, and one notification key.
    async fn start(
        binary: &std::path::Path,
        instances: usize,
        database: Option<&str>,
    ) -> Result<Self, HarnessError> {
        Self::start_with(
            binary,
            instances,
            database,
            sleutel_harness::load::LOAD_POLICY_JSON,
            &[],
        )
        .await
    }

    /// [`SpawnedServers::start`] with the policy `policy_json` and `extra` arguments.
    async fn start_with(
        binary: &std::path::Path,
        instances: usize,
        database: Option<&str>,
        policy_json: &str,
        extra: &[String],
    ) -> Result<Self, HarnessError> {
        use std::io::BufRead;
        let failed = |e: std::io::Error| HarnessError::Server(format!("{}: {e}", binary.display()));
        if instances == 0 || (instances > 1 && database.is_none()) {
            return Err(HarnessError::Usage(
                "--instances above 1 needs --database postgres://... (SQLite is one server's)"
                    .into(),
            ));
        }
        let dir = tempfile::tempdir().map_err(failed)?;
        let db = dir.path().join("sleutel-server.db");
        let policy = dir.path().join("load-policy.json");
        std::fs::write(&policy, policy_json).map_err(failed)?;
        let key = dir.path().join("notification.key");
        let mut key_bytes = [0u8; 32];
        getrandom::fill(&mut key_bytes).map_err(|e| HarnessError::Server(e.to_string()))?;
        let hex: String = key_bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&key, hex).map_err(failed)?;
        let listener = if instances > 1 {
            Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(failed)?,
            )
        } else {
            None
        };
        let public_url = match &listener {
            Some(l) => Some(format!("http://{}", l.local_addr().map_err(failed)?)),
            None => None,
        };
        let mut spawned = Self {
            children: Vec::new(),
            url: String::new(),
            db: database.is_none().then(|| db.clone()),
            _balancer: None,
            _dir: dir,
        };
        let mut backends = Vec::new();
        for _ in 0..instances {
            let mut command = std::process::Command::new(binary);
            command
                .arg("--listen")
                .arg("127.0.0.1:0")
                .arg("--database")
                .arg(database.map_or_else(|| db.display().to_string(), str::to_owned))
                .arg("--notification-key-file")
                .arg(&key)
                .arg("--policy-file")
                .arg(&policy)
                .args(extra)
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::piped());
            if let Some(url) = &public_url {
                command.arg("--public-url").arg(url);
            }
            let mut child = command.spawn().map_err(failed)?;
            let mut line = String::new();
            if let Some(stdout) = child.stdout.take() {
                std::io::BufReader::new(stdout)
                    .read_line(&mut line)
                    .map_err(failed)?;
            }
            spawned.children.push(child);
            let Some(url) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
                return Err(HarnessError::Server(format!(
                    "{} did not say where it listens",
                    binary.display()
                )));
            };
            let addr = url
                .strip_prefix("http://")
                .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                .ok_or_else(|| HarnessError::Server(format!("unexpected address {url}")))?;
            backends.push(addr);
            spawned.url = url;
        }
        if let (Some(listener), Some(url)) = (listener, public_url) {
            spawned._balancer = Some(sleutel_harness::balancer::Balancer::start(
                listener, backends,
            )?);
            spawned.url = url;
        }
        Ok(spawned)
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(std::process::Child::id).collect()
    }
}

impl Drop for SpawnedServers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn run_load(args: LoadArgs) -> Result<(), HarnessError> {
    use sleutel_harness::load::{self, LoadOptions, Mode};
    let spawned = match args.spawn_server.as_deref() {
        Some(binary) => {
            Some(SpawnedServers::start(binary, args.instances, args.database.as_deref()).await?)
        }
        None => None,
    };
    let (server, server_pids, server_db) = match &spawned {
        Some(s) => (s.url.clone(), s.pids(), s.db.clone()),
        None => (
            args.server.clone().unwrap_or_default(),
            args.server_pid.clone(),
            args.server_db.clone(),
        ),
    };
    // Phones enrolled at a spawned server are of no use after it stops: they get a temporary
    // directory unless one was asked for.
    let temp_state = match &args.state {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| HarnessError::State(e.to_string()))?),
    };
    let state_dir = match (&args.state, &temp_state) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_owned(),
        (None, None) => return Err(HarnessError::Usage("no state directory".into())),
    };
    let mode = match args.rate {
        Some(rate) if rate > 0.0 => Mode::Open { rate },
        Some(_) => return Err(HarnessError::Usage("--rate must be positive".into())),
        None => Mode::Closed {
            concurrency: args.concurrency,
        },
    };
    let options = LoadOptions {
        server,
        server_pids,
        database_pid: args.database_pid,
        server_db,
        state_dir,
        phones: args.phones,
        enroll_concurrency: args.enroll_concurrency,
        mode,
        duration: Duration::from_secs(args.duration),
    };
    let report = load::run(&options).await?;
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        let json =
            serde_json::to_vec_pretty(&report).map_err(|e| HarnessError::State(e.to_string()))?;
        std::fs::write(path, json)
            .map_err(|e| HarnessError::State(format!("{}: {e}", path.display())))?;
    }
    if report.logins == 0 {
        return Err(HarnessError::Missing("a completed login".into()));
    }
    Ok(())
}

async fn run_enumeration(args: EnumerationArgs) -> Result<(), HarnessError> {
    use sleutel_harness::enumeration::{self, EnumerationOptions};
    let spawned = match args.spawn_server.as_deref() {
        Some(binary) => Some(SpawnedServers::start(binary, 1, None).await?),
        None => None,
    };
    let server = match (&spawned, &args.server) {
        (Some(s), _) => s.url.clone(),
        (None, Some(url)) => url.clone(),
        (None, None) => return Err(HarnessError::Usage("--server or --spawn-server".into())),
    };
    let state = tempfile::tempdir().map_err(|e| HarnessError::State(e.to_string()))?;
    let report = enumeration::run(&EnumerationOptions {
        server,
        state_dir: state.path().to_owned(),
        registered: args.registered,
        calls: args.calls,
    })
    .await?;
    print!("{}", report.summary());
    write_json(args.json.as_deref(), &report)
}

async fn run_flood(args: FloodArgs) -> Result<(), HarnessError> {
    use sleutel_harness::flood::{self, FLOOD_CLIENT, FloodOptions, LEGIT_CLIENT};
    let policy = match &args.policy_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| HarnessError::State(format!("{}: {e}", path.display())))?,
        None => "{}".to_owned(),
    };
    let rps = [LEGIT_CLIENT, FLOOD_CLIENT]
        .iter()
        .flat_map(|(id, secret)| ["--rp".to_owned(), format!("{id}:{secret}:{id}")])
        .collect::<Vec<_>>();
    let spawned = SpawnedServers::start_with(&args.spawn_server, 1, None, &policy, &rps).await?;
    let state = tempfile::tempdir().map_err(|e| HarnessError::State(e.to_string()))?;
    let report = flood::run(&FloodOptions {
        server: spawned.url.clone(),
        server_pid: spawned.pids().first().copied(),
        state_dir: state.path().to_owned(),
        kind: args.kind,
        connections: args.connections,
        sources: args.sources,
        duration: Duration::from_secs(args.duration),
    })
    .await?;
    print!("{}", report.summary());
    write_json(args.json.as_deref(), &report)
}

fn write_json<T: serde::Serialize>(
    path: Option<&std::path::Path>,
    report: &T,
) -> Result<(), HarnessError> {
    let Some(path) = path else { return Ok(()) };
    let json = serde_json::to_vec_pretty(report).map_err(|e| HarnessError::State(e.to_string()))?;
    std::fs::write(path, json).map_err(|e| HarnessError::State(format!("{}: {e}", path.display())))
}
