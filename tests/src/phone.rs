//! A virtual phone: the real `sleutel-core` authenticator with a test-only secret store kept in
//! the phone's state directory, plus the person holding it (who reads the SMS, types the codes
//! and follows the bank handoff).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyring_core::sample;
use sleutel_core::testing::TestKeystore;
use sleutel_core::{
    Account, ActionView, Approval, Authenticator, Bank, PushPlatform, SignInRequest,
    SoftwareKeystore,
};
use sleutel_protocol::api::sim::{Citizen, NewCitizen};
use sleutel_protocol::identity::IdentitySource;

use crate::sim::SimClient;
use crate::{HarnessError, Result};

/// Where a virtual phone keeps its test-only secrets (software keys, PIN salts). A real phone
/// keeps them in the Keystore/Keychain; this file is for simulation only.
pub const TEST_SECRET_FILE: &str = "test-only-keystore.ron";

/// Receives one human-readable line per step.
pub type Narrator<'a> = &'a (dyn Fn(&str) + Sync);

/// A narrator that prints nothing.
pub fn silent(_: &str) {}

/// How long the person waits for an SMS before giving up.
const SMS_WAIT: Duration = Duration::from_secs(10);

/// How often the phone polls for pending requests when no push arrived.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// A simulated phone with the Sleutel app on it.
pub struct VirtualPhone {
    auth: Authenticator,
    keystore: TestKeystore,
    /// The test secrets saved on [`VirtualPhone::save`]; `None` for a durable phone, whose
    /// keystore writes each change at once.
    secrets: Option<Arc<sample::Store>>,
    state_dir: PathBuf,
    sim: SimClient,
    push_seq: i64,
    handled: HashSet<String>,
}

impl VirtualPhone {
    /// Opens (or creates) the phone whose app data and test secrets live in `state_dir`.
    pub fn open(server_url: &str, state_dir: &Path) -> Result<Self> {
        Self::open_pinned(server_url, state_dir, None)
    }

