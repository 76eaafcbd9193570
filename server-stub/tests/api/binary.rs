//! The `sleutel-server` binary: one "listening on" line on stdout, a clean stop on SIGTERM,
//! loopback only unless `--allow-remote`, relying-party secrets from the environment, keys
//! (`private_key_jwt`) from the registration file, policy values from the policy file.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use sleutel_protocol::api::{self, codes};

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_harness::http_client;
use sleutel_harness::rp::ClientKey;

use crate::common::*;

/// The server binary with a database in `dir`, no inherited relying-party secrets and no
/// log filter from the environment.
fn server_command(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sleutel-server"));
    command
        .arg("--db")
        .arg(dir.path().join("bin.db"))
        .env_remove("RUST_LOG")
        .env_remove("SLEUTEL_RP_SECRET_SHOP")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for the "listening on" line and returns the URL.
fn announced_url(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// Stops the server with SIGTERM, checks it exits cleanly, and returns what it logged.
fn stop(mut child: Child) -> String {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

/// Runs the server expecting it to refuse to start; returns what it said.
fn refusal(mut command: Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success(), "the server started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn bc_authorize_as(url: &str, client_id: &str, secret: &str) -> (StatusCode, String) {
    let response = http_client()
        .unwrap()
        .post(format!("{url}{}", api::oidc::PATH_BC_AUTHORIZE))
        .basic_auth(client_id, Some(secret))
        .form(&[("scope", "openid"), ("login_hint", "+32479999999")])
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status.is_success() {
        return (status, String::new());
    }
    let (status, error) = err(response).await;
    (status, error.error)
}

#[tokio::test]
async fn the_binary_announces_its_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server_command(&dir)
        .args(["--listen", "127.0.0.1:0", "--rp", "shop:s3cret:Webwinkel"])
        .spawn()
        .unwrap();
    let url = announced_url(&mut child);

    let discovery = http_client()
        .unwrap()
        .get(format!("{url}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();

    assert!(discovery.status().is_success());
    stop(child);
}

#[tokio::test]
async fn the_binary_refuses_a_non_loopback_address_without_allow_remote() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(&dir);
    command.args(["--listen", "0.0.0.0:0"]);

    let said = refusal(command);

    assert!(said.contains("--allow-remote"), "{said}");
}

#[tokio::test]
async fn the_binary_listens_beyond_loopback_with_allow_remote_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server_command(&dir)
        .args(["--listen", "0.0.0.0:0", "--allow-remote"])
        .spawn()
        .unwrap();
    let url = announced_url(&mut child);
    let port = url.rsplit(':').next().unwrap().to_owned();

    let discovery = http_client()
        .unwrap()
        .get(format!(
            "http://127.0.0.1:{port}{}",
            api::oidc::PATH_DISCOVERY
        ))
        .send()
        .await
        .unwrap();

    assert!(discovery.status().is_success());
    let log = stop(child);
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("SMS codes"), "{log}");
    assert!(log.contains("test networks only"), "{log}");
}

#[tokio::test]
async fn the_binary_takes_a_relying_party_secret_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = server_command(&dir)
        .args(["--listen", "127.0.0.1:0", "--rp", "shop:Webwinkel"])
        .env("SLEUTEL_RP_SECRET_SHOP", "s3cret")
        .spawn()
        .unwrap();
    let url = announced_url(&mut child);

    // Past client authentication, the number gets its request like any other.
    let right = bc_authorize_as(&url, "shop", "s3cret").await;
    let wrong = bc_authorize_as(&url, "shop", "Webwinkel").await;

    assert_eq!(right, (StatusCode::OK, String::new()));
    assert_eq!(
        wrong,
        (StatusCode::UNAUTHORIZED, codes::INVALID_CLIENT.to_owned())
    );
    stop(child);
}

#[tokio::test]
async fn the_binary_names_the_variable_when_a_relying_party_has_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = server_command(&dir);
    command.args(["--listen", "127.0.0.1:0", "--rp", "shop:Webwinkel"]);

    let said = refusal(command);

    assert!(said.contains("SLEUTEL_RP_SECRET_SHOP"), "{said}");
}

