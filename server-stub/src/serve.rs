//! The accept loop: HTTP/1.1 connections served by hyper, with what `axum::serve` does not
//! offer: a cap on the connections open at once, beyond which a connection is answered 503 and
//! closed without being read, and a timeout on reading a request's head, so that connections
//! that trickle their heads (slowloris) or lie idle give their places back. The whole request's
//! timeout (408) is a layer of the router (`server::time_limit`), since it answers in JSON.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::error::ServerError;

/// The largest request head (request line and headers) a connection may send, and so the most
/// a connection's read buffer holds. The longest legitimate head is the authorization
/// endpoint's: its query string is bounded at 8 KiB, with the browser's headers and cookie
/// beside it. A larger head is answered 431 by hyper.
pub(crate) const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// How long the accept loop pauses after the operating system refused to accept (out of file
/// descriptors): accepting again at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The connection limits, from the policy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a request's head may take to arrive.
    pub head_timeout: Duration,
}

/// Serves `router` on `listener` until `stop` completes, then stops accepting and waits for
/// the connections' requests in flight to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    // Logged once each time the cap is reached, not once per refused connection: a flood
    // would otherwise flood the log.
    let full = Arc::new(AtomicBool::new(false));
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "could not accept a connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            if !full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection cap reached: new connections are refused"
                );
            }
            refuse(&stream);
            continue;
        };
        full.store(false, Ordering::Relaxed);
        // Small answers go out at once rather than waiting for more to send (Nagle).
        let _ = stream.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    // What `ConnectInfo<SocketAddr>` reads: limits are counted per source address.
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // A client that goes away, or a head that timed out: not the server's fault.
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection beyond the cap with 503 `temporarily_unavailable` and closes it,
/// without reading it or waiting for the client: one non-blocking write, which a full socket
/// buffer simply drops.
fn refuse(stream: &TcpStream) {
    let body =
        serde_json::to_string(&ServerError::TooManyConnections.to_api_error()).unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         cache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}
