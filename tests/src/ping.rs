//! A relying party's CIBA notification endpoint (ping mode, §10.2) on loopback: it records the
//! bearer token and `auth_req_id` of every ping, and lets a test or the CLI wait for one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use sleutel_protocol::api::oidc::PingNotification;
use tokio::sync::Notify;

use crate::{HarnessError, Result};

/// The path the receiver listens on.
pub const PING_PATH: &str = "/ciba/ping";

#[derive(Default)]
struct Received {
    /// `(bearer token, auth_req_id)` of each ping, in order.
    pings: Mutex<Vec<(String, String)>>,
    arrived: Notify,
}

/// A notification endpoint on a loopback port, served until dropped.
pub struct PingReceiver {
    addr: SocketAddr,
    received: Arc<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl PingReceiver {
    /// Listens on `127.0.0.1` at a free port.
    pub async fn start() -> Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Listens on `addr` (a loopback address; port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| HarnessError::Server(format!("notification endpoint {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::Server(e.to_string()))?;
        let received = Arc::new(Received::default());
        let app = Router::new()
            .route(PING_PATH, post(ping))
            .with_state(received.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            received,
            task,
        })
    }

    /// The endpoint's URL, to register with the server.
    pub fn url(&self) -> String {
        format!("http://{}{PING_PATH}", self.addr)
    }

    /// Every ping so far as `(bearer token, auth_req_id)`.
    pub fn pings(&self) -> Vec<(String, String)> {
        self.received
            .pings
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Waits for the ping of `auth_req_id` and returns its bearer token.
    pub async fn wait_for(&self, auth_req_id: &str, timeout: Duration) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.received.arrived.notified();
            if let Some((bearer, _)) = self.pings().into_iter().find(|(_, id)| id == auth_req_id) {
                return Ok(bearer);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(HarnessError::Timeout("the server's ping".into()));
            }
        }
    }
}

impl Drop for PingReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn ping(
    State(received): State<Arc<Received>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let notification: Option<PingNotification> = serde_json::from_slice(&body).ok();
    let (Some(bearer), Some(notification)) = (bearer, notification) else {
        return StatusCode::BAD_REQUEST;
    };
    if let Ok(mut pings) = received.pings.lock() {
        pings.push((bearer, notification.auth_req_id));
    }
    received.arrived.notify_waiters();
    // CIBA §10.2: the client answers a ping with 204 (or any 2xx).
    StatusCode::NO_CONTENT
}
