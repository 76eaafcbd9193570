//! Crash consistency: the server binary killed with SIGKILL at random moments under the load of
//! simulated citizens, and the phone core killed in the middle of its steps. Each run prints its
//! seed; `SLEUTEL_CRASH_SEED=<seed>` replays it (docs/reliability.md).

use std::path::Path;
use std::time::Duration;

use sleutel_core::{Approval, CoreError};
use sleutel_harness::crash::{
    CODE, CrashOptions, PhoneStep, PhoneStepArgs, SeededRng, StepEnd, StoredAccount,
    StoredEnrollment, StoredRequest, StoredState, run_phone_step, run_server_crashes,
    seed_from_env,
};
use sleutel_harness::phone::VirtualPhone;
use sleutel_harness::rp::{LoginRequest, RelyingParty, TEST_BINDING_MESSAGE};
use sleutel_harness::server::InProcessServer;
use sleutel_protocol::api::oidc::BackchannelAuthResponse;
use sleutel_protocol::api::sim::Citizen;

use crate::common;
use sleutel_server::{Database, OpenedDatabase};

/// Kills of the server in one run: enough for the kills to land in every kind of call.
const SERVER_KILLS: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_server_under_load_loses_nothing_it_acknowledged() {
    let seed = seed_from_env("server crash run").unwrap();
    let report = run_server_crashes(
        &CrashOptions {
            seed,
            kills: SERVER_KILLS,
            citizens: 6,
            min_uptime: Duration::from_millis(150),
            max_uptime: Duration::from_millis(900),
        },
        &open_database,
    )
    .await
    .unwrap();
    eprintln!("{}", report.summary());
    assert!(
        report.violations.is_empty(),
        "replay with SLEUTEL_CRASH_SEED={seed}:\n{}",
        report.violations.join("\n")
    );
    assert!(report.kills > SERVER_KILLS, "{}", report.summary());
    // The kills landed among every kind of call: each was acknowledged at least once.
    for kind in [
        "enrollments completed",
        "identity codes used",
        "SMS resends",
        "wrong SMS codes",
        "logins approved",
        "logins declined",
        "wrong codes",
        "tokens collected",
    ] {
        assert!(
            report.counts.get(kind).copied().unwrap_or(0) > 0,
            "nothing of {kind:?}: {}",
            report.summary()
        );
    }
}

/// The database as the next start finds it, through the server's testing hook.
fn open_database(database: &Database) -> Result<Box<dyn StoredState>, String> {
    Ok(Box::new(Stored(
        OpenedDatabase::open(database).map_err(|e| e.to_string())?,
    )))
}

struct Stored(OpenedDatabase);

impl StoredState for Stored {
    fn half_completed_enrollments(&self) -> Result<Vec<String>, String> {
        self.0
            .half_completed_enrollments()
            .map_err(|e| e.to_string())
    }
    fn account(&self, national_register_number: &str) -> Result<Option<StoredAccount>, String> {
        let parts = self
            .0
            .account(national_register_number)
            .map_err(|e| e.to_string())?;
        Ok(parts.map(|p| StoredAccount {
            account_id: p.account_id,
            active_devices: p.active_devices,
            wrong_codes: p.wrong_codes,
            blocked: p.blocked,
        }))
    }
    fn request(&self, request_id: &str) -> Result<Option<StoredRequest>, String> {
        let state = self.0.request(request_id).map_err(|e| e.to_string())?;
        Ok(state.map(|r| StoredRequest {
            status: r.status,
            token_issued: r.token_issued,
        }))
    }
    fn enrollment(&self, enrollment_id: &str) -> Result<Option<StoredEnrollment>, String> {
        let state = self
            .0
            .enrollment(enrollment_id)
            .map_err(|e| e.to_string())?;
        Ok(state.map(|e| StoredEnrollment {
            step: e.step,
            sms_sends: e.sms_sends,
        }))
    }
}

/// The harness binary, whose `phone-step` runs one step of the phone core in a process of its
/// own.
const HARNESS: &str = env!("CARGO_BIN_EXE_sleutel-harness");

/// A durable phone in a directory of its own, for a new citizen with a number of their own.
struct KilledPhone {
    server: InProcessServer,
    citizen: Citizen,
    args: PhoneStepArgs,
    _dir: tempfile::TempDir,
}

