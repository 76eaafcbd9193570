//! Where the server may listen: the simulators hand out SMS codes and identities, so the
//! server stays on loopback unless the operator allows more.

use std::net::SocketAddr;

use sleutel_server::{Policy, PushConfig, RelyingPartyConfig, ServerConfig, StartError};

use sleutel_harness::http_client;

fn config(dir: &tempfile::TempDir, listen: SocketAddr, policy: Policy) -> ServerConfig {
    ServerConfig {
        listen,
        db_path: dir.path().join("server.db"),
        database_url: None,
        notification_key_file: None,
        public_url: None,
        relying_parties: vec![RelyingPartyConfig::demo()],
        policy,
        push: PushConfig::default(),
        app_links: Default::default(),
    }
}

#[tokio::test]
async fn the_server_refuses_to_listen_beyond_loopback_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let everywhere = SocketAddr::from(([0, 0, 0, 0], 0));

    let refused = sleutel_server::start(config(&dir, everywhere, Policy::default())).await;

    let Err(error) = refused else {
        panic!("the server listened on {everywhere}");
    };
    assert!(matches!(error, StartError::Config(_)), "{error}");
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn the_server_listens_beyond_loopback_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let everywhere = SocketAddr::from(([0, 0, 0, 0], 0));
    let policy = Policy {
        allow_remote_listen: true,
        ..Policy::default()
    };

    let server = sleutel_server::start(config(&dir, everywhere, policy))
        .await
        .unwrap();

    assert!(server.local_addr().ip().is_unspecified());
    let port = server.local_addr().port();
    let discovery = http_client()
        .unwrap()
        .get(format!(
            "http://127.0.0.1:{port}/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap();
    assert!(discovery.status().is_success());
    server.shutdown().await;
}

#[tokio::test]
async fn any_loopback_address_is_accepted_without_permission() {
    let dir = tempfile::tempdir().unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 2], 0));

    let server = sleutel_server::start(config(&dir, loopback, Policy::default()))
        .await
        .unwrap();

    assert_eq!(server.local_addr().ip(), loopback.ip());
    server.shutdown().await;
}
