//! The backchannel authentication endpoint (CIBA §7): finds the person by the phone number the
//! relying party asked for ([`super::ask`]), checks the limits, and turns the ask into an action
//! request signed by the server, pushed to the person's phone, with a ping registered for a
//! ping-mode client. Why the limits are what they are is in [`super`].

use std::net::SocketAddr;

use crate::store::requests::{self, NewRequest as StoredRequest};
use crate::store::unanswerable::{self, NewUnanswerable};
use crate::store::{Conn, Tx};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use sleutel_protocol::action::{
    self, ACTION_TYP, ActionKind, ActionRequest, RelyingParty, Transaction,
};
use sleutel_protocol::api::PushMessage;
use sleutel_protocol::api::oidc::BackchannelAuthResponse;
use sleutel_protocol::display;
use sleutel_protocol::limits::MAX_ACTION_TEXT_CHARS;

use super::ask::{LoginAsk, read_ask};
use super::clients::authenticate_client;
use super::no_store;
use super::token::TOKEN_PICKUP_GRACE_SECS;
use crate::config::RelyingPartyConfig;
use crate::error::{Result, ServerError};
use crate::extract::{Params, RawBody};
use crate::push::Delivery;
use crate::rate::{self, Bucket, Limit};
use crate::server::{App, AppState};
use crate::{clock, events, random};

/// `POST /oidc/bc-authorize`: starts a request on the phone of the person `login_hint` names.
pub(super) async fn bc_authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    // Whatever the number, the answer leaves no sooner than this (decision 0030).
    let floor = answer_floor(&state);
    let params = Params::parse(&body)?;
    let client = authenticate_client(&state, &headers, &params, peer.ip()).await?;
    let client_id = client.client_id.clone();
    state
        .db(move |app, conn| count_backchannel_call(app, conn, &client_id))
        .await?;
    let ask = read_ask(&params, state.policy.request_ttl_secs, &client)?;
    let created = state
        .db(move |app, conn| create_login(app, conn, &client, &ask))
        .await;
    let answer = created.map(|(started, superseded, pushes)| {
        state.notifier.notify(&superseded);
        // The request is committed: only now may a push make a phone look for it.
        state.push.dispatch(pushes);
        started
    });
    tokio::time::sleep_until(floor).await;
    Ok(no_store(Json(answer?)))
}

/// The earliest moment a number's answer may leave, from now: the policy's
/// `min_number_answer_millis`. A registered person's request is signed and stored with its
/// pushes, a number without a usable key only recorded; waiting for the same floor on both hides
/// the difference as long as the slower path takes less (see docs/security.md).
pub(super) fn answer_floor(state: &AppState) -> tokio::time::Instant {
    tokio::time::Instant::now()
        + std::time::Duration::from_millis(state.policy.min_number_answer_millis)
}

/// Counts a backchannel call of `client_id`, refused or not, and refuses it beyond the policy's
/// rate. Counting refused calls too bounds how fast phone numbers can be probed.
pub(super) fn count_backchannel_call(
    app: &App,
    conn: &mut Conn<'_>,
    client_id: &str,
) -> Result<()> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let limit = Limit::per_minute(app.policy.max_backchannel_per_client_per_minute);
    let taken = rate::take(&tx, Bucket::BackchannelCalls(client_id), limit, now)?;
    tx.commit()?;
    taken.map_err(|exceeded| ServerError::BackchannelRateLimited {
        retry_after: exceeded.retry_after,
    })
}

/// The sentence the phone shows for a request of `kind` from `client`.
fn request_text(client: &RelyingPartyConfig, ask: &LoginAsk) -> String {
    let text = match (ask.kind, &ask.transaction, &ask.document) {
        (ActionKind::Login, _, _) => return client.login_text(),
        (ActionKind::ShareData, _, _) => format!("Ik deel gegevens met {}", client.name),
        (
            ActionKind::ConfirmTransaction,
            Some(Transaction::Payment {
                amount,
                currency,
                payee,
                ..
            }),
            _,
        ) => format!("Ik betaal {amount} {currency} aan {payee}"),
        (ActionKind::ConfirmTransaction, _, _) => {
            format!("Ik bevestig een opdracht aan {}", client.name)
        }
        (ActionKind::Sign, _, Some(document)) => format!("Ik onderteken {}", document.name),
        (ActionKind::Sign, _, None) => format!("Ik onderteken een document van {}", client.name),
    };
    display::clean_display_text(&text, MAX_ACTION_TEXT_CHARS)
}

