//! Enrollment: the phone number and an identity source (a bank's app through a handoff, the
//! identification code of the eID website, or the counter: the activation link of its e-mail,
//! which the app is opened with, and the activation code handed out at the desk, typed by the
//! person), the SMS control code, and the choice of the 5-digit code that registers the phone's
//! keys. An unblock is the same enrollment for an account already on this phone: it makes a new
//! device key, as any enrollment does, and names the account's current one, which the server
//! revokes when the unblock completes (a copy of the phone's files holding the old key is shut
//! out). Until then the account keeps its key and code; an unblock that fails or is abandoned
//! deletes only its new key.
//!
//! The enrollment in progress is kept in the store at every step, because the bank handoff
//! leaves the app and the system may kill it meanwhile. The counter link's token is a secret
//! (with the code, it activates a phone), so it is kept in the keystore, not the store, until
//! the code step is over. What the person brings (codes, links) is read and checked in
//! [`input`] before anything is sent.

pub(crate) mod input;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use sleutel_protocol::api::{
    self, CompleteEnrollment, EnrollmentCompleted, EnrollmentStarted, ReplacedDevice, SmsSent,
    SmsVerified, StartEnrollment, SubmitIdentity, SubmitIdentityCode, VerifySms, is_valid_id,
};
use sleutel_protocol::display::clean_display_text;
use sleutel_protocol::identity::{self, Bank, IdentitySource};
use sleutel_protocol::jose::{self, Es256Signer, Jwk, Jwks};
use sleutel_protocol::limits::{
    CLOCK_SKEW_SECS, COMPLETION_REPEAT_SECS, MAX_ID_CHARS, MAX_NAME_CHARS, SMS_CODE_LENGTH,
};
use sleutel_protocol::phone::normalize_belgian_mobile;
use zeroize::Zeroizing;

use crate::account::{Account, AccountEventKind, AccountStatus};
use crate::authenticator::{Context, is_loopback};
use crate::client::{DeviceKey, is_wrong_step, outcome_unknown};
use crate::error::CoreError;
use crate::keystore::KeyProtection;
use crate::pin;
use crate::server_keys;
use crate::store::{AccountRow, EnrollmentRow};

pub(crate) use input::{Start, counter_start, identification_code};
use input::{activation_code, parse_bank_return};

/// Longest display name kept: a given and a family name with a space between.
const MAX_DISPLAY_NAME_CHARS: usize = MAX_NAME_CHARS * 2 + 1;

/// Longest masked phone number shown: an E.164 number with spaces (`+32 4•• •• 34 56`) has
/// fewer than 20 characters, so anything longer is not a phone number.
const MAX_MASKED_PHONE_CHARS: usize = 32;

/// Where the person is in an enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum EnrollmentStep {
    /// Waiting for the bank's app to return with the identity (`complete_bank_handoff`).
    BankHandoff,
    /// Waiting for the identification code (eID) or activation code (counter) to be typed
    /// again after it was refused or its answer lost (`submit_identity_code`).
    IdentityCode,
    /// Waiting for the SMS control code (`verify_sms_code`, `resend_sms_code`).
    SmsCode,
    /// Waiting for the person to choose the 5-digit code (`choose_code`).
    ChooseCode,
}

/// Where to send the person to prove their identity with their bank.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct BankHandoff {
    /// The enrollment id; the bank's return link names it.
    pub enrollment_id: String,
    /// The bank's app or site to open.
    pub handoff_url: String,
    /// The bank chosen.
    pub bank: Bank,
}

/// The enrollment in progress, as the app needs it after a restart.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct EnrollmentProgress {
    /// The enrollment id.
    pub enrollment_id: String,
    /// The step it is waiting for.
    pub step: EnrollmentStep,
    /// The phone number being enrolled (E.164).
    pub phone_number: String,
    /// How the identity is proven.
    pub source: IdentitySource,
    /// The bank chosen, for the bank source.
    pub bank: Option<Bank>,
    /// The bank's app or site, to open again if the person did not get there (bank source).
    pub handoff_url: Option<String>,
    /// The account this enrollment unblocks, when it is an unblock.
    pub unblock_account_id: Option<String>,
    /// The person's name, once the SMS code is verified.
    pub display_name: Option<String>,
    /// When the enrollment expires (Unix seconds).
    pub expires_at: i64,
}

