//! Activation of a phone: start (phone number, identity source), the identity (a bank's identity
//! token, an identification code of the eID website, or an activation code of the counter), SMS
//! control code, and registration of the device and PIN keys.
//!
//! An enrollment moves `identity` -> `sms` -> `keys` -> `done`; too many wrong SMS codes end it
//! in `failed`. The SMS check and the completion may be repeated after they succeeded (a phone
//! that lost the answer asks again) and give the same answer; the identity token is single-use. Every call must carry a proof by the device key that started the enrollment; for
//! any other key the enrollment does not exist (`unknown_enrollment`), so one phone can never
//! learn about another's activation.
//!
//! Phone numbers: a number reaches exactly one account, the one whose enrollment last verified
//! it by SMS. A later activation of the same number by another person takes the number over
//! (operators recycle numbers, and the SMS proved current possession); the earlier account keeps
//! its device but relying parties no longer reach it through that number.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::routing::post;
use axum::{Json, Router};
use p256::ecdsa::VerifyingKey;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sleutel_protocol::api::{
    self, CompleteEnrollment, EnrollmentCompleted, EnrollmentStarted, SmsSent, SmsVerified,
    StartEnrollment, SubmitIdentity, SubmitIdentityCode, VerifySms,
};
use sleutel_protocol::identity::{
    self, ACTIVATION_CODE_LENGTH, Bank, IDENTIFICATION_CODE_LENGTH, IDENTITY_TYP, IdentityClaims,
    IdentitySource,
};
use sleutel_protocol::jose::{self, Jwk, UnverifiedJws};
use sleutel_protocol::limits::{COMPLETION_REPEAT_SECS, SMS_CODE_LENGTH};
use sleutel_protocol::phone;
use subtle::ConstantTimeEq;

use crate::auth::{self, PhoneCall, VerifiedProof};
use crate::code_attempts::CodeState;
use crate::error::{Result, ServerError};
use crate::extract::{self, PathId};
use crate::rate::{self, Bucket, Limit};
use crate::server::{App, AppState};
use crate::{clock, db, events, random, sms};

/// The phone API routes of enrollment.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::PATH_ENROLLMENTS, post(start))
        .route(
            &api::path_enrollment_identity("{id}"),
            post(submit_identity),
        )
        .route(&api::path_enrollment_code("{id}"), post(submit_code))
        .route(&api::path_enrollment_sms("{id}"), post(verify_sms))
        .route(&api::path_enrollment_sms_resend("{id}"), post(resend_sms))
        .route(&api::path_enrollment_complete("{id}"), post(complete))
}

/// Where an enrollment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Identity,
    Sms,
    Keys,
    Done,
    Failed,
}

impl Step {
    const ALL: [Step; 5] = [
        Step::Identity,
        Step::Sms,
        Step::Keys,
        Step::Done,
        Step::Failed,
    ];

    /// The name stored in the `step` column.
    fn as_str(self) -> &'static str {
        match self {
            Step::Identity => "identity",
            Step::Sms => "sms",
            Step::Keys => "keys",
            Step::Done => "done",
            Step::Failed => "failed",
        }
    }
}

impl FromSql for Step {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Step::ALL
            .into_iter()
            .find(|step| step.as_str() == text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown enrollment step {text:?}").into()))
    }
}

/// The identity an enrollment proved, as stored with it. No `Debug`: personal data stays out
/// of logs.
#[derive(Clone)]
pub(crate) struct ProvenIdentity {
    given_name: String,
    family_name: String,
    birthdate: String,
    national_register_number: String,
    issuer: String,
    evidence_type: String,
    evidence_reference: String,
}

impl ProvenIdentity {
    fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    /// The person's national register number.
    pub(crate) fn national_register_number(&self) -> &str {
        &self.national_register_number
    }
}

/// An enrollment row. No `Debug`: it holds the SMS code's hash.
struct Enrollment {
    id: String,
    nonce: String,
    device_jkt: String,
    phone_number: String,
    /// How the identity is proven.
    source: IdentitySource,
    /// The bank the activation was started with (`Bank::id`).
    bank: Option<String>,
    step: Step,
    expires_at: i64,
    identity: Option<ProvenIdentity>,
    sms_code_hash: Option<Vec<u8>>,
    sms_expires_at: Option<i64>,
    sms_sent_at: Option<i64>,
    sms_sends: u32,
    sms_failures: u32,
    /// Wrong identification or activation codes typed in this enrollment.
    code_failures: u32,
    /// The account the completion created or renewed (step `done`).
    account_id: Option<String>,
    /// The thumbprint of the device this enrollment replaces (an unblock from the same phone),
    /// revoked at completion.
    replaces_jkt: Option<String>,
}

impl Enrollment {
    fn identity(&self) -> Result<&ProvenIdentity> {
        self.identity
            .as_ref()
            .ok_or_else(|| ServerError::Internal("enrollment past identity without one".into()))
    }
}

