//! A round-robin TCP balancer on loopback: several server instances behind one address, as a
//! load balancer puts them behind one public name. Each accepted connection goes to the next
//! instance and stays there (HTTP keep-alive keeps a client's requests on one instance until
//! its pool opens another connection).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

use crate::{HarnessError, Result};

/// A running balancer; stops when dropped.
pub struct Balancer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Binds `listener`'s address already taken by the caller and forwards every connection
    /// to the next of `backends` in turn.
    pub fn start(listener: TcpListener, backends: Vec<SocketAddr>) -> Result<Self> {
        if backends.is_empty() {
            return Err(HarnessError::Usage("a balancer needs a backend".into()));
        }
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::Server(e.to_string()))?;
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let backend = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
                tokio::spawn(forward(client, backend));
            }
        });
        Ok(Self { addr, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways between `client` and `backend` until either side closes. A backend that
/// cannot be reached closes the client's connection, as a balancer without health checks does.
async fn forward(mut client: TcpStream, backend: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