impl From<&EnrollmentRow> for EnrollmentProgress {
    fn from(row: &EnrollmentRow) -> Self {
        Self {
            enrollment_id: row.enrollment_id.clone(),
            step: row.step,
            phone_number: row.phone_number.clone(),
            source: row.source,
            bank: row.bank,
            handoff_url: row.handoff_url.clone(),
            unblock_account_id: row.unblock_account_id.clone(),
            display_name: row.display_name.clone(),
            expires_at: row.expires_at,
        }
    }
}

/// The SMS answer with its masked number cleaned for display.
fn shown(mut sent: SmsSent) -> SmsSent {
    sent.phone_number_masked =
        clean_display_text(&sent.phone_number_masked, MAX_MASKED_PHONE_CHARS);
    sent
}

/// The name of the keystore secret holding the salt of the code for the account whose device
/// key is `device_alias`.
pub(crate) fn salt_secret_name(device_alias: &str) -> String {
    format!("pin-salt/{device_alias}")
}

/// The name of the keystore secret holding the token of the counter's activation link for the
/// enrollment `row`, kept so that a code typed again (`submit_identity_code`) goes with the link
/// the enrollment was started with. Named after the enrollment's device key and the enrollment
/// itself (an unblock started by an earlier version of the app used the account's device key).
fn activation_link_secret_name(row: &EnrollmentRow) -> String {
    format!("activation-link/{}/{}", row.device_alias, row.enrollment_id)
}

/// A fresh random key alias, so that a new enrollment never reuses or overwrites a key.
fn new_alias() -> Result<String, CoreError> {
    Ok(format!("sleutel-device-{}", crate::random_id()?))
}

/// A success answer whose content the phone cannot use: the server may have acted on the call.
fn malformed_answer(what: &str) -> CoreError {
    CoreError::unavailable(None, format!("the server's answer has an invalid {what}"))
}

pub(crate) async fn start_bank_enrollment(
    ctx: &Context,
    phone_number: String,
    bank: Bank,
) -> Result<BankHandoff, CoreError> {
    let phone_number =
        normalize_belgian_mobile(&phone_number).map_err(|_| CoreError::InvalidPhoneNumber)?;
    let row = start(ctx, phone_number, &Start::Bank(bank), None).await?;
    bank_handoff(row, bank)
}

fn bank_handoff(row: EnrollmentRow, bank: Bank) -> Result<BankHandoff, CoreError> {
    Ok(BankHandoff {
        enrollment_id: row.enrollment_id,
        handoff_url: row
            .handoff_url
            .ok_or_else(|| malformed_answer("handoff URL"))?,
        bank,
    })
}

/// Starts an enrollment through the eID website's identification code or the counter's
/// activation code and hands the code to the server, which sends the SMS code.
pub(crate) async fn start_with_code(
    ctx: &Context,
    phone_number: String,
    how: Start,
) -> Result<SmsSent, CoreError> {
    let phone_number =
        normalize_belgian_mobile(&phone_number).map_err(|_| CoreError::InvalidPhoneNumber)?;
    let row = start(ctx, phone_number, &how, None).await?;
    submit_code(ctx, &row, &how).await
}

/// Starts an unblock of `account_id` from this phone: an enrollment for the account's phone
/// number with a new device key that replaces the account's.
async fn start_unblock(
    ctx: &Context,
    account_id: &str,
    how: &Start,
) -> Result<EnrollmentRow, CoreError> {
    let account = ctx.store.account(account_id)?.ok_or(CoreError::NoAccount)?;
    if account.status == AccountStatus::Revoked {
        return Err(CoreError::DeviceRevoked);
    }
    if account.server_url != ctx.server_url {
        return Err(CoreError::invalid(
            "account_id",
            "the account lives on another server than this app's",
        ));
    }
    start(ctx, account.phone_number.clone(), how, Some(&account)).await
}

/// Starts an unblock with an identification or activation code and hands the code over.
pub(crate) async fn unblock_with_code(
    ctx: &Context,
    account_id: &str,
    how: Start,
) -> Result<SmsSent, CoreError> {
    let row = start_unblock(ctx, account_id, &how).await?;
    submit_code(ctx, &row, &how).await
}