/// Loads the enrollment `id` for the device `jkt` and checks that it is alive and at one of the
/// `accepted` steps (the first is the step the call belongs to; the others are steps at which a
/// repeated call is answered again).
///
/// A `done` enrollment is answered again (where accepted) only within its lifetime: a repeated
/// completion compares a PIN key, and after the lifetime nothing is compared any more. Past it, a
/// `done` enrollment is `wrong_step`, whatever the call.
fn open_enrollment(
    conn: &Connection,
    id: &str,
    jkt: &str,
    accepted: &[Step],
    now: i64,
) -> Result<Enrollment> {
    let enrollment = conn
        .query_row(
            "SELECT id, nonce, device_jkt, phone_number, step, expires_at,
                    given_name, family_name, birthdate, national_register_number,
                    identity_issuer, evidence_type, evidence_reference,
                    sms_code_hash, sms_expires_at, sms_sent_at, sms_sends, sms_failures,
                    bank, account_id, source, code_failures, replaces_jkt
             FROM enrollments WHERE id = ?1",
            [id],
            |row| {
                let identity = match (
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, Option<String>>(7)?,
                    row.get::<_, Option<String>>(8)?,
                    row.get::<_, Option<String>>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<String>>(11)?,
                    row.get::<_, Option<String>>(12)?,
                ) {
                    (Some(g), Some(f), Some(b), Some(n), Some(i), Some(t), Some(r)) => {
                        Some(ProvenIdentity {
                            given_name: g,
                            family_name: f,
                            birthdate: b,
                            national_register_number: n,
                            issuer: i,
                            evidence_type: t,
                            evidence_reference: r,
                        })
                    }
                    _ => None,
                };
                Ok(Enrollment {
                    id: row.get(0)?,
                    nonce: row.get(1)?,
                    device_jkt: row.get(2)?,
                    phone_number: row.get(3)?,
                    bank: row.get(18)?,
                    step: row.get(4)?,
                    expires_at: row.get(5)?,
                    identity,
                    sms_code_hash: row.get(13)?,
                    sms_expires_at: row.get(14)?,
                    sms_sent_at: row.get(15)?,
                    sms_sends: row.get(16)?,
                    sms_failures: row.get(17)?,
                    account_id: row.get(19)?,
                    source: source_from_column(row.get(20)?)?,
                    code_failures: row.get(21)?,
                    replaces_jkt: row.get(22)?,
                })
            },
        )
        .optional()?;
    let Some(enrollment) = enrollment else {
        return Err(ServerError::UnknownEnrollment);
    };
    // Another device's enrollment is indistinguishable from none at all.
    if !bool::from(enrollment.device_jkt.as_bytes().ct_eq(jkt.as_bytes())) {
        return Err(ServerError::UnknownEnrollment);
    }
    if enrollment.step == Step::Failed {
        return Err(ServerError::TooManyAttempts);
    }
    let expired = now >= enrollment.expires_at;
    if expired && enrollment.step != Step::Done {
        return Err(ServerError::EnrollmentExpired);
    }
    if !accepted.contains(&enrollment.step) || expired {
        return Err(ServerError::WrongStep(format!(
            "the enrollment is at step {}, this call belongs to step {}",
            enrollment.step.as_str(),
            accepted.first().map_or("?", |step| step.as_str())
        )));
    }
    Ok(enrollment)
}

/// The stored name of an identity source (`bank`, `eid`, `counter`).
pub(crate) fn source_to_column(source: IdentitySource) -> &'static str {
    match source {
        IdentitySource::Bank => "bank",
        IdentitySource::Eid => "eid",
        IdentitySource::Counter => "counter",
    }
}

fn source_from_column(name: String) -> rusqlite::Result<IdentitySource> {
    [
        IdentitySource::Bank,
        IdentitySource::Eid,
        IdentitySource::Counter,
    ]
    .into_iter()
    .find(|source| source_to_column(*source) == name)
    .ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            20,
            rusqlite::types::Type::Text,
            format!("unknown identity source {name:?}").into(),
        )
    })
}

/// How long an enrollment row is kept after it expired before the housekeeping purge deletes
/// it: long enough that a phone coming back late still hears `enrollment_expired`, short
/// enough that the table stays bounded by the start rate (policy) times lifetime plus this.
pub(crate) const ENROLLMENT_RETENTION_SECS: i64 = 3600;

/// Deletes enrollments past their lifetime and [`ENROLLMENT_RETENTION_SECS`], done ones too:
/// a completion is answered again only within the lifetime. Returns how many.
pub(crate) fn purge_expired(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM enrollments WHERE expires_at < ?1",
        [now - ENROLLMENT_RETENTION_SECS],
    )?)
}

/// Refuses a start beyond the policy's rates (per device key, per source address, overall) and
/// otherwise counts it in each. Nothing is counted for a refused start.
///
/// No count is kept per phone number here: a bare start sends nothing to the number, and such a
/// count would let a stranger who knows the number hold up its activation. The number is
/// counted where an SMS goes out (`send_sms_code`), after an identity was proven.
fn count_start(app: &App, tx: &Transaction<'_>, jkt: &str, source: IpAddr, now: i64) -> Result<()> {
    let policy = &app.policy;
    let limits = [
        (
            Bucket::EnrollmentStarts,
            Limit::per_minute(policy.max_enrollment_starts_per_minute),
            "enrollments started on this server",
        ),
        (
            Bucket::EnrollmentStartsByKey(jkt),
            Limit::per_hour(policy.max_enrollment_starts_per_key_per_hour),
            "enrollments started with this device key",
        ),
        (
            Bucket::EnrollmentStartsBySource(source),
            Limit::per_minute(policy.max_enrollment_starts_per_source_per_minute),
            "enrollments started from this address",
        ),
    ];
    for (bucket, limit, what) in limits {
        if let Err(exceeded) = rate::check(tx, bucket, limit, now)? {
            return Err(ServerError::RateLimited {
                retry_after: exceeded.retry_after,
                detail: format!("too many {what}; try again later"),
            });
        }
    }
    for (bucket, limit, _) in limits {
        rate::record(tx, bucket, limit, now)?;
    }
    Ok(())
}

