//! The life of an account on this phone after enrollment: changing the code, enabling and
//! disabling biometrics (and what happens when the platform invalidates the biometric key),
//! registering the push token, and deactivating the account on this phone.
//!
//! Every change goes to the server first, signed by the device key; a code change and the
//! biometric key are also authorised by the current PIN key, derived from the code the person
//! types. The phone's keystore and store change only once the server has accepted.
//!
//! A code change whose answer was lost stays pending on the phone, known by its request's
//! proof id; before a code is used again ([`settle_code_change`]: approvals with the code,
//! enabling biometrics, the next code change) the phone asks the server what became of it, so
//! that no code is ever checked against the wrong PIN key.

use reqwest::Method;
use serde::de::DeserializeOwned;
use sleutel_protocol::api::{
    self, ChangePin, CodeChangeOutcome, CodeChangeResolved, DeviceUpdated, PushPlatform,
    RegisterBiometricKey, RegisterPushToken, ResolveCodeChange,
};
use sleutel_protocol::jose::{self, Es256Signer, Jwk};
use zeroize::Zeroizing;

use crate::account::{AccountEventKind, AccountStatus};
use crate::actions::{note_account_error, usable_account};
use crate::authenticator::Context;
use crate::client::{DeviceKey, outcome_unknown};
use crate::enrollment::{delete_device_key, forget_keys, salt_secret_name, to_json};
use crate::error::CoreError;
use crate::keystore::{KeyProtection, KeystoreError, KeystoreSigner};
use crate::pin;
use crate::store::AccountRow;

/// What the platform shows when the biometric key is created and first used.
const ENABLE_PROMPT: &str = "Bevestig om biometrie in te schakelen voor uw digitale sleutel";

/// The keystore name of the salt of a new code while its change is under way.
fn next_salt_name(device_alias: &str) -> String {
    format!("{}/next", salt_secret_name(device_alias))
}

/// An account that can make a change: on this phone, not revoked, not blocked.
fn changeable_account(ctx: &Context, account_id: &str) -> Result<AccountRow, CoreError> {
    let account = usable_account(ctx, account_id)?;
    if account.status == AccountStatus::Blocked {
        return Err(CoreError::AccountBlocked);
    }
    Ok(account)
}

/// The account's current salt.
fn current_salt(ctx: &Context, account: &AccountRow) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    ctx.keystore
        .get_secret(salt_secret_name(&account.device_alias))?
        .map(Zeroizing::new)
        .ok_or(CoreError::Keystore {
            error: KeystoreError::KeyNotFound,
        })
}