pub(crate) async fn unblock_with_bank(
    ctx: &Context,
    account_id: String,
    bank: Bank,
) -> Result<BankHandoff, CoreError> {
    let row = start_unblock(ctx, &account_id, &Start::Bank(bank)).await?;
    bank_handoff(row, bank)
}

/// Creates the enrollment at the server and stores it, with a new device key. An unblock
/// (`unblock`) names the account's current device key as the one it replaces, signed by that
/// key; the account keeps it until the unblock completes.
async fn start(
    ctx: &Context,
    phone_number: String,
    how: &Start,
    unblock: Option<&AccountRow>,
) -> Result<EnrollmentRow, CoreError> {
    let alias = new_alias()?;
    let public = ctx
        .keystore
        .generate_key(alias.clone(), KeyProtection::Device)?;
    let bank = match how {
        Start::Bank(bank) => Some(*bank),
        Start::Eid(_) | Start::Counter { .. } => None,
    };
    let started = async {
        let device = DeviceKey::from_sec1(&*ctx.keystore, &alias, &public)?;
        let replaces = match unblock {
            Some(account) => Some(replacement(ctx, account, &device)?),
            None => None,
        };
        let body = serde_json::to_vec(&StartEnrollment {
            phone_number: phone_number.clone(),
            source: how.source(),
            bank,
            replaces,
        })
        .map_err(|e| CoreError::invalid("enrollment", e.to_string()))?;
        let started: EnrollmentStarted = ctx
            .client
            .call(
                &ctx.server_url,
                Method::POST,
                api::PATH_ENROLLMENTS,
                Some(body),
                &device,
            )
            .await?;
        if !is_valid_id(&started.enrollment_id) {
            return Err(malformed_answer("enrollment id"));
        }
        if started.nonce.is_empty() || started.nonce.len() > MAX_ID_CHARS {
            return Err(malformed_answer("nonce"));
        }
        // The person types their bank card's PIN there: https, or http on this machine only
        // (the development server's simulated banks), as for the server URL itself.
        let handoff_url = match (bank, started.handoff_url) {
            (Some(_), Some(handoff)) => match url::Url::parse(&handoff) {
                Ok(url)
                    if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) =>
                {
                    Some(handoff)
                }
                _ => return Err(malformed_answer("handoff URL")),
            },
            (Some(_), None) => return Err(malformed_answer("handoff URL")),
            (None, _) => None,
        };
        let row = EnrollmentRow {
            enrollment_id: started.enrollment_id,
            nonce: started.nonce,
            server_url: ctx.server_url.clone(),
            phone_number,
            source: how.source(),
            bank,
            device_alias: alias.clone(),
            handoff_url,
            step: match how {
                Start::Bank(_) => EnrollmentStep::BankHandoff,
                Start::Eid(_) | Start::Counter { .. } => EnrollmentStep::IdentityCode,
            },
            display_name: None,
            expires_at: started.expires_at,
            unblock_account_id: unblock.map(|a| a.account_id.clone()),
        };
        let previous = ctx.store.replace_enrollment(&row)?;
        Ok((row, previous))
    }
    .await;
    match started {
        Ok((row, previous)) => {
            if let Some(previous) = previous {
                debug!("a new enrollment replaces the one in progress");
                forget_enrollment_keys(ctx, &previous);
            }
            if let Start::Counter { link_token, .. } = how {
                let kept = ctx.keystore.put_secret(
                    activation_link_secret_name(&row),
                    link_token.as_bytes().to_vec(),
                );
                if let Err(e) = kept {
                    // Without the link a code typed again could not be sent: start over.
                    abandon(ctx, &row);
                    return Err(e.into());
                }
            }
            Ok(row)
        }
        Err(e) => {
            delete_device_key(ctx, &alias);
            Err(e)
        }
    }
}

/// The replacement of `account`'s device key by the enrollment's new key `device`, signed by
/// the account's key: the proof that this phone holds it, for that one new key.
fn replacement(
    ctx: &Context,
    account: &AccountRow,
    device: &DeviceKey<'_>,
) -> Result<ReplacedDevice, CoreError> {
    let current = DeviceKey::load(&*ctx.keystore, &account.device_alias)?;
    Ok(ReplacedDevice::sign(
        current.jwk().clone(),
        &current.signer(),
        &device.jwk().thumbprint(),
    )?)
}