/// `POST /v1/enrollments`: starts an activation bound to the proof's device key.
///
/// The one call a key the server does not know yet may make, so the one call that could fill
/// the database: its rates are checked before anything is written, and its proof id is
/// remembered (against a replay) only once the start is admitted, in the same transaction.
async fn start(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    proof: VerifiedProof,
) -> Result<Json<EnrollmentStarted>> {
    let body: StartEnrollment = extract::json(&proof.body)?;
    let phone_number = phone::normalize_belgian_mobile(&body.phone_number)
        .map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
    let source = body.source;
    let bank = match (source, body.bank) {
        (IdentitySource::Bank, Some(bank)) => Some(bank),
        (IdentitySource::Bank, None) => {
            return Err(ServerError::InvalidRequest(
                "source bank needs the field bank".into(),
            ));
        }
        (IdentitySource::Eid | IdentitySource::Counter, None) => None,
        (IdentitySource::Eid | IdentitySource::Counter, Some(_)) => {
            return Err(ServerError::InvalidRequest(
                "the field bank belongs to source bank only".into(),
            ));
        }
    };
    let replaces_jkt = replaced_device(&body, &proof.jkt)?;
    let started = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            count_start(app, &tx, &proof.jkt, peer.ip(), now)?;
            auth::record_proof(&tx, &proof.jkt, &proof.jti, now)?;
            let id = random::id()?;
            let nonce = random::id()?;
            let expires_at = now + app.policy.enrollment_ttl_secs;
            tx.execute(
                "INSERT INTO enrollments
                     (id, nonce, device_jkt, phone_number, source, bank, step, created_at, expires_at,
                      replaces_jkt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'identity', ?7, ?8, ?9)",
                params![
                    id,
                    nonce,
                    proof.jkt,
                    phone_number,
                    source_to_column(source),
                    bank.map(Bank::id),
                    now,
                    expires_at,
                    replaces_jkt
                ],
            )?;
            tx.commit()?;
            let handoff_url = bank.map(|bank| {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("enrollment_id", &id)
                    .append_pair("nonce", &nonce)
                    .append_pair("redirect_uri", api::DEEP_LINK_BANK_RETURN)
                    .finish();
                format!("{}{}?{query}", app.url, api::sim::path_bank_authorize(bank))
            });
            Ok(EnrollmentStarted {
                enrollment_id: id,
                nonce,
                handoff_url,
                expires_at,
            })
        })
        .await?;
    Ok(Json(started))
}

/// The thumbprint of the device the start `body` replaces, if it names one, once that device's
/// signature handing its place to the enrollment's key `jkt` verifies: only a holder of the
/// replaced key can name it, and only for this new key. Anything else is `invalid_request`,
/// before anything is written. Whose device it is can only be checked against the identity
/// proven later ([`accept_identity`]).
fn replaced_device(body: &StartEnrollment, jkt: &str) -> Result<Option<String>> {
    body.replaces
        .as_ref()
        .map(|replaced| replaced.verify(jkt))
        .transpose()
        .map_err(|e| ServerError::InvalidRequest(format!("replaces: {e}")))
}

/// `POST /v1/enrollments/{id}/identity`: checks the identity token and sends the SMS code.
async fn submit_identity(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsSent>> {
    let body: SubmitIdentity = extract::json(&call.body)?;
    let sent = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Identity], now)?;
            if enrollment.source != IdentitySource::Bank {
                return Err(ServerError::WrongStep(
                    "this activation proves the identity with a code, not a bank token".into(),
                ));
            }
            let claims = verify_identity_token(app, &body.identity_token, &enrollment, now)?;
            let proven = ProvenIdentity {
                given_name: claims.given_name,
                family_name: claims.family_name,
                birthdate: claims.birthdate,
                national_register_number: claims.national_register_number,
                issuer: claims.iss,
                evidence_type: claims.evidence.kind,
                evidence_reference: claims.evidence.reference,
            };
            let sent = accept_identity(app, &tx, &enrollment, &proven, now)?;
            tx.commit()?;
            Ok(sent)
        })
        .await?;
    Ok(Json(sent))
}

/// Admits a proven identity to `enrollment`, whatever the source: the age policy, the phone's
/// own account (a registered device key proves only its own account's identity again, and an
/// unblock replaces only a device of the proven person's account), then the identity is stored
/// and the SMS code sent. Nothing is written when it is refused.
fn accept_identity(
    app: &App,
    tx: &Transaction<'_>,
    enrollment: &Enrollment,
    proven: &ProvenIdentity,
    now: i64,
) -> Result<SmsSent> {
    let birth = identity::Date::parse(&proven.birthdate)
        .map_err(|e| ServerError::InvalidIdentityToken(e.to_string()))?;
    identity::check_national_register_number(&proven.national_register_number, birth)
        .map_err(|e| ServerError::InvalidIdentityToken(e.to_string()))?;
    if birth.age_on(identity::Date::from_unix(now)) < app.policy.min_age_years {
        return Err(ServerError::IdentityRefused(format!(
            "a digital key requires an age of at least {} years",
            app.policy.min_age_years
        )));
    }
    // An unblock from the same phone reuses its device key. That key may only prove its own
    // account's identity again, never move to another person's account.
    let owner: Option<String> = tx
        .query_row(
            "SELECT a.national_register_number FROM devices d JOIN accounts a ON a.id = d.account_id
             WHERE d.jkt = ?1 AND d.revoked_at IS NULL",
            [&enrollment.device_jkt],
            |row| row.get(0),
        )
        .optional()?;
    if owner.is_some_and(|nrn| nrn != proven.national_register_number) {
        return Err(ServerError::IdentityRefused(
            "this phone's key belongs to another person's digital key".into(),
        ));
    }
    // The device an unblock replaces is revoked at completion: only the person whose account
    // it belongs to may do that, whoever holds its key. (One of their phones already revoked
    // is still theirs: revoking it again changes nothing.)
    if let Some(replaced) = &enrollment.replaces_jkt {
        let owner: Option<String> = tx
            .query_row(
                "SELECT a.national_register_number FROM devices d
                 JOIN accounts a ON a.id = d.account_id WHERE d.jkt = ?1",
                [replaced],
                |row| row.get(0),
            )
            .optional()?;
        if owner.as_deref() != Some(proven.national_register_number.as_str()) {
            return Err(ServerError::IdentityRefused(
                "the device this activation replaces is not one of this person's phones".into(),
            ));
        }
    }
    tx.execute(
        "UPDATE enrollments SET given_name = ?2, family_name = ?3, birthdate = ?4,
             national_register_number = ?5, identity_issuer = ?6, evidence_type = ?7,
             evidence_reference = ?8, step = 'sms'
         WHERE id = ?1",
        params![
            enrollment.id,
            proven.given_name,
            proven.family_name,
            proven.birthdate,
            proven.national_register_number,
            proven.issuer,
            proven.evidence_type,
            proven.evidence_reference,
        ],
    )?;
    send_sms_code(app, tx, enrollment, now, 1)
}

