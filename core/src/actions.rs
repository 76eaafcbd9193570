//! Action requests from relying parties: receiving them (push or polling), checking them
//! against the pinned server keys, showing them, and answering with the device key and the
//! code, or declining with the device key alone.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use sleutel_protocol::ProtocolError;
use sleutel_protocol::action::{
    self, ActionKind, ActionRequest, SignDocument, Transaction, UserVerification, VerifiedAction,
};
use sleutel_protocol::api::{
    self, PendingRequests, PushMessage, RequestEnvelope, ResponseAccepted,
};
use sleutel_protocol::jose::{self, GeneralJws, Jwks};
use sleutel_protocol::response::{ActionResponse, Decision, DeclineReason, UvMethod};
use zeroize::Zeroizing;

use crate::account::{AccountEventKind, AccountStatus};
use crate::authenticator::Context;
use crate::client::DeviceKey;
use crate::enrollment::salt_secret_name;
use crate::error::CoreError;
use crate::keystore::{KeystoreError, KeystoreSigner};
use crate::pin;
use crate::store::{AccountRow, PendingRow};
use sleutel_protocol::api::is_valid_id;

/// Largest push payload accepted: it carries two ids, anything bigger is not ours.
const MAX_PUSH_PAYLOAD_BYTES: usize = 1024;

/// Most listed requests looked at per account in one refresh; the rest are ignored. The
/// reference server keeps at most 5 open requests per account, so that relying parties cannot
/// flood a person; some headroom lets a server's policy change, while a list far longer comes
/// from a broken or hostile server, and every entry costs a signature check and a stored row.
pub(crate) const MAX_LISTED_REQUESTS_PER_ACCOUNT: usize = 16;

/// An action request, verified and cleaned, ready to show.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ActionView {
    /// The request id.
    pub request_id: String,
    /// The account it is for.
    pub account_id: String,
    /// The relying party's stable id.
    pub rp_id: String,
    /// The relying party's name.
    pub rp_name: String,
    /// What kind of confirmation is asked.
    pub kind: ActionKind,
    /// The sentence to show.
    pub text: String,
    /// The binding message the relying party also shows, to compare.
    pub binding_message: Option<String>,
    /// The identity claims the relying party requires (`protocol::claims` names): approving
    /// shares them all; a person who does not want to share one declines.
    pub claims: Vec<String>,
    /// The identity claims the relying party would like but does without: the person may
    /// leave out any of them (see [`Approval::optional_claims`]).
    pub optional_claims: Vec<String>,
    /// Whether only the 5-digit code is accepted (no biometrics).
    pub code_only: bool,
    /// Number-matching options: the person picks the number the relying party shows.
    pub number_options: Option<Vec<u8>>,
    /// The transaction to confirm, for `confirm_transaction`: what you see is what you sign.
    pub transaction: Option<Transaction>,
    /// The document to sign, for `sign`: its name and SHA-256 digest.
    pub document: Option<SignDocument>,
    /// When the request was made (Unix seconds).
    pub issued_at: i64,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// A decision taken on this phone. Signatures are never kept.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct HistoryEntry {
    /// The request id.
    pub request_id: String,
    /// The account.
    pub account_id: String,
    /// The relying party's name.
    pub rp_name: String,
    /// What kind of confirmation it was.
    pub kind: ActionKind,
    /// The sentence shown.
    pub text: String,
    /// Approved or declined.
    pub decision: Decision,
    /// Why it was declined.
    pub reason: Option<DeclineReason>,
    /// How an approval was verified.
    pub method: Option<UvMethod>,
    /// When (Unix seconds).
    pub decided_at: i64,
}

/// How the person confirms an approval: the 5-digit code, or the biometric key (the platform
/// shows its prompt with the request's text).
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Verification {
    /// With the 5-digit code, as typed. The core wipes it from memory once the approval is
    /// signed or refused and never shows it in `Debug` output; the generated Kotlin, Swift and
    /// Python types do print it (`toString`, `description`, `str`), so the app should not log
    /// an approval.
    Code {
        /// The 5 digits.
        code: String,
    },
    /// With the biometric key: only for a request that is not `code_only`, once biometrics are
    /// enabled for the account.
    Biometric,
}