/// Hands an identification or activation code to the server. Like the bank handoff, a lost
/// answer changes nothing here and the call can be made again (`submit_identity_code`); a
/// refusal keeps the enrollment so that the person can type the code again, except when the
/// server ends it.
async fn submit_code(
    ctx: &Context,
    row: &EnrollmentRow,
    how: &Start,
) -> Result<SmsSent, CoreError> {
    let body = match how {
        Start::Eid(code) => code_body(code, None)?,
        Start::Counter { link_token, code } => code_body(code, Some(link_token))?,
        Start::Bank(_) => return Err(CoreError::WrongStep { expected: row.step }),
    };
    let device = DeviceKey::load(&*ctx.keystore, &row.device_alias)?;
    let result: Result<SmsSent, CoreError> = call(
        ctx,
        row,
        &device,
        Method::POST,
        &api::path_enrollment_code(&row.enrollment_id),
        Some(body.to_vec()),
    )
    .await;
    match result {
        Ok(sent) => {
            ctx.store
                .set_enrollment_step(&row.enrollment_id, EnrollmentStep::SmsCode, None)?;
            forget_activation_link(ctx, row);
            debug!("identity code accepted; SMS code sent");
            Ok(shown(sent))
        }
        Err(e) if is_wrong_step(&e) => {
            debug!("the code was accepted by an earlier call; moving on to the SMS step");
            ctx.store
                .set_enrollment_step(&row.enrollment_id, EnrollmentStep::SmsCode, None)?;
            forget_activation_link(ctx, row);
            Err(CoreError::WrongStep {
                expected: EnrollmentStep::SmsCode,
            })
        }
        Err(e) => Err(e),
    }
}

/// The JSON body that hands `code` (and, for the counter, the link's token) to the server; the
/// body's own copies of both are wiped once it is serialised.
fn code_body(code: &str, activation_token: Option<&str>) -> Result<Zeroizing<Vec<u8>>, CoreError> {
    let body = SubmitIdentityCode {
        code: code.to_owned(),
        activation_token: activation_token.map(str::to_owned),
    };
    let json = to_json(&body).map(Zeroizing::new);
    let SubmitIdentityCode {
        code,
        activation_token,
    } = body;
    drop((Zeroizing::new(code), activation_token.map(Zeroizing::new)));
    json
}

/// The kept token of the counter link `row` was started with. A keystore that lost it (or holds
/// something that is no token) leaves nothing to send with a code: the enrollment is abandoned
/// and the person starts again from the link ([`CoreError::EnrollmentExpired`]).
fn kept_activation_link(
    ctx: &Context,
    row: &EnrollmentRow,
) -> Result<Zeroizing<String>, CoreError> {
    let kept = ctx
        .keystore
        .get_secret(activation_link_secret_name(row))?
        .map(Zeroizing::new);
    let token = kept
        .and_then(|bytes| std::str::from_utf8(&bytes).ok().map(str::to_owned))
        .map(Zeroizing::new)
        .filter(|token| identity::is_activation_token(token));
    match token {
        Some(token) => Ok(token),
        None => {
            warn!("the activation link of the enrollment in progress is gone; abandoning it");
            abandon(ctx, row);
            Err(CoreError::EnrollmentExpired)
        }
    }
}

/// Deletes the kept token of a counter link: once the code step is over, or the enrollment
/// ended, nothing may send it again. Deleting what is not there is harmless.
fn forget_activation_link(ctx: &Context, row: &EnrollmentRow) {
    if row.source != IdentitySource::Counter {
        return;
    }
    if let Err(e) = ctx.keystore.delete_secret(activation_link_secret_name(row)) {
        warn!("could not delete the kept activation link: {e}");
    }
}

/// Types the identification or activation code again, for the enrollment in progress.
pub(crate) async fn submit_identity_code(
    ctx: &Context,
    code: String,
) -> Result<SmsSent, CoreError> {
    let code = Zeroizing::new(code);
    let row = current(ctx, EnrollmentStep::IdentityCode)?;
    let how = match row.source {
        IdentitySource::Eid => Start::Eid(identification_code(&code)?),
        IdentitySource::Counter => {
            let code = activation_code(&code)?;
            Start::Counter {
                link_token: kept_activation_link(ctx, &row)?,
                code,
            }
        }
        IdentitySource::Bank => {
            return Err(CoreError::WrongStep { expected: row.step });
        }
    };
    submit_code(ctx, &row, &how).await
}