impl KilledPhone {
    async fn new(number: &str) -> Self {
        let server = InProcessServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let citizen = server
            .sim()
            .create_citizen(&Default::default())
            .await
            .unwrap();
        let args = PhoneStepArgs {
            dir: dir.path().join("phone"),
            server: server.url(),
            step: PhoneStep::Enroll,
            phone_number: number.to_owned(),
            card_number: citizen.debit_card.number.clone(),
            card_pin: citizen.debit_card.pin.clone(),
        };
        Self {
            server,
            citizen,
            args,
            _dir: dir,
        }
    }

    fn args(&self, step: PhoneStep) -> PhoneStepArgs {
        PhoneStepArgs {
            step,
            ..self.args.clone()
        }
    }

    /// Runs `step` to its end in a process of its own.
    async fn run(&self, step: PhoneStep) -> Duration {
        let (end, took) = run_phone_step(Path::new(HARNESS), &self.args(step), None)
            .await
            .unwrap();
        assert_eq!(end, StepEnd::Finished { success: true });
        took
    }

    /// Runs `step` and kills it at a random moment within `window`; whether the kill landed.
    async fn kill_during(&self, step: PhoneStep, rng: &mut SeededRng, window: Duration) -> bool {
        let delay = rng.duration(Duration::ZERO, window);
        let (end, _) = run_phone_step(Path::new(HARNESS), &self.args(step), Some(delay))
            .await
            .unwrap();
        end == StepEnd::Killed
    }

    /// Opens the phone from its directory as the app does after the kill: it must open.
    fn reopen(&self) -> VirtualPhone {
        VirtualPhone::open_durable(&self.server.url(), &self.args.dir)
            .unwrap_or_else(|e| panic!("the phone does not open after a kill: {e}"))
    }

    /// A new login that accepts a fingerprint as well as the code.
    async fn start_login(&self) -> (RelyingParty, BackchannelAuthResponse) {
        let rp = self.server.rp();
        let request = LoginRequest::new(&self.args.phone_number)
            .with_message(TEST_BINDING_MESSAGE)
            .allowing_biometrics();
        let started = rp.backchannel_authorize(&request).await.unwrap();
        (rp, started)
    }

    /// A new login approved on the phone with `approval` gives the relying party its token.
    async fn logs_in(&self, approval: Approval) {
        let (rp, started) = self.start_login().await;
        let mut phone = self.reopen();
        let view = phone.next_request(common::WAIT).await.unwrap();
        phone
            .authenticator()
            .approve(view.request_id, approval)
            .await
            .unwrap();
        let token = rp.poll_token(&started.auth_req_id).await.unwrap();
        assert!(!token.id_token.is_empty());
    }
}

/// Kills that must land in each phone test (at least 40 over the three).
const PHONE_KILLS: u32 = 14;