/// `POST /v1/enrollments/{id}/code`: the identification code (eID) or activation code
/// (counter) that proves the identity of an enrollment started with that source.
///
/// An eID code is looked up by its keyed hash and counts only for the phone number it was
/// issued for. A counter code needs the token of the e-mail's activation link as well: the row
/// is found by the link, and the typed code is checked against that row. Wrong codes are counted
/// on the enrollment and on the code they were typed for (eID: the number's live code; counter:
/// the link's code): at `identity_code_max_failures` the enrollment ends and the code stops
/// working. A right code is used up in the same transaction that admits the identity, so a
/// refusal (age) leaves it unused.
async fn submit_code(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsSent>> {
    let body: SubmitIdentityCode = extract::json(&call.body)?;
    let typed = zeroize::Zeroizing::new(body.code);
    let token = body.activation_token.map(zeroize::Zeroizing::new);
    let sent = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Identity], now)?;
            let length = match (enrollment.source, &token) {
                (IdentitySource::Eid, None) => IDENTIFICATION_CODE_LENGTH,
                (IdentitySource::Counter, Some(_)) => ACTIVATION_CODE_LENGTH,
                (IdentitySource::Eid, Some(_)) => {
                    return Err(ServerError::InvalidRequest(
                        "activation_token belongs to counter activations only".into(),
                    ));
                }
                (IdentitySource::Counter, None) => {
                    return Err(ServerError::InvalidRequest(
                        "a counter activation needs the activation link's token and the code"
                            .into(),
                    ));
                }
                (IdentitySource::Bank, _) => {
                    return Err(ServerError::WrongStep(
                        "this activation proves the identity with a bank token, not a code".into(),
                    ));
                }
            };
            let code = zeroize::Zeroizing::new(
                identity::normalize_identity_code(&typed, length)
                    .map_err(|e| ServerError::InvalidRequest(e.to_string()))?,
            );
            let found = match &token {
                Some(token) => match check_counter_activation(app, &tx, token, &code, now)? {
                    CounterCheck::Proven { code_id, identity } => Ok((code_id, identity)),
                    CounterCheck::UnknownLink => {
                        return wrong_code(app, tx, &enrollment, now, None);
                    }
                    CounterCheck::WrongCode { attempts_left } => {
                        return wrong_code(app, tx, &enrollment, now, Some(attempts_left));
                    }
                },
                None => find_eid_code(
                    &tx,
                    &app.keys.identity_code_hash("eid", &code)?,
                    &enrollment,
                    now,
                    app.policy.identity_code_max_failures,
                ),
            };
            match found {
                Ok((code_id, proven)) => {
                    tx.execute(
                        "UPDATE identity_codes SET used_at = ?2 WHERE id = ?1",
                        params![code_id, now],
                    )?;
                    let sent = accept_identity(app, &tx, &enrollment, &proven, now)?;
                    tx.commit()?;
                    Ok(sent)
                }
                Err(ServerError::WrongIdentityCode { .. }) => {
                    wrong_code(app, tx, &enrollment, now, None)
                }
                Err(e) => Err(e),
            }
        })
        .await?;
    Ok(Json(sent))
}

/// The live eID identification code with `hash` for `enrollment`, and the identity it proves. A
/// code of another phone number, or none at all, is `WrongIdentityCode`.
fn find_eid_code(
    tx: &Transaction<'_>,
    hash: &[u8],
    enrollment: &Enrollment,
    now: i64,
    max_failures: u32,
) -> Result<(String, ProvenIdentity)> {
    let row = tx
        .query_row(
            "SELECT id, phone_number, expires_at, used_at IS NOT NULL, failures,
                    given_name, family_name, birthdate, national_register_number, issuer,
                    evidence_type, evidence_reference
             FROM identity_codes WHERE kind = 'eid' AND code_hash = ?1",
            params![hash],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, u32>(4)?,
                    proven_identity_at(row, 5)?,
                ))
            },
        )
        .optional()?;
    let Some((code_id, phone_number, expires_at, used, failures, proven)) = row else {
        return Err(ServerError::WrongIdentityCode { attempts_left: 0 });
    };
    // Bound to the number it was issued for: on another number it proves nothing.
    if phone_number.is_some_and(|number| number != enrollment.phone_number) {
        return Err(ServerError::WrongIdentityCode { attempts_left: 0 });
    }
    if failures >= max_failures {
        return Err(ServerError::IdentityCodeBlocked);
    }
    if used {
        return Err(ServerError::IdentityCodeUsed);
    }
    if now >= expires_at {
        return Err(ServerError::IdentityCodeExpired);
    }
    Ok((code_id, proven))
}

/// The identity columns of an `identity_codes` row, from column `first` on (given name, family
/// name, birth date, national register number, issuer, evidence type and reference).
fn proven_identity_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ProvenIdentity> {
    Ok(ProvenIdentity {
        given_name: row.get(first)?,
        family_name: row.get(first + 1)?,
        birthdate: row.get(first + 2)?,
        national_register_number: row.get(first + 3)?,
        issuer: row.get(first + 4)?,
        evidence_type: row.get(first + 5)?,
        evidence_reference: row.get(first + 6)?,
    })
}

/// What a counter activation (the e-mail's link token and the code typed) proves.
pub(crate) enum CounterCheck {
    /// Both factors are right: the code's row (not yet used up) and the identity it proves.
    Proven {
        /// The `identity_codes` row, to mark used once the identity is admitted.
        code_id: String,
        /// The identity the official checked.
        identity: ProvenIdentity,
    },
    /// No counter code has this link.
    UnknownLink,
    /// The link is right and the code is not its code: counted on the link's row, which has
    /// `attempts_left` tries left (0: it no longer works).
    WrongCode {
        /// Tries left on this link's code.
        attempts_left: u32,
    },
}

