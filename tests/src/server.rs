//! The reference server started in this process on a free loopback port, with its database in a
//! temporary directory that lives as long as the handle; the end-to-end tests and the server's
//! own integration tests start one per test, so tests stay independent and run in parallel.

use std::net::SocketAddr;
use std::path::PathBuf;

use sleutel_server::{
    AppLinksConfig, Policy, PushConfig, RelyingPartyConfig, RunningServer, ServerConfig,
};

use crate::rp::{ClientKey, RelyingParty};
use crate::sim::SimClient;
use crate::{HarnessError, Result, http_client};

/// The environment variable that makes every in-process server store in PostgreSQL: the URL
/// of a cluster where the tests may create databases (`scripts/with-postgres` sets it). Each
/// server then gets a fresh database of its own, so tests stay independent.
pub const POSTGRES_ENV: &str = "SLEUTEL_TEST_POSTGRES";

/// A running in-process server and the directory that holds its database.
pub struct InProcessServer {
    server: RunningServer,
    dir: tempfile::TempDir,
    /// The PostgreSQL database of this server, when the tests run on PostgreSQL; dropped with
    /// the handle.
    database: Option<TestDatabase>,
    relying_parties: Vec<RelyingPartyConfig>,
    policy: Policy,
    push: PushConfig,
    app_links: AppLinksConfig,
    /// One HTTP client for every simulator and relying party of this server.
    http: reqwest::Client,
}

impl InProcessServer {
    /// Starts a server with the demo relying party and the default policy.
    pub async fn start() -> Result<Self> {
        Self::start_with(Policy::default(), vec![RelyingPartyConfig::demo()]).await
    }

    /// Starts a server with the given policy and relying parties.
    pub async fn start_with(
        policy: Policy,
        relying_parties: Vec<RelyingPartyConfig>,
    ) -> Result<Self> {
        Self::start_with_push(policy, relying_parties, PushConfig::default()).await
    }

    /// Starts a server with the given policy and relying parties on loopback `port` (0: any
    /// free one), as the web demo does when asked for a fixed port.
    pub async fn start_on(
        port: u16,
        policy: Policy,
        relying_parties: Vec<RelyingPartyConfig>,
    ) -> Result<Self> {
        let (push, app_links) = (PushConfig::default(), AppLinksConfig::default());
        Self::start_with_config(policy, relying_parties, push, app_links, Some(port)).await
    }

    /// Starts a server with the given policy and relying parties that pushes through the
    /// services `push` configures (stand-ins of FCM and APNs on loopback, in tests).
    pub async fn start_with_push(
        policy: Policy,
        relying_parties: Vec<RelyingPartyConfig>,
        push: PushConfig,
    ) -> Result<Self> {
        Self::start_with_config(
            policy,
            relying_parties,
            push,
            AppLinksConfig::default(),
            None,
        )
        .await
    }

    /// Starts a server with the demo relying party and the default policy that publishes
    /// `app_links` as the apps of its sign-in links.
    pub async fn start_with_app_links(app_links: AppLinksConfig) -> Result<Self> {
        Self::start_with_config(
            Policy::default(),
            vec![RelyingPartyConfig::demo()],
            PushConfig::default(),
            app_links,
            None,
        )
        .await
    }