/// Number matching: the number the relying party shows (10-99, two digits) and the three
/// options the phone offers, in random order, all different.
fn number_options() -> Result<(u8, Vec<u8>)> {
    let draw = || -> Result<u8> {
        u8::try_from(10 + random::below(90)?).map_err(|e| ServerError::Internal(e.to_string()))
    };
    let right = draw()?;
    let mut options = vec![right];
    while options.len() < 3 {
        let decoy = draw()?;
        if !options.contains(&decoy) {
            options.push(decoy);
        }
    }
    // Fisher-Yates, so the right number's place tells nothing.
    for i in (1..options.len()).rev() {
        let j = usize::try_from(random::below(u32::try_from(i + 1).unwrap_or(1))?).unwrap_or(0);
        options.swap(i, j);
    }
    Ok((right, options))
}

/// Whether the account is throttled for `client` after a suspicious event. A relying party the
/// person reported as "not me" within `suspicious_window_secs` is refused every new request
/// (it must not take the one place of the throttle, one push every few minutes for an hour);
/// any other gets at most one new request per `suspicious_throttle_secs` during
/// `suspicious_window_secs` after the last report.
fn throttled(
    app: &App,
    tx: &Tx<'_>,
    account_id: &str,
    client: &RelyingPartyConfig,
    now: i64,
) -> Result<bool> {
    let window_start = now - app.policy.suspicious_window_secs;
    if requests::client_reported_since(
        tx,
        account_id,
        events::NOT_ME_REPORTED,
        &client.client_id,
        window_start,
    )? {
        return Ok(true);
    }
    let last_report = requests::latest_event_at(tx, account_id, events::SUSPICIOUS)?;
    let Some(report) = last_report.filter(|at| *at > window_start) else {
        return Ok(false);
    };
    let last_request = requests::latest_created_since(tx, account_id, report)?;
    let since = last_request.unwrap_or(report).max(report);
    Ok(now < since + app.policy.suspicious_throttle_secs)
}

/// Creates the request and returns the answer for the relying party, the ids of the relying
/// party's earlier requests to this person that the new one superseded, and the pushes to send
/// once the request is committed. Every step runs in one transaction, so that the limits are
/// checked against what the new request joins. A number without a usable key gets a request
/// nobody can answer, under the same limits and with the same answer
/// ([`create_unanswerable_in`]).
pub(super) fn create_login(
    app: &App,
    conn: &mut Conn<'_>,
    client: &RelyingPartyConfig,
    ask: &LoginAsk,
) -> Result<Created> {
    let tx = conn.immediate()?;
    let created = match usable_account(&tx, &ask.phone_number)? {
        Some(account_id) => create_login_in(app, &tx, client, ask, account_id)?,
        None => {
            let (started, superseded) = create_unanswerable_in(app, &tx, client, ask)?;
            (started, superseded, Vec::new())
        }
    };
    tx.commit()?;
    Ok(created)
}

/// Records, inside `tx`, a request for a number without a usable key (nobody enrolled it, its
/// key is blocked, or it has no active phone) and returns what a registered person's request
/// would have returned, with the `auth_req_id`s of the relying party's earlier requests for
/// the number that the new one superseded (their pings are due, as a person's superseded
/// requests' are). It is limited, superseded, pinged and later polled exactly as a request of
/// a person who never answers, so that neither the answer nor what follows tells the numbers
/// apart (decision 0030). Only the number's keyed hash is stored.
pub(super) fn create_unanswerable_in(
    app: &App,
    tx: &Tx<'_>,
    client: &RelyingPartyConfig,
    ask: &LoginAsk,
) -> Result<(BackchannelAuthResponse, Vec<String>)> {
    let now = clock::now();
    let number_hash = app.keys.unanswerable_number_hash(&ask.phone_number)?;
    // The same checks, in the same order, with the same refusals as a person's request.
    let unanswered = unanswerable::count_unanswered_of_client(
        tx,
        &number_hash,
        &client.client_id,
        now - app.policy.request_ttl_secs,
    )?;
    if unanswered >= i64::from(app.policy.max_pending_per_account) {
        return Err(too_many_unanswered());
    }
    let superseded =
        unanswerable::supersede_open_of_client(tx, &number_hash, &client.client_id, now)?;
    if unanswerable::count_open(tx, &number_hash, now)?
        >= i64::from(app.policy.max_pending_per_account)
    {
        return Err(too_many_open());
    }
    let auth_req_id = random::id()?;
    // Under number matching a person's request shows a number to the relying party: so does
    // this one, drawn the same way.
    let match_number = if ask.number_matching {
        Some(number_options()?.0)
    } else {
        None
    };
    unanswerable::insert(
        tx,
        &NewUnanswerable {
            auth_req_id: &auth_req_id,
            client_id: &client.client_id,
            number_hash: &number_hash,
            created_at: now,
            expires_at: now + ask.ttl_secs,
        },
    )?;
    if let (Some(token), Some(endpoint)) = (&ask.notification_token, &client.notification_endpoint)
    {
        app.notifier.register_unanswerable(
            tx,
            &auth_req_id,
            endpoint,
            token.as_str(),
            now + ask.ttl_secs + TOKEN_PICKUP_GRACE_SECS,
        )?;
    }
    Ok((
        BackchannelAuthResponse {
            auth_req_id,
            expires_in: ask.ttl_secs,
            interval: app.policy.ciba_poll_interval_secs,
            match_number,
        },
        superseded,
    ))
}