impl std::fmt::Debug for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The code is a secret: only its presence is shown.
            Self::Code { .. } => f.debug_struct("Code").finish_non_exhaustive(),
            Self::Biometric => f.write_str("Biometric"),
        }
    }
}

/// The person's yes to a request: how they confirmed it, the number they picked, and the
/// optional claims they share.
#[derive(Debug)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Approval {
    /// The code or the biometric.
    pub verification: Verification,
    /// The number the person picked among [`ActionView::number_options`]: required when the
    /// request offers numbers, refused when it does not.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub number: Option<u8>,
    /// Of [`ActionView::optional_claims`], the ones the person shares (an empty list: none of
    /// them). `None` shares them all. The required claims ([`ActionView::claims`]) are always
    /// shared.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub optional_claims: Option<Vec<String>>,
}

impl Approval {
    /// An approval with the 5-digit code, sharing every claim, without a number.
    pub fn code(code: impl Into<String>) -> Self {
        Self::new(Verification::Code { code: code.into() })
    }

    /// An approval with the biometric key, sharing every claim, without a number.
    pub fn biometric() -> Self {
        Self::new(Verification::Biometric)
    }

    /// The same approval with the number the person picked.
    pub fn with_number(self, number: u8) -> Self {
        Self {
            number: Some(number),
            ..self
        }
    }

    /// The same approval sharing, of the optional claims, only `optional_claims`.
    pub fn sharing_only(self, optional_claims: Vec<String>) -> Self {
        Self {
            optional_claims: Some(optional_claims),
            ..self
        }
    }

    fn new(verification: Verification) -> Self {
        Self {
            verification,
            number: None,
            optional_claims: None,
        }
    }
}

/// Verifies a request JWS for `account` with the key it names among the pinned server keys.
/// Anything that does not check out is [`CoreError::ServerUntrusted`], except a request that
/// verifies but has expired.
pub(crate) fn verify_request(
    jws: &str,
    account: &AccountRow,
    now: i64,
) -> Result<VerifiedAction, CoreError> {
    verify_request_for(
        jws,
        &account.server_keys,
        &account.issuer,
        &account.account_id,
        now,
    )
}

/// [`verify_request`] with the account's parts given one by one: the pinned keys, the issuer
/// and the account id the request must name.
pub(crate) fn verify_request_for(
    jws: &str,
    server_keys: &Jwks,
    issuer: &str,
    account_id: &str,
    now: i64,
) -> Result<VerifiedAction, CoreError> {
    let kid = action::action_kid(jws).map_err(|e| CoreError::untrusted(e.to_string()))?;
    let jwk = match kid {
        Some(kid) => server_keys.find(&kid),
        // Without a key id, only an unambiguous single pinned key may be used.
        None if server_keys.keys.len() == 1 => server_keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| CoreError::untrusted("signed by a key that was not pinned"))?;
    let key = jwk
        .to_verifying_key()
        .map_err(|e| CoreError::untrusted(e.to_string()))?;
    action::verify_action(jws, &key, issuer, account_id, now).map_err(|e| {
        match e {
            // The signature, issuer and audience were checked before the lifetime.
            ProtocolError::Expired(_) => CoreError::RequestExpired,
            other => CoreError::untrusted(other.to_string()),
        }
    })
}

/// The view of a verified request, with every display string cleaned.
pub(crate) fn view(account_id: &str, mut request: ActionRequest) -> ActionView {
    action::clean_for_display(&mut request);
    ActionView {
        request_id: request.jti,
        account_id: account_id.to_owned(),
        rp_id: request.rp.id,
        rp_name: request.rp.name,
        kind: request.kind,
        text: request.text,
        binding_message: request.binding_message,
        claims: request.claims,
        optional_claims: request.optional_claims,
        code_only: request.uv == UserVerification::Pin,
        number_options: request.number_options,
        transaction: request.transaction,
        document: request.document,
        issued_at: request.iat,
        expires_at: request.exp,
    }
}

