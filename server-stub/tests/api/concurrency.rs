//! Concurrent requests: served in parallel, and counted without lost updates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::{ApiError, codes};
use tokio::task::JoinSet;

use crate::common::*;

#[tokio::test]
async fn concurrent_activations_all_succeed() {
    let server = Arc::new(server().await);
    let mut tasks = JoinSet::new();
    for i in 0..6 {
        let server = server.clone();
        tasks.spawn(async move { enroll(&server, &format!("+3247000030{i}")).await.completed });
    }

    let mut accounts = Vec::new();
    while let Some(done) = tasks.join_next().await {
        accounts.push(done.unwrap().account_id);
    }

    accounts.sort();
    accounts.dedup();
    assert_eq!(accounts.len(), 6);
}

/// Enrolls `number`, starts a login and sends `guesses` approvals with a wrong code for it at
/// once; the person and every refusal, in the order they came back.
async fn guess_wrong_codes_at_once(
    server: &InProcessServer,
    number: &str,
    guesses: usize,
) -> (Arc<Enrolled>, Vec<ApiError>) {
    let e = Arc::new(enroll(server, number).await);
    server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let mut tasks = JoinSet::new();
    for _ in 0..guesses {
        let (e, request, jws) = (e.clone(), request.clone(), jws.clone());
        tasks.spawn(async move {
            let wrong = SigningKey::generate();
            err(e
                .answer(&request, &e.approval(&request, &jws, &wrong))
                .await)
            .await
            .1
        });
    }
    let mut refusals = Vec::new();
    while let Some(done) = tasks.join_next().await {
        refusals.push(done.unwrap());
    }
    (e, refusals)
}

#[tokio::test]
async fn concurrent_wrong_codes_are_each_counted_once() {
    let server = server().await;
    let (_, refusals) = guess_wrong_codes_at_once(&server, "+32470000310", 3).await;

    let mut outcomes: Vec<_> = refusals
        .into_iter()
        .map(|error| (error.error, error.attempts_left))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![
            (codes::ACCOUNT_BLOCKED.to_string(), Some(0)),
            (codes::WRONG_PIN.to_string(), Some(1)),
            (codes::WRONG_PIN.to_string(), Some(2)),
        ]
    );
}