/// Hands the identity to the server. A lost answer (a network or server failure) changes
/// nothing here, so the call can be retried; if the server had accepted the identity, the retry
/// is answered `wrong_step` (only an accepted identity moves the server on), and the phone
/// follows it to the SMS step and says so with [`CoreError::WrongStep`] `{ expected: SmsCode }`:
/// the SMS went out with the first call.
pub(crate) async fn complete_bank_handoff(
    ctx: &Context,
    deep_link: String,
) -> Result<SmsSent, CoreError> {
    let row = current(ctx, EnrollmentStep::BankHandoff)?;
    let identity_token = parse_bank_return(&deep_link, &row.enrollment_id)?;
    let body = to_json(&SubmitIdentity { identity_token })?;
    let device = DeviceKey::load(&*ctx.keystore, &row.device_alias)?;
    let result: Result<SmsSent, CoreError> = call(
        ctx,
        &row,
        &device,
        Method::POST,
        &api::path_enrollment_identity(&row.enrollment_id),
        Some(body),
    )
    .await;
    let sent = match result {
        Ok(sent) => sent,
        Err(e) if is_wrong_step(&e) => {
            debug!("the identity was accepted by an earlier call; moving on to the SMS step");
            ctx.store
                .set_enrollment_step(&row.enrollment_id, EnrollmentStep::SmsCode, None)?;
            return Err(CoreError::WrongStep {
                expected: EnrollmentStep::SmsCode,
            });
        }
        Err(e) => return Err(e),
    };
    ctx.store
        .set_enrollment_step(&row.enrollment_id, EnrollmentStep::SmsCode, None)?;
    debug!("identity accepted; SMS code sent");
    Ok(shown(sent))
}

/// Asks for a new SMS code. When the server has none to send because it is past the SMS step
/// (an earlier verification succeeded but its answer was lost), the answer is
/// [`CoreError::WrongStep`] `{ expected: SmsCode }`: the phone still waits for
/// `verify_sms_code`, which the server answers as verified again.
pub(crate) async fn resend_sms_code(ctx: &Context) -> Result<SmsSent, CoreError> {
    let row = current(ctx, EnrollmentStep::SmsCode)?;
    let device = DeviceKey::load(&*ctx.keystore, &row.device_alias)?;
    let sent: SmsSent = call(
        ctx,
        &row,
        &device,
        Method::POST,
        &api::path_enrollment_sms_resend(&row.enrollment_id),
        None,
    )
    .await
    .map_err(|e| {
        if is_wrong_step(&e) {
            CoreError::WrongStep {
                expected: EnrollmentStep::SmsCode,
            }
        } else {
            e
        }
    })?;
    Ok(shown(sent))
}

/// Checks the SMS code. A lost answer changes nothing here and the call can be retried: the
/// server answers a verification of an enrollment already past the SMS step as verified again.
/// So `wrong_step` can only mean the server has not reached the SMS step while this phone has:
/// the two disagree, the enrollment is abandoned and [`CoreError::EnrollmentExpired`] tells the
/// app to start again (reporting the SMS step as expected would have the app loop).
pub(crate) async fn verify_sms_code(ctx: &Context, code: String) -> Result<(), CoreError> {
    let code = code.trim();
    if code.len() != SMS_CODE_LENGTH || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CoreError::invalid(
            "code",
            format!("the SMS code has {SMS_CODE_LENGTH} digits"),
        ));
    }
    let row = current(ctx, EnrollmentStep::SmsCode)?;
    let body = to_json(&VerifySms {
        code: code.to_owned(),
    })?;
    let device = DeviceKey::load(&*ctx.keystore, &row.device_alias)?;
    let result: Result<SmsVerified, CoreError> = call(
        ctx,
        &row,
        &device,
        Method::POST,
        &api::path_enrollment_sms(&row.enrollment_id),
        Some(body),
    )
    .await;
    let verified = match result {
        Ok(verified) => verified,
        Err(e) if is_wrong_step(&e) => {
            warn!("the server is not at the SMS step of this enrollment; abandoning it");
            abandon(ctx, &row);
            return Err(CoreError::EnrollmentExpired);
        }
        Err(e) => return Err(e),
    };
    let name = clean_display_text(&verified.display_name, MAX_DISPLAY_NAME_CHARS);
    ctx.store
        .set_enrollment_step(&row.enrollment_id, EnrollmentStep::ChooseCode, Some(&name))?;
    debug!("phone number verified");
    Ok(())
}

