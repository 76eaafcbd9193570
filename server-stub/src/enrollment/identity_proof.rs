//! The identity step: a bank's identity token, or an identification or activation code, admitted
//! through one `accept_identity` (age, the device key's own account, the identity stored, the SMS
//! code sent), with wrong codes counted on the enrollment and on the code.

use std::net::{IpAddr, SocketAddr};

use crate::store::{Sql, Tx, accounts, enrollments, identity_codes};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use sleutel_protocol::api::{SmsSent, SubmitIdentity, SubmitIdentityCode};
use sleutel_protocol::identity::{
    self, ACTIVATION_CODE_LENGTH, Bank, IDENTIFICATION_CODE_LENGTH, IDENTITY_TYP, IdentityClaims,
    IdentitySource,
};
use sleutel_protocol::jose::{self, UnverifiedJws};
use subtle::ConstantTimeEq;

use crate::auth::PhoneCall;
use crate::clock;
use crate::error::{Result, ServerError};
use crate::extract::{self, PathId};
use crate::keys::Keys;
use crate::rate::{self, Bucket, Limit};
use crate::server::{App, AppState};

use super::sms_code::send_sms_code;
use super::{Enrollment, ProvenIdentity, Step, open_enrollment};

/// `POST /v1/enrollments/{id}/identity`: checks the identity token and sends the SMS code.
pub(super) async fn submit_identity(
    State(state): State<AppState>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsSent>> {
    let body: SubmitIdentity = extract::json(&call.body)?;
    let sent = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let enrollment = open_enrollment(&tx, &id, &call.jkt, &[Step::Identity], now)?;
            if enrollment.source != IdentitySource::Bank {
                return Err(ServerError::WrongStep(
                    "this activation proves the identity with a code, not a bank token".into(),
                ));
            }
            let claims = verify_identity_token(
                &app.keys,
                &body.identity_token,
                &enrollment.id,
                &enrollment.nonce,
                enrollment.bank.as_deref(),
                now,
            )?;
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
    tx: &Tx<'_>,
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
    let owner = accounts::person_of_active_device(tx, &enrollment.device_jkt)?;
    if owner.is_some_and(|nrn| nrn != proven.national_register_number) {
        return Err(ServerError::IdentityRefused(
            "this phone's key belongs to another person's digital key".into(),
        ));
    }
    // The device an unblock replaces is revoked at completion: only the person whose account
    // it belongs to may do that, whoever holds its key. (One of their phones already revoked
    // is still theirs: revoking it again changes nothing.)
    if let Some(replaced) = &enrollment.replaces_jkt {
        let owner = accounts::person_of_device(tx, replaced)?;
        if owner.as_deref() != Some(proven.national_register_number.as_str()) {
            return Err(ServerError::IdentityRefused(
                "the device this activation replaces is not one of this person's phones".into(),
            ));
        }
    }
    if !enrollments::store_identity(tx, &enrollment.id, proven)? {
        // Unreachable within this transaction, which found the enrollment at step identity;
        // the write checks it again so that one enrollment admits one identity, whatever runs.
        return Err(ServerError::WrongStep(
            "the enrollment is past step identity".into(),
        ));
    }
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
/// refusal (age) leaves it unused. Before any code is compared, the wrong identity codes from
/// the caller's address and on the whole server must be under the policy's limits
/// ([`check_identity_guess`]).
pub(super) async fn submit_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    PathId(id): PathId,
    call: PhoneCall,
) -> Result<Json<SmsSent>> {
    let source = peer.ip();
    let body: SubmitIdentityCode = extract::json(&call.body)?;
    let typed = zeroize::Zeroizing::new(body.code);
    let token = body.activation_token.map(zeroize::Zeroizing::new);
    let sent = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
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
                Some(token) => match check_counter_activation(app, &tx, source, token, &code, now)?
                {
                    CounterCheck::Proven { code_id, identity } => Ok((code_id, identity)),
                    CounterCheck::UnknownLink => {
                        return wrong_code(app, tx, &enrollment, now, None);
                    }
                    CounterCheck::WrongCode { attempts_left } => {
                        return wrong_code(app, tx, &enrollment, now, Some(attempts_left));
                    }
                },
                None => {
                    check_identity_guess(app, &tx, source, now)?;
                    find_eid_code(
                        &tx,
                        &app.keys.identity_code_hash("eid", &code)?,
                        &enrollment,
                        now,
                        app.policy.identity_code_max_failures,
                    )
                }
            };
            match found {
                Ok((code_id, proven)) => {
                    if !identity_codes::use_up(&tx, &code_id, now)? {
                        // Unreachable within this transaction, which found the code unused;
                        // the write checks it again so that a code proves one identity.
                        return Err(ServerError::IdentityCodeUsed);
                    }
                    let sent = accept_identity(app, &tx, &enrollment, &proven, now)?;
                    tx.commit()?;
                    Ok(sent)
                }
                Err(ServerError::WrongIdentityCode { .. }) => {
                    count_identity_guess(app, &tx, source, now)?;
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
    tx: &Tx<'_>,
    hash: &[u8],
    enrollment: &Enrollment,
    now: i64,
    max_failures: u32,
) -> Result<(String, ProvenIdentity)> {
    let Some(found) = identity_codes::find_eid_code(tx, hash)? else {
        return Err(ServerError::WrongIdentityCode { attempts_left: 0 });
    };
    // Bound to the number it was issued for: on another number it proves nothing.
    if found
        .phone_number
        .is_some_and(|number| number != enrollment.phone_number)
    {
        return Err(ServerError::WrongIdentityCode { attempts_left: 0 });
    }
    if found.failures >= max_failures {
        return Err(ServerError::IdentityCodeBlocked);
    }
    if found.used {
        return Err(ServerError::IdentityCodeUsed);
    }
    if now >= found.expires_at {
        return Err(ServerError::IdentityCodeExpired);
    }
    Ok((found.id, found.identity))
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

/// The limits on wrong identity codes a guess from `source` must be under.
fn identity_guess_limits(app: &App, source: IpAddr) -> [(Bucket<'static>, Limit, &'static str); 2] {
    let policy = &app.policy;
    [
        (
            Bucket::WrongIdentityCodesBySource(source),
            Limit::per_hour(policy.max_wrong_identity_codes_per_source_per_hour),
            "too many wrong codes from this address; try again later",
        ),
        (
            Bucket::WrongIdentityCodes,
            Limit::per_minute(policy.max_wrong_identity_codes_per_minute),
            "too many wrong codes on this server; try again later",
        ),
    ]
}

/// Refuses an identity code from `source` (`rate_limited`) while the wrong identity codes from
/// that address in the last hour, or on the whole server in the last minute, are at the
/// policy's limits. Called before the code is compared or even looked up: a refused guess
/// learns nothing and costs the code it names no try, so that nobody can use up a stranger's
/// code through the limit, and the limit cannot be guessed past.
pub(crate) fn check_identity_guess(
    app: &App,
    tx: &impl Sql,
    source: IpAddr,
    now: i64,
) -> Result<()> {
    for (bucket, limit, detail) in identity_guess_limits(app, source) {
        if let Err(exceeded) = rate::check(tx, bucket, limit, now)? {
            return Err(ServerError::RateLimited {
                retry_after: exceeded.retry_after,
                detail: detail.into(),
            });
        }
    }
    Ok(())
}

/// Counts a wrong identity code (or an unknown activation link) from `source`, in `tx`.
pub(crate) fn count_identity_guess(
    app: &App,
    tx: &impl Sql,
    source: IpAddr,
    now: i64,
) -> Result<()> {
    for (bucket, limit, _) in identity_guess_limits(app, source) {
        rate::record(tx, bucket, limit, now)?;
    }
    Ok(())
}

/// Checks a counter activation from `source`: the row is found by the keyed hash of the link
/// `token`, and the canonical `code` is compared with that row's code in constant time. A wrong
/// code is counted on the row (written in `tx`; the caller commits it), so each code has its
/// own try limit, `identity_code_max_failures`, after which even the right code is
/// `identity_code_blocked`. A used or expired link is refused as such whatever the code. A
/// token of the wrong shape is `invalid_request` and counts nothing. Before the link is looked
/// up, the wrong codes from `source` and overall must be under their limits
/// ([`check_identity_guess`]); an unknown link and a wrong code count there as well.
pub(crate) fn check_counter_activation(
    app: &App,
    tx: &impl Sql,
    source: IpAddr,
    token: &str,
    code: &str,
    now: i64,
) -> Result<CounterCheck> {
    if !identity::is_activation_token(token) {
        return Err(ServerError::InvalidRequest(
            "activation_token is not an activation link's token".into(),
        ));
    }
    check_identity_guess(app, tx, source, now)?;
    let link_hash = app.keys.activation_link_hash(token)?;
    let Some(found) = identity_codes::find_counter_code_by_link(tx, &link_hash)? else {
        count_identity_guess(app, tx, source, now)?;
        return Ok(CounterCheck::UnknownLink);
    };
    let max = app.policy.identity_code_max_failures;
    if found.failures >= max {
        return Err(ServerError::IdentityCodeBlocked);
    }
    if found.used {
        return Err(ServerError::IdentityCodeUsed);
    }
    if now >= found.expires_at {
        return Err(ServerError::IdentityCodeExpired);
    }
    let given = app.keys.identity_code_hash("counter", code)?;
    if !bool::from(given.ct_eq(&found.code_hash)) {
        identity_codes::count_wrong_code(tx, &found.id)?;
        count_identity_guess(app, tx, source, now)?;
        return Ok(CounterCheck::WrongCode {
            attempts_left: max.saturating_sub(found.failures.saturating_add(1)),
        });
    }
    Ok(CounterCheck::Proven {
        code_id: found.id,
        identity: found.identity,
    })
}

/// Counts a wrong code on the enrollment and, for the eID, on the code live for its phone number
/// (a counter code was counted by [`check_counter_activation`], which left it `code_left`
/// tries); at the limit the enrollment ends (`too_many_attempts`) and that code stops working.
/// The attempts left reported are the fewer of the enrollment's and the code's.
fn wrong_code(
    app: &App,
    tx: Tx<'_>,
    enrollment: &Enrollment,
    now: i64,
    code_left: Option<u32>,
) -> Result<SmsSent> {
    let max = app.policy.identity_code_max_failures;
    if enrollment.source == IdentitySource::Eid {
        identity_codes::count_wrong_code_for_number(&tx, &enrollment.phone_number, now)?;
    }
    let failures = enrollment.code_failures.saturating_add(1);
    if failures >= max {
        enrollments::fail_on_codes(&tx, &enrollment.id, failures)?;
        tx.commit()?;
        return Err(ServerError::TooManyAttempts);
    }
    enrollments::set_code_failures(&tx, &enrollment.id, failures)?;
    tx.commit()?;
    let enrollment_left = max - failures;
    Err(ServerError::WrongIdentityCode {
        attempts_left: code_left.map_or(enrollment_left, |left| left.min(enrollment_left)),
    })
}

/// Verifies an identity token for the enrollment `enrollment_id` with its `nonce`, started with
/// the bank `bank` (its id): a trusted issuer, that issuer's key, a valid signature, the
/// enrollment's id and nonce, the lifetime and the content. Every failure says which check
/// failed (never anything secret: the token's content is the person's own).
pub(crate) fn verify_identity_token(
    keys: &Keys,
    token: &str,
    enrollment_id: &str,
    nonce: &str,
    bank: Option<&str>,
    now: i64,
) -> Result<IdentityClaims> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        ServerError::InvalidIdentityToken(format!("{what}: {e}"))
    };
    let jws =
        UnverifiedJws::parse(token, "identity token").map_err(|e| invalid("malformed", &e))?;
    let (issuer, kid) = identity::peek_issuer(&jws).map_err(|e| invalid("malformed", &e))?;
    let Some((trusted_kid, key)) = keys.trusted_issuer(&issuer) else {
        return Err(ServerError::InvalidIdentityToken(format!(
            "untrusted issuer {issuer:?}"
        )));
    };
    // A token of another bank than the one the person chose proves nothing about this
    // activation: the handoff went to the chosen bank only.
    let chosen = bank
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
        .validate(enrollment_id, nonce, now)
        .map_err(|e| invalid("refused", &e))?;
    if claims.source != IdentitySource::Bank {
        return Err(ServerError::InvalidIdentityToken(
            "the token's source does not match its issuer".into(),
        ));
    }
    Ok(claims)
}