/// A coarse reason for logs: never the content of a request.
fn failure_kind(e: &CoreError) -> &'static str {
    match e {
        CoreError::RequestExpired => "expired",
        CoreError::ServerUntrusted { .. } => "does not verify",
        _ => "unusable",
    }
}

fn pending_row(verified: &VerifiedAction, account_id: &str) -> PendingRow {
    PendingRow {
        request_id: verified.request.jti.clone(),
        account_id: account_id.to_owned(),
        jws: verified.jws.clone(),
        issued_at: verified.request.iat,
        expires_at: verified.request.exp,
    }
}

pub(crate) fn usable_account(ctx: &Context, account_id: &str) -> Result<AccountRow, CoreError> {
    let account = ctx.store.account(account_id)?.ok_or(CoreError::NoAccount)?;
    if account.status == AccountStatus::Revoked {
        return Err(CoreError::DeviceRevoked);
    }
    Ok(account)
}

/// Records what a server error means for the account locally, and passes the error on.
pub(crate) fn note_account_error(ctx: &Context, account: &AccountRow, e: CoreError) -> CoreError {
    let status = match e {
        CoreError::DeviceRevoked => Some(AccountStatus::Revoked),
        CoreError::AccountBlocked => Some(AccountStatus::Blocked),
        _ => None,
    };
    if let Some(status) = status {
        if let Err(store_error) = ctx.store.set_account_status(&account.account_id, status) {
            warn!("could not record the account's new status: {store_error}");
        }
        if status == AccountStatus::Revoked
            && let Err(store_error) = ctx.store.sync_pending(&account.account_id, &[])
        {
            warn!("could not clear the requests of a revoked account: {store_error}");
        }
    }
    e
}

/// Reads a push payload as the platform delivered it: at most [`MAX_PUSH_PAYLOAD_BYTES`], the
/// JSON of a [`PushMessage`] and nothing more, with two well-formed ids. Nothing is looked up
/// before it passes, since anyone who can reach the push channel can send one.
pub(crate) fn parse_push(payload: &str) -> Result<PushMessage, CoreError> {
    if payload.len() > MAX_PUSH_PAYLOAD_BYTES {
        return Err(CoreError::invalid("payload", "too large"));
    }
    let message: PushMessage =
        serde_json::from_str(payload).map_err(|e| CoreError::invalid("payload", e.to_string()))?;
    for (field, id) in [
        ("account_id", &message.account_id),
        ("request_id", &message.request_id),
    ] {
        if !is_valid_id(id) {
            return Err(CoreError::invalid(field, "not a valid identifier"));
        }
    }
    Ok(message)
}

pub(crate) async fn handle_push(ctx: &Context, payload: String) -> Result<ActionView, CoreError> {
    let message = parse_push(&payload)?;
    let account = usable_account(ctx, &message.account_id)?;
    let now = crate::now();

    // A push delivered twice: the request is already here, verified, and shows once.
    if let Some(row) = ctx.store.pending(&message.request_id)?
        && row.account_id == account.account_id
    {
        let verified = verify_request(&row.jws, &account, now).inspect_err(|_| {
            let _ = ctx.store.delete_pending(&row.request_id);
        })?;
        return Ok(view(&account.account_id, verified.request));
    }

    let shown = fetch_request(ctx, &account, &message.request_id).await?;
    debug!("request received by push");
    Ok(shown)
}

/// Fetches the request `request_id` of `account` from the server, verifies it against the
/// pinned keys, keeps it and returns what to show.
pub(crate) async fn fetch_request(
    ctx: &Context,
    account: &AccountRow,
    request_id: &str,
) -> Result<ActionView, CoreError> {
    let device = DeviceKey::load(&*ctx.keystore, &account.device_alias)?;
    let envelope: RequestEnvelope = ctx
        .client
        .call(
            &account.server_url,
            Method::GET,
            &api::path_request(request_id),
            None,
            &device,
        )
        .await
        .map_err(|e| note_account_error(ctx, account, e))?;
    let verified = verify_request(&envelope.request, account, crate::now())?;
    if verified.request.jti != request_id {
        return Err(CoreError::untrusted(
            "the server sent another request than the one named",
        ));
    }
    ctx.store
        .insert_pending(&pending_row(&verified, &account.account_id))?;
    Ok(view(&account.account_id, verified.request))
}