/// Checks a counter activation: the row is found by the keyed hash of the link `token`, and the
/// canonical `code` is compared with that row's code in constant time. A wrong code is counted
/// on the row (written in `tx`; the caller commits it), so each code has its own try limit,
/// `identity_code_max_failures`, after which even the right code is `identity_code_blocked`.
/// A used or expired link is refused as such whatever the code. A token of the wrong shape is
/// `invalid_request` and counts nothing.
pub(crate) fn check_counter_activation(
    app: &App,
    tx: &Connection,
    token: &str,
    code: &str,
    now: i64,
) -> Result<CounterCheck> {
    if !identity::is_activation_token(token) {
        return Err(ServerError::InvalidRequest(
            "activation_token is not an activation link's token".into(),
        ));
    }
    let row = tx
        .query_row(
            "SELECT id, code_hash, expires_at, used_at IS NOT NULL, failures,
                    given_name, family_name, birthdate, national_register_number, issuer,
                    evidence_type, evidence_reference
             FROM identity_codes WHERE kind = 'counter' AND link_hash = ?1",
            [app.keys.activation_link_hash(token)?],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, u32>(4)?,
                    proven_identity_at(row, 5)?,
                ))
            },
        )
        .optional()?;
    let Some((code_id, code_hash, expires_at, used, failures, identity)) = row else {
        return Ok(CounterCheck::UnknownLink);
    };
    let max = app.policy.identity_code_max_failures;
    if failures >= max {
        return Err(ServerError::IdentityCodeBlocked);
    }
    if used {
        return Err(ServerError::IdentityCodeUsed);
    }
    if now >= expires_at {
        return Err(ServerError::IdentityCodeExpired);
    }
    let given = app.keys.identity_code_hash("counter", code)?;
    if !bool::from(given.ct_eq(&code_hash)) {
        tx.execute(
            "UPDATE identity_codes SET failures = failures + 1 WHERE id = ?1",
            [&code_id],
        )?;
        return Ok(CounterCheck::WrongCode {
            attempts_left: max.saturating_sub(failures.saturating_add(1)),
        });
    }
    Ok(CounterCheck::Proven { code_id, identity })
}

/// Counts a wrong code on the enrollment and, for the eID, on the code live for its phone number
/// (a counter code was counted by [`check_counter_activation`], which left it `code_left`
/// tries); at the limit the enrollment ends (`too_many_attempts`) and that code stops working.
/// The attempts left reported are the fewer of the enrollment's and the code's.
fn wrong_code(
    app: &App,
    tx: Transaction<'_>,
    enrollment: &Enrollment,
    now: i64,
    code_left: Option<u32>,
) -> Result<SmsSent> {
    let max = app.policy.identity_code_max_failures;
    if enrollment.source == IdentitySource::Eid {
        tx.execute(
            "UPDATE identity_codes SET failures = failures + 1
             WHERE kind = 'eid' AND phone_number = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![enrollment.phone_number, now],
        )?;
    }
    let failures = enrollment.code_failures.saturating_add(1);
    if failures >= max {
        tx.execute(
            "UPDATE enrollments SET code_failures = ?2, step = 'failed' WHERE id = ?1",
            params![enrollment.id, failures],
        )?;
        tx.commit()?;
        return Err(ServerError::TooManyAttempts);
    }
    tx.execute(
        "UPDATE enrollments SET code_failures = ?2 WHERE id = ?1",
        params![enrollment.id, failures],
    )?;
    tx.commit()?;
    let enrollment_left = max - failures;
    Err(ServerError::WrongIdentityCode {
        attempts_left: code_left.map_or(enrollment_left, |left| left.min(enrollment_left)),
    })
}

/// Verifies an identity token for `enrollment`: a trusted issuer, that issuer's key, a valid
/// signature, the enrollment's id and nonce, the lifetime and the content. Every failure says
/// which check failed (never anything secret: the token's content is the person's own).
fn verify_identity_token(
    app: &App,
    token: &str,
    enrollment: &Enrollment,
    now: i64,
) -> Result<IdentityClaims> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        ServerError::InvalidIdentityToken(format!("{what}: {e}"))
    };
    let jws =
        UnverifiedJws::parse(token, "identity token").map_err(|e| invalid("malformed", &e))?;
    let (issuer, kid) = identity::peek_issuer(&jws).map_err(|e| invalid("malformed", &e))?;
    let Some((trusted_kid, key)) = app.keys.trusted_issuer(&issuer) else {
        return Err(ServerError::InvalidIdentityToken(format!(
            "untrusted issuer {issuer:?}"
        )));
    };
    // A token of another bank than the one the person chose proves nothing about this
    // activation: the handoff went to the chosen bank only.
    let chosen = enrollment
        .bank
        .as_deref()
        .map(Bank::from_id)
        .transpose()
        .map_err(|e| ServerError::Internal(format!("stored bank unreadable: {e}")))?
        .ok_or_else(|| ServerError::Internal("bank enrollment without a bank".into()))?;
    if issuer != chosen.issuer() {
        return Err(ServerError::InvalidIdentityToken(format!(
            "the token comes from {issuer}, but this activation was started with {}",
            chosen.issuer()
        )));
    }
    if kid.as_deref() != Some(trusted_kid) {
        return Err(ServerError::InvalidIdentityToken(format!(
            "untrusted key: {issuer} does not sign with key {kid:?}"
        )));
    }
    // The issuer read above and the claims below come from the same parsed payload, and only
    // bank issuers are trusted, so the issuer is a bank's.
    let payload = jws
        .verify(key, IDENTITY_TYP, "identity token")
        .map_err(|e| invalid("bad signature or header", &e))?;
    let claims: IdentityClaims =
        jose::parse_claims(&payload, "identity token").map_err(|e| invalid("malformed", &e))?;
    claims
        .validate(&enrollment.id, &enrollment.nonce, now)
        .map_err(|e| invalid("refused", &e))?;
    if claims.source != IdentitySource::Bank {
        return Err(ServerError::InvalidIdentityToken(
            "the token's source does not match its issuer".into(),
        ));
    }
    Ok(claims)
}

