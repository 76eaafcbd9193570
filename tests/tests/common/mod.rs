//! Shared set-up for the end-to-end tests: a real server on loopback, simulated citizens and
//! enrolled virtual phones.
#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

use sleutel_core::{Account, Bank};
use sleutel_harness::phone::{VirtualPhone, silent};
use sleutel_harness::rp::{LoginRequest, RelyingParty};
use sleutel_harness::server::InProcessServer;
use sleutel_harness::sim::SimClient;
use sleutel_protocol::api::{BackchannelAuthResponse, Citizen};
use sleutel_server::{Policy, RelyingPartyConfig};

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
        .backchannel_authorize(&LoginRequest::new(phone_number).with_message("TEST-1"))
        .await
        .expect("backchannel authentication starts");
    (rp, started)
}