/// Refreshes every account that is not revoked, one after the other. An account whose refresh
/// fails keeps its stored requests and does not stop the others; a revoked device is recorded
/// on its account and is not a failure. Returns the pending requests of the accounts refreshed,
/// or the first failure when every account that was tried failed.
pub(crate) async fn refresh_pending(ctx: &Context) -> Result<Vec<ActionView>, CoreError> {
    let mut refreshed: HashSet<String> = HashSet::new();
    let mut first_error = None;
    for account in ctx.store.accounts()? {
        if account.status == AccountStatus::Revoked {
            continue;
        }
        match refresh_account(ctx, &account).await {
            Ok(()) => {
                refreshed.insert(account.account_id);
            }
            Err(CoreError::DeviceRevoked) => {}
            Err(e) => {
                warn!(
                    account_id = %account.account_id,
                    "could not refresh the requests of an account: {e}"
                );
                first_error.get_or_insert(e);
            }
        }
    }
    if refreshed.is_empty()
        && let Some(e) = first_error
    {
        return Err(e);
    }
    Ok(pending(ctx)?
        .into_iter()
        .filter(|v| refreshed.contains(&v.account_id))
        .collect())
}

/// Makes the stored requests of `account` those the server lists that verify.
async fn refresh_account(ctx: &Context, account: &AccountRow) -> Result<(), CoreError> {
    let device = DeviceKey::load(&*ctx.keystore, &account.device_alias)?;
    let listed: PendingRequests = ctx
        .client
        .call(
            &account.server_url,
            Method::GET,
            api::PATH_REQUESTS,
            None,
            &device,
        )
        .await
        .map_err(|e| note_account_error(ctx, account, e))?;
    if listed.requests.len() > MAX_LISTED_REQUESTS_PER_ACCOUNT {
        warn!(
            account_id = %account.account_id,
            listed = listed.requests.len(),
            "the server lists more requests than a person can have open; ignoring the rest"
        );
    }
    let now = crate::now();
    let mut rows: Vec<PendingRow> = Vec::new();
    for jws in listed.requests.iter().take(MAX_LISTED_REQUESTS_PER_ACCOUNT) {
        match verify_request(jws, account, now) {
            Ok(verified) => {
                if !rows.iter().any(|r| r.request_id == verified.request.jti) {
                    rows.push(pending_row(&verified, &account.account_id));
                }
            }
            Err(e) => warn!(
                account_id = %account.account_id,
                "dropping a listed request that {}",
                failure_kind(&e)
            ),
        }
    }
    ctx.store.sync_pending(&account.account_id, &rows)
}

pub(crate) fn pending(ctx: &Context) -> Result<Vec<ActionView>, CoreError> {
    let now = crate::now();
    let mut accounts: HashMap<String, Option<AccountRow>> = HashMap::new();
    let mut views = Vec::new();
    for row in ctx.store.unexpired_pending(now)? {
        if !accounts.contains_key(&row.account_id) {
            let account = ctx.store.account(&row.account_id)?;
            accounts.insert(row.account_id.clone(), account);
        }
        let Some(Some(account)) = accounts.get(&row.account_id) else {
            continue;
        };
        if account.status == AccountStatus::Revoked {
            continue;
        }
        // Checked again on every read: a request is shown only while it verifies.
        match verify_request(&row.jws, account, now) {
            Ok(verified) => views.push(view(&account.account_id, verified.request)),
            Err(e) => {
                warn!("removing a stored request that {}", failure_kind(&e));
                ctx.store.delete_pending(&row.request_id)?;
            }
        }
    }
    Ok(views)
}

/// A pending request ready to answer, with its account.
struct Answerable {
    row: PendingRow,
    account: AccountRow,
    request: ActionRequest,
}

