//! The simulated banks' authorize pages: the person identifies with a debit card and its PIN,
//! and the bank sends them back to the app with a signed identity token.
//!
//! Each of the eight banks signs with its own ES256 key (see [`crate::keys`]); those keys are the
//! only identity issuers the server trusts. Like a real bank, the simulator does not know or
//! check the enrollment: it signs the enrollment id and nonce it was handed, and the server
//! checks them when the phone submits the token.

use crate::store::outboxes::{self, CardKind};
use crate::store::{Conn, Sql};
use axum::extract::State;
use axum::http::Uri;
use axum::response::{Html, IntoResponse, Redirect, Response};
use sleutel_protocol::api;
use sleutel_protocol::identity::{
    Bank, Evidence, IDENTITY_AUDIENCE, IDENTITY_TYP, IdentityClaims, IdentitySource,
};
use subtle::ConstantTimeEq;

use crate::clock;
use crate::error::{Result, ServerError};
use crate::extract::{Params, PathId, RawBody};
use crate::html::escape;
use crate::server::{App, AppState};
use crate::sim::citizens::{CARD_PIN_DIGITS, card_pin_hash};

/// Lifetime of the identity tokens the banks hand out: long enough to return to the app and
/// submit, short enough to be useless later (within the protocol's maximum).
pub(crate) const IDENTITY_TOKEN_TTL_SECS: i64 = 300;

/// The kind of evidence a bank records: a debit card checked with its PIN.
pub(crate) const EVIDENCE_DEBIT_CARD: &str = "bank_debit_card";

fn bank_from_path(id: &str) -> Result<Bank> {
    Bank::from_id(id).map_err(|_| ServerError::NotFound(format!("no bank {id:?}")))
}

/// `GET /sim/bank/{bank}/authorize?enrollment_id&nonce&redirect_uri`: the bank's page.
pub(crate) async fn authorize_page(PathId(bank): PathId, uri: Uri) -> Result<Html<String>> {
    let bank = bank_from_path(&bank)?;
    let params = Params::query(&uri)?;
    let field = |name: &str| -> Result<String> { Ok(escape(params.required(name)?)) };
    let (enrollment_id, nonce, redirect_uri) = (
        field("enrollment_id")?,
        field("nonce")?,
        field("redirect_uri")?,
    );
    let name = escape(bank.display_name());
    let action = escape(&api::sim::path_bank_authorize(bank));
    Ok(Html(format!(
        r#"<!doctype html>
<html lang="nl">
<head><meta charset="utf-8"><title>{name} – identificatie</title></head>
<body>
<h1>{name}</h1>
<p>Identificeer u met uw bankkaart en pincode (simulator).</p>
<form method="post" action="{action}">
<input type="hidden" name="enrollment_id" value="{enrollment_id}">
<input type="hidden" name="nonce" value="{nonce}">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<label>Kaartnummer <input name="card_number" inputmode="numeric" autocomplete="off"></label>
<label>Pincode <input name="card_pin" type="password" inputmode="numeric" autocomplete="off"></label>
<button type="submit">Bevestigen</button>
</form>
</body>
</html>
"#
    )))
}

/// `POST /sim/bank/{bank}/authorize` (form [`api::sim::BankAuthorize`]): checks the card and PIN
/// and answers `303 See Other` to the app's deep link with an identity token.
pub(crate) async fn authorize(
    State(state): State<AppState>,
    PathId(bank): PathId,
    RawBody(body): RawBody,
) -> Result<Response> {
    let bank = bank_from_path(&bank)?;
    let form = read_form(&body)?;
    let (enrollment_id, token) = state
        .db(move |app, conn| check_card_and_sign(app, conn, bank, &form))
        .await?;
    Ok(Redirect::to(&api::bank_return_link(&enrollment_id, &token)).into_response())
}

/// Reads the bank page's form: the binding, the return target and the card with its PIN.
pub(crate) fn read_form(body: &[u8]) -> Result<api::sim::BankAuthorize> {
    let params = Params::parse(body)?;
    let form = api::sim::BankAuthorize {
        // The bank signs whatever binding it is handed; only identifiers are worth signing.
        enrollment_id: params.required_id("enrollment_id")?.to_owned(),
        nonce: params.required_id("nonce")?.to_owned(),
        redirect_uri: params.required("redirect_uri")?.to_owned(),
        card_number: params
            .required("card_number")?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
        card_pin: params.required("card_pin")?.to_owned(),
    };
    // The bank returns only to the app; any other target would leak the token.
    if form.redirect_uri != api::DEEP_LINK_BANK_RETURN {
        return Err(ServerError::InvalidRequest(format!(
            "redirect_uri must be {}",
            api::DEEP_LINK_BANK_RETURN
        )));
    }
    if form.card_pin.len() != CARD_PIN_DIGITS || !form.card_pin.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ServerError::InvalidRequest(format!(
            "the card PIN has {CARD_PIN_DIGITS} digits"
        )));
    }
    Ok(form)
}

