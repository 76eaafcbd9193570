//! `sleutel-harness web-demo`: the login a person does in a browser. It starts the reference
//! server in this process (simulators included, on loopback), enrolls a virtual citizen's phone
//! as the `demo` does, starts the demo relying-party site "Online overheid"
//! ([`crate::demo_site`]) and the phone that answers its requests
//! ([`crate::answering_phone`]), prints the address to open and the number to type, and runs
//! until Ctrl-C.
//!
//! What it prints is also read by the browser tests (`tests/browser/`): one `label: value` line
//! per address, then [`READY_LINE`]. The labels are the `LABEL_` constants.

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_core::Bank;
use sleutel_protocol::jose::Jwks;
use sleutel_server::{Policy, RelyingPartyConfig};
use tokio::task::JoinSet;

use crate::answering_phone::{Answer, AnsweringPhone, bind_loopback};
use crate::demo::{DEMO_CODE, DEMO_PHONE};
use crate::demo_site::{DemoSite, Lang, redirect_uri};
use crate::phone::VirtualPhone;
use crate::rp::{ClientKey, RelyingParty};
use crate::server::InProcessServer;
use crate::{HarnessError, Result};

/// Label of the line with the demo site's address (the one to open).
pub const LABEL_SITE: &str = "open";
/// Label of the line with the phone number to type on the sign-in page.
pub const LABEL_NUMBER: &str = "phone number";
/// Label of the line with the server's address (the issuer).
pub const LABEL_SERVER: &str = "server";
/// Label of the line with the phone's control API.
pub const LABEL_CONTROL: &str = "phone control";
/// Label of the line with the second relying party, for an off-the-shelf OpenID Connect client:
/// `client_id secret redirect_uri` (the secret `-` when it authenticates with its keys).
pub const LABEL_EXTRA_CLIENT: &str = "other client";
/// The last line printed once everything listens.
pub const READY_LINE: &str = "ready (Ctrl-C stops)";

/// Client id of the second relying party, registered for clients other than the demo site (the
/// browser tests' `openid-client` relying party).
pub const EXTRA_CLIENT_ID: &str = "other-client";
/// Its secret (a demo: never use it outside a test bench).
pub const EXTRA_CLIENT_SECRET: &str = "other-client-secret";
/// Its display name, as the phone shows it.
const EXTRA_CLIENT_NAME: &str = "Testdienst";
/// Path of its redirect URI on the demo site's host. Nothing serves it: the client reads the
/// code from the redirect itself.
const EXTRA_CLIENT_CALLBACK: &str = "/other-client/callback";

/// The number the person types, in the national form most Belgians use (the form takes the
/// `+32` form too).
const DEMO_PHONE_AS_TYPED: &str = "0470 12 34 56";

/// How the web demo runs.
#[derive(Debug, Clone)]
pub struct WebDemoOptions {
    /// The demo site's port (0: any free one).
    pub site_port: u16,
    /// The server's port (0: any free one).
    pub server_port: u16,
    /// The phone control API's port (0: any free one).
    pub control_port: u16,
    /// How the phone answers at first.
    pub answer: Answer,
    /// The demo site's language until the person picks another.
    pub lang: Lang,
    /// The life of a request in seconds (the server's `request_ttl_secs`); `None` keeps the
    /// policy's, 5 minutes.
    pub request_ttl_secs: Option<i64>,
    /// How the demo site authenticates at the token endpoint.
    pub client_auth: ClientAuth,
    /// The public keys of the second relying party ([`EXTRA_CLIENT_ID`]): with them it
    /// authenticates with `private_key_jwt` instead of its secret.
    pub extra_client_jwks: Option<Jwks>,
}

/// How the demo site authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// `client_secret_basic` with the demo secret.
    Secret,
    /// `private_key_jwt` (RFC 7523) with a P-256 key drawn at start, whose public key is the
    /// demo relying party's registration.
    PrivateKeyJwt,
}

/// The `kid` of the demo site's key under [`ClientAuth::PrivateKeyJwt`].
const DEMO_SITE_KID: &str = "online-overheid-web-demo";

impl Default for WebDemoOptions {
    fn default() -> Self {
        Self {
            site_port: 0,
            server_port: 0,
            control_port: 0,
            answer: Answer::Approve,
            lang: Lang::Nl,
            request_ttl_secs: None,
            client_auth: ClientAuth::Secret,
            extra_client_jwks: None,
        }
    }
}