fn answerable(ctx: &Context, request_id: &str) -> Result<Answerable, CoreError> {
    let row = ctx
        .store
        .pending(request_id)?
        .ok_or(CoreError::UnknownRequest)?;
    let account = usable_account(ctx, &row.account_id)?;
    let now = crate::now();
    // An expired request fails here too (RequestExpired), and is forgotten like any other.
    let verified = verify_request(&row.jws, &account, now).inspect_err(|_| {
        let _ = ctx.store.delete_pending(request_id);
    })?;
    Ok(Answerable {
        row,
        account,
        request: verified.request,
    })
}

pub(crate) fn show(ctx: &Context, request_id: String) -> Result<ActionView, CoreError> {
    let a = answerable(ctx, &request_id)?;
    Ok(view(&a.account.account_id, a.request))
}

/// The claims an approval shares: every required claim, and the optional ones the person kept
/// (`None`: all of them). An optional claim the request does not offer is refused, so that the
/// consent signed is exactly the one shown.
fn shared_claims(
    request: &ActionRequest,
    optional_claims: Option<Vec<String>>,
) -> Result<Vec<String>, CoreError> {
    let Some(chosen) = optional_claims else {
        return Ok(request.all_claims());
    };
    if let Some(claim) = chosen.iter().find(|c| !request.optional_claims.contains(c)) {
        let why = if request.claims.contains(claim) {
            "is required, not optional: it is always shared"
        } else {
            "is not asked for by this request"
        };
        return Err(CoreError::invalid(
            "optional_claims",
            format!("{claim:?} {why}"),
        ));
    }
    Ok(request
        .claims
        .iter()
        .chain(
            request
                .optional_claims
                .iter()
                .filter(|c| chosen.contains(c)),
        )
        .cloned()
        .collect())
}

/// How the person confirms, inside the core: the code moved into memory that is wiped on drop.
enum Confirmation {
    /// With the 5-digit code.
    Code(Zeroizing<String>),
    /// With the biometric key (the platform shows its prompt).
    Biometric,
}