/// Calls the server for `account` with its device key, recording a block or a revocation.
async fn device_call(
    ctx: &Context,
    account: &AccountRow,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<DeviceUpdated, CoreError> {
    device_call_as(ctx, account, method, path, body, None).await
}

/// As [`device_call`], with any answer type and, when given, the proof id `jti`.
async fn device_call_as<T: DeserializeOwned>(
    ctx: &Context,
    account: &AccountRow,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    jti: Option<&str>,
) -> Result<T, CoreError> {
    let device = DeviceKey::load(&*ctx.keystore, &account.device_alias)?;
    let answer = match jti {
        Some(jti) => {
            ctx.client
                .call_with_proof_id(&account.server_url, method, path, body, &device, jti)
                .await
        }
        None => {
            ctx.client
                .call(&account.server_url, method, path, body, &device)
                .await
        }
    };
    answer.map_err(|e| note_account_error(ctx, account, e))
}

/// Settles a code change of `account` whose answer was lost, before a code is used: asks the
/// server, with the device key alone, what became of it. No code is checked by the question.
///
/// - Applied: the new salt becomes the account's, and the caller gets
///   [`CoreError::EarlierCodeChangeRegistered`] without having used the code typed: signed
///   with the old salt, it would count as a wrong code.
/// - Void: the server has recorded that the change never takes effect (a late arrival of its
///   request is refused), so the new salt is dropped and the caller goes on with the old code.
///
/// Without a pending change this does nothing. When the question gets no answer, the error is
/// returned and nothing changes: no code leaves the phone until the phone knows which is right.
/// The caller holds the account's lock ([`crate::account_locks`]).
pub(crate) async fn settle_code_change(
    ctx: &Context,
    account: &AccountRow,
) -> Result<(), CoreError> {
    let Some(change_id) = &account.pending_code_change else {
        return Ok(());
    };
    let body = to_json(&ResolveCodeChange {
        change_id: change_id.clone(),
    })?;
    let resolved: CodeChangeResolved = device_call_as(
        ctx,
        account,
        Method::POST,
        api::PATH_DEVICE_PIN_RESOLVE,
        Some(body),
        None,
    )
    .await?;
    match resolved.outcome {
        CodeChangeOutcome::Applied => {
            // The callers hold the account's lock, so no other call of the account settled
            // this change or started a newer one while the question was out; the check stays
            // as a guard should a caller come without it: only a change still pending, whose
            // salt has the pending name, is adopted here.
            let still_pending = ctx
                .store
                .account(&account.account_id)?
                .is_some_and(|now| now.pending_code_change.as_deref() == Some(change_id));
            if !still_pending {
                return Err(CoreError::EarlierCodeChangeRegistered);
            }
            let next_salt = ctx
                .keystore
                .get_secret(next_salt_name(&account.device_alias))?
                .map(Zeroizing::new)
                .ok_or(CoreError::Keystore {
                    error: KeystoreError::KeyNotFound,
                })?;
            adopt_new_salt(ctx, account, change_id, &next_salt)?;
            debug!("an interrupted code change took effect");
            Err(CoreError::EarlierCodeChangeRegistered)
        }
        CodeChangeOutcome::Void => {
            drop_new_salt(ctx, account, change_id)?;
            debug!("an interrupted code change did not take effect");
            Ok(())
        }
    }
}

/// Makes `next_salt`, the salt of code change `change_id` that the server applied, the
/// account's. The writes are ordered so that a phone killed between any two finds a state it
/// settles: the salt first (the change still pending: asked about again, it is adopted again),
/// then the change recorded done with its history event, then the copy under the pending name
/// deleted (left over, it is only an unused secret that the next change overwrites).
fn adopt_new_salt(
    ctx: &Context,
    account: &AccountRow,
    change_id: &str,
    next_salt: &[u8],
) -> Result<(), CoreError> {
    ctx.keystore
        .put_secret(salt_secret_name(&account.device_alias), next_salt.to_vec())?;
    ctx.account_locks.salt_changed(&account.account_id);
    finish_code_change(ctx, account, change_id, true)
}

/// Forgets code change `change_id`, which did not take effect: recorded first, then its salt
/// deleted, so that a kill in between leaves only an unused secret.
fn drop_new_salt(ctx: &Context, account: &AccountRow, change_id: &str) -> Result<(), CoreError> {
    finish_code_change(ctx, account, change_id, false)
}

/// Records code change `change_id` as finished (`applied` or not), then deletes the pending
/// salt, which is by then either the account's (copied under its own name) or unused. Only the
/// change that was pending owns the pending name: when another call settled it meanwhile, the
/// name may belong to a newer change, and nothing is deleted.
fn finish_code_change(
    ctx: &Context,
    account: &AccountRow,
    change_id: &str,
    applied: bool,
) -> Result<(), CoreError> {
    if !ctx
        .store
        .finish_code_change(&account.account_id, change_id, applied)?
    {
        return Ok(());
    }
    if let Err(e) = ctx
        .keystore
        .delete_secret(next_salt_name(&account.device_alias))
    {
        warn!("could not delete the salt of a finished code change: {e}");
    }
    Ok(())
}

/// Changes the code: `current` authorises, `new` (typed twice) replaces it.
///
/// The new code's salt is kept under its own name, and the change is recorded as pending with
/// its request's proof id, until the server has answered; then the salt becomes the account's.
/// After a [`CoreError::Network`] or [`CoreError::ServerUnavailable`] the change stays pending,
/// and the next use of a code asks the server what became of it ([`settle_code_change`]): a
/// change that took effect makes this call, or the next approval or biometric registration,
/// end with [`CoreError::EarlierCodeChangeRegistered`]; one that did not is forgotten and the
/// call goes on.
pub(crate) async fn change_code(
    ctx: &Context,
    account_id: String,
    current: String,
    new: String,
    confirmation: String,
) -> Result<(), CoreError> {
    let current = Zeroizing::new(current);
    let new = Zeroizing::new(new);
    let confirmation = Zeroizing::new(confirmation);
    pin::check_format(&current)?;
    pin::check_new_code(&new, &confirmation)?;
    if pin::codes_match(&current, &new) {
        return Err(CoreError::invalid(
            "new_code",
            "the new code must differ from the current one",
        ));
    }
    let _account = ctx.account_locks.lock_for_code(&account_id).await?;
    let account = changeable_account(ctx, &account_id)?;
    settle_code_change(ctx, &account).await?;
    let device = DeviceKey::load(&*ctx.keystore, &account.device_alias)?;
    let current_key = pin::derive_pin_key_off_thread(current, current_salt(ctx, &account)?).await?;
    let next_salt = leftover_or_new_salt(ctx, &account)?;
    let new_key = pin::derive_pin_key_off_thread(new, next_salt.clone()).await?;
    let new_jwk = Jwk::from_verifying_key(new_key.verifying_key());
    let message = api::pin_change_message(&device.jwk().thumbprint(), &new_jwk.thumbprint());
    let Ok(current_signature) = current_key.sign_es256(message.as_bytes());
    let Ok(new_pop) = new_key.sign_es256(message.as_bytes());
    drop((current_key, new_key));
    let body = to_json(&ChangePin {
        new_pin_key: new_jwk,
        current_pin_signature: jose::b64(current_signature),
        new_pin_pop: jose::b64(new_pop),
    })?;
    // The salt is stored before the change is recorded pending, and both before the request
    // leaves: a phone killed in between has at worst an unused salt, never a change the server
    // may have applied without the salt to derive its key.
    let change_id = crate::random_id()?;
    ctx.keystore
        .put_secret(next_salt_name(&account.device_alias), next_salt.to_vec())?;
    ctx.store
        .start_code_change(&account.account_id, &change_id)?;
    let answer: Result<DeviceUpdated, CoreError> = device_call_as(
        ctx,
        &account,
        Method::POST,
        api::PATH_DEVICE_PIN,
        Some(body),
        Some(&change_id),
    )
    .await;
    match answer {
        Ok(_) => {
            adopt_new_salt(ctx, &account, &change_id, &next_salt)?;
            debug!("code changed");
            Ok(())
        }
        // The server may have applied it: it stays pending, to be asked about.
        Err(e) if outcome_unknown(&e) => Err(e),
        Err(e) => {
            // Refused: the server kept the current code, and this request cannot be replayed
            // (its proof id was seen).
            drop_new_salt(ctx, &account, &change_id)?;
            Err(e)
        }
    }
}

/// The salt of a new code change: the pending name's salt when one is left there without a
/// pending change, else a fresh one. A salt is left there by a change that a kill cut off
/// before it was recorded pending (never sent), or by a change whose answer an earlier version
/// of the core lost: that version kept no change id to ask about, and repeated the change with
/// the same salt instead. Reusing it keeps that working: when the person repeats the change
/// with the same new code, the server finds the key it already holds and the change completes,
/// without the current code being checked against a key it no longer has. For a salt never
/// sent, reusing it costs nothing.
fn leftover_or_new_salt(
    ctx: &Context,
    account: &AccountRow,
) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    // Called after settling: no change is pending here.
    match ctx
        .keystore
        .get_secret(next_salt_name(&account.device_alias))?
    {
        Some(salt) if salt.len() == pin::SALT_LEN => Ok(Zeroizing::new(salt)),
        _ => pin::new_salt(),
    }
}