#[tokio::test]
async fn the_help_explains_remote_listening_and_secrets_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_sleutel-server"))
        .arg("--help")
        .output()
        .unwrap();

    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(help.contains("--allow-remote"), "{help}");
    assert!(help.contains("SLEUTEL_RP_SECRET_"), "{help}");
}

/// A registration file in `dir` of the key client `shop` whose `jwks` holds `key`.
fn key_client_file(dir: &tempfile::TempDir, key: serde_json::Value) -> std::path::PathBuf {
    let path = dir.path().join("rp.json");
    let registrations = serde_json::json!([{
        "client_id": "shop", "name": "Webwinkel",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key]}
    }]);
    std::fs::write(&path, registrations.to_string()).unwrap();
    path
}

#[tokio::test]
async fn the_binary_authenticates_a_key_client_of_the_rp_file_by_its_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let key = ClientKey::new(SigningKey::generate(), Some("k1"));
    let file = key_client_file(&dir, serde_json::to_value(key.public_jwk()).unwrap());
    let mut child = server_command(&dir)
        .args(["--listen", "127.0.0.1:0", "--rp-file"])
        .arg(&file)
        .spawn()
        .unwrap();
    let url = announced_url(&mut child);
    let assertion = key
        .assertion("shop", &url, sleutel_protocol::clock::now())
        .unwrap();

    let response = http_client()
        .unwrap()
        .post(format!("{url}{}", api::oidc::PATH_BC_AUTHORIZE))
        .form(&[
            ("scope", "openid"),
            ("login_hint", "+32479999999"),
            (
                "client_assertion_type",
                api::oidc::CLIENT_ASSERTION_TYPE_JWT_BEARER,
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();

    // Past client authentication, the number gets its request like any other.
    let started: api::oidc::BackchannelAuthResponse = ok(response).await;
    assert!(!started.auth_req_id.is_empty());
    stop(child);
}

#[tokio::test]
async fn the_binary_refuses_an_rp_file_whose_jwks_holds_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = ClientKey::new(SigningKey::generate(), Some("k1"));
    let mut jwk = serde_json::to_value(key.public_jwk()).unwrap();
    jwk["d"] = serde_json::json!(sleutel_protocol::jose::b64([1u8; 32]));
    let file = key_client_file(&dir, jwk);
    let mut command = server_command(&dir);
    command
        .args(["--listen", "127.0.0.1:0", "--rp-file"])
        .arg(&file);

    let said = refusal(command);

    assert!(said.contains("private key material"), "{said}");
}

#[tokio::test]
async fn the_help_explains_private_key_jwt_registrations() {
    let output = Command::new(env!("CARGO_BIN_EXE_sleutel-server"))
        .arg("--help")
        .output()
        .unwrap();

    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("private_key_jwt"), "{help}");
    assert!(help.contains("\"jwks\""), "{help}");
}

#[tokio::test]
async fn the_binary_takes_its_policy_values_from_a_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"max_backchannel_per_client_per_minute": 1}"#).unwrap();
    let mut child = server_command(&dir)
        .args(["--listen", "127.0.0.1:0", "--rp", "shop:s3cret:Webwinkel"])
        .arg("--policy-file")
        .arg(&policy)
        .spawn()
        .unwrap();
    let url = announced_url(&mut child);

    let first = bc_authorize_as(&url, "shop", "s3cret").await;
    let second = bc_authorize_as(&url, "shop", "s3cret").await;

    // The default allows 60 a minute; the file's one leaves no room for the second.
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(second.1, codes::SLOW_DOWN);
    stop(child);
}

#[tokio::test]
async fn the_binary_refuses_a_policy_file_naming_no_policy_value() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, r#"{"max_backchannel_per_minute": 1000}"#).unwrap();
    let mut command = server_command(&dir);
    command
        .args(["--listen", "127.0.0.1:0"])
        .arg("--policy-file")
        .arg(&policy);

    let said = refusal(command);

    assert!(said.contains("max_backchannel_per_minute"), "{said}");
}