/// Approves a pending request as [`Authenticator::approve`](crate::Authenticator::approve)
/// documents. The code, if any, is moved into zeroizing memory first and its shape checked
/// before anything else; a biometric approval is refused before anything is signed when the
/// request demands the code or biometrics are not enabled.
pub(crate) async fn approve(
    ctx: &Context,
    request_id: String,
    approval: Approval,
) -> Result<(), CoreError> {
    let Approval {
        verification,
        number,
        optional_claims,
    } = approval;
    let verification = match verification {
        Verification::Code { code } => {
            let code = Zeroizing::new(code);
            pin::check_format(&code)?;
            Confirmation::Code(code)
        }
        Verification::Biometric => Confirmation::Biometric,
    };
    let account_id = answerable(ctx, &request_id)?.account.account_id;
    let _account = match verification {
        Confirmation::Code(_) => ctx.account_locks.lock_for_code(&account_id).await?,
        Confirmation::Biometric => ctx.account_locks.lock(&account_id).await,
    };
    // Read under the lock: a call that held it may have settled or started a code change.
    let a = answerable(ctx, &request_id)?;
    let claims = shared_claims(&a.request, optional_claims)?;
    // A blocked account stays blocked until the person proves their identity again; sending
    // more codes would only be refused, so none leaves the phone.
    if a.account.status == AccountStatus::Blocked {
        return Err(CoreError::AccountBlocked);
    }
    // Number matching is the person's proof of looking at the relying party's screen: a
    // request that offers numbers is approved only with one of them, and a number is sent only
    // when numbers were offered.
    match (&a.request.number_options, number) {
        (Some(_), None) => {
            return Err(CoreError::invalid(
                "number",
                "this request asks for the number the service shows",
            ));
        }
        (Some(options), Some(number)) if !options.contains(&number) => {
            return Err(CoreError::invalid(
                "number",
                "not one of the numbers offered",
            ));
        }
        (None, Some(_)) => {
            return Err(CoreError::invalid(
                "number",
                "this request offers no numbers to choose from",
            ));
        }
        _ => {}
    }
    let method = match &verification {
        Confirmation::Code(_) => UvMethod::Pin,
        Confirmation::Biometric => UvMethod::Biometric,
    };
    let biometric_alias = match verification {
        Confirmation::Biometric => {
            if a.request.uv == UserVerification::Pin {
                return Err(CoreError::CodeRequired);
            }
            if a.account.biometric_pending_alias.is_some() {
                // An earlier run of the app died registering a biometric key: the server may
                // hold either key, so biometrics go off and the request waits for the code.
                crate::life::settle_interrupted_enable(ctx, a.account.clone()).await?;
                return Err(CoreError::BiometricsNotEnabled);
            }
            Some(
                a.account
                    .biometric_alias
                    .clone()
                    .ok_or(CoreError::BiometricsNotEnabled)?,
            )
        }
        Confirmation::Code(_) => None,
    };
    // A code change whose answer was lost decides which salt the code goes with: the server is
    // asked first, so that the person is never charged a wrong code for it.
    if matches!(verification, Confirmation::Code(_)) {
        crate::life::settle_code_change(ctx, &a.account).await?;
    }
    let response = ActionResponse {
        request_id: a.row.request_id.clone(),
        request_hash: jose::sha256_b64(&a.row.jws),
        decision: Decision::Approve,
        reason: None,
        method: Some(method),
        claims,
        number,
        iat: crate::now(),
    };
    let device = DeviceKey::load(&*ctx.keystore, &a.account.device_alias)?;
    let mut jws = GeneralJws::new(&response.to_payload());
    // The device signature comes first: the server checks possession before it counts a code.
    jws.add_signature(&ActionResponse::device_header(), &device.signer())?;
    match (verification, &biometric_alias) {
        (Confirmation::Code(code), _) => {
            let salt = ctx
                .keystore
                .get_secret(salt_secret_name(&a.account.device_alias))?
                .map(Zeroizing::new)
                .ok_or(CoreError::Keystore {
                    error: KeystoreError::KeyNotFound,
                })?;
            let pin_key = pin::derive_pin_key_off_thread(code, salt).await?;
            let Ok(()) = jws.add_signature(&ActionResponse::uv_header(UvMethod::Pin), &pin_key);
        }
        (Confirmation::Biometric, Some(alias)) => {
            let signer = KeystoreSigner {
                keystore: &*ctx.keystore,
                alias,
                prompt: Some(&a.request.text),
            };
            let signed =
                jws.add_signature(&ActionResponse::uv_header(UvMethod::Biometric), &signer);
            match signed {
                Ok(()) => {}
                Err(KeystoreError::KeyInvalidated) => {
                    crate::life::biometric_key_invalidated(ctx, &a.account, alias).await;
                    return Err(CoreError::BiometricKeyInvalidated);
                }
                Err(e) => return Err(e.into()),
            }
        }
        (Confirmation::Biometric, None) => return Err(CoreError::BiometricsNotEnabled),
    }
    let result = send(ctx, &a, &device, &jws, response).await;
    if let (Err(CoreError::CodeRequired), Some(alias)) = (&result, &biometric_alias) {
        // The request allows biometrics, so the server knows no biometric key of this phone
        // (dropped by an unblock elsewhere, say): this phone turns biometrics off too.
        warn!("the server knows no biometric key of this phone; turning biometrics off");
        crate::life::forget_biometric_key(
            ctx,
            &a.account,
            alias,
            AccountEventKind::BiometricsDisabled,
        );
    }
    result
}

pub(crate) async fn decline(
    ctx: &Context,
    request_id: String,
    reason: DeclineReason,
) -> Result<(), CoreError> {
    let a = answerable(ctx, &request_id)?;
    let response = ActionResponse {
        request_id: a.row.request_id.clone(),
        request_hash: jose::sha256_b64(&a.row.jws),
        decision: Decision::Decline,
        reason: Some(reason),
        method: None,
        claims: Vec::new(),
        number: None,
        iat: crate::now(),
    };
    let device = DeviceKey::load(&*ctx.keystore, &a.account.device_alias)?;
    let mut jws = GeneralJws::new(&response.to_payload());
    jws.add_signature(&ActionResponse::device_header(), &device.signer())?;
    send(ctx, &a, &device, &jws, response).await
}