/// Enables biometrics for the account: a new biometric-gated key in the keystore, registered
/// with the server under the authority of the code. A code change whose answer was lost is
/// settled first ([`settle_code_change`]).
///
/// After a [`CoreError::Network`] or [`CoreError::ServerUnavailable`] biometrics are off on this
/// phone and the phone asks the server (best effort) to forget its biometric key; the person
/// enables them again.
pub(crate) async fn enable_biometrics(
    ctx: &Context,
    account_id: String,
    code: String,
) -> Result<(), CoreError> {
    let code = Zeroizing::new(code);
    pin::check_format(&code)?;
    let _account = ctx.account_locks.lock_for_code(&account_id).await?;
    let account = changeable_account(ctx, &account_id)?;
    settle_code_change(ctx, &account).await?;
    let account = settle_interrupted_enable(ctx, account).await?;
    let device = DeviceKey::load(&*ctx.keystore, &account.device_alias)?;
    let salt = current_salt(ctx, &account)?;
    let alias = format!("sleutel-biometric-{}", crate::random_id()?);
    let public = ctx
        .keystore
        .generate_key(alias.clone(), KeyProtection::Biometric)?;
    // Marked before it is sent: an app killed before the outcome is recorded must not go on
    // offering the earlier key, which the server may have dropped for this one.
    if let Err(e) = ctx
        .store
        .set_biometric_pending(&account.account_id, Some(&alias))
    {
        delete_device_key(ctx, &alias);
        return Err(e);
    }
    let registered = async {
        let biometric_jwk = Jwk::from_sec1(&public).map_err(|_| {
            CoreError::from(KeystoreError::Unavailable {
                detail: "the keystore returned an invalid public key".into(),
            })
        })?;
        let message =
            api::biometric_enable_message(&device.jwk().thumbprint(), &biometric_jwk.thumbprint());
        let signer = KeystoreSigner {
            keystore: &*ctx.keystore,
            alias: &alias,
            prompt: Some(ENABLE_PROMPT),
        };
        let biometric_pop = signer.sign_es256(message.as_bytes())?;
        let pin_key = pin::derive_pin_key_off_thread(code, salt).await?;
        let Ok(pin_signature) = pin_key.sign_es256(message.as_bytes());
        drop(pin_key);
        let body = to_json(&RegisterBiometricKey {
            biometric_key: biometric_jwk,
            pin_signature: jose::b64(pin_signature),
            biometric_pop: jose::b64(biometric_pop),
        })?;
        device_call(
            ctx,
            &account,
            Method::POST,
            api::PATH_DEVICE_BIOMETRIC,
            Some(body),
        )
        .await
    }
    .await;
    match registered {
        Ok(_) => {
            ctx.store.set_biometric_alias(
                &account.account_id,
                Some(&alias),
                AccountEventKind::BiometricsEnabled,
            )?;
            if let Some(old) = &account.biometric_alias {
                delete_device_key(ctx, old);
            }
            debug!("biometrics enabled");
            Ok(())
        }
        Err(e) => {
            // Whatever the server did, this key is not recorded here: a key the server may
            // have registered is useless without it, and enabling again replaces it there.
            if let Err(e) = ctx.store.set_biometric_pending(&account.account_id, None) {
                warn!("could not clear the mark of a biometric registration: {e}");
            }
            delete_device_key(ctx, &alias);
            if outcome_unknown(&e) {
                // The server may now hold the new key (and no longer the earlier one) or not;
                // the phone cannot tell. Biometrics go off on both sides rather than leave the
                // server with a key nobody holds, or the phone with one the server dropped.
                if let Some(old) = &account.biometric_alias {
                    forget_biometric_key(ctx, &account, old, AccountEventKind::BiometricsDisabled);
                }
                if let Err(e) = device_call(
                    ctx,
                    &account,
                    Method::DELETE,
                    api::PATH_DEVICE_BIOMETRIC,
                    None,
                )
                .await
                {
                    warn!("could not withdraw a biometric key of unknown fate: {e}");
                }
            }
            Err(e)
        }
    }
}