    /// Like [`VirtualPhone::open`], with the app configured to accept only the server key whose
    /// RFC 7638 thumbprint is given, as a production app is.
    pub fn open_pinned(
        server_url: &str,
        state_dir: &Path,
        server_key_thumbprint: Option<String>,
    ) -> Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|e| HarnessError::State(e.to_string()))?;
        let secret_file = state_dir.join(TEST_SECRET_FILE);
        let secrets = sample::Store::new_with_backing(&secret_file.to_string_lossy())
            .map_err(|e| HarnessError::State(format!("test keystore: {e}")))?;
        let store: Arc<keyring_core::CredentialStore> = secrets.clone();
        let keystore = TestKeystore::new(SoftwareKeystore::new(store, "sleutel-harness"));
        Self::open_with(
            server_url,
            state_dir,
            keystore,
            Some(secrets),
            server_key_thumbprint,
        )
    }

    /// Where a durable phone keeps its test-only keys and secrets.
    pub const DURABLE_SECRET_FILE: &str = "test-only-durable-keystore.ron";

    /// Opens (or creates) a phone whose keystore writes every key and secret to `state_dir` the
    /// moment the core makes it, as a phone's keystore does: its process may be killed at any
    /// moment and the phone opened again from `state_dir`.
    pub fn open_durable(server_url: &str, state_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|e| HarnessError::State(e.to_string()))?;
        let keystore = TestKeystore::open_durable(&state_dir.join(Self::DURABLE_SECRET_FILE))
            .map_err(|e| HarnessError::State(format!("test keystore: {e}")))?;
        Self::open_with(server_url, state_dir, keystore, None, None)
    }

    fn open_with(
        server_url: &str,
        state_dir: &Path,
        keystore: TestKeystore,
        secrets: Option<Arc<sample::Store>>,
        server_key_thumbprint: Option<String>,
    ) -> Result<Self> {
        let data_dir = state_dir.to_str().ok_or_else(|| {
            HarnessError::State(format!("{} is not a UTF-8 path", state_dir.display()))
        })?;
        let auth = Authenticator::open(
            data_dir.to_owned(),
            server_url.to_owned(),
            Arc::new(keystore.clone()),
            server_key_thumbprint,
        )?;
        Ok(Self {
            auth,
            keystore,
            secrets,
            state_dir: state_dir.to_owned(),
            sim: SimClient::new(server_url)?,
            push_seq: 0,
            handled: HashSet::new(),
        })
    }

    /// The core, to call any of its operations directly.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The phone's keystore, to drive its simulated biometric sensor.
    pub fn keystore(&self) -> &TestKeystore {
        &self.keystore
    }

    /// The simulators, as the person holding this phone reaches them.
    pub fn sim(&self) -> &SimClient {
        &self.sim
    }

    /// The first account on the phone, if it is enrolled.
    pub fn account(&self) -> Result<Option<Account>> {
        Ok(self.auth.accounts()?.into_iter().next())
    }

    /// Registers `token` as the push token of this phone's first account, as the app does when
    /// the platform hands it one (the call carries the device's proof, like every phone call).
    pub async fn register_push_token(&self, platform: PushPlatform, token: &str) -> Result<()> {
        let account = self
            .account()?
            .ok_or_else(|| HarnessError::Missing("an account on this phone".into()))?;
        self.auth
            .register_push_token(account.account_id, platform, token.to_owned())
            .await?;
        Ok(())
    }

    /// Writes the test-only secrets to the state directory, so a later run finds the keys.
    pub fn save(&self) -> Result<()> {
        match &self.secrets {
            Some(secrets) => secrets
                .save()
                .map_err(|e| HarnessError::State(format!("test keystore: {e}"))),
            None => Ok(()),
        }
    }

    /// Copies the phone's files (the app's store and the test keystore with its keys and salts)
    /// into `dir`, as someone with access to the phone's storage could. Opening `dir` gives a
    /// second phone holding the same keys.
    pub fn copy_files_to(&self, dir: &Path) -> Result<()> {
        self.save()?;
        let failed = |e: std::io::Error| HarnessError::State(format!("copying the phone: {e}"));
        std::fs::create_dir_all(dir).map_err(failed)?;
        for entry in std::fs::read_dir(&self.state_dir).map_err(failed)? {
            let entry = entry.map_err(failed)?;
            // The store's write-ahead log goes with it: together they are the database.
            if entry.file_type().map_err(failed)?.is_file() {
                std::fs::copy(entry.path(), dir.join(entry.file_name())).map_err(failed)?;
            }
        }
        Ok(())
    }

    /// Creates a citizen at `bank` and enrolls this phone for them with `code`.
    pub async fn enroll_new_citizen(
        &self,
        bank: Bank,
        phone_number: &str,
        code: &str,
        narrate: Narrator<'_>,
    ) -> Result<(Citizen, Account)> {
        let citizen = self
            .sim
            .create_citizen(&NewCitizen {
                bank: Some(bank),
                ..NewCitizen::default()
            })
            .await?;
        narrate(&format!(
            "citizen {} {} (born {}, national register number {}) has a debit card at {}",
            citizen.given_name,
            citizen.family_name,
            citizen.birthdate,
            citizen.national_register_number,
            bank.display_name()
        ));
        let account = self
            .enroll_at_bank(&citizen, phone_number, code, narrate)
            .await?;
        Ok((citizen, account))
    }

    /// Creates a citizen and enrolls this phone for them through `source` with `code`.
    pub async fn enroll_new_citizen_with(
        &self,
        source: IdentitySource,
        phone_number: &str,
        code: &str,
        narrate: Narrator<'_>,
    ) -> Result<(Citizen, Account)> {
        if source == IdentitySource::Bank {
            return self
                .enroll_new_citizen(Bank::Kbc, phone_number, code, narrate)
                .await;
        }
        let citizen = self.sim.create_citizen(&NewCitizen::default()).await?;
        narrate(&format!(
            "citizen {} {} (born {}) has an eID card {}",
            citizen.given_name, citizen.family_name, citizen.birthdate, citizen.eid_card.serial
        ));
        let account = match source {
            IdentitySource::Eid => {
                self.enroll_with_eid(&citizen, phone_number, code, narrate)
                    .await?
            }
            _ => {
                self.enroll_at_counter(&citizen, phone_number, code, narrate)
                    .await?
            }
        };
        Ok((citizen, account))
    }

    /// The e-mail address the simulated person uses.
    pub fn email_of(citizen: &Citizen) -> String {
        format!("{}@example.test", citizen.citizen_id.to_lowercase())
    }

    /// The eID enrollment as the person does it: identification token and eID card on the
    /// website, the identification code in the app, the SMS code, the 5-digit code twice.
    pub async fn enroll_with_eid(
        &self,
        citizen: &Citizen,
        phone_number: &str,
        code: &str,
        narrate: Narrator<'_>,
    ) -> Result<Account> {
        let issued = self
            .sim
            .eid_identification(
                phone_number,
                &Self::email_of(citizen),
                &citizen.eid_card.serial,
                &citizen.eid_card.pin,
            )
            .await?;
        narrate("the eID website reads the eID with its PIN and shows an identification code");
        let sms_before = self.sim.sms_messages(phone_number).await?.messages.len();
        let sms = self
            .auth
            .start_eid_enrollment(phone_number.to_owned(), issued.identification_code)
            .await?;
        narrate(&format!(
            "the person types the identification code in the app; an SMS goes to {}",
            sms.phone_number_masked
        ));
        self.finish_enrollment(phone_number, sms_before, code, narrate)
            .await
    }

    /// The counter enrollment as the person does it: the official checks the identity and
    /// hands out an activation code, the person opens the e-mail's activation link on the phone
    /// and types the code, then the SMS code and the 5-digit code twice.
    pub async fn enroll_at_counter(
        &self,
        citizen: &Citizen,
        phone_number: &str,
        code: &str,
        narrate: Narrator<'_>,
    ) -> Result<Account> {
        let email = Self::email_of(citizen);
        let issued = self.sim.counter_activation(citizen, &email).await?;
        let link = self.sim.activation_link(&email).await?;
        narrate(
            "the official checks the identity and hands out an activation code; an e-mail with \
             an activation link follows",
        );
        let sms_before = self.sim.sms_messages(phone_number).await?.messages.len();
        let sms = self
            .auth
            .start_counter_enrollment(phone_number.to_owned(), link, issued.activation_code)
            .await?;
        narrate(&format!(
            "the person opens the activation link on the phone and types the activation code; \
             an SMS goes to {}",
            sms.phone_number_masked
        ));
        self.finish_enrollment(phone_number, sms_before, code, narrate)
            .await
    }

    /// The SMS code and the 5-digit code, after the identity was accepted.
    pub async fn finish_enrollment(
        &self,
        phone_number: &str,
        sms_before: usize,
        code: &str,
        narrate: Narrator<'_>,
    ) -> Result<Account> {
        let sms_code = self
            .sim
            .wait_for_sms_code(phone_number, sms_before, SMS_WAIT)
            .await?;
        self.auth.verify_sms_code(sms_code).await?;
        narrate("the person types the SMS control code: phone number verified");
        let account = self
            .auth
            .choose_code(code.to_owned(), code.to_owned())
            .await?;
        self.save()?;
        narrate(&format!(
            "the person chooses a 5-digit code and confirms it: account of {} is active",
            account.display_name
        ));
        Ok(account)
    }

    /// Unblocks the phone's account `account_id` by proving `citizen`'s identity again through
    /// `source`, verifying the SMS code and choosing `new_code`. The core makes a new device key
    /// and the server revokes the old one.
    pub async fn unblock(
        &self,
        account_id: &str,
        citizen: &Citizen,
        source: IdentitySource,
        new_code: &str,
        narrate: Narrator<'_>,
    ) -> Result<Account> {
        let account = self
            .auth
            .accounts()?
            .into_iter()
            .find(|a| a.account_id == account_id)
            .ok_or(sleutel_core::CoreError::NoAccount)?;
        let number = account.phone_number.clone();
        let sms_before = self.sim.sms_messages(&number).await?.messages.len();
        match source {
            IdentitySource::Bank => {
                let handoff = self
                    .auth
                    .unblock_with_bank(account_id.to_owned(), citizen.bank)
                    .await?;
                let link = self
                    .sim
                    .bank_authorize(
                        &handoff.handoff_url,
                        &citizen.debit_card.number,
                        &citizen.debit_card.pin,
                    )
                    .await?;
                self.auth.complete_bank_handoff(link).await?;
            }
            IdentitySource::Eid => {
                let issued = self
                    .sim
                    .eid_identification(
                        &number,
                        &Self::email_of(citizen),
                        &citizen.eid_card.serial,
                        &citizen.eid_card.pin,
                    )
                    .await?;
                self.auth
                    .unblock_with_eid(account_id.to_owned(), issued.identification_code)
                    .await?;
            }
            IdentitySource::Counter => {
                let email = Self::email_of(citizen);
                let issued = self.sim.counter_activation(citizen, &email).await?;
                let link = self.sim.activation_link(&email).await?;
                self.auth
                    .unblock_with_counter(account_id.to_owned(), link, issued.activation_code)
                    .await?;
            }
        }
        narrate("the identity is proven again; an SMS code follows");
        self.finish_enrollment(&number, sms_before, new_code, narrate)
            .await
    }

    /// The whole bank enrollment as the person does it: phone number and bank in the app, card
    /// and card PIN in the bank's app, the SMS control code, then the 5-digit code twice.
    pub async fn enroll_at_bank(
        &self,
        citizen: &Citizen,
        phone_number: &str,
        code: &str,
        narrate: Narrator<'_>,
    ) -> Result<Account> {
        let sms_before = self.sim.sms_messages(phone_number).await?.messages.len();
        let handoff = self
            .auth
            .start_bank_enrollment(phone_number.to_owned(), citizen.bank)
            .await?;
        narrate(&format!(
            "phone {phone_number} starts enrolling with {} and is sent to the bank's app",
            citizen.bank.display_name()
        ));
        let deep_link = self
            .sim
            .bank_authorize(
                &handoff.handoff_url,
                &citizen.debit_card.number,
                &citizen.debit_card.pin,
            )
            .await?;
        narrate("the bank checks the debit card and card PIN and sends the person back to the app");
        let sms = self.auth.complete_bank_handoff(deep_link).await?;
        narrate(&format!(
            "the server accepts the bank's identity token and sends an SMS to {}",
            sms.phone_number_masked
        ));
        self.finish_enrollment(phone_number, sms_before, code, narrate)
            .await
    }

    /// Waits for the next request this phone has not handled yet, through the push outbox and by
    /// polling the server, like the app does (nothing depends on push alone).
    pub async fn next_request(&mut self, timeout: Duration) -> Result<ActionView> {
        let account = self.account()?.ok_or(sleutel_core::CoreError::NoAccount)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pushes = self
                .sim
                .push_messages(&account.account_id, self.push_seq)
                .await?;
            for entry in pushes.messages {
                self.push_seq = self.push_seq.max(entry.seq);
                if self.handled.contains(&entry.message.request_id) {
                    continue;
                }
                let payload = serde_json::to_string(&entry.message)
                    .map_err(|e| HarnessError::Http(e.to_string()))?;
                // An expired or already closed request is skipped, as the app would.
                match self.auth.handle_push(payload).await {
                    Ok(view) => return Ok(self.take(view)),
                    Err(e) => tracing::debug!("push not shown: {e}"),
                }
            }
            if let Some(view) = self
                .auth
                .refresh_pending()
                .await?
                .into_iter()
                .find(|v| !self.handled.contains(&v.request_id))
            {
                return Ok(self.take(view));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout("a request on the phone".into()));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Opens a sign-in link with this phone's first account, as the app does when it scanned the
    /// QR code of a sign-in page or was opened with its "open the app" link: returns the request
    /// to answer (marked as seen, so [`VirtualPhone::next_request`] does not return it again)
    /// and, for an app-to-app link, the URL to open after the answer.
    pub async fn open_sign_in_link(&mut self, link: &str) -> Result<SignInRequest> {
        let account = self.account()?.ok_or(sleutel_core::CoreError::NoAccount)?;
        let opened = self
            .auth
            .open_sign_in_link(account.account_id, link.to_owned())
            .await?;
        self.handled.insert(opened.request.request_id.clone());
        Ok(opened)
    }

    /// Waits for the next request, as [`VirtualPhone::next_request`], and approves it with
    /// `code`; returns what the phone showed.
    pub async fn approve_next(&mut self, code: &str, timeout: Duration) -> Result<ActionView> {
        let view = self.next_request(timeout).await?;
        self.auth
            .approve(view.request_id.clone(), Approval::code(code))
            .await?;
        Ok(view)
    }

    fn take(&mut self, view: ActionView) -> ActionView {
        self.handled.insert(view.request_id.clone());
        view
    }
}

impl Drop for VirtualPhone {
    fn drop(&mut self) {
        let _ = self.save();
    }
}
