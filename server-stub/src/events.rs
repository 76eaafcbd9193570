//! The account history on the server: one row per event in an account's life, never a secret.

use crate::store::{Sql, accounts};

use crate::error::Result;

/// A phone was activated for a new account.
pub(crate) const ACTIVATED: &str = "activated";
/// The identity was proven again and a phone activated on an existing account (after a block,
/// on a new phone, or again on the same phone).
pub(crate) const REACTIVATED: &str = "reactivated";
/// A blocked account was unblocked by a new activation.
pub(crate) const UNBLOCKED: &str = "unblocked";
/// A device was revoked: a newer activation beyond `max_devices`, or the phone's own unblock,
/// which replaces its device key.
pub(crate) const DEVICE_REVOKED: &str = "device_revoked";
/// The code was changed.
pub(crate) const CODE_CHANGED: &str = "code_changed";
/// A device registered a biometric key.
pub(crate) const BIOMETRIC_ENABLED: &str = "biometric_enabled";
/// A device removed its biometric key.
pub(crate) const BIOMETRIC_DISABLED: &str = "biometric_disabled";
/// A device was deactivated from the phone.
pub(crate) const DEACTIVATED: &str = "deactivated";
/// The account was blocked (too many wrong codes, or from the block-my-key page).
pub(crate) const BLOCKED: &str = "blocked";
/// A wrong code was typed on one of the account's phones (an approval, a code change, a
/// biometric registration or a repeated completion).
pub(crate) const WRONG_CODE: &str = "wrong_code";

/// The person reported a request as not theirs ("this was not me").
pub(crate) const NOT_ME_REPORTED: &str = "not_me_reported";
/// The person picked a number other than the one the relying party showed.
pub(crate) const WRONG_NUMBER: &str = "wrong_number";
/// The events that make the account's requests throttled for a while.
pub(crate) const SUSPICIOUS: [&str; 2] = [NOT_ME_REPORTED, WRONG_NUMBER];

/// Records `event` for `account_id`, inside the caller's transaction.
pub(crate) fn record(
    conn: &impl Sql,
    account_id: &str,
    event: &str,
    detail: &str,
    now: i64,
) -> Result<()> {
    Ok(accounts::record_event(
        conn, account_id, event, detail, None, now,
    )?)
}

/// Records `event` for `account_id` as concerning relying party `client_id`, inside the
/// caller's transaction: a suspicious answer to one of its requests.
pub(crate) fn record_of_client(
    conn: &impl Sql,
    account_id: &str,
    event: &str,
    detail: &str,
    client_id: &str,
    now: i64,
) -> Result<()> {
    Ok(accounts::record_event(
        conn,
        account_id,
        event,
        detail,
        Some(client_id),
        now,
    )?)
}
