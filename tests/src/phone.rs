//! A virtual phone: the real `sleutel-core` authenticator with a test-only secret store kept in
//! the phone's state directory, plus the person holding it (who reads the SMS, types the codes
//! and follows the bank handoff).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use keyring_core::sample;
use sleutel_core::{Account, ActionView, Authenticator, Bank, SoftwareKeystore};
use sleutel_protocol::api::{Citizen, NewCitizen};

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
    secrets: Arc<sample::Store>,
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
        let keystore = Arc::new(SoftwareKeystore::new(store, "sleutel-harness"));
        let auth = Authenticator::open_with_server_key(
            state_dir,
            server_url,
            keystore,
            server_key_thumbprint,
        )?;
        Ok(Self {
            auth,
            secrets,
            sim: SimClient::new(server_url)?,
            push_seq: 0,
            handled: HashSet::new(),
        })
    }

    /// The core, to call any of its operations directly.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// The first account on the phone, if it is enrolled.
    pub fn account(&self) -> Result<Option<Account>> {
        Ok(self.auth.accounts()?.into_iter().next())
    }

    /// Writes the test-only secrets to the state directory, so a later run finds the keys.
    pub fn save(&self) -> Result<()> {
        self.secrets
            .save()
            .map_err(|e| HarnessError::State(format!("test keystore: {e}")))
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

    /// Waits for the next request, as [`VirtualPhone::next_request`], and approves it with
    /// `code`; returns what the phone showed.
    pub async fn approve_next(&mut self, code: &str, timeout: Duration) -> Result<ActionView> {
        let view = self.next_request(timeout).await?;
        self.auth
            .approve_with_code(view.request_id.clone(), code.to_owned())
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
        let _ = self.secrets.save();
    }
}