/// Posts the answer and applies what the server says to the local store.
async fn send(
    ctx: &Context,
    a: &Answerable,
    device: &DeviceKey<'_>,
    jws: &GeneralJws,
    response: ActionResponse,
) -> Result<(), CoreError> {
    let body =
        serde_json::to_vec(jws).map_err(|e| CoreError::invalid("response", e.to_string()))?;
    let result: Result<ResponseAccepted, CoreError> = ctx
        .client
        .call(
            &a.account.server_url,
            Method::POST,
            &api::path_request_response(&a.row.request_id),
            Some(body),
            device,
        )
        .await;
    match result {
        Ok(_) => {
            // The history keeps what the person was shown.
            let shown = view(&a.account.account_id, a.request.clone());
            ctx.store.record_decision(&HistoryEntry {
                request_id: shown.request_id,
                account_id: shown.account_id,
                rp_name: shown.rp_name,
                kind: shown.kind,
                text: shown.text,
                decision: response.decision,
                reason: response.reason,
                method: response.method,
                decided_at: response.iat,
            })?;
            debug!("answer accepted");
            Ok(())
        }
        Err(e) => {
            if matches!(
                e,
                CoreError::RequestExpired
                    | CoreError::RequestAlreadyAnswered
                    | CoreError::UnknownRequest
                    | CoreError::WrongNumber
            ) {
                ctx.store.delete_pending(&a.row.request_id)?;
            }
            Err(note_account_error(ctx, &a.account, e))
        }
    }
}