/// A login started for a known account, not yet committed: what [`create_login`] returns.
pub(super) type Created = (BackchannelAuthResponse, Vec<String>, Vec<Delivery>);

/// Creates the request of `ask` for `account_id` inside `tx`, which the caller commits: the
/// limits, the supersession, the signed request and its pushes, as [`create_login`] does once
/// it found the account. A sign-in link binds its browser session in the same transaction.
pub(super) fn create_login_in(
    app: &App,
    tx: &Tx<'_>,
    client: &RelyingPartyConfig,
    ask: &LoginAsk,
    account_id: String,
) -> Result<Created> {
    let now = clock::now();
    check_limits(app, tx, &account_id, client, now)?;
    let superseded = supersede(tx, &account_id, client, now)?;
    check_open_requests(app, tx, &account_id, now)?;
    let new = build_request(app, client, ask, account_id, now)?;
    let pushes = store_and_push(app, tx, client, &ask.scope, &new, now)?;
    // The ping is registered before the commit makes the request visible to the phone: a phone
    // that answers at once must find it. If the commit fails, the entry is never notified and
    // is dropped at its expiry.
    register_ping(
        app,
        tx,
        client,
        ask.notification_token.as_ref().map(|t| t.as_str()),
        &new,
    )?;
    Ok((
        BackchannelAuthResponse {
            auth_req_id: new.auth_req_id,
            expires_in: ask.ttl_secs,
            interval: app.policy.ciba_poll_interval_secs,
            match_number: new.match_number,
        },
        superseded,
        pushes,
    ))
}

/// The request id (the one the phone fetches) of the request the relying party knows as
/// `auth_req_id`.
pub(super) fn request_id_of(tx: &Tx<'_>, auth_req_id: &str) -> Result<String> {
    Ok(requests::id_of_auth_req(tx, auth_req_id)?)
}

/// The account whose phone number the relying party named, if it can confirm a request: it
/// exists, has an active phone and is not blocked. Any other number gets a request nobody can
/// answer ([`create_unanswerable_in`]).
pub(super) fn usable_account(tx: &Tx<'_>, phone_number: &str) -> Result<Option<String>> {
    let account = requests::account_of_phone_number(tx, phone_number)?;
    Ok(account
        .filter(|account| account.active_devices > 0 && !account.blocked)
        .map(|account| account.id))
}

/// The refusal of a request when the relying party has as many unanswered requests to the
/// person as open requests may be.
fn too_many_unanswered() -> ServerError {
    ServerError::BackchannelDenied(
        "too many unanswered requests of this client for this user; try again when the person \
         has answered"
            .into(),
    )
}

/// The refusal of a request when the person has as many open requests as the policy allows.
fn too_many_open() -> ServerError {
    ServerError::BackchannelDenied(
        "too many open requests for this user; try again when the person has answered".into(),
    )
}

/// Refuses a new request while the person is throttled after a suspicious event (for the relying
/// party they reported as "not me", for the whole window), or when this
/// relying party already has as many unanswered requests to them as open requests may be.
fn check_limits(
    app: &App,
    tx: &Tx<'_>,
    account_id: &str,
    client: &RelyingPartyConfig,
    now: i64,
) -> Result<()> {
    // The reported relying party and the others get one answer, word for word: it says no
    // more than the throttle did before about the person or their report.
    if throttled(app, tx, account_id, client, now)? {
        return Err(ServerError::BackchannelDenied(
            "the person recently reported a request as not theirs; requests to them are \
             throttled, try again later"
                .into(),
        ));
    }
    // Supersession frees the place of the request it closes, so the bound on open requests
    // alone would let one relying party push the person without end ("MFA fatigue"). Requests
    // of this relying party to this person that the person did not answer (open or
    // superseded) within one request lifetime are bounded like open requests are.
    let unanswered = requests::count_unanswered_of_client(
        tx,
        account_id,
        &client.client_id,
        now - app.policy.request_ttl_secs,
    )?;
    if unanswered >= i64::from(app.policy.max_pending_per_account) {
        return Err(too_many_unanswered());
    }
    Ok(())
}