/// Chooses the code and registers the keys.
///
/// The salt is stored before the keys are sent and is kept whenever the server may have
/// registered the PIN key derived from it (a lost answer: [`outcome_unknown`]). A retry then
/// uses the stored salt again with the code typed now: the same code gives the same PIN key,
/// which the server accepts again within the enrollment's lifetime; another code gives another
/// key, which the server counts as a wrong code once it has registered the first one, reported
/// as [`CoreError::EarlierCodeRegistered`] with the attempts left. After the lifetime the
/// server compares nothing and answers `wrong_step`: the enrollment is over
/// ([`CoreError::EnrollmentExpired`]) and the person activates again. The salt is deleted only
/// when the one attempt made with it was refused by the server (a 4xx answer) or failed before
/// anything was sent, or when the enrollment ends.
pub(crate) async fn choose_code(
    ctx: &Context,
    code: String,
    confirmation: String,
) -> Result<Account, CoreError> {
    let code = Zeroizing::new(code);
    let confirmation = Zeroizing::new(confirmation);
    pin::check_new_code(&code, &confirmation)?;
    drop(confirmation);
    let row = current(ctx, EnrollmentStep::ChooseCode)?;
    let device = DeviceKey::load(&*ctx.keystore, &row.device_alias)?;

    // The server keys are fetched and checked before any key is registered, so a server whose
    // keys are unusable never ends up with an account this phone cannot verify requests for.
    let fetched: Jwks = call(ctx, &row, &device, Method::GET, api::PATH_SERVER_KEYS, None).await?;
    let thumbprint = ctx.server_key_thumbprint.as_deref();
    let pinned_keys = server_keys::to_pin(fetched, thumbprint)?;

    // The device key alias is new for every enrollment, unblocks included, so a salt under its
    // name can only come from an earlier attempt of this enrollment. An unblocked account's
    // current salt is under its current key's name and stays until the account is stored.
    let salt_name = salt_secret_name(&row.device_alias);
    let (salt, earlier_attempt) = match ctx.keystore.get_secret(salt_name.clone())? {
        Some(salt) => (Zeroizing::new(salt), true),
        None => {
            let salt = pin::new_salt()?;
            ctx.keystore.put_secret(salt_name.clone(), salt.to_vec())?;
            (salt, false)
        }
    };
    // Whether or not the answer arrives, the server keeps a completion repeatable for
    // COMPLETION_REPEAT_SECS; the phone gives itself as long from now.
    ctx.store.extend_enrollment(
        &row.enrollment_id,
        crate::now().saturating_add(COMPLETION_REPEAT_SECS),
    )?;
    let done = match register_keys(ctx, &row, &device, code, salt).await {
        Ok(done) => done,
        Err(e) if outcome_unknown(&e) => {
            debug!("the key registration may have succeeded; keeping the salt for a retry");
            return Err(e);
        }
        Err(CoreError::WrongCode { attempts_left }) => {
            // The server holds the PIN key of the code an earlier attempt registered, and
            // counted this other code as a wrong one. The salt stays for the right code.
            return Err(CoreError::EarlierCodeRegistered { attempts_left });
        }
        Err(CoreError::AccountBlocked) => {
            // Too many wrong codes after a lost answer: the account this enrollment created is
            // blocked, and this phone never stored it. Only a new activation can go on.
            warn!("the account of this enrollment is blocked; abandoning it");
            abandon(ctx, &row);
            return Err(CoreError::AccountBlocked);
        }
        Err(e) if is_wrong_step(&e) => {
            // The server is not waiting for keys and no longer answers a repeat: the
            // enrollment's lifetime is over, or its device left the account. Either way this
            // phone and the server disagree, and only a new enrollment can go on.
            warn!("the server is not at the key step of this enrollment; abandoning it");
            abandon(ctx, &row);
            return Err(CoreError::EnrollmentExpired);
        }
        Err(e) => {
            // Refused by the server, or failed before anything was sent. A salt an earlier
            // attempt may have registered a key with is kept all the same.
            if !earlier_attempt && let Err(e) = ctx.keystore.delete_secret(salt_name) {
                warn!("could not delete the salt of a refused enrollment: {e}");
            }
            return Err(e);
        }
    };
    // From here on the server has registered the keys: nothing may be deleted, so that a retry
    // can still finish the enrollment.
    store_account(ctx, &row, done, pinned_keys)
}

