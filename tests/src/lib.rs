//! Sleutel harness: simulated citizens, phones and relying parties, driving the real server.
//!
//! QA teams use it through the `sleutel-harness` binary (`demo`, `web-demo`, `phone`, `rp login`,
//! `load`, `enumeration`, `flood`); the
//! end-to-end tests (`tests/tests/e2e/`) and the server's integration tests
//! (`server-stub/tests/api/`) use the same pieces as a library, their one test kit:
//!
//! - [`server`]: the reference server started in-process on a free loopback port, one per test,
//!   with its database at hand for the tests that read rows.
//! - [`sim`]: the simulators a person deals with outside the app (bank, eID website, counter,
//!   block page, SMS, e-mail, push).
//! - [`phone`]: a virtual phone running the real `sleutel-core` with the core's test keystore
//!   (`sleutel_core::testing::TestKeystore`, a simulated biometric sensor).
//! - [`rp`]: a relying party logging people in with OpenID Connect CIBA.
//! - [`ping`]: a relying party's notification endpoint, for CIBA ping mode.
//! - [`demo`]: the whole story, printed step by step.
//! - [`load`]: the load benchmark (`load`): enrolled citizens logging in against a server in
//!   another process, with the server's CPU per login and the latency of every step.
//! - [`crash`]: crash consistency: the server binary killed with SIGKILL under simulated
//!   citizens and checked against what they were told, and one step of the phone core in a
//!   process of its own (`phone-step`) for a test to kill.
//! - [`enumeration`]: whether a caller can tell a registered number from an unknown one by the
//!   answers or their timing (`enumeration`).
//! - [`flood`]: a legitimate login measured while strangers flood the server (`flood`).
//! - [`web_demo`]: the login in a browser (`web-demo`): the server, the demo relying-party site
//!   [`demo_site`] on the authorization code flow, and an [`answering_phone`] with a control API.
//!
//! The simulator and relying-party calls decode a success and turn a refusal into
//! [`HarnessError::Api`]; their `_raw` variants return the answer as it came, for tests that
//! check a refusal's status, headers and body.

pub mod answering_phone;
pub mod balancer;
pub mod crash;
pub mod demo;
pub mod demo_site;
pub mod enumeration;
mod error;
pub mod flood;
pub mod load;
pub mod phone;
pub mod ping;
pub mod rp;
pub mod server;
pub mod sim;
pub mod web_demo;

pub use error::HarnessError;

/// Result type of the harness.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Installs the TLS crypto provider once, so reqwest can be built in any process.
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP client for the simulators and relying parties (no redirects followed: the bank
/// answers with a redirect to the app's deep link, which only the phone can open).
pub fn http_client() -> Result<reqwest::Client> {
    client_builder()
        .build()
        .map_err(|e| HarnessError::Http(e.to_string()))
}

/// [`http_client`], with the host name `host` resolved to `addr`: one instance of several
/// behind one public name, as a load balancer would pick it.
pub fn http_client_to(host: &str, addr: std::net::SocketAddr) -> Result<reqwest::Client> {
    client_builder()
        .resolve(host, addr)
        .build()
        .map_err(|e| HarnessError::Http(e.to_string()))
}

fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
}
