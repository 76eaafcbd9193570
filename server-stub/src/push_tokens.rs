//! The devices' push tokens (`push_tokens`, schemas v10 and v12, stored through
//! `store::accounts`): one token per device, and within an account one device per token (a
//! phone with several accounts has one token and a device per account). The database itself
//! drops a token when its device is revoked or its account blocked (the schema's triggers), so
//! the domain modules that revoke and block need no push code. Tokens address one app install:
//! they are never logged, and only their platform appears in `Debug` output.

use crate::store::{Sql, accounts};
use sleutel_protocol::api::PushPlatform;

use crate::error::Result;

pub(crate) use crate::store::accounts::PushTarget;

/// Makes `token` the push token of the device `device_jkt`, replacing the one it had. Another
/// device of the same account that registered the same token gives it up: the token addresses
/// one app install, which is now this device's. Devices of other accounts keep it: they are the
/// same install's other accounts, and a stranger who registers someone's token must not take
/// that person's pushes away.
pub(crate) fn register(
    conn: &impl Sql,
    device_jkt: &str,
    platform: PushPlatform,
    token: &str,
    now: i64,
) -> Result<()> {
    accounts::take_push_token_within_account(conn, device_jkt, platform, token)?;
    accounts::set_push_token(conn, device_jkt, platform, token, now)?;
    Ok(())
}

/// One entry per active device of `account_id`, oldest first: where it receives pushes, or
/// `None` for a device that registered no token.
pub(crate) fn targets_of_account(
    conn: &impl Sql,
    account_id: &str,
) -> Result<Vec<Option<PushTarget>>> {
    Ok(accounts::push_targets_of_account(conn, account_id)?)
}

/// Forgets the token of `target`, on every device that holds it, after its service said it no
/// longer reaches the app: the install is gone for all its accounts. A token a device registered
/// since (the app got a new one) stays. Returns whether one was dropped.
pub(crate) fn forget_unreachable(conn: &impl Sql, target: &PushTarget) -> Result<bool> {
    Ok(accounts::forget_push_token(
        conn,
        target.platform,
        &target.token,
    )?)
}
