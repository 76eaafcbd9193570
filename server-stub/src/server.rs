//! Starting and stopping the server: the shared state, the router, the listening socket.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use crate::store::Conn;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::response::IntoResponse;
use sleutel_protocol::limits::MAX_BODY_BYTES;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::{ClientAuthentication, Policy, RelyingPartyConfig, ServerConfig};
use crate::error::{Result, ServerError, StartError};
use crate::keys::Keys;
use crate::oidc::Clients;
use crate::push::{Pusher, Services};
use crate::sms::{OutboxSms, SmsSender};
use crate::store::Store;
use crate::{device, enrollment, oidc, requests, sim};

/// Everything a request handler can reach.
pub(crate) struct App {
    /// The database.
    pub store: Store,
    /// Keys and secrets.
    pub keys: Keys,
    /// The base URL, which is also the issuer (no trailing slash).
    pub url: String,
    /// Policy values.
    pub policy: Policy,
    /// The registered relying parties.
    pub clients: Clients,
    /// Where SMS messages go.
    pub sms: Box<dyn SmsSender>,
    /// Where push messages go: the outbox, and the queue to FCM and APNs.
    pub push: Pusher,
    /// Pings to ping-mode relying parties.
    pub notifier: crate::notify::Notifier,
    /// The apps that open the sign-in links.
    pub app_links: crate::config::AppLinksConfig,
    /// Set when the server is shutting down: readiness answers 503 so that a load balancer
    /// sends new requests to other instances while the ones in flight finish.
    pub draining: std::sync::atomic::AtomicBool,
}

/// The handlers' state: a cheap handle to [`App`].
#[derive(Clone)]
pub(crate) struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl AppState {
    /// Runs a request's database work with the connection (decision 0027), on the async worker
    /// that serves the request, waiting there for the short work before it: the work is short
    /// (statements prepared, pages cached, never held across an `.await`), and handing it to a
    /// blocking thread and back cost more CPU than the work itself (2.10 ms of server CPU per
    /// login against 1.43-1.78 ms). While long work (the housekeeping purge) waits for or holds
    /// the connection, the request waits on a blocking thread instead, so that the purge delays
    /// the database work and nothing else.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T>
    where
        F: Fn(&App, &mut Conn<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let app = &self.0;
        if let Ok(done) = app.store.run_inline(|conn| f(app, conn)) {
            return done;
        }
        self.on_blocking_thread(f, false).await
    }

    /// Runs long database work (a purge of everything that expired) on a blocking thread,
    /// marked as long so that requests do not wait for it on their async workers.
    pub(crate) async fn db_blocking<T, F>(&self, f: F) -> Result<T>
    where
        F: Fn(&App, &mut Conn<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.on_blocking_thread(f, true).await
    }

    async fn on_blocking_thread<T, F>(&self, f: F, long: bool) -> Result<T>
    where
        F: Fn(&App, &mut Conn<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let app = &state.0;
            let work = |conn: &mut Conn<'_>| f(app, conn);
            if long {
                app.store.run_long(work)
            } else {
                app.store.run(work)
            }
        })
        .await
        .map_err(|e| ServerError::Internal(format!("database worker failed: {e}")))?
    }
}

/// A server that is serving; stop it with [`RunningServer::shutdown`].
pub struct RunningServer {
    local_addr: SocketAddr,
    /// The handlers' state; the test hooks (`crate::testing`) read the database through it.
    pub(crate) state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    housekeeping: JoinHandle<()>,
    push_worker: JoinHandle<()>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("url", &self.state.url)
            .finish_non_exhaustive()
    }
}