/// Settles a biometric registration that an earlier run of the app sent and did not live to
/// record (the account's pending mark): the server may hold that key or the earlier one, and
/// the phone cannot tell which, so biometrics go off on both sides, as after a lost answer in
/// [`enable_biometrics`]. Returns the account as it then stands; an account without a mark is
/// returned as it was.
pub(crate) async fn settle_interrupted_enable(
    ctx: &Context,
    account: AccountRow,
) -> Result<AccountRow, CoreError> {
    let Some(pending) = account.biometric_pending_alias.clone() else {
        return Ok(account);
    };
    warn!("a biometric registration was cut short; turning biometrics off");
    delete_device_key(ctx, &pending);
    match &account.biometric_alias {
        // Clears the mark with the alias.
        Some(old) => forget_biometric_key(ctx, &account, old, AccountEventKind::BiometricsDisabled),
        None => ctx.store.set_biometric_pending(&account.account_id, None)?,
    }
    // Best effort: a key the server keeps that no phone holds can sign nothing.
    if let Err(e) = device_call(
        ctx,
        &account,
        Method::DELETE,
        api::PATH_DEVICE_BIOMETRIC,
        None,
    )
    .await
    {
        warn!("could not withdraw a biometric key of unknown fate: {e}");
    }
    ctx.store
        .account(&account.account_id)?
        .ok_or(CoreError::NoAccount)
}

