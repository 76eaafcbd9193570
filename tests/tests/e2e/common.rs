//! Shared set-up for the end-to-end tests: a real server on loopback, simulated citizens and
//! enrolled virtual phones.

use std::time::Duration;

use sleutel_core::{Account, Bank};
use sleutel_harness::phone::{VirtualPhone, silent};
use sleutel_harness::rp::RelyingParty;
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::{SimClient, query_param};
use sleutel_protocol::api::oidc::BackchannelAuthResponse;
use sleutel_protocol::api::sim::Citizen;
use sleutel_server::{Policy, RelyingPartyConfig};
pub use sleutel_server::{ServerError, SqlValue};

pub const CODE: &str = "13579";
pub const WRONG_CODE: &str = "24680";
pub const WAIT: Duration = Duration::from_secs(20);

/// A phone enrolled for a new citizen, with the directory that holds its state.
pub struct Enrolled {
    pub phone: VirtualPhone,
    pub citizen: Citizen,
    pub account: Account,
    pub phone_number: String,
    pub dir: tempfile::TempDir,
}

pub async fn server() -> InProcessServer {
    InProcessServer::start().await.expect("server starts")
}

pub async fn server_with(policy: Policy) -> InProcessServer {
    InProcessServer::start_with(policy, vec![RelyingPartyConfig::demo()])
        .await
        .expect("server starts")
}

/// Opens a new phone on `url` with a fresh state directory.
pub fn new_phone(url: &str) -> (VirtualPhone, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let phone = VirtualPhone::open(url, dir.path()).expect("phone opens");
    (phone, dir)
}

/// A new citizen at KBC.
pub async fn citizen(url: &str) -> Citizen {
    SimClient::new(url)
        .unwrap()
        .create_citizen(&Default::default())
        .await
        .expect("citizen created")
}

/// A new citizen at KBC, enrolled on a new phone with [`CODE`].
pub async fn enrolled(url: &str, phone_number: &str) -> Enrolled {
    let (phone, dir) = new_phone(url);
    let (citizen, account) = phone
        .enroll_new_citizen(Bank::Kbc, phone_number, CODE, &silent)
        .await
        .expect("enrollment succeeds");
    Enrolled {
        phone,
        citizen,
        account,
        phone_number: phone_number.to_owned(),
        dir,
    }
}

/// The demo relying party starts a login for `phone_number`.
pub async fn start_login(url: &str, phone_number: &str) -> (RelyingParty, BackchannelAuthResponse) {
    let rp = RelyingParty::demo(url).unwrap();
    let started = rp
        .start_login(phone_number)
        .await
        .expect("backchannel authentication starts");
    (rp, started)
}

/// A new KBC citizen and a fresh phone that has started enrolling them, right after the app
/// sent the person to the bank.
pub struct Activation {
    pub citizen: Citizen,
    pub phone: VirtualPhone,
    /// The phone's state directory, kept as long as the phone is used.
    _dir: tempfile::TempDir,
    pub number: String,
    pub handoff_url: String,
    pub enrollment_id: String,
    pub nonce: String,
    sim: SimClient,
}

/// Starts an activation for a new citizen. `server_url` is where simulators live; `phone_url` is
/// where the phone sends its calls (the server itself, or a proxy in front of it).
pub async fn begin_activation(server_url: &str, phone_url: &str, number: &str) -> Activation {
    let citizen = citizen(server_url).await;
    let (phone, dir) = new_phone(phone_url);
    let handoff = phone
        .authenticator()
        .start_bank_enrollment(number.into(), Bank::Kbc)
        .await
        .expect("enrollment starts");
    let url = url::Url::parse(&handoff.handoff_url).expect("handoff URL");
    let param = |name: &str| query_param(&url, name).expect("handoff URL parameter");
    Activation {
        enrollment_id: handoff.enrollment_id.clone(),
        nonce: param("nonce"),
        handoff_url: handoff.handoff_url.clone(),
        citizen,
        phone,
        _dir: dir,
        number: number.to_owned(),
        sim: SimClient::new(server_url).unwrap(),
    }
}

impl Activation {
    /// The phone's core.
    pub fn auth(&self) -> &sleutel_core::Authenticator {
        self.phone.authenticator()
    }

    /// The bank's answer to a card number and PIN: the deep link back to the app, or its error.
    pub async fn at_the_bank(
        &self,
        card_number: &str,
        card_pin: &str,
    ) -> sleutel_harness::Result<String> {
        self.sim
            .bank_authorize(&self.handoff_url, card_number, card_pin)
            .await
    }

    /// The deep link a bank would send back with `identity_token`.
    pub fn deep_link(&self, identity_token: &str) -> String {
        deep_link(&self.enrollment_id, identity_token)
    }

    /// Goes through the bank with the debit card, hands the identity to the server and returns
    /// the SMS control code the person receives.
    pub async fn to_the_sms_step(&self) -> String {
        let link = self
            .at_the_bank(
                &self.citizen.debit_card.number,
                &self.citizen.debit_card.pin,
            )
            .await
            .expect("the bank accepts the debit card");
        self.auth()
            .complete_bank_handoff(link)
            .await
            .expect("identity accepted");
        self.sim
            .wait_for_sms_code(&self.number, 0, WAIT)
            .await
            .expect("an SMS arrives")
    }
}

/// The app's deep link back from the bank for `enrollment_id` carrying `identity_token`.
pub fn deep_link(enrollment_id: &str, identity_token: &str) -> String {
    sleutel_protocol::api::bank_return_link(enrollment_id, identity_token)
}

/// The server's database, whichever store it is (SQLite or PostgreSQL), for tests that set up
/// or look at what no route shows. Runs through the server's `testing` hooks.
pub trait DatabaseAccess {
    /// Runs the statement `sql` (portable SQL, `?N` parameters); the rows it changed.
    fn sql_execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize, ServerError>;
    /// The rows of the query `sql`, every column as text (`None` for NULL).
    fn sql_rows(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<Option<String>>>, ServerError>;
}

impl DatabaseAccess for InProcessServer {
    fn sql_execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize, ServerError> {
        self.running().sql_execute(sql, params)
    }
    fn sql_rows(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<Option<String>>>, ServerError> {
        self.running().sql(sql, params)
    }
}

/// The names of the events in the server's history of `account_id`.
pub fn server_events(server: &InProcessServer, account_id: &str) -> Vec<String> {
    server
        .running()
        .account_events(account_id)
        .unwrap()
        .into_iter()
        .map(|(event, _, _)| event)
        .collect()
}