/// Makes a fresh code, stores its hash (replacing any earlier code) and sends it; `sends` is the
/// number of codes sent so far including this one. The wrong codes typed so far still count: a
/// new code gives no new tries, or every resend would buy `sms_max_attempts` more guesses.
///
/// Beyond `max_sms_per_number_per_hour` texts to the number (all enrollments together) the
/// answer is `rate_limited` and the caller's transaction must not commit: nothing is sent or
/// used up (an identity code stays unused, the enrollment stays at its step).
fn send_sms_code(
    app: &App,
    tx: &Transaction<'_>,
    enrollment: &Enrollment,
    now: i64,
    sends: u32,
) -> Result<SmsSent> {
    let texts = Bucket::SmsSentToNumber(&enrollment.phone_number);
    let limit = Limit::per_hour(app.policy.max_sms_per_number_per_hour);
    if let Err(exceeded) = rate::take(tx, texts, limit, now)? {
        return Err(ServerError::RateLimited {
            retry_after: exceeded.retry_after,
            detail: "too many SMS codes sent to this number; try again later".into(),
        });
    }
    let code = zeroize::Zeroizing::new(random::digits(SMS_CODE_LENGTH)?);
    let hash = app.keys.sms_code_hash(&enrollment.id, &code)?;
    let expires_at = now + app.policy.sms_code_ttl_secs;
    tx.execute(
        "UPDATE enrollments SET sms_code_hash = ?2, sms_expires_at = ?3, sms_sent_at = ?4,
             sms_sends = ?5
         WHERE id = ?1",
        params![enrollment.id, hash, expires_at, now, sends],
    )?;
    let text = zeroize::Zeroizing::new(sms::control_code_text(&code));
    app.sms.send(tx, &enrollment.phone_number, &text)?;
    Ok(SmsSent {
        phone_number_masked: sms::mask_phone_number(&enrollment.phone_number),
        expires_at,
        resend_after: now + app.policy.sms_resend_after_secs,
    })
}

/// `POST /v1/enrollments/{id}/sms/resend`: a new code, at most every `sms_resend_after_secs`
/// and at most `sms_max_sends` codes per enrollment.
async fn resend_sms(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsSent>> {
    let sent = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Sms], now)?;
            let next_allowed =
                enrollment.sms_sent_at.unwrap_or(now) + app.policy.sms_resend_after_secs;
            if now < next_allowed {
                return Err(ServerError::ResendTooSoon {
                    retry_after: u64::try_from(next_allowed - now).unwrap_or(1),
                    detail: "wait before asking for another code".into(),
                });
            }
            if enrollment.sms_sends >= app.policy.sms_max_sends {
                // No new code before this enrollment ends; the last code can still be used.
                return Err(ServerError::ResendTooSoon {
                    retry_after: u64::try_from(enrollment.expires_at - now).unwrap_or(1),
                    detail: format!(
                        "at most {} codes per activation; use the last one or start again later",
                        app.policy.sms_max_sends
                    ),
                });
            }
            let sent = send_sms_code(app, &tx, &enrollment, now, enrollment.sms_sends + 1)?;
            tx.commit()?;
            Ok(sent)
        })
        .await?;
    Ok(Json(sent))
}

/// `POST /v1/enrollments/{id}/sms`: checks the control code. Wrong codes count on the
/// enrollment (all its codes together: `sms_max_attempts` ends it) and per day on the phone
/// number, by this person and by anyone (beyond either, `rate_limited` before any comparison).
async fn verify_sms(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsVerified>> {
    let body: VerifySms = extract::json(&call.body)?;
    let code = zeroize::Zeroizing::new(body.code);
    if code.len() != SMS_CODE_LENGTH || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServerError::InvalidRequest(format!(
            "the code has {SMS_CODE_LENGTH} digits"
        )));
    }
    let verified = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Sms, Step::Keys], now)?;
            if enrollment.step == Step::Keys {
                // Already verified: the phone lost the answer and asks again. The code was
                // erased, but the device-key proof binds the caller to this enrollment, which
                // was verified for this very device; answering again reveals nothing new.
                return Ok(SmsVerified {
                    display_name: enrollment.identity()?.display_name(),
                });
            }
            let (Some(stored), Some(expires_at)) =
                (&enrollment.sms_code_hash, enrollment.sms_expires_at)
            else {
                return Err(ServerError::Internal("SMS step without a code".into()));
            };
            if now >= expires_at {
                return Err(ServerError::SmsCodeExpired);
            }
            // Wrong codes for this number in any enrollment, by this person and by anyone: a
            // script starting enrollment after enrollment for one number gets no more guesses
            // than the policy's daily numbers. Beyond them the check is refused, not the
            // enrollment ended, and the person's own count is apart from strangers'.
            let person = &enrollment.identity()?.national_register_number;
            let daily = [
                (
                    Bucket::SmsFailuresByPersonAndNumber(person, &enrollment.phone_number),
                    Limit::per_day(app.policy.max_sms_failures_per_person_and_number_per_day),
                ),
                (
                    Bucket::SmsFailuresByNumber(&enrollment.phone_number),
                    Limit::per_day(app.policy.max_sms_failures_per_number_per_day),
                ),
            ];
            for (bucket, limit) in daily {
                if let Err(exceeded) = rate::check(&tx, bucket, limit, now)? {
                    return Err(ServerError::RateLimited {
                        retry_after: exceeded.retry_after,
                        detail: "too many wrong SMS codes for this number today".into(),
                    });
                }
            }
            let given = app.keys.sms_code_hash(&enrollment.id, &code)?;
            if !bool::from(given.ct_eq(stored)) {
                for (bucket, limit) in daily {
                    rate::record(&tx, bucket, limit, now)?;
                }
                let failures = enrollment.sms_failures + 1;
                if failures >= app.policy.sms_max_attempts {
                    tx.execute(
                        "UPDATE enrollments SET sms_failures = ?2, step = 'failed',
                             sms_code_hash = NULL
                         WHERE id = ?1",
                        params![enrollment.id, failures],
                    )?;
                    tx.commit()?;
                    return Err(ServerError::TooManyAttempts);
                }
                tx.execute(
                    "UPDATE enrollments SET sms_failures = ?2 WHERE id = ?1",
                    params![enrollment.id, failures],
                )?;
                tx.commit()?;
                return Err(ServerError::WrongSmsCode {
                    attempts_left: app.policy.sms_max_attempts - failures,
                });
            }
            tx.execute(
                "UPDATE enrollments SET step = 'keys', sms_code_hash = NULL WHERE id = ?1",
                [&enrollment.id],
            )?;
            tx.commit()?;
            Ok(SmsVerified {
                display_name: enrollment.identity()?.display_name(),
            })
        })
        .await?;
    Ok(Json(verified))
}