/// Disables biometrics for the account: the server forgets the key, then the phone deletes it.
pub(crate) async fn disable_biometrics(ctx: &Context, account_id: String) -> Result<(), CoreError> {
    let _account = ctx.account_locks.lock(&account_id).await;
    let account = usable_account(ctx, &account_id)?;
    if account.biometric_pending_alias.is_some() {
        // Settling turns them off on both sides, which is what was asked.
        settle_interrupted_enable(ctx, account).await?;
        return Ok(());
    }
    let Some(alias) = account.biometric_alias.clone() else {
        return Err(CoreError::BiometricsNotEnabled);
    };
    device_call(
        ctx,
        &account,
        Method::DELETE,
        api::PATH_DEVICE_BIOMETRIC,
        None,
    )
    .await?;
    forget_biometric_key(ctx, &account, &alias, AccountEventKind::BiometricsDisabled);
    Ok(())
}

/// The platform invalidated the account's biometric key: the phone forgets it and asks the
/// server to forget it too (best effort: a key that can no longer sign is harmless there).
pub(crate) async fn biometric_key_invalidated(ctx: &Context, account: &AccountRow, alias: &str) {
    warn!("the platform invalidated the biometric key; turning biometrics off");
    forget_biometric_key(ctx, account, alias, AccountEventKind::BiometricsInvalidated);
    if let Err(e) = device_call(
        ctx,
        account,
        Method::DELETE,
        api::PATH_DEVICE_BIOMETRIC,
        None,
    )
    .await
    {
        warn!("could not tell the server to forget the invalidated biometric key: {e}");
    }
}

/// Turns biometrics off locally: the alias leaves the account (with `event` in its history) and
/// the key leaves the keystore.
pub(crate) fn forget_biometric_key(
    ctx: &Context,
    account: &AccountRow,
    alias: &str,
    event: AccountEventKind,
) {
    if let Err(e) = ctx
        .store
        .set_biometric_alias(&account.account_id, None, event)
    {
        warn!("could not record that biometrics are off: {e}");
    }
    delete_device_key(ctx, alias);
}

/// Registers the push token the platform gave the app for `account_id`'s device. The token is
/// checked first, so a malformed one never leaves the phone; the server then replaces the
/// device's earlier token, if any. Nothing is kept on the phone: the platform hands the app its
/// current token at every start, and registering it again is harmless.
pub(crate) async fn register_push_token(
    ctx: &Context,
    account_id: String,
    platform: PushPlatform,
    token: String,
) -> Result<(), CoreError> {
    let token = api::canonical_push_token(platform, &token)
        .map_err(|e| CoreError::invalid("token", e.to_string()))?;
    let account = changeable_account(ctx, &account_id)?;
    let body = to_json(&RegisterPushToken { platform, token })?;
    device_call(
        ctx,
        &account,
        Method::PUT,
        api::PATH_DEVICE_PUSH_TOKEN,
        Some(body),
    )
    .await?;
    debug!("push token registered ({})", platform.as_str());
    Ok(())
}

/// Deactivates the account on this phone: the server revokes the device, then the phone forgets
/// the account, its requests and its keys (the history stays). A device the server already
/// revoked is forgotten all the same.
pub(crate) async fn deactivate(ctx: &Context, account_id: String) -> Result<(), CoreError> {
    // After a call that may still write the account's salt or keys, never beside it.
    let _account = ctx.account_locks.lock(&account_id).await;
    let account = ctx
        .store
        .account(&account_id)?
        .ok_or(CoreError::NoAccount)?;
    if account.status != AccountStatus::Revoked {
        match device_call(
            ctx,
            &account,
            Method::POST,
            api::PATH_DEVICE_DEACTIVATE,
            None,
        )
        .await
        {
            Ok(_) | Err(CoreError::DeviceRevoked) => {}
            Err(e) => return Err(e),
        }
    }
    ctx.store
        .delete_account(&account.account_id, AccountEventKind::Deactivated)?;
    forget_keys(ctx, &account.device_alias);
    if let Err(e) = ctx
        .keystore
        .delete_secret(next_salt_name(&account.device_alias))
    {
        warn!("could not delete an unused salt: {e}");
    }
    if let Some(alias) = &account.biometric_alias {
        delete_device_key(ctx, alias);
    }
    debug!("account deactivated on this phone");
    Ok(())
}
