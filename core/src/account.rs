//! The accounts enrolled on this phone as the app sees them: an [`Account`] with its
//! [`AccountStatus`], and the [`AccountEvent`]s of its history on this phone.

use serde::{Deserialize, Serialize};

use crate::store::AccountRow;

/// Whether an account can be used from this phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AccountStatus {
    /// In use.
    Active,
    /// Blocked by the server after too many wrong codes: the person must prove their identity
    /// again.
    Blocked,
    /// This phone was revoked for the account: it must be enrolled again.
    Revoked,
}

/// An account enrolled on this phone.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Account {
    /// The account id at the server.
    pub account_id: String,
    /// The person's name.
    pub display_name: String,
    /// The server the account lives on.
    pub server_url: String,
    /// The verified phone number (E.164).
    pub phone_number: String,
    /// Whether the account can be used from this phone.
    pub status: AccountStatus,
    /// Whether requests that allow it can be approved with the biometric key.
    pub biometrics_enabled: bool,
}

impl From<&AccountRow> for Account {
    fn from(row: &AccountRow) -> Self {
        Self {
            account_id: row.account_id.clone(),
            display_name: row.display_name.clone(),
            server_url: row.server_url.clone(),
            phone_number: row.phone_number.clone(),
            status: row.status,
            // A registration of unknown outcome leaves the phone unsure which key the server
            // holds: off until it is settled (`life::settle_interrupted_enable`).
            biometrics_enabled: row.biometric_alias.is_some()
                && row.biometric_pending_alias.is_none(),
        }
    }
}

/// What happened in an account's life on this phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AccountEventKind {
    /// The account was activated on this phone (any source).
    Activated,
    /// The blocked account was unblocked: identity proven again, new code.
    Unblocked,
    /// The code was changed.
    CodeChanged,
    /// Biometrics were enabled.
    BiometricsEnabled,
    /// Biometrics were disabled by the person.
    BiometricsDisabled,
    /// The platform invalidated the biometric key (biometrics enrolled on the phone changed).
    BiometricsInvalidated,
    /// The server blocked the account (too many wrong codes, or blocked from outside).
    Blocked,
    /// This phone was revoked for the account (an activation on another phone).
    Revoked,
    /// The person deactivated the account on this phone.
    Deactivated,
}

/// One event in the history of an account on this phone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct AccountEvent {
    /// The account.
    pub account_id: String,
    /// What happened.
    pub event: AccountEventKind,
    /// When (Unix seconds).
    pub at: i64,
}