/// Opens the database, loads or creates the keys, binds the socket and starts serving in the
/// background. Returns as soon as the server accepts connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    config.policy.validate()?;
    config.app_links.validate()?;
    let relying_parties = if config.relying_parties.is_empty() {
        vec![RelyingPartyConfig::demo()]
    } else {
        config.relying_parties.clone()
    };
    check_listen(config.listen, &config.policy, &relying_parties)?;
    let clients = Clients::new(relying_parties)?;
    // The push credentials are read before anything else is prepared: a file that cannot be
    // used stops the start with its name.
    let (push, push_queue) = Pusher::new(Services::load(&config.push)?);

    let database = config.database();
    let policy = config.policy.clone();
    let (store, keys) =
        tokio::task::spawn_blocking(move || -> Result<(Store, Keys), StartError> {
            let store = Store::open(&database)?;
            let keys = Keys::load_or_create(&store)?;
            // Whatever expired while the server was down goes before it serves; the housekeeping
            // task repeats this every minute.
            store.run(|conn| crate::housekeeping::purge(conn, &policy, crate::clock::now()))?;
            Ok((store, keys))
        })
        .await
        .map_err(|e| ServerError::Internal(format!("database worker failed: {e}")))??;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let url = match &config.public_url {
        Some(url) => public_url(url)?,
        None => format!("http://{local_addr}"),
    };

    let notifier = crate::notify::Notifier::new(
        tokio::runtime::Handle::current(),
        store.clone(),
        config.notification_key_file.as_deref(),
    )?;
    let state = AppState(Arc::new(App {
        store,
        keys,
        url,
        policy: config.policy.clone(),
        clients,
        sms: Box::new(OutboxSms),
        push,
        notifier,
        app_links: config.app_links.clone(),
        draining: std::sync::atomic::AtomicBool::new(false),
    }));
    let app = router(state.clone());
    let limits = crate::serve::ConnectionLimits {
        max_connections: usize::try_from(config.policy.max_connections).unwrap_or(usize::MAX),
        max_per_address: usize::try_from(config.policy.max_connections_per_address)
            .unwrap_or(usize::MAX),
        head_timeout: std::time::Duration::from_millis(config.policy.request_head_timeout_millis),
        write_timeout: std::time::Duration::from_millis(
            config.policy.response_write_timeout_millis,
        ),
        max_age: std::time::Duration::from_secs(config.policy.max_connection_age_secs),
        request_timeout: std::time::Duration::from_millis(config.policy.request_timeout_millis),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(crate::serve::serve(listener, app, limits, async {
        // A dropped sender (the handle was dropped) also stops the server.
        let _ = stopped.await;
    }));
    let housekeeping = crate::housekeeping::spawn(state.clone());
    let push_worker = crate::push::spawn(state.clone(), push_queue);
    tracing::info!(url = %state.url, "sleutel server started");
    Ok(RunningServer {
        local_addr,
        state,
        stop: Some(stop),
        task: Some(task),
        housekeeping,
        push_worker,
    })
}

impl RunningServer {
    /// The base URL, e.g. `http://127.0.0.1:40123` (no trailing slash). It is also the issuer
    /// of action requests and ID tokens.
    pub fn url(&self) -> String {
        self.state.url.clone()
    }

