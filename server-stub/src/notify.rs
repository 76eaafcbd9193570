//! CIBA ping mode (§10.2): when a request of a ping-mode relying party gets an outcome
//! (approved, declined, closed), the server POSTs `{"auth_req_id": ...}` to the relying party's
//! registered notification endpoint with the `client_notification_token` it gave as bearer
//! token; the relying party then fetches the result from the token endpoint.
//!
//! The notification tokens are bearer credentials of the relying party, so they are kept in
//! memory only, zeroized when dropped, never logged and never written to SQLite. After a
//! restart the pings of earlier requests are lost; the relying party can always poll the token
//! endpoint, which answers in ping mode as in poll mode.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use sleutel_protocol::api::oidc::PingNotification;
use zeroize::Zeroizing;

use crate::clock;

/// How long one ping may take before it is given up: the relying party's endpoint should
/// answer at once, and a slow one must not hold server resources.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest `client_notification_token` accepted (CIBA §7.1 leaves it to the server): tokens are
/// opaque values of at least 128 bits; a kilobyte leaves room for a signed token.
pub(crate) const MAX_NOTIFICATION_TOKEN_CHARS: usize = 1024;

/// Where and how to ping for one request.
struct Ping {
    auth_req_id: String,
    endpoint: String,
    token: Zeroizing<String>,
    /// After this time (Unix seconds) the entry is dropped: the request can no longer have an
    /// outcome worth a ping.
    forget_at: i64,
}

/// The pending pings, by request id, and the HTTP client that sends them.
pub(crate) struct Notifier {
    pending: Mutex<HashMap<String, Ping>>,
    http: Option<reqwest::Client>,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier that spawns its pings on `runtime`.
    pub(crate) fn new(runtime: tokio::runtime::Handle) -> Self {
        // Fails only when a provider is already installed, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PING_TIMEOUT)
            .build()
            .inspect_err(|e| tracing::error!(error = %e, "no HTTP client for pings"))
            .ok();
        Self {
            pending: Mutex::new(HashMap::new()),
            http,
            runtime,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Ping>> {
        // Insert and remove only: a panic while holding the lock leaves the map consistent.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers to ping `endpoint` with `token` when request `request_id` has an outcome.
    pub(crate) fn register(
        &self,
        request_id: &str,
        auth_req_id: &str,
        endpoint: &str,
        token: Zeroizing<String>,
        forget_at: i64,
    ) {
        let now = clock::now();
        let mut pending = self.lock();
        pending.retain(|_, ping| ping.forget_at > now);
        pending.insert(
            request_id.to_owned(),
            Ping {
                auth_req_id: auth_req_id.to_owned(),
                endpoint: endpoint.to_owned(),
                token,
                forget_at,
            },
        );
    }

    /// Pings for each of `request_ids` that has a registered ping (others are poll-mode
    /// requests and are skipped). Call after the outcome is committed.
    pub(crate) fn notify(&self, request_ids: &[String]) {
        let pings: Vec<Ping> = {
            let mut pending = self.lock();
            request_ids
                .iter()
                .filter_map(|id| pending.remove(id))
                .collect()
        };
        let Some(http) = &self.http else {
            return;
        };
        for ping in pings {
            let http = http.clone();
            self.runtime.spawn(async move {
                let body = PingNotification {
                    auth_req_id: ping.auth_req_id,
                };
                let sent = http
                    .post(&ping.endpoint)
                    .bearer_auth(ping.token.as_str())
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(answer) if answer.status().is_success() => {}
                    Ok(answer) => tracing::warn!(
                        status = answer.status().as_u16(),
                        "a relying party's notification endpoint refused a ping"
                    ),
                    // The error names the endpoint, never the token.
                    Err(e) => tracing::warn!(error = %e, "a ping could not be delivered"),
                }
            });
        }
    }
}
