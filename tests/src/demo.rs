//! The demo: one citizen enrolls a phone through the KBC bank-app handoff and logs in to
//! "Online overheid" by confirming on the phone. Every step prints one readable line.

use std::time::{Duration, Instant};

use sleutel_core::{Approval, Bank};

use crate::phone::VirtualPhone;
use crate::rp::{LoginRequest, RelyingParty};
use crate::server::InProcessServer;
use crate::{HarnessError, Result};

/// The demo citizen's phone number.
pub const DEMO_PHONE: &str = "+32470123456";
/// The 5-digit code the demo citizen chooses.
pub const DEMO_CODE: &str = "13579";
/// How long the relying party waits for the citizen.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the demo against `server_url`, or against a server started in this process when `None`.
/// Prints each step to stdout and returns the verified ID token's name.
pub async fn run(server_url: Option<String>) -> Result<String> {
    let started = Instant::now();
    let step =
        |n: u32, text: &str| println!("[{:>5.2}s] {n}. {text}", started.elapsed().as_secs_f64());

    let (local, url) = match server_url {
        Some(url) => (None, url.trim_end_matches('/').to_owned()),
        None => {
            let server = InProcessServer::start().await?;
            let url = server.url();
            (Some(server), url)
        }
    };
    step(1, &format!("Sleutel server is listening on {url}"));

    let state = tempfile::tempdir().map_err(|e| HarnessError::State(e.to_string()))?;
    let mut phone = VirtualPhone::open(&url, state.path())?;
    step(
        2,
        &format!(
            "a new phone installs the app (state in {})",
            state.path().display()
        ),
    );

    let narrate = |line: &str| println!("           - {line}");
    step(3, "enrollment through the KBC bank-app handoff");
    let (citizen, _account) = phone
        .enroll_new_citizen(Bank::Kbc, DEMO_PHONE, DEMO_CODE, &narrate)
        .await?;

    let rp = RelyingParty::demo(&url)?;
    // A short number the relying party shows on its page and the phone shows beside the request.
    let message = format!("AANMELDEN {:04}", std::process::id() % 10_000);
    let request = LoginRequest::new(DEMO_PHONE).with_message(&message);
    let auth = rp.backchannel_authorize(&request).await?;
    step(
        4,
        &format!(
            "\"Online overheid\" asks to log in {DEMO_PHONE} (binding message {message}); it polls every {}s",
            auth.interval
        ),
    );
    let rp_wait = {
        let rp = rp.clone();
        let auth = auth.clone();
        tokio::spawn(async move { rp.wait_for_token(&auth, LOGIN_TIMEOUT).await })
    };

    let view = phone.next_request(LOGIN_TIMEOUT).await?;
    step(
        5,
        &format!(
            "the phone gets the push and shows: {} — \"{}\"{}",
            view.rp_name,
            view.text,
            view.binding_message
                .as_deref()
                .map(|m| format!(" [{m}]"))
                .unwrap_or_default()
        ),
    );

    phone
        .authenticator()
        .approve(view.request_id.clone(), Approval::code(DEMO_CODE))
        .await?;
    step(6, "the person confirms with the 5-digit code");

    let token = rp_wait
        .await
        .map_err(|e| HarnessError::Http(format!("relying party task: {e}")))??;
    let claims = rp.verify_id_token(&token.id_token).await?;
    let name = claims.name.clone().unwrap_or_default();
    step(
        7,
        &format!(
            "\"Online overheid\" receives a verified ID token: name \"{name}\", acr {}, amr {:?}, pairwise sub {}…",
            claims.acr,
            claims.amr,
            claims.sub.chars().take(10).collect::<String>()
        ),
    );
    if name != format!("{} {}", citizen.given_name, citizen.family_name) {
        return Err(HarnessError::Verification(format!(
            "ID token names {name:?}, not the citizen"
        )));
    }
    let history = phone.authenticator().history()?;
    step(
        8,
        &format!(
            "the phone's history holds {} decision(s); demo finished in {:.2}s",
            history.len(),
            started.elapsed().as_secs_f64()
        ),
    );

    drop(phone);
    if let Some(server) = local {
        server.shutdown().await;
    }
    Ok(name)
}