/// Checks card and PIN (counting wrong PINs, blocking at the limit) and signs the identity
/// token. Returns the enrollment id and the token.
fn check_card_and_sign(
    app: &App,
    conn: &mut Conn<'_>,
    bank: Bank,
    form: &api::sim::BankAuthorize,
) -> Result<(String, String)> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let citizen_id =
        match check_debit_card(app, &tx, Some(bank), &form.card_number, &form.card_pin, now) {
            Ok(citizen_id) => citizen_id,
            Err(e) => return crate::sim::keep_counts(tx, e),
        };
    let token = mint_identity_token(
        app,
        &tx,
        bank,
        &citizen_id,
        &form.enrollment_id,
        &form.nonce,
        now,
        now + IDENTITY_TOKEN_TTL_SECS,
    )?;
    tx.commit()?;
    Ok((form.enrollment_id.clone(), token))
}

/// Checks a debit card and its PIN at `bank` (any bank when `None`: the "block my key" page
/// takes every bank's card) and returns the card holder's citizen id. A wrong PIN is counted
/// and blocks the card at the policy's limit; the caller must commit `tx` after such an error
/// ([`crate::sim::keep_counts`]).
pub(crate) fn check_debit_card(
    app: &App,
    tx: &impl Sql,
    bank: Option<Bank>,
    card_number: &str,
    card_pin: &str,
    now: i64,
) -> Result<String> {
    let card = outboxes::card(tx, card_number)?;
    // A card of another bank is unknown here, as it would be at a real bank.
    let Some(card) = card.filter(|c| bank.is_none_or(|b| c.bank == b)) else {
        return Err(ServerError::UnknownCard);
    };
    if card.kind != CardKind::Debit {
        return Err(ServerError::CreditCardRefused);
    }
    if card.blocked {
        return Err(ServerError::CardBlocked);
    }
    let given = card_pin_hash(&card.pin_salt, card_pin)?;
    if !bool::from(given.ct_eq(&card.pin_hash)) {
        let failures = card.pin_failures.saturating_add(1);
        let max = app.policy.card_pin_max_failures;
        let blocked_at = (failures >= max).then_some(now);
        outboxes::record_card_pin_failure(tx, card_number, failures, blocked_at)?;
        return Err(super::wrong_card_pin(failures, max));
    }
    outboxes::clear_card_pin_failures(tx, card_number)?;
    Ok(card.citizen_id)
}

/// The identity token of a citizen, signed by `bank`, with the given binding and lifetime.
/// Also behind `RunningServer::mint_identity_token` (feature `testing`), for tests.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mint_identity_token(
    app: &App,
    conn: &impl Sql,
    bank: Bank,
    citizen_id: &str,
    enrollment_id: &str,
    nonce: &str,
    iat: i64,
    exp: i64,
) -> Result<String> {
    let Some(customer) = outboxes::bank_customer(conn, citizen_id)? else {
        return Err(ServerError::NotFound(format!("no citizen {citizen_id:?}")));
    };
    let person = customer.identity;
    let last_four: String = customer
        .debit_card_number
        .map(|n| {
            n.chars()
                .skip(n.chars().count().saturating_sub(4))
                .collect()
        })
        .unwrap_or_else(|| "????".into());
    let claims = IdentityClaims {
        iss: bank.issuer(),
        aud: IDENTITY_AUDIENCE.into(),
        enrollment_id: enrollment_id.to_owned(),
        nonce: nonce.to_owned(),
        iat,
        exp,
        source: IdentitySource::Bank,
        evidence: Evidence {
            kind: EVIDENCE_DEBIT_CARD.into(),
            reference: format!("•••• {last_four}"),
        },
        given_name: person.given_name,
        family_name: person.family_name,
        birthdate: person.birthdate,
        national_register_number: person.national_register_number,
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| ServerError::Internal(e.to_string()))?;
    app.keys.sign_as_bank(bank, IDENTITY_TYP, &payload)
}