/// `POST /v1/enrollments/{id}/complete`: registers the device and PIN keys and creates (or
/// renews) the person's account, all in one transaction.
///
/// Repeating a completion that succeeded (the phone lost the answer) gives the same answer
/// again while the enrollment's lifetime lasts (at least [`COMPLETION_REPEAT_SECS`] after the
/// completion), as long as it carries the same device and PIN
/// keys with valid proofs, the account is still the one this enrollment registered, and the
/// device is still active on it. A repeat with another PIN key is a wrong code (see
/// [`repeated_completion`]). After the lifetime, and for anything else after completion, the
/// answer is `wrong_step`.
async fn complete(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<EnrollmentCompleted>> {
    let body: CompleteEnrollment = extract::json(&call.body)?;
    let completed = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = db::immediate(conn)?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Keys, Step::Done], now)?;
            let keys = check_keys(&body, &enrollment)?;
            let identity = enrollment.identity()?.clone();
            let account_id = if enrollment.step == Step::Done {
                repeated_completion(app, tx, &enrollment, &body, now)?
            } else {
                let account_id = register(app, &tx, &enrollment, &identity, &keys, now)?;
                // A completion late in the enrollment's lifetime still leaves the phone time to
                // ask again for a lost answer.
                tx.execute(
                    "UPDATE enrollments SET step = 'done', account_id = ?2,
                         expires_at = max(expires_at, ?3)
                     WHERE id = ?1",
                    params![enrollment.id, account_id, now + COMPLETION_REPEAT_SECS],
                )?;
                tx.commit()?;
                account_id
            };
            Ok(EnrollmentCompleted {
                account_id,
                display_name: identity.display_name(),
                issuer: app.url.clone(),
                server_keys: app.keys.jwks().clone(),
            })
        })
        .await?;
    Ok(Json(completed))
}

/// The account of a completed `enrollment`, if the repeated completion `body` carries the PIN
/// key that completed it: the device this enrollment registered is still active on the account
/// this enrollment created or renewed, with that PIN key. A device gone from that account is
/// `wrong_step`; a blocked account is `account_blocked`.
///
/// Another PIN key is a wrong code, counted like any other (it blocks at the limit). The body
/// proves possession of its PIN key, and whoever copied the phone's files (device key, salt,
/// enrollment id and nonce) can derive the key of any code and prove possession of it, so an
/// uncounted comparison would let them test all 100,000 codes. The right key is the right code
/// and clears the counts.
fn repeated_completion(
    app: &App,
    tx: Transaction<'_>,
    enrollment: &Enrollment,
    body: &CompleteEnrollment,
    now: i64,
) -> Result<String> {
    let already = || {
        ServerError::WrongStep(
            "the enrollment is at step done, this call belongs to step keys".into(),
        )
    };
    let Some(account_id) = &enrollment.account_id else {
        return Err(already());
    };
    let device_account: Option<String> = tx
        .query_row(
            "SELECT account_id FROM devices WHERE jkt = ?1 AND revoked_at IS NULL",
            [&enrollment.device_jkt],
            |row| row.get(0),
        )
        .optional()?;
    if device_account.as_ref() != Some(account_id) {
        return Err(already());
    }
    let code = CodeState::load(&tx, &enrollment.device_jkt)?;
    if code.blocked {
        return Err(ServerError::AccountBlocked);
    }
    if code.pin_jwk.thumbprint() != body.pin_key.thumbprint() {
        return code.wrong_code(app, tx, now);
    }
    code.right_code(&tx, now)?;
    tx.commit()?;
    Ok(account_id.clone())
}

/// What the account history says about an activation: the source and its evidence (never the
/// person's data beyond what the evidence reference already shows).
fn evidence_detail(source: &str, identity: &ProvenIdentity) -> String {
    format!(
        "source {source}, {} ({}: {})",
        identity.issuer, identity.evidence_type, identity.evidence_reference
    )
}

/// The device and PIN keys of a completion, checked and parsed.
struct CheckedKeys {
    device: VerifyingKey,
    pin: VerifyingKey,
}

/// The device key must be the enrollment's, both keys must prove possession over the
/// enrollment id and nonce, and the PIN key must be a key of its own.
fn check_keys(body: &CompleteEnrollment, enrollment: &Enrollment) -> Result<CheckedKeys> {
    let device_jkt = body.device_key.thumbprint();
    if device_jkt != enrollment.device_jkt {
        return Err(ServerError::InvalidRequest(
            "device_key is not the key that signed this enrollment's requests".into(),
        ));
    }
    if body.pin_key.thumbprint() == device_jkt {
        return Err(ServerError::InvalidRequest(
            "pin_key must differ from device_key".into(),
        ));
    }
    let checked = |role: &str, jwk: &Jwk, pop: &str| -> Result<VerifyingKey> {
        let key = jwk
            .to_verifying_key()
            .map_err(|e| ServerError::InvalidRequest(format!("{role} key: {e}")))?;
        let signature = jose::b64_decode(pop, "proof of possession")
            .map_err(|e| ServerError::InvalidRequest(format!("{role}_pop: {e}")))?;
        let message = api::enrollment_pop_message(role, &enrollment.id, &enrollment.nonce);
        jose::verify_es256(&key, message.as_bytes(), &signature, "proof of possession").map_err(
            |_| {
                ServerError::InvalidRequest(format!(
                    "{role}_pop does not verify with the {role} key"
                ))
            },
        )?;
        Ok(key)
    };
    Ok(CheckedKeys {
        device: checked("device", &body.device_key, &body.device_pop)?,
        pin: checked("pin", &body.pin_key, &body.pin_pop)?,
    })
}