    async fn start_with_config(
        policy: Policy,
        relying_parties: Vec<RelyingPartyConfig>,
        push: PushConfig,
        app_links: AppLinksConfig,
        port: Option<u16>,
    ) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::Server(e.to_string()))?;
        let database = match std::env::var(POSTGRES_ENV) {
            Ok(cluster) if !cluster.is_empty() => Some(TestDatabase::create(&cluster).await?),
            _ => None,
        };
        let server = launch(
            &dir,
            database.as_ref().map(TestDatabase::url),
            &relying_parties,
            &policy,
            &push,
            &app_links,
            port,
        )
        .await?;
        Ok(Self {
            server,
            dir,
            database,
            relying_parties,
            policy,
            push,
            app_links,
            http: http_client()?,
        })
    }

    /// The server's database file.
    pub fn db_path(&self) -> PathBuf {
        db_path(&self.dir)
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The running server, for simulator-side helpers such as minting identity tokens.
    pub fn running(&self) -> &RunningServer {
        &self.server
    }

    /// The HTTP client of this server's simulators and relying parties, for a request made by
    /// hand (a broken body, a wrong method, a path that does not exist).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The simulators of this server.
    pub fn sim(&self) -> SimClient {
        SimClient::with_client(self.http.clone(), &self.url())
    }

    /// The demo relying party ("Online overheid") of this server.
    pub fn rp(&self) -> RelyingParty {
        self.relying_party(
            RelyingPartyConfig::DEMO_CLIENT_ID,
            RelyingPartyConfig::DEMO_SECRET,
        )
    }

    /// The relying party `client_id` with `secret` of this server.
    pub fn relying_party(&self, client_id: &str, secret: &str) -> RelyingParty {
        RelyingParty::with_client(self.http.clone(), &self.url(), client_id, secret)
    }

    /// The relying party `client_id` of this server, authenticating with `key`
    /// (`private_key_jwt`).
    pub fn relying_party_with_key(&self, client_id: &str, key: ClientKey) -> RelyingParty {
        RelyingParty::with_client(self.http.clone(), &self.url(), client_id, "")
            .signing_with(client_id, key)
    }

    /// Stops the server and starts it again on the same port and database, as after a crash or
    /// an upgrade: enrolled phones must keep working.
    pub async fn restart(self) -> Result<Self> {
        let policy = self.policy.clone();
        self.restart_with(policy).await
    }

    /// Stops the server and starts it again on the same port and database with `policy`, as an
    /// operator changing a value does.
    pub async fn restart_with(self, policy: Policy) -> Result<Self> {
        let port = self.server.local_addr().port();
        self.server.shutdown().await;
        let server = launch(
            &self.dir,
            self.database.as_ref().map(TestDatabase::url),
            &self.relying_parties,
            &policy,
            &self.push,
            &self.app_links,
            Some(port),
        )
        .await?;
        Ok(Self {
            server,
            policy,
            ..self
        })
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The database file of a server whose data lives in `dir`.
fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("sleutel-server.db")
}

/// Starts a server on loopback with its database in `dir`, pushing as `push` says, on `port` (a
/// free one if `None`).
async fn launch(
    dir: &tempfile::TempDir,
    database_url: Option<&str>,
    relying_parties: &[RelyingPartyConfig],
    policy: &Policy,
    push: &PushConfig,
    app_links: &AppLinksConfig,
    port: Option<u16>,
) -> Result<RunningServer> {
    // `RUST_LOG=...` shows the server's log in a test's output (the first server installs it).
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0))),
        db_path: db_path(dir),
        database_url: database_url.map(str::to_owned),
        // The pings of a PostgreSQL server are sealed under a key of the configuration.
        notification_key_file: match database_url {
            Some(_) => Some(notification_key_file(dir)?),
            None => None,
        },
        public_url: None,
        relying_parties: relying_parties.to_vec(),
        policy: policy.clone(),
        push: push.clone(),
        app_links: app_links.clone(),
    };
    sleutel_server::start(config)
        .await
        .map_err(|e| HarnessError::Server(e.to_string()))
}

/// The notification key file of a server whose data lives in `dir`, made on first use.
fn notification_key_file(dir: &tempfile::TempDir) -> Result<PathBuf> {
    let path = dir.path().join("notification.key");
    if !path.exists() {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| HarnessError::Server(e.to_string()))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&path, hex).map_err(|e| HarnessError::Server(e.to_string()))?;
    }
    Ok(path)
}

/// Creates an empty database in the PostgreSQL cluster at `cluster` (a URL whose role may
/// create databases) and returns the URL of the new database. The database stays after the
/// tests; [`TestDatabase`] removes its own.
pub async fn fresh_postgres_database(cluster: &str) -> Result<String> {
    Ok(create_database(cluster).await?.1)
}

/// A database of its own in the tests' PostgreSQL cluster, dropped (with any connection still
/// open to it) when the handle is: a suite of hundreds of servers would otherwise leave
/// hundreds of databases filling the cluster's disk.
pub struct TestDatabase {
    cluster: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database in the cluster at `cluster` (a URL whose role may create
    /// databases).
    pub async fn create(cluster: &str) -> Result<Self> {
        let (name, url) = create_database(cluster).await?;
        Ok(Self {
            cluster: cluster.to_owned(),
            name,
            url,
        })
    }

    /// The URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let cluster = self.cluster.clone();
        // The name is ours (hex digits), never input: it goes into the statement text.
        // FORCE ends the connections of a server that is still shutting down.
        let drop_statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // On a thread of its own: the handle is often dropped on a runtime's thread, which must
        // not wait on a runtime.
        let dropped = std::thread::spawn(move || -> std::result::Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&cluster, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                let driver = tokio::spawn(connection);
                let result = client.batch_execute(&drop_statement).await;
                drop(client);
                let _ = driver.await;
                result.map_err(|e| e.to_string())
            })
        })
        .join();
        // A database left behind costs disk, not correctness: say so and go on.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop the test database {}", self.name),
        }
    }
}

/// Creates an empty database with a random name in the cluster at `cluster`; returns its name
/// and URL.
async fn create_database(cluster: &str) -> Result<(String, String)> {
    let fail = |e: &dyn std::fmt::Display| HarnessError::Server(format!("PostgreSQL: {e}"));
    let mut name = String::from("sleutel_test_");
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| fail(&e))?;
    for byte in random {
        name.push_str(&format!("{byte:02x}"));
    }
    let (client, connection) = tokio_postgres::connect(cluster, tokio_postgres::NoTls)
        .await
        .map_err(|e| fail(&e))?;
    let driver = tokio::spawn(connection);
    // The name is ours (hex digits), never input: it goes into the statement text. FILE_COPY
    // copies the template's files instead of writing all of them to the WAL (PostgreSQL 15 and
    // newer), which keeps a suite of hundreds of databases from growing the WAL by gigabytes.
    client
        .batch_execute(&format!("CREATE DATABASE {name} STRATEGY = FILE_COPY"))
        .await
        .map_err(|e| fail(&e))?;
    drop(client);
    let _ = driver.await;
    let mut url = url::Url::parse(cluster).map_err(|e| fail(&e))?;
    url.set_path(&format!("/{name}"));
    Ok((name, url.to_string()))
}