/// Derives the PIN key and sends both public keys with their proofs of possession.
async fn register_keys(
    ctx: &Context,
    row: &EnrollmentRow,
    device: &DeviceKey<'_>,
    code: Zeroizing<String>,
    salt: Zeroizing<Vec<u8>>,
) -> Result<EnrollmentCompleted, CoreError> {
    let pin_key = pin::derive_pin_key_off_thread(code, salt).await?;
    let pop = |role: &str| api::enrollment_pop_message(role, &row.enrollment_id, &row.nonce);
    let device_pop = device.signer().sign_es256(pop("device").as_bytes())?;
    let Ok(pin_pop) = pin_key.sign_es256(pop("pin").as_bytes());
    let body = to_json(&CompleteEnrollment {
        device_key: device.jwk().clone(),
        pin_key: Jwk::from_verifying_key(pin_key.verifying_key()),
        device_pop: jose::b64(device_pop),
        pin_pop: jose::b64(pin_pop),
        device_key_in_hardware: device.in_hardware(),
    })?;
    drop(pin_key);

    call(
        ctx,
        row,
        device,
        Method::POST,
        &api::path_enrollment_complete(&row.enrollment_id),
        Some(body),
    )
    .await
}

/// Stores the account the server created and ends the enrollment. A new activation of an
/// account already on this phone, an unblock included, replaces it; the keys of the replaced
/// one (device key, salt, biometric key) are then deleted, since the server no longer accepts
/// them.
fn store_account(
    ctx: &Context,
    row: &EnrollmentRow,
    done: EnrollmentCompleted,
    pinned_keys: Jwks,
) -> Result<Account, CoreError> {
    if !is_valid_id(&done.account_id) {
        return Err(malformed_answer("account id"));
    }
    if row
        .unblock_account_id
        .as_ref()
        .is_some_and(|unblocked| &done.account_id != unblocked)
    {
        return Err(malformed_answer("account id (not the account unblocked)"));
    }
    if done.issuer.is_empty() {
        return Err(malformed_answer("issuer"));
    }
    let thumbprint = ctx.server_key_thumbprint.as_deref();
    let account = AccountRow {
        account_id: done.account_id,
        server_url: row.server_url.clone(),
        issuer: done.issuer,
        display_name: clean_display_text(&done.display_name, MAX_DISPLAY_NAME_CHARS),
        phone_number: row.phone_number.clone(),
        device_alias: row.device_alias.clone(),
        server_keys: server_keys::merge(pinned_keys, done.server_keys, thumbprint),
        status: AccountStatus::Active,
        created_at: crate::now(),
        biometric_alias: None,
        pending_code_change: None,
        biometric_pending_alias: None,
    };
    let event = if row.unblock_account_id.is_some() {
        AccountEventKind::Unblocked
    } else {
        AccountEventKind::Activated
    };
    let replaced = ctx
        .store
        .finish_enrollment(&row.enrollment_id, &account, event)?;
    forget_activation_link(ctx, row);
    if let Some(replaced) = replaced {
        if replaced.device_alias != account.device_alias {
            debug!("the new activation replaces this account's earlier keys");
            forget_keys(ctx, &replaced.device_alias);
        }
        // The server dropped the biometric key with the old code: so does the phone.
        if let Some(biometric) = replaced.biometric_alias {
            delete_device_key(ctx, &biometric);
        }
    }
    debug!("enrollment complete");
    Ok(Account::from(&account))
}

/// Whether the server's expiry has passed on the phone's clock. The clock skew is allowed for:
/// the server decides anyway, and a phone whose clock runs ahead must not give up early. Past
/// it nothing can be finished, not even a completion whose answer was lost: the server answers
/// such a repeat only within the enrollment's lifetime.
fn is_expired(row: &EnrollmentRow) -> bool {
    row.expires_at.saturating_add(CLOCK_SKEW_SECS) <= crate::now()
}