#[tokio::test]
async fn ten_concurrent_wrong_codes_block_the_account_after_exactly_three() {
    let server = server().await;
    let (e, refusals) = guess_wrong_codes_at_once(&server, "+32470000311", 10).await;

    let (mut wrong_pins, mut blocked) = (Vec::new(), 0);
    for error in refusals {
        match error.error.as_str() {
            codes::WRONG_PIN => wrong_pins.push(error.attempts_left),
            codes::ACCOUNT_BLOCKED => blocked += 1,
            // On PostgreSQL a guess that lost its conflicts more often than a unit is run
            // again is refused and counts nothing.
            codes::TEMPORARILY_UNAVAILABLE => {}
            other => panic!("unexpected answer to a wrong code: {other}"),
        }
    }

    wrong_pins.sort();
    assert_eq!(wrong_pins, vec![Some(1), Some(2)], "the first two guesses");
    assert!(
        blocked >= 1,
        "the third guess blocks, and the later ones find it blocked"
    );
    let account = &e.completed.account_id;
    let counted: i64 = server
        .sql_value(
            "SELECT count(*) FROM account_events WHERE account_id = ?1 AND event = 'wrong_code'",
            &[account.into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(counted, 3, "exactly three wrong codes were counted");
    let is_blocked: i64 = server
        .sql_value(
            "SELECT count(*) FROM accounts WHERE id = ?1 AND blocked_at IS NOT NULL",
            &[account.into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(is_blocked, 1);
}

/// While something holds the database for long (a purge, another process's lock), only
/// database work waits: the requests that need it wait off the async workers, so a route
/// without the database still answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_database_job_leaves_the_other_routes_answering() {
    let server = Arc::new(server().await);
    let holder = {
        let server = server.clone();
        std::thread::spawn(move || server.running().hold_database(Duration::from_secs(3)))
    };
    // The waits block this thread, not the runtime's workers or its timer: a stalled runtime
    // must not be able to stall the clock of the test that looks for the stall.
    std::thread::sleep(Duration::from_millis(200));
    // As many database requests as the runtime has workers, all waiting for the connection.
    let mut waiting = JoinSet::new();
    for _ in 0..4 {
        let server = server.clone();
        waiting.spawn(async move { server.rp().start_login("+32470000399").await.is_ok() });
    }
    std::thread::sleep(Duration::from_millis(300));

    let asked = Instant::now();
    let keys = reqwest::get(format!("{}/oidc/jwks", server.url()))
        .await
        .unwrap();
    let took = asked.elapsed();

    assert!(keys.status().is_success());
    assert!(took < Duration::from_secs(1), "the key set took {took:?}");
    holder.join().unwrap().unwrap();
    let mut answered = 0;
    while let Some(done) = waiting.join_next().await {
        done.unwrap();
        answered += 1;
    }
    assert_eq!(answered, 4);
}

#[tokio::test]
async fn an_approval_and_a_decline_of_one_request_at_once_give_it_one_answer() {
    let server = server().await;
    let e = enroll(&server, "+32470000320").await;
    let started = server.rp().start_login(&e.number).await.unwrap();
    let (request, jws) = e.the_request().await;
    let (approval, decline) = (
        e.approval(&request, &jws, &e.pin),
        e.decline(&request, &jws),
    );

    let (approved, declined) =
        tokio::join!(e.answer(&request, &approval), e.answer(&request, &decline));

    let approval_won = approved.status().is_success();
    assert_ne!(approval_won, declined.status().is_success());
    let loser = if approval_won { declined } else { approved };
    let (status, error) = err(loser).await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT);
    assert_eq!(error.error, codes::REQUEST_ALREADY_ANSWERED);
    let token = server.rp().token_raw(&started.auth_req_id).await.unwrap();
    assert_eq!(token.status().is_success(), approval_won);
}

#[tokio::test]
async fn two_completions_of_one_enrollment_at_once_make_one_account_and_one_device() {
    let server = server().await;
    let at = at_keys(&server, "+32470000321").await;
    let pin = SigningKey::generate();

    let (first, second) = tokio::join!(
        at.phone.complete(&at.started, &pin),
        at.phone.complete(&at.started, &pin)
    );

    let first: sleutel_protocol::api::EnrollmentCompleted = ok(first).await;
    let second: sleutel_protocol::api::EnrollmentCompleted = ok(second).await;
    assert_eq!(first.account_id, second.account_id);
    let accounts: i64 = server
        .sql_value(
            "SELECT count(*) FROM accounts WHERE national_register_number = ?1",
            &[(&at.citizen.national_register_number).into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(accounts, 1);
    let devices: i64 = server
        .sql_value(
            "SELECT count(*) FROM devices WHERE account_id = ?1",
            &[(&first.account_id).into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(devices, 1);
}

#[tokio::test]
async fn concurrent_sms_resends_send_one_code_and_refuse_the_rest_as_too_soon() {
    let server = server_with(sleutel_server::Policy {
        sms_resend_after_secs: 1,
        ..sleutel_server::Policy::default()
    })
    .await;
    let at = Arc::new(enroll_to_sms(&server, "+32470000322").await);
    // Past the wait after the first code: the next resend is allowed, once.
    std::thread::sleep(Duration::from_millis(1100));
    let path = sleutel_protocol::api::path_enrollment_sms_resend(&at.started.enrollment_id);
    let mut tasks = JoinSet::new();
    for _ in 0..6 {
        let (at, path) = (at.clone(), path.clone());
        tasks.spawn(async move {
            at.phone
                .send(reqwest::Method::POST, &path, Vec::new())
                .await
        });
    }

    let mut sent = 0;
    let mut too_soon = 0;
    while let Some(done) = tasks.join_next().await {
        let answer = done.unwrap();
        if answer.status().is_success() {
            sent += 1;
        } else {
            let (_, error) = err(answer).await;
            assert_eq!(error.error, codes::RESEND_TOO_SOON);
            too_soon += 1;
        }
    }

    assert_eq!((sent, too_soon), (1, 5));
    let messages = server.sim().sms_messages("+32470000322").await.unwrap();
    assert_eq!(messages.messages.len(), 2, "the first code and one resent");
}