pub(crate) fn history(ctx: &Context) -> Result<Vec<HistoryEntry>, CoreError> {
    ctx.store.history()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fake_server::login_request;
    use p256::ecdsa::SigningKey;
    use p256::elliptic_curve::Generate;
    use sleutel_protocol::action::ACTION_TYP;
    use sleutel_protocol::jose::{Header, Jwk, Jwks, sign_compact};

    const ISSUER: &str = "http://127.0.0.1:8080";

    fn account(server_key: &SigningKey) -> AccountRow {
        AccountRow {
            account_id: "acct-1".into(),
            server_url: ISSUER.into(),
            issuer: ISSUER.into(),
            display_name: "Jan Peeters".into(),
            phone_number: "+32470123456".into(),
            device_alias: "device".into(),
            server_keys: Jwks {
                keys: vec![Jwk::from_verifying_key(server_key.verifying_key()).published("k1")],
            },
            status: AccountStatus::Active,
            created_at: 0,
            biometric_alias: None,
            pending_code_change: None,
            biometric_pending_alias: None,
        }
    }

    /// A login request whose relying-party name hides a right-to-left override.
    fn request(now: i64) -> ActionRequest {
        let mut r = login_request(ISSUER, "acct-1", "req-1", now);
        r.rp.name = "Online\u{202E} overheid".into();
        r
    }

    fn sign(key: &SigningKey, kid: &str, r: &ActionRequest) -> String {
        sign_compact(
            &Header::es256(ACTION_TYP).with_kid(kid),
            &serde_json::to_vec(r).unwrap(),
            key,
        )
        .unwrap()
    }

    #[test]
    fn request_signed_by_the_pinned_key_verifies_and_shows_cleaned() {
        let server = SigningKey::generate();
        let now = crate::now();
        let jws = sign(&server, "k1", &request(now));
        let verified = verify_request(&jws, &account(&server), now).unwrap();
        let shown = view("acct-1", verified.request);
        assert_eq!(shown.rp_name, "Online overheid");
        assert_eq!(shown.binding_message.as_deref(), Some("AB12"));
        assert!(shown.code_only);
        assert_eq!(shown.expires_at, now + 300);
    }

    #[test]
    fn a_transaction_shows_cleaned() {
        let mut r = request(crate::now());
        r.kind = ActionKind::ConfirmTransaction;
        r.transaction = Some(Transaction::Payment {
            amount: "12.50".into(),
            currency: "EUR".into(),
            payee: "Bank\u{202E} of Trust".into(),
            iban: "BE68 5390 0754 7034".into(),
        });

        let shown = view("acct-1", r);

        assert!(
            matches!(shown.transaction, Some(Transaction::Payment { ref payee, .. }) if payee == "Bank of Trust"),
            "{:?}",
            shown.transaction
        );
    }

    #[test]
    fn every_claim_is_shared_unless_the_person_chose() {
        let mut r = request(crate::now());
        r.claims = vec!["birthdate".into()];
        r.optional_claims = vec!["name".into(), "phone_number".into()];

        assert_eq!(
            shared_claims(&r, None).unwrap(),
            vec!["birthdate", "name", "phone_number"]
        );
        assert_eq!(
            shared_claims(&r, Some(vec!["phone_number".into()])).unwrap(),
            vec!["birthdate", "phone_number"]
        );
        assert_eq!(shared_claims(&r, Some(vec![])).unwrap(), vec!["birthdate"]);
    }

    #[test]
    fn consent_to_a_claim_not_offered_as_optional_is_invalid_input() {
        let mut r = request(crate::now());
        r.claims = vec!["birthdate".into()];
        r.optional_claims = vec!["name".into()];

        for chosen in ["birthdate", "national_register_number"] {
            assert!(matches!(
                shared_claims(&r, Some(vec![chosen.into()])),
                Err(CoreError::InvalidInput { .. })
            ));
        }
    }

    #[test]
    fn an_approval_never_shows_its_code_in_debug_output() {
        let approval = Approval::code("27182").with_number(47);

        let shown = format!("{approval:?}");

        assert!(!shown.contains("27182"), "{shown}");
        assert!(shown.contains("Code") && shown.contains("47"), "{shown}");
    }

    #[test]
    fn a_document_to_sign_shows_its_name_cleaned() {
        let mut r = request(crate::now());
        r.kind = ActionKind::Sign;
        r.document = Some(SignDocument {
            name: "Contract\u{202E}fdp.exe\u{200B}".into(),
            sha256: "ab".repeat(32),
        });

        let shown = view("acct-1", r);

        assert_eq!(shown.document.unwrap().name, "Contractfdp.exe");
    }

    #[test]
    fn request_signed_by_another_key_is_untrusted() {
        let server = SigningKey::generate();
        let attacker = SigningKey::generate();
        let now = crate::now();
        let jws = sign(&attacker, "k1", &request(now));
        assert!(matches!(
            verify_request(&jws, &account(&server), now),
            Err(CoreError::ServerUntrusted { .. })
        ));
    }

    #[test]
    fn request_naming_an_unpinned_key_is_untrusted() {
        let server = SigningKey::generate();
        let now = crate::now();
        let jws = sign(&server, "k9", &request(now));
        assert!(matches!(
            verify_request(&jws, &account(&server), now),
            Err(CoreError::ServerUntrusted { .. })
        ));
    }

    #[test]
    fn request_for_another_account_is_untrusted() {
        let server = SigningKey::generate();
        let now = crate::now();
        let mut r = request(now);
        r.aud = "acct-2".into();
        let jws = sign(&server, "k1", &r);
        assert!(matches!(
            verify_request(&jws, &account(&server), now),
            Err(CoreError::ServerUntrusted { .. })
        ));
    }

    #[test]
    fn request_from_another_issuer_is_untrusted() {
        let server = SigningKey::generate();
        let now = crate::now();
        let mut r = request(now);
        r.iss = "https://evil.example".into();
        let jws = sign(&server, "k1", &r);
        assert!(matches!(
            verify_request(&jws, &account(&server), now),
            Err(CoreError::ServerUntrusted { .. })
        ));
    }

    #[test]
    fn expired_request_is_reported_as_expired() {
        let server = SigningKey::generate();
        let now = crate::now();
        let jws = sign(&server, "k1", &request(now - 400));
        assert_eq!(
            verify_request(&jws, &account(&server), now).unwrap_err(),
            CoreError::RequestExpired
        );
    }

    #[test]
    fn garbage_request_is_untrusted() {
        let server = SigningKey::generate();
        assert!(matches!(
            verify_request("not.a.jws", &account(&server), crate::now()),
            Err(CoreError::ServerUntrusted { .. })
        ));
    }
}