/// The enrollment in progress, which must be waiting for `step`. An expired one is abandoned.
fn current(ctx: &Context, step: EnrollmentStep) -> Result<EnrollmentRow, CoreError> {
    let row = ctx
        .store
        .enrollment()?
        .ok_or(CoreError::NoEnrollmentInProgress)?;
    if is_expired(&row) || signed_with_the_accounts_key(ctx, &row)? {
        // An unblock signed with the account's own key cannot have the server revoke that key
        // (a copy of the phone's files may hold it): the person starts it again, with a new key.
        abandon(ctx, &row);
        return Err(CoreError::EnrollmentExpired);
    }
    if row.step != step {
        return Err(CoreError::WrongStep { expected: row.step });
    }
    Ok(row)
}

/// The enrollment in progress, if any and not expired.
pub(crate) fn in_progress(ctx: &Context) -> Result<Option<EnrollmentProgress>, CoreError> {
    match ctx.store.enrollment()? {
        Some(row) if is_expired(&row) || signed_with_the_accounts_key(ctx, &row)? => {
            abandon(ctx, &row);
            Ok(None)
        }
        Some(row) => Ok(Some(EnrollmentProgress::from(&row))),
        None => Ok(None),
    }
}

/// Calls the server for the enrollment `row` with its device key, ending the enrollment
/// locally when the server says it is over. A `wrong_step` answer is left to the caller, which
/// alone knows what it means for its step.
async fn call<T: serde::de::DeserializeOwned>(
    ctx: &Context,
    row: &EnrollmentRow,
    device: &DeviceKey<'_>,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<T, CoreError> {
    let result = ctx
        .client
        .call(&row.server_url, method, path, body, device)
        .await;
    result.inspect_err(|e| {
        if matches!(e, CoreError::EnrollmentExpired | CoreError::TooManyAttempts) {
            abandon(ctx, row);
        }
    })
}

/// Forgets an enrollment that cannot go on, with its device key and any salt.
fn abandon(ctx: &Context, row: &EnrollmentRow) {
    if let Err(e) = ctx.store.delete_enrollment(&row.enrollment_id) {
        warn!("could not delete an ended enrollment: {e}");
    }
    forget_enrollment_keys(ctx, row);
}

/// Deletes what an ended enrollment alone used: its device key and the salt of its code (an
/// unblock's are new as well: the account's own stay), and the counter link's token, if it was
/// kept. An unblock an earlier version of the app started with the account's own device key
/// leaves that key and its salt, and deletes only the salt it kept under a name of its own.
fn forget_enrollment_keys(ctx: &Context, row: &EnrollmentRow) {
    forget_activation_link(ctx, row);
    match signed_with_the_accounts_key(ctx, row) {
        Ok(false) => forget_keys(ctx, &row.device_alias),
        Ok(true) => {
            let own_salt = format!(
                "{}/{}",
                salt_secret_name(&row.device_alias),
                row.enrollment_id
            );
            if let Err(e) = ctx.keystore.delete_secret(own_salt) {
                warn!("could not delete an unused salt: {e}");
            }
        }
        Err(e) => warn!("kept the key of an ended enrollment that may be an account's: {e}"),
    }
}

/// Whether `row` is an unblock that an earlier version of the app started with the account's
/// own device key, before unblocks made a new one.
fn signed_with_the_accounts_key(ctx: &Context, row: &EnrollmentRow) -> Result<bool, CoreError> {
    let Some(account_id) = &row.unblock_account_id else {
        return Ok(false);
    };
    Ok(ctx
        .store
        .account(account_id)?
        .is_some_and(|account| account.device_alias == row.device_alias))
}

/// Deletes a device key that no account or enrollment uses any more, and the salt of the code
/// that went with it. Deleting what is not there is harmless.
pub(crate) fn forget_keys(ctx: &Context, alias: &str) {
    delete_device_key(ctx, alias);
    if let Err(e) = ctx.keystore.delete_secret(salt_secret_name(alias)) {
        warn!("could not delete an unused salt: {e}");
    }
}

pub(crate) fn delete_device_key(ctx: &Context, alias: &str) {
    if let Err(e) = ctx.keystore.delete_key(alias.to_owned()) {
        warn!("could not delete an unused device key: {e}");
    }
}

pub(crate) fn to_json<T: Serialize>(body: &T) -> Result<Vec<u8>, CoreError> {
    serde_json::to_vec(body).map_err(|e| CoreError::invalid("body", e.to_string()))
}
