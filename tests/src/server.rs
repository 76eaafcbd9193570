//! The reference server started in this process on a free loopback port, with its database in a
//! temporary directory that lives as long as the handle.

use std::net::SocketAddr;
use std::path::PathBuf;

use sleutel_server::{Policy, RelyingPartyConfig, RunningServer, ServerConfig};

use crate::{HarnessError, Result};

/// A running in-process server and the directory that holds its database.
pub struct InProcessServer {
    server: Option<RunningServer>,
    dir: tempfile::TempDir,
    relying_parties: Vec<RelyingPartyConfig>,
    policy: Policy,
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
        let dir = tempfile::tempdir().map_err(|e| HarnessError::Server(e.to_string()))?;
        let mut this = Self {
            server: None,
            dir,
            relying_parties,
            policy,
        };
        this.server = Some(this.launch(None).await?);
        Ok(this)
    }

    async fn launch(&self, port: Option<u16>) -> Result<RunningServer> {
        let listen = SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0)));
        let config = ServerConfig {
            listen,
            db_path: self.db_path(),
            public_url: None,
            relying_parties: self.relying_parties.clone(),
            policy: self.policy.clone(),
        };
        sleutel_server::start(config)
            .await
            .map_err(|e| HarnessError::Server(e.to_string()))
    }

    /// The server's database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("sleutel-server.db")
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        self.server.as_ref().map(|s| s.url()).unwrap_or_default()
    }

    /// The running server, for simulator-side helpers such as minting identity tokens.
    pub fn running(&self) -> Result<&RunningServer> {
        self.server
            .as_ref()
            .ok_or_else(|| HarnessError::Server("server is stopped".into()))
    }

    /// Stops the server and starts it again on the same port and database, as after a crash or
    /// an upgrade: enrolled phones must keep working.
    pub async fn restart(&mut self) -> Result<()> {
        let port = self.running()?.local_addr().port();
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.server = Some(self.launch(Some(port)).await?);
        Ok(())
    }

    /// Stops the server.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}