    /// The socket address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets requests in flight finish, and closes the database.
    pub async fn shutdown(mut self) {
        self.state
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.housekeeping.abort();
        // Pushes still queued or retrying are given up: the phones find their requests by
        // polling.
        self.push_worker.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "server task failed");
        }
        self.state.store.close();
        tracing::info!(url = %self.state.url, "sleutel server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        // A handle dropped without shutdown() still stops the server gracefully.
        self.housekeeping.abort();
        self.push_worker.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Refuses to listen beyond loopback unless the policy allows it, and then warns: the simulators
/// under `/sim/` hand out SMS codes and identities to anyone who asks, so this server must never
/// be reachable by people it could impersonate.
fn check_listen(
    addr: SocketAddr,
    policy: &Policy,
    relying_parties: &[RelyingPartyConfig],
) -> Result<(), StartError> {
    // `to_canonical` also sees ::ffff:127.0.0.1 as loopback.
    if addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    if !policy.allow_remote_listen {
        return Err(StartError::Config(format!(
            "refusing to listen on {addr}: this reference server contains simulators that show \
             SMS codes and mint identities, so it listens on loopback (127.0.0.1 or ::1) only; \
             allow other addresses (--allow-remote, Policy::allow_remote_listen) only on a \
             closed test network"
        )));
    }
    let demo = relying_parties.iter().any(|rp| {
        rp.authentication
            == ClientAuthentication::SecretBasic(RelyingPartyConfig::DEMO_SECRET.into())
    });
    tracing::warn!(
        %addr,
        demo_relying_party_with_public_secret = demo,
        "listening beyond loopback: the simulators under /sim/ expose SMS codes and mint \
         identities for anyone who can reach this address; this server is for test networks \
         only"
    );
    Ok(())
}

fn public_url(url: &str) -> Result<String, StartError> {
    let parsed =
        url::Url::parse(url).map_err(|e| StartError::Config(format!("public URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(StartError::Config(format!(
            "public URL {url:?} must be an http(s) URL with a host"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn router(state: AppState) -> Router {
    Router::new()
        .merge(enrollment::routes())
        .merge(requests::routes())
        .merge(device::routes())
        .merge(oidc::routes())
        .merge(sim::routes())
        .route(
            sleutel_protocol::api::PATH_SERVER_KEYS,
            axum::routing::get(oidc::jwks),
        )
        .route(PATH_HEALTH, axum::routing::get(health))
        .route(PATH_READY, axum::routing::get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            std::time::Duration::from_millis(state.policy.request_timeout_millis),
            time_limit,
        ))
        // A handler that panics answers 500 like any internal error, instead of dropping the
        // connection: its database work ran on the worker (decision 0027), so no blocking
        // thread's join turns the panic into an error any more. The transaction it held rolled
        // back as the panic unwound.
        .layer(CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of a request: its method and path only. The default span records the whole URI,
/// and query strings carry what no log may keep: the one-time token of an app-to-app return
/// URL, a sign-in link's MAC, the `login_hint` (a phone number), `state` and `nonce`.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// Answers 408 `request_timeout` when a request, its body's upload included, takes longer
/// than `limit`. The handler is dropped at its next wait: a database unit of work never spans
/// one (decision 0027), so it has committed or rolled back whole; one that waits for the
/// connection on a blocking thread still runs to its end there, unanswered.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ServerError::RequestTimeout.into_response(),
    }
}

/// The answer to a request whose handler panicked: the API's internal error. The panic's
/// message is not shown (it could quote a value); the panic hook has logged it.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    ServerError::Internal("the request failed inside the server".into()).into_response()
}

/// Liveness: the process serves HTTP. Asks nothing of the database, so that a database outage
/// does not make an orchestrator restart every instance.
pub(crate) const PATH_HEALTH: &str = "/healthz";

/// Readiness: this instance should get requests (its database answers, it is not shutting
/// down).
pub(crate) const PATH_READY: &str = "/readyz";

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "alive" }))
}

async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "draining" })),
        )
            .into_response();
    }
    match state.db(|_, conn| crate::store::ping(conn)).await {
        Ok(()) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        // Every pooled connection busy for the pool's wait: the database answers, this instance
        // is loaded. Saying "not ready" would send its load to the others, which share the
        // database, and pull them out in turn.
        Err(ServerError::Busy) => {
            axum::Json(serde_json::json!({ "status": "ready" })).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "database unavailable" })),
            )
                .into_response()
        }
    }
}

async fn not_found(uri: Uri) -> ServerError {
    ServerError::NotFound(format!("no such path {}", uri.path()))
}

async fn method_not_allowed() -> ServerError {
    ServerError::HttpMethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(addr: &str, allow_remote_listen: bool) -> bool {
        let policy = Policy {
            allow_remote_listen,
            ..Policy::default()
        };
        check_listen(
            addr.parse().unwrap(),
            &policy,
            &[RelyingPartyConfig::demo()],
        )
        .is_ok()
    }

    #[test]
    fn loopback_addresses_need_no_permission() {
        for addr in [
            "127.0.0.1:8440",
            "127.9.9.9:0",
            "[::1]:0",
            "[::ffff:127.0.0.1]:0",
        ] {
            assert!(allowed(addr, false), "{addr}");
        }
    }

    #[test]
    fn other_addresses_need_the_policy_to_allow_them() {
        for addr in [
            "0.0.0.0:8440",
            "192.168.1.10:0",
            "[::]:0",
            "[::ffff:10.0.0.1]:0",
        ] {
            assert!(!allowed(addr, false), "{addr}");
            assert!(allowed(addr, true), "{addr}");
        }
    }
}
