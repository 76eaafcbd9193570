//! The accept loop: HTTP/1.1 connections served by hyper, with what `axum::serve` does not
//! offer: a cap on the connections open at once, for the server and for each source address,
//! beyond which a connection is answered 503 and closed without being read; a timeout on
//! reading a request's head, so that connections that trickle their heads (slowloris) or lie
//! idle give their places back; a deadline on each write, for a client that stops reading its
//! answers ([`write_deadline`]); and a maximum age, after which a connection finishes the
//! request in flight and closes, so that no client keeps a place for ever by sending cheap
//! requests. The whole request's timeout (408) is a layer of the router (`server::time_limit`),
//! since it answers in JSON.

mod write_deadline;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::error::ServerError;
use crate::rate::source_network;
use write_deadline::WriteDeadline;

/// The largest request head (request line and headers) a connection may send, and so the most
/// a connection's read buffer holds. The longest legitimate head is the authorization
/// endpoint's: its query string is bounded at 8 KiB, with the browser's headers and cookie
/// beside it. A larger head is answered 431 by hyper.
pub(crate) const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// How long the accept loop pauses after the operating system refused to accept (out of file
/// descriptors): accepting again at once would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The least time a connection past its maximum age (or at the stop) is given to finish the
/// request in flight before it is dropped. The request's own timeout bounds the handler and
/// the write deadline the answer, so the grace is at least those two together
/// ([`ConnectionLimits::closing_grace`]); this is the backstop beneath them.
const MIN_CLOSING_GRACE: Duration = Duration::from_secs(60);

/// How often the warning that an address reached its connection cap may be logged: an address
/// kept at its cap while others connect would otherwise log once per refused connection.
const ADDRESS_FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The connection limits, from the policy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one source address (an IPv4 address, an IPv6 /64).
    pub max_per_address: usize,
    /// How long a request's head may take to arrive.
    pub head_timeout: Duration,
    /// How long one write of an answer may wait for the client to read.
    pub write_timeout: Duration,
    /// How long a connection may stay open; then it finishes its request in flight and closes.
    pub max_age: Duration,
    /// How long a request may take (the router's 408).
    pub request_timeout: Duration,
}

impl ConnectionLimits {
    /// How long a closing connection may finish its request in flight: the request's timeout
    /// and one write's deadline, and no less than [`MIN_CLOSING_GRACE`].
    fn closing_grace(&self) -> Duration {
        (self.request_timeout + self.write_timeout).max(MIN_CLOSING_GRACE)
    }
}

/// The connections open per source address, counted while each is served.
#[derive(Default)]
struct OpenPerAddress(Mutex<HashMap<String, usize>>);

/// One connection's count in [`OpenPerAddress`], given back when dropped.
struct AddressPlace {
    open: Arc<OpenPerAddress>,
    network: String,
}

impl OpenPerAddress {
    /// Counts a connection from `ip`, unless its network already has `max` open.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressPlace> {
        let network = source_network(ip);
        // Only counts are kept under the lock, each change whole: a poisoned map is still good.
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(network.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressPlace {
            open: self.clone(),
            network,
        })
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.network) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.network);
            }
        }
    }
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
    let per_address = Arc::new(OpenPerAddress::default());
    // Told to every connection at the stop: finish the request in flight, then close.
    let (closing, closing_watch) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    // Logged once each time a cap is reached, not once per refused connection: a flood would
    // otherwise flood the log.
    let full = Arc::new(AtomicBool::new(false));
    let mut address_full_warned: Option<tokio::time::Instant> = None;
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
        let Some(address_place) = per_address.take(peer.ip(), limits.max_per_address) else {
            let now = tokio::time::Instant::now();
            if address_full_warned.is_none_or(|at| now >= at + ADDRESS_FULL_WARNING_EVERY) {
                address_full_warned = Some(now);
                tracing::warn!(
                    max_per_address = limits.max_per_address,
                    "an address reached its connection cap: its new connections are refused \
                     (logged at most once a minute)"
                );
            }
            refuse(&stream);
            continue;
        };
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
        let connection = http.serve_connection(
            TokioIo::new(WriteDeadline::new(stream, limits.write_timeout)),
            TowerToHyperService::new(service),
        );
        let closing = closing_watch.clone();
        tokio::spawn(async move {
            let ended =
                serve_connection(connection, limits.max_age, limits.closing_grace(), closing);
            if let Err(e) = ended.await {
                // A client that goes away, a head that timed out, an answer nobody read: not
                // the server's fault.
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(address_place);
            drop(place);
        });
    }
    drop(listener);
    // Every connection finishes its request in flight and closes; each holds a place until it
    // is gone, so having every place back means every connection is.
    let _ = closing.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = places.acquire_many(all).await;
}

/// Serves one connection until it ends: at `max_age`, or when the server stops (`closing`), it
/// is asked to finish the request in flight and close (keep-alive off), and after `grace` more
/// it is dropped whatever it was doing.
async fn serve_connection<C>(
    connection: C,
    max_age: Duration,
    grace: Duration,
    mut closing: watch::Receiver<bool>,
) -> hyper::Result<()>
where
    C: Future<Output = hyper::Result<()>> + GracefulClose,
{
    let mut connection = std::pin::pin!(connection);
    let aged = tokio::time::sleep(max_age);
    let stopping = async {
        // A dropped sender is a stop too.
        let _ = closing.wait_for(|closing| *closing).await;
    };
    tokio::select! {
        ended = connection.as_mut() => return ended,
        () = aged => {}
        () = stopping => {}
    }
    connection.as_mut().close_gracefully();
    match tokio::time::timeout(grace, connection).await {
        Ok(ended) => ended,
        // Dropping the connection closes its socket.
        Err(_) => Ok(()),
    }
}

/// A connection that can be asked to finish its request in flight and close: hyper's HTTP/1.1
/// connection, named so that [`serve_connection`] needs not spell out its type.
trait GracefulClose {
    fn close_gracefully(self: std::pin::Pin<&mut Self>);
}

impl<I, S> GracefulClose for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn close_gracefully(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
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
