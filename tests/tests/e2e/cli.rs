//! The `sleutel-harness` command line, as QA teams run it.

use std::process::Command;

use sleutel_harness::server::InProcessServer;

use crate::common::*;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sleutel-harness"))
}

/// `rp login` as the demo relying party, for `phone`; the secret is added by each test.
fn rp_login(url: &str, phone: &str) -> Command {
    let mut command = harness();
    command.args([
        "rp",
        "login",
        "--server",
        url,
        "--client-id",
        "online-overheid",
        "--phone",
        phone,
    ]);
    command
}

#[tokio::test]
async fn demo_command_runs_the_whole_story_and_exits_zero() {
    let output = tokio::task::spawn_blocking(|| harness().arg("demo").output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Ik log in op de online overheid"),
        "{stdout}"
    );
    assert!(stdout.contains("verified ID token"), "{stdout}");
}

/// What the phone and the relying party printed: `(rp succeeded, rp stdout, phone succeeded,
/// phone stdout)`.
type LoginRun = (bool, String, bool, String);

/// Whether `phone_number` has an account with an active phone on `server`.
fn has_active_phone(server: &InProcessServer, phone_number: &str) -> bool {
    let rows = server
        .sql_rows(
            "SELECT count(*) FROM phone_numbers p JOIN devices d ON d.account_id = p.account_id
             WHERE p.phone_number = ?1 AND d.revoked_at IS NULL",
            &[phone_number.to_owned().into()],
        )
        .unwrap();
    rows.first()
        .and_then(|row| row.first().cloned().flatten())
        .is_some_and(|count| count != "0")
}

/// Runs `phone` (enrolling a new citizen on `phone_number`, then answering one request with
/// `phone_args`) beside `rp login` with `rp_args`, started once the phone has enrolled.
async fn login_while_the_phone_answers(
    server: &InProcessServer,
    phone_number: &'static str,
    phone_args: &'static [&'static str],
    rp_args: &'static [&'static str],
) -> LoginRun {
    let url = &server.url();
    let state = tempfile::tempdir().unwrap();
    let state_path = state.path().to_owned();
    let phone_url = url.to_owned();
    let phone = tokio::task::spawn_blocking(move || {
        harness()
            .args([
                "phone",
                "--server",
                &phone_url,
                "--phone",
                phone_number,
                "--count",
                "1",
                "--timeout",
                "30",
            ])
            .args(phone_args)
            .arg("--state")
            .arg(&state_path)
            .output()
    });
    // The relying party starts once the phone has enrolled (its account has an active phone on
    // the server): a request for the number before that would go to nobody, and be answered
    // just like one to a person who never answers.
    for _ in 0..150 {
        if has_active_phone(server, phone_number) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        has_active_phone(server, phone_number),
        "the phone never enrolled"
    );
    let rp_url = url.to_owned();
    let rp = tokio::task::spawn_blocking(move || {
        rp_login(&rp_url, phone_number)
            .args(rp_args)
            .env("SLEUTEL_RP_SECRET", "demo-secret")
            .output()
            .unwrap()
    });
    let rp = rp.await.unwrap();
    let phone = phone.await.unwrap().unwrap();
    (
        rp.status.success(),
        String::from_utf8_lossy(&rp.stdout).into_owned(),
        phone.status.success(),
        String::from_utf8_lossy(&phone.stdout).into_owned(),
    )
}

#[tokio::test]
async fn phone_and_rp_commands_log_a_citizen_in() {
    let server = server().await;

    let (rp_ok, rp_out, phone_ok, phone_out) =
        login_while_the_phone_answers(&server, "+32473000001", &[], &["--message", "CLI-1"]).await;

    assert!(rp_ok, "{rp_out}");
    assert!(phone_ok, "{phone_out}");
    let claims: serde_json::Value = serde_json::from_str(&rp_out).unwrap();
    assert!(claims["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(phone_out.contains("\"answer\":\"approved\""), "{phone_out}");
    assert!(phone_out.contains("CLI-1"), "{phone_out}");
}

#[tokio::test]
async fn rp_share_data_with_an_optional_claim_the_phone_leaves_out() {
    let server = server().await;

    let (rp_ok, rp_out, phone_ok, phone_out) = login_while_the_phone_answers(
        &server,
        "+32473000003",
        &["--share", ""],
        &[
            "--kind",
            "share-data",
            "--scope",
            "openid",
            "--claim",
            "birthdate",
            "--optional-claim",
            "phone_number",
        ],
    )
    .await;

    assert!(rp_ok, "{rp_out}");
    assert!(phone_ok, "{phone_out}");
    let claims: serde_json::Value = serde_json::from_str(&rp_out).unwrap();
    assert!(claims["birthdate"].as_str().is_some(), "{rp_out}");
    assert!(claims.get("phone_number").is_none(), "{rp_out}");
    assert!(claims.get("name").is_none(), "{rp_out}");
}

#[tokio::test]
async fn rp_payment_confirmation_is_shown_on_the_phone_and_approved() {
    let server = server().await;

    let (rp_ok, rp_out, phone_ok, phone_out) = login_while_the_phone_answers(
        &server,
        "+32473000004",
        &[],
        &[
            "--kind",
            "confirm-transaction",
            "--amount",
            "12.50",
            "--payee",
            "Stad Gent",
            "--iban",
            "BE68539007547034",
        ],
    )
    .await;

    assert!(rp_ok, "{rp_out}");
    assert!(phone_ok, "{phone_out}");
    assert!(phone_out.contains("Stad Gent"), "{phone_out}");
    assert!(phone_out.contains("12.50"), "{phone_out}");
    assert!(phone_out.contains("\"answer\":\"approved\""), "{phone_out}");
}

#[tokio::test]
async fn rp_command_prints_the_oauth_error_and_fails_for_a_number_that_is_no_mobile_number() {
    let server = server().await;
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        rp_login(&url, "+3221234567")
            .args(["--secret", "demo-secret"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("invalid_request"));
}

/// Runs `phone` on `state` with `args`, returning whether it succeeded and what it printed.
async fn phone_run(url: &str, state: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut command = harness();
    command
        .args([
            "phone",
            "--server",
            url,
            "--phone",
            "+32473000002",
            "--count",
            "0",
        ])
        .args(args)
        .arg("--state")
        .arg(state);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn phone_command_enrolls_through_each_source_and_runs_the_account_life_flags() {
    let server = server().await;
    let url = server.url();
    for source in ["eid", "counter"] {
        let state = tempfile::tempdir().unwrap();

        let enrolled = phone_run(&url, state.path(), &["--source", source]).await;
        let changed = phone_run(
            &url,
            state.path(),
            &["--new-code", "27182", "--enable-biometrics"],
        )
        .await;
        let deactivated = phone_run(&url, state.path(), &["--deactivate"]).await;

        assert!(enrolled.0, "{source}: {}", enrolled.1);
        assert!(enrolled.1.contains("account of"), "{}", enrolled.1);
        assert!(changed.0, "{source}: {}", changed.1);
        assert!(
            changed.1.contains("biometrics are enabled"),
            "{}",
            changed.1
        );
        assert!(deactivated.0, "{source}: {}", deactivated.1);
    }
}