/// How many times longer than an unkilled run the kill window is, so that kills also land at
/// the very end of a step.
const WINDOW_OVER_RUN: u32 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_phone_during_enrollment_leaves_a_store_it_can_go_on_from() {
    let mut rng = SeededRng::new(seed_from_env("phone enrollment kills").unwrap());
    // An unkilled enrollment gives the window the kills fall in.
    let window = KilledPhone::new("+32470700000")
        .await
        .run(PhoneStep::Enroll)
        .await
        * WINDOW_OVER_RUN;
    let (mut kills, mut citizen) = (0, 0);
    while kills < PHONE_KILLS {
        citizen += 1;
        assert!(citizen < 40, "only {kills} kills landed");
        let phone = KilledPhone::new(&format!("+324707{:05}", citizen)).await;
        // Up to three kills in a row on one enrollment, each going on from the last.
        for _ in 0..3 {
            if phone.kill_during(PhoneStep::Enroll, &mut rng, window).await {
                kills += 1;
            }
            let reopened = phone.reopen();
            let auth = reopened.authenticator();
            let accounts = auth.accounts().unwrap();
            let progress = auth.enrollment_in_progress().unwrap();
            // Between nothing and an account: at most one account, and an enrollment in
            // progress only without it.
            assert!(accounts.len() <= 1, "{accounts:?}");
            assert!(
                accounts.is_empty() || progress.is_none(),
                "an account and an enrollment at once: {progress:?}"
            );
        }
        // The person goes on: the enrollment ends with an account, and a login works.
        phone.run(PhoneStep::Enroll).await;
        let account = phone.reopen().account().unwrap().expect("enrolled");
        assert_eq!(
            account.display_name,
            format!("{} {}", phone.citizen.given_name, phone.citizen.family_name)
        );
        phone.logs_in(Approval::code(CODE)).await;
    }
    eprintln!("phone enrollment: {kills} kills over {citizen} enrollments (window {window:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_phone_during_an_approval_loses_no_login() {
    let mut rng = SeededRng::new(seed_from_env("phone approval kills").unwrap());
    let phone = KilledPhone::new("+32470710000").await;
    phone.run(PhoneStep::Enroll).await;
    let url = phone.server.url();
    let number = phone.args.phone_number.clone();
    // An unkilled approval gives the window.
    let (rp, started) = common::start_login(&url, &number).await;
    let window = phone.run(PhoneStep::Approve).await * WINDOW_OVER_RUN;
    rp.poll_token(&started.auth_req_id).await.unwrap();
    let (mut kills, mut logins) = (0, 0);
    while kills < PHONE_KILLS {
        logins += 1;
        assert!(logins < 60, "only {kills} kills landed");
        let (rp, started) = common::start_login(&url, &number).await;
        if phone
            .kill_during(PhoneStep::Approve, &mut rng, window)
            .await
        {
            kills += 1;
        }
        let reopened = phone.reopen();
        assert!(reopened.account().unwrap().is_some(), "the account is gone");
        drop(reopened);
        // The person opens the app again and approves what is still pending; the login the
        // relying party started gets its token either way.
        phone.run(PhoneStep::Approve).await;
        let token = rp.poll_token(&started.auth_req_id).await.unwrap();
        assert!(!token.id_token.is_empty());
    }
    phone.logs_in(Approval::code(CODE)).await;
    eprintln!("phone approval: {kills} kills over {logins} logins (window {window:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_phone_while_enabling_biometrics_leaves_it_usable() {
    let mut rng = SeededRng::new(seed_from_env("phone biometrics kills").unwrap());
    let phone = KilledPhone::new("+32470720000").await;
    phone.run(PhoneStep::Enroll).await;
    let window = phone.run(PhoneStep::EnableBiometrics).await * WINDOW_OVER_RUN;
    let (mut kills, mut runs, mut shown_off) = (0, 0, 0);
    while kills < PHONE_KILLS {
        runs += 1;
        assert!(runs < 60, "only {kills} kills landed");
        if phone
            .kill_during(PhoneStep::EnableBiometrics, &mut rng, window)
            .await
        {
            kills += 1;
        }
        // Either state is one the step goes between; what matters is that the phone opens and
        // the person can go on.
        let reopened = phone.reopen();
        let account = reopened.account().unwrap().expect("the account is kept");
        drop(reopened);
        if runs % 3 == 0 {
            // Going on: enabling again works, and a fingerprint approves a login.
            phone.run(PhoneStep::EnableBiometrics).await;
            assert!(
                phone
                    .reopen()
                    .account()
                    .unwrap()
                    .unwrap()
                    .biometrics_enabled
            );
            phone.logs_in(Approval::biometric()).await;
        } else if account.biometrics_enabled {
            // The phone says biometrics are on: then phone and server hold the same key, and
            // a fingerprint approves. (Killed after the server took a new key and before the
            // phone recorded it, the phone shows them off until it settled which key counts.)
            if let Err((e, ..)) = approve_with_fingerprint(&phone).await {
                panic!("biometrics shown as enabled after a kill, but: {e}");
            }
        } else {
            shown_off += 1;
        }
    }
    phone.run(PhoneStep::EnableBiometrics).await;
    phone.logs_in(Approval::biometric()).await;
    phone.logs_in(Approval::code(CODE)).await;
    eprintln!(
        "phone biometrics: {kills} kills over {runs} runs (window {window:?}); biometrics shown \
         off after {shown_off} of them"
    );
}

/// A login approved with the fingerprint; the phone's error if it is refused, with the relying
/// party and its `auth_req_id`.
async fn approve_with_fingerprint(
    phone: &KilledPhone,
) -> Result<(), (CoreError, RelyingParty, String)> {
    let (rp, started) = phone.start_login().await;
    let mut reopened = phone.reopen();
    let view = reopened.next_request(common::WAIT).await.unwrap();
    let approved = reopened
        .authenticator()
        .approve(view.request_id, Approval::biometric())
        .await;
    if let Err(e) = approved {
        return Err((e, rp, started.auth_req_id));
    }
    rp.poll_token(&started.auth_req_id).await.unwrap();
    Ok(())
}