/// Closes the relying party's pending requests to this person and returns their ids. A newer
/// request from the same relying party replaces its older one: the person sees one request per
/// relying party, the latest (a relying party retrying after a lost answer must not fill the
/// list).
fn supersede(
    tx: &Tx<'_>,
    account_id: &str,
    client: &RelyingPartyConfig,
    now: i64,
) -> Result<Vec<String>> {
    Ok(requests::supersede_pending_of_client(
        tx,
        account_id,
        &client.client_id,
        now,
    )?)
}

/// Refuses a new request when the person has as many open requests as the policy allows, all
/// relying parties together.
fn check_open_requests(app: &App, tx: &Tx<'_>, account_id: &str, now: i64) -> Result<()> {
    let open = requests::count_open_of_account(tx, account_id, now)?;
    if open >= i64::from(app.policy.max_pending_per_account) {
        return Err(too_many_open());
    }
    Ok(())
}

/// A new action request, signed, with what the relying party gets back.
struct NewRequest {
    /// The request as signed: cleaned for display and checked.
    request: ActionRequest,
    /// Its compact JWS, signed by the server key.
    jws: String,
    /// The id the relying party polls with.
    auth_req_id: String,
    /// Under number matching, the number the relying party shows.
    match_number: Option<u8>,
}

/// Builds the action request of `ask` for `account_id`, with fresh ids and, under number
/// matching, the numbers; cleans, checks and signs it.
fn build_request(
    app: &App,
    client: &RelyingPartyConfig,
    ask: &LoginAsk,
    account_id: String,
    now: i64,
) -> Result<NewRequest> {
    let request_id = random::id()?;
    let auth_req_id = random::id()?;
    let (match_number, options) = if ask.number_matching {
        let (right, options) = number_options()?;
        (Some(right), Some(options))
    } else {
        (None, None)
    };
    let mut request = ActionRequest {
        iss: app.url.clone(),
        aud: account_id,
        jti: request_id,
        iat: now,
        exp: now + ask.ttl_secs,
        rp: RelyingParty {
            id: client.client_id.clone(),
            name: client.name.clone(),
        },
        kind: ask.kind,
        text: request_text(client, ask),
        claims: ask.required_claims.clone(),
        optional_claims: ask.optional_claims.clone(),
        binding_message: ask.binding_message.clone(),
        uv: ask.uv,
        number_options: options,
        transaction: ask.transaction.clone(),
        document: ask.document.clone(),
    };
    // Whatever a relying party sends is cleaned before the server signs it for display.
    action::clean_for_display(&mut request);
    request
        .validate(now)
        .map_err(|e| ServerError::InvalidRequest(e.to_string()))?;
    let payload = serde_json::to_vec(&request).map_err(|e| ServerError::Internal(e.to_string()))?;
    let jws = app.keys.sign(ACTION_TYP, &payload)?;
    Ok(NewRequest {
        request,
        jws,
        auth_req_id,
        match_number,
    })
}

/// Stores the new request of `client` (with the `scope` asked), writes the outbox's push, and
/// returns the pushes through FCM or APNs that tell the phones where to look, to be sent once
/// the transaction has committed.
fn store_and_push(
    app: &App,
    tx: &Tx<'_>,
    client: &RelyingPartyConfig,
    scope: &str,
    new: &NewRequest,
    now: i64,
) -> Result<Vec<Delivery>> {
    let request = &new.request;
    requests::insert(
        tx,
        &StoredRequest {
            id: &request.jti,
            auth_req_id: &new.auth_req_id,
            client_id: &client.client_id,
            account_id: &request.aud,
            jws: &new.jws,
            scope,
            claims: &request.claims,
            optional_claims: &request.optional_claims,
            uv: request.uv,
            kind: request.kind,
            match_number: new.match_number,
            created_at: now,
            expires_at: request.exp,
        },
    )?;
    app.push.plan(
        tx,
        &PushMessage {
            account_id: request.aud.clone(),
            request_id: request.jti.clone(),
        },
        request.exp,
    )
}

/// Registers the ping of a ping-mode client for the new request: its endpoint is called with
/// the client's token once the request has an outcome, until the token can no longer be
/// picked up.
fn register_ping(
    app: &App,
    tx: &Tx<'_>,
    client: &RelyingPartyConfig,
    notification_token: Option<&str>,
    new: &NewRequest,
) -> Result<()> {
    if let (Some(token), Some(endpoint)) = (notification_token, &client.notification_endpoint) {
        app.notifier.register(
            tx,
            &new.request.jti,
            &new.auth_req_id,
            endpoint,
            token,
            new.request.exp + TOKEN_PICKUP_GRACE_SECS,
        )?;
    }
    Ok(())
}