/// Runs the web demo until Ctrl-C (or until one of its parts stops).
pub async fn run(options: WebDemoOptions) -> Result<()> {
    let (site_listener, site_url) = bind_loopback(options.site_port, "demo site").await?;
    let (control_listener, control_url) =
        bind_loopback(options.control_port, "phone control API").await?;
    let extra_redirect = format!("{site_url}{EXTRA_CLIENT_CALLBACK}");
    let mut policy = Policy::default();
    if let Some(ttl) = options.request_ttl_secs {
        policy.request_ttl_secs = ttl;
    }
    let site_key = match options.client_auth {
        ClientAuth::Secret => None,
        ClientAuth::PrivateKeyJwt => {
            Some(ClientKey::new(SigningKey::generate(), Some(DEMO_SITE_KID)))
        }
    };
    let mut demo = RelyingPartyConfig::demo().with_redirect_uris(&[&redirect_uri(&site_url)]);
    if let Some(key) = &site_key {
        demo = demo.with_private_key_jwt(Jwks {
            keys: vec![key.public_jwk()],
        });
    }
    let mut extra =
        RelyingPartyConfig::new(EXTRA_CLIENT_ID, EXTRA_CLIENT_SECRET, EXTRA_CLIENT_NAME)
            .with_claims(&sleutel_protocol::claims::ALL)
            .with_redirect_uris(&[&extra_redirect]);
    let extra_secret = match options.extra_client_jwks {
        Some(jwks) => {
            extra = extra.with_private_key_jwt(jwks);
            "-"
        }
        None => EXTRA_CLIENT_SECRET,
    };
    let relying_parties = vec![demo, extra];
    let server = InProcessServer::start_on(options.server_port, policy, relying_parties).await?;
    let server_url = server.url();
    println!("Sleutel web demo");
    println!("{LABEL_SERVER}: {server_url}");

    let state = tempfile::tempdir().map_err(|e| HarnessError::State(e.to_string()))?;
    let phone = VirtualPhone::open(&server_url, state.path())?;
    let narrate = |line: &str| println!("  - {line}");
    println!("A virtual phone enrolls:");
    let (citizen, _account) = phone
        .enroll_new_citizen(Bank::Kbc, DEMO_PHONE, DEMO_CODE, &narrate)
        .await?;

    let phone = AnsweringPhone::new(phone, DEMO_CODE, options.answer);
    let control = phone.control_api();
    let rp = RelyingParty::with_client(
        server.http().clone(),
        &server_url,
        RelyingPartyConfig::DEMO_CLIENT_ID,
        RelyingPartyConfig::DEMO_SECRET,
    );
    let rp = match site_key {
        Some(key) => rp.signing_with(RelyingPartyConfig::DEMO_CLIENT_ID, key),
        None => rp,
    };
    let site = DemoSite::new(site_listener, &site_url, rp, options.lang);

    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        phone.run().await;
        Ok(())
    });
    tasks.spawn(control.serve(control_listener));
    tasks.spawn(site.serve());

    println!(
        "{LABEL_NUMBER}: {DEMO_PHONE_AS_TYPED} ({DEMO_PHONE}, {} {})",
        citizen.given_name, citizen.family_name
    );
    println!("{LABEL_CONTROL}: {control_url}");
    println!("{LABEL_EXTRA_CLIENT}: {EXTRA_CLIENT_ID} {extra_secret} {extra_redirect}");
    println!("the phone answers: {}", describe(options.answer));
    println!("{LABEL_SITE}: {site_url}/");
    println!("{READY_LINE}");

    let outcome = tokio::select! {
        signal = tokio::signal::ctrl_c() => {
            signal.map_err(|e| HarnessError::State(format!("waiting for Ctrl-C: {e}")))
        }
        stopped = tasks.join_next() => match stopped {
            Some(Ok(Err(e))) => Err(e),
            Some(Err(e)) => Err(HarnessError::Server(format!("a part of the demo stopped: {e}"))),
            _ => Err(HarnessError::Server("a part of the demo stopped".into())),
        },
    };
    // The phone (and its store) goes before its directory.
    tasks.shutdown().await;
    server.shutdown().await;
    drop(state);
    outcome
}

/// One line on how the phone answers.
fn describe(answer: Answer) -> &'static str {
    match answer {
        Answer::Approve => "it approves every request with the code (--answer changes it)",
        Answer::Decline => "it declines every request",
        Answer::NotMe => "it answers \"this was not me\" to every request",
        Answer::Wait => "it shows requests and leaves them unanswered",
        Answer::Ask => "it shows each request here and waits for your key",
    }
}
