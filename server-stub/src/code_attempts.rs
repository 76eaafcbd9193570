//! Wrong codes and the block they lead to. Every check of something derived from the person's
//! 5-digit code goes through here: an approval's PIN signature, a code change, a biometric
//! registration, and a repeated enrollment completion. Nothing else compares a PIN key.
//!
//! Three counts decide a block, and any one at its limit blocks the account:
//! - the account's consecutive wrong codes (the person's phones together, so a thief cannot
//!   spread guesses over phones), limit `pin_max_failures`;
//! - the device's consecutive wrong codes (so that, with several phones, the person's right code
//!   on one phone does not give a thief on another phone fresh guesses), same limit;
//! - the device's wrong codes in the last 30 days, right codes or not, limit
//!   `max_wrong_codes_per_device_per_month`: a copy of a phone shares its device key, so the
//!   person's every right code on the phone would otherwise give the copy fresh guesses.
//!
//! The right code clears the first two counts (the account's and its own device's); a
//! biometric approval clears nothing, since it proves presence, not the code. Every wrong code is
//! recorded in the account's history.

use crate::store::{Sql, Tx, accounts};
use p256::ecdsa::VerifyingKey;
use sleutel_protocol::jose::Jwk;

use crate::error::{Result, ServerError};
use crate::events;
use crate::rate::{self, Bucket, Limit};
use crate::requests::close_open_requests;
use crate::server::App;

/// A device's standing for code checks: its PIN key and the wrong-code counts.
pub(crate) struct CodeState {
    /// The account the device belongs to.
    pub account_id: String,
    /// The device key's thumbprint.
    pub jkt: String,
    /// The device's PIN public key.
    pub pin_jwk: Jwk,
    /// Wrong codes on the account since the last right code (any phone).
    pub account_failures: u32,
    /// Wrong codes on this device since its last right code.
    pub device_failures: u32,
    /// Whether the account is blocked.
    pub blocked: bool,
}

impl CodeState {
    /// Loads the standing of device `jkt` (which must exist).
    pub(crate) fn load(conn: &impl Sql, jkt: &str) -> Result<Self> {
        let accounts::CodeStanding {
            account_id,
            pin_jwk,
            account_failures,
            device_failures,
            blocked,
        } = accounts::code_standing(conn, jkt)?;
        let pin_jwk =
            pin_jwk.ok_or_else(|| ServerError::Internal("device without a PIN key".into()))?;
        let pin_jwk: Jwk = serde_json::from_str(&pin_jwk)
            .map_err(|e| ServerError::Internal(format!("stored PIN key unreadable: {e}")))?;
        Ok(Self {
            account_id,
            jkt: jkt.to_owned(),
            pin_jwk,
            account_failures,
            device_failures,
            blocked,
        })
    }

    /// The device's PIN key, ready to verify.
    pub(crate) fn pin_key(&self) -> Result<VerifyingKey> {
        self.pin_jwk
            .to_verifying_key()
            .map_err(|e| ServerError::Internal(format!("stored PIN key unusable: {e}")))
    }

    /// Counts a wrong code on the account and the device, commits, and answers `wrong_pin`
    /// with the attempts left, or, at the limit of either count, blocks the account, closes its
    /// open requests (pinging their relying parties) and answers `account_blocked`.
    pub(crate) fn wrong_code<T>(self, app: &App, tx: Tx<'_>, now: i64) -> Result<T> {
        let account_failures = self.account_failures.saturating_add(1);
        let device_failures = self.device_failures.saturating_add(1);
        accounts::set_device_wrong_codes(&tx, &self.jkt, device_failures)?;
        let month = Bucket::WrongCodesByDevice(&self.jkt);
        let month_limit = Limit::per_month(app.policy.max_wrong_codes_per_device_per_month);
        rate::record(&tx, month, month_limit, now)?;
        events::record(
            &tx,
            &self.account_id,
            events::WRONG_CODE,
            "a wrong code was typed on a phone",
            now,
        )?;
        let consecutive_left = app
            .policy
            .pin_max_failures
            .saturating_sub(account_failures.max(device_failures));
        let attempts_left = consecutive_left.min(rate::room(&tx, month, month_limit, now)?);
        if attempts_left == 0 {
            accounts::block_after_wrong_codes(&tx, &self.account_id, account_failures, now)?;
            let closed = close_open_requests(&tx, &self.account_id, now)?;
            events::record(
                &tx,
                &self.account_id,
                events::BLOCKED,
                "blocked after too many wrong codes",
                now,
            )?;
            tx.commit()?;
            app.notifier.notify(&closed);
            tracing::info!("an account was blocked after too many wrong codes");
            return Err(ServerError::AccountBlocked);
        }
        accounts::set_account_wrong_codes(&tx, &self.account_id, account_failures, now)?;
        tx.commit()?;
        Err(ServerError::WrongPin { attempts_left })
    }

    /// The right code: clears the account's count and this device's.
    pub(crate) fn right_code(&self, tx: &Tx<'_>, now: i64) -> Result<()> {
        clear(tx, &self.account_id, &self.jkt, now)
    }
}

/// Clears the wrong-code counts of `account_id` and of its device `jkt`: after the right code,
/// or when a new activation proved the person's identity again.
pub(crate) fn clear(tx: &Tx<'_>, account_id: &str, jkt: &str, now: i64) -> Result<()> {
    Ok(accounts::clear_wrong_codes(tx, account_id, jkt, now)?)
}