/// Creates or renews the account of `identity`, registers the device with its PIN key, revokes
/// the device the enrollment replaces and devices beyond the policy's limit, unblocks the account
/// and points the phone number at it. Returns the account id.
///
/// The PIN key is the device's, not the account's: with `max_devices > 1` every phone derives its
/// own PIN key (its own salt), and an earlier phone that stays active keeps its code. The failure
/// count stays the account's, so the person has the same few tries whichever phone guesses.
fn register(
    app: &App,
    tx: &Transaction<'_>,
    enrollment: &Enrollment,
    identity: &ProvenIdentity,
    keys: &CheckedKeys,
    now: i64,
) -> Result<String> {
    // Only the key is stored, without any kid/use/alg the phone may have sent.
    let stored = |key: &VerifyingKey| {
        serde_json::to_string(&Jwk::from_verifying_key(key))
            .map_err(|e| ServerError::Internal(e.to_string()))
    };
    let (device_jwk, pin_jwk) = (stored(&keys.device)?, stored(&keys.pin)?);
    let existing: Option<String> = tx
        .query_row(
            "SELECT id FROM accounts WHERE national_register_number = ?1",
            [&identity.national_register_number],
            |row| row.get(0),
        )
        .optional()?;
    let source = source_to_column(enrollment.source);
    let account_id = match existing {
        Some(id) => {
            let was_blocked: bool = tx.query_row(
                "SELECT blocked_at IS NOT NULL FROM accounts WHERE id = ?1",
                [&id],
                |row| row.get(0),
            )?;
            // A new activation proves the identity again: fresh names and evidence, and the
            // failure count and block lifted (the unblock flow).
            tx.execute(
                "UPDATE accounts SET given_name = ?2, family_name = ?3, birthdate = ?4,
                     identity_source = ?9, identity_issuer = ?5, evidence_type = ?6,
                     evidence_reference = ?7, pin_failures = 0, blocked_at = NULL,
                     updated_at = ?8
                 WHERE id = ?1",
                params![
                    id,
                    identity.given_name,
                    identity.family_name,
                    identity.birthdate,
                    identity.issuer,
                    identity.evidence_type,
                    identity.evidence_reference,
                    now,
                    source
                ],
            )?;
            let detail = evidence_detail(source, identity);
            if was_blocked {
                events::record(tx, &id, events::UNBLOCKED, &detail, now)?;
            }
            events::record(tx, &id, events::REACTIVATED, &detail, now)?;
            id
        }
        None => {
            let id = random::id()?;
            tx.execute(
                "INSERT INTO accounts (id, national_register_number, given_name, family_name,
                     birthdate, identity_source, identity_issuer, evidence_type,
                     evidence_reference, pin_failures, blocked_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?10, ?6, ?7, ?8, 0, NULL, ?9, ?9)",
                params![
                    id,
                    identity.national_register_number,
                    identity.given_name,
                    identity.family_name,
                    identity.birthdate,
                    identity.issuer,
                    identity.evidence_type,
                    identity.evidence_reference,
                    now,
                    source
                ],
            )?;
            events::record(
                tx,
                &id,
                events::ACTIVATED,
                &evidence_detail(source, identity),
                now,
            )?;
            id
        }
    };
    // The same device key may come back (an unblock from the same phone by an app that predates
    // key replacement): it is re-registered, with the new code's PIN key. A biometric key
    // registered under the old code is dropped: the person enables biometrics again after
    // proving who they are.
    tx.execute(
        "INSERT INTO devices (jkt, account_id, jwk, pin_jwk, phone_number, enrolled_at,
             revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
         ON CONFLICT (jkt) DO UPDATE SET account_id = excluded.account_id, jwk = excluded.jwk,
             pin_jwk = excluded.pin_jwk, phone_number = excluded.phone_number,
             enrolled_at = excluded.enrolled_at, revoked_at = NULL, revoked_reason = NULL,
             biometric_jwk = NULL, pin_failures = 0",
        params![
            enrollment.device_jkt,
            account_id,
            device_jwk,
            pin_jwk,
            enrollment.phone_number,
            now
        ],
    )?;
    // An unblock from the same phone replaces the device key it had: that key, and any copy of
    // the phone's files holding it, stops working now, whatever max_devices would keep. (The
    // identity step checked that the device is this account's.)
    if let Some(replaced) = &enrollment.replaces_jkt {
        let revoked = tx.execute(
            "UPDATE devices SET revoked_at = ?3, revoked_reason = 'replaced'
             WHERE jkt = ?1 AND account_id = ?2 AND revoked_at IS NULL",
            params![replaced, account_id, now],
        )?;
        if revoked > 0 {
            events::record(
                tx,
                &account_id,
                events::DEVICE_REVOKED,
                "the phone's earlier device key was replaced by an unblock from that phone",
                now,
            )?;
        }
    }
    // Keep this device and the newest (max_devices - 1) others; revoke the rest.
    let keep_others = i64::from(app.policy.max_devices.saturating_sub(1));
    let revoked = tx.execute(
        "UPDATE devices SET revoked_at = ?3, revoked_reason = 'replaced'
         WHERE account_id = ?1 AND revoked_at IS NULL AND jkt != ?2
           AND jkt NOT IN (SELECT jkt FROM devices
                           WHERE account_id = ?1 AND revoked_at IS NULL AND jkt != ?2
                           ORDER BY enrolled_at DESC, rowid DESC LIMIT ?4)",
        params![account_id, enrollment.device_jkt, now, keep_others],
    )?;
    for _ in 0..revoked {
        events::record(
            tx,
            &account_id,
            events::DEVICE_REVOKED,
            "an earlier phone was revoked by a newer activation (max_devices)",
            now,
        )?;
    }
    tx.execute(
        "INSERT INTO phone_numbers (phone_number, account_id, verified_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (phone_number) DO UPDATE SET account_id = excluded.account_id,
             verified_at = excluded.verified_at",
        params![enrollment.phone_number, account_id, now],
    )?;
    Ok(account_id)
}
