//! Simulators of everything a person deals with outside the app, so every flow runs on one
//! machine: citizens with bank cards and an eID, the banks' authorize pages that hand out
//! identity tokens, the eID website that hands out identification codes, the town-hall counter
//! that hands out activation codes, the "block my key" page, and the SMS, e-mail and push
//! outboxes. No authentication: these endpoints stand in for the world.

use axum::Router;
use axum::routing::{get, post};
use sleutel_protocol::api;

use crate::error::{Result, ServerError};
use crate::server::AppState;
use crate::store::Tx;

pub(crate) mod bank;
pub(crate) mod block;
pub(crate) mod citizens;
pub(crate) mod counter;
pub(crate) mod eid;
pub(crate) mod outbox;

/// The simulator routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(api::sim::PATH_CITIZENS, post(citizens::create))
        .route(
            "/sim/bank/{bank}/authorize",
            get(bank::authorize_page).post(bank::authorize),
        )
        .route(api::sim::PATH_EID_IDENTIFICATION, post(eid::identification))
        .route(
            &api::sim::path_eid_card_revoke("{serial}"),
            post(eid::revoke),
        )
        .route(api::sim::PATH_COUNTER_ACTIVATION, post(counter::activation))
        .route(api::sim::PATH_BLOCK, post(block::block_my_key))
        .route(api::sim::PATH_SMS, get(outbox::sms))
        .route(api::sim::PATH_EMAIL, get(outbox::email))
        .route(api::sim::PATH_PUSH, get(outbox::push))
}

/// Ends `tx` after a refusal. A refusal that counted something (a wrong card PIN, a wrong code,
/// a card or code blocked by that count) keeps the count, so the limit holds across calls;
/// any other refusal rolls everything back.
pub(crate) fn keep_counts<T>(tx: Tx<'_>, e: ServerError) -> Result<T> {
    if matches!(
        e,
        ServerError::WrongCardPin { .. }
            | ServerError::CardBlocked
            | ServerError::WrongIdentityCode { .. }
            | ServerError::IdentityCodeBlocked
            | ServerError::TooManyAttempts
    ) {
        tx.commit()?;
    }
    Err(e)
}

/// The refusal for a wrong card PIN (bank card or eID) that brought the card's count to
/// `failures`: the attempts left, or the card blocked once `max` is reached.
pub(crate) fn wrong_card_pin(failures: u32, max: u32) -> ServerError {
    if failures >= max {
        ServerError::CardBlocked
    } else {
        ServerError::WrongCardPin {
            attempts_left: max - failures,
        }
    }
}

/// Accepts a plausible e-mail address: one `@` with text on both sides, no spaces or control
/// characters, at most 254 characters (RFC 5321's path limit).
pub(crate) fn check_email(email: &str) -> Result<String> {
    let email = email.trim();
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && !email.starts_with('@')
        && !email.ends_with('@')
        && email.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(ServerError::InvalidRequest("not an e-mail address".into()));
    }
    Ok(email.to_owned())
}

/// A random identification or activation code of `length` characters from
/// [`sleutel_protocol::identity::IDENTITY_CODE_ALPHABET`].
pub(crate) fn identity_code(length: usize) -> Result<zeroize::Zeroizing<String>> {
    let alphabet: Vec<char> = sleutel_protocol::identity::IDENTITY_CODE_ALPHABET
        .chars()
        .collect();
    let bound = u32::try_from(alphabet.len()).unwrap_or(1);
    let mut code = zeroize::Zeroizing::new(String::with_capacity(length));
    for _ in 0..length {
        let index = crate::random::below(bound)? as usize;
        code.push(alphabet.get(index).copied().unwrap_or('A'));
    }
    Ok(code)
}
