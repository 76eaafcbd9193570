//! The token endpoint: the CIBA grant, polled by the relying party (or fetched after a ping),
//! and the ID token it hands out once the person approved. The token is issued once; a second
//! exchange is `invalid_grant`. `slow_down` answers a poll that comes sooner than `interval`
//! after the previous poll of a pending request; every poll counts.

use std::net::SocketAddr;

use crate::store::requests::{self, ClosedReason, DeclineReason, Grant};
use crate::store::unanswerable;
use crate::store::{Conn, DbError, Tx};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use sha2::{Digest, Sha256};
use sleutel_protocol::action::{ACTION_TYP, ActionRequest};
use sleutel_protocol::api::oidc::{self, IdTokenClaims, TokenResponse};
use sleutel_protocol::approval::ApprovedAction;
use sleutel_protocol::jose::{self, UnverifiedJws};
use sleutel_protocol::response::UvMethod;
use sleutel_protocol::{claims, identity};

use super::clients::authenticate_client;
use super::no_store;
use crate::error::{Result, ServerError};
use crate::extract::{Params, RawBody, is_valid_id};
use crate::requests::Status;
use crate::server::{App, AppState};
use crate::{clock, random};

/// Authentication methods of an approval with the code (RFC 8176): proof of a software key,
/// PIN, and together multi-factor.
pub(super) const AMR_CODE: [&str; 3] = ["swk", "pin", "mfa"];

/// Authentication methods of an approval with the biometric key. The platform says only that
/// the enrolled person passed its biometric check, not whether by fingerprint or face, so the
/// RFC 8176 value is `user` (user presence) beside the software key, together multi-factor.
pub(super) const AMR_BIOMETRIC: [&str; 3] = ["swk", "user", "mfa"];

/// RFC 8176's method for a proof of a hardware-secured key, in place of `swk` when the phone
/// said at activation that its device key is in secure hardware. The phone's statement, not an
/// attestation: the server cannot check it (see docs/security.md).
pub(super) const AMR_HARDWARE_KEY: &str = "hwk";

/// The `amr` of an approval: the methods of its verification, with `hwk` for `swk` when the
/// approving device's key is in hardware.
fn amr(biometric: bool, device_key_in_hardware: bool) -> Vec<String> {
    let methods = if biometric { AMR_BIOMETRIC } else { AMR_CODE };
    methods
        .iter()
        .map(|&m| {
            if m == "swk" && device_key_in_hardware {
                AMR_HARDWARE_KEY
            } else {
                m
            }
        })
        .map(str::to_owned)
        .collect()
}

/// How long after the request's expiry an approved login's token can still be picked up: a
/// person who approves in the last second must not leave the relying party empty-handed.
pub(super) const TOKEN_PICKUP_GRACE_SECS: i64 = 60;

/// The age of [`claims::AGE_OVER_18`]: the claim's name fixes it, whatever the activation
/// policy's minimum age.
pub(super) const ADULT_AGE_YEARS: u32 = 18;

/// Lifetime of the access token: long enough for the relying party to call the UserInfo
/// endpoint right after the login, short enough that a leaked token soon opens nothing.
pub(super) const ACCESS_TOKEN_TTL_SECS: i64 = 300;

/// `POST /oidc/token`: the CIBA grant, polled by the relying party, and the authorization
/// code grant.
pub(super) async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response> {
    let params = Params::parse(&body)?;
    let client_id = authenticate_client(&state, &headers, &params, peer.ip())
        .await?
        .client_id;
    let token = match read_grant(&params)? {
        GrantAsked::Code {
            code,
            redirect_uri,
            verifier,
        } => {
            state
                .db(move |app, conn| {
                    super::code::exchange_code(
                        app,
                        conn,
                        &client_id,
                        &code,
                        &redirect_uri,
                        &verifier,
                    )
                })
                .await?
        }
        GrantAsked::Ciba { auth_req_id } => {
            state
                .db(move |app, conn| exchange(app, conn, &client_id, &auth_req_id))
                .await?
        }
    };
    Ok(no_store(Json(token)))
}

/// What a token request asks to exchange, read from its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GrantAsked {
    /// An authorization code with the redirect URI it was issued for and the PKCE verifier.
    Code {
        /// The code.
        code: String,
        /// The redirect URI of the authorization request.
        redirect_uri: String,
        /// The PKCE code verifier.
        verifier: String,
    },
    /// A CIBA grant: one of our identifiers.
    Ciba {
        /// The `auth_req_id` of the backchannel request.
        auth_req_id: String,
    },
}

/// Reads the grant of a token request: the grant type and the parameters it needs.
pub(super) fn read_grant(params: &Params) -> Result<GrantAsked> {
    match params.required("grant_type")? {
        oidc::CIBA_GRANT_TYPE => {
            let auth_req_id = params.required("auth_req_id")?.to_owned();
            // Anything but one of our identifiers names no grant (RFC 6749 §5.2: invalid_grant).
            if !is_valid_id(&auth_req_id) {
                return Err(ServerError::InvalidGrant("malformed auth_req_id".into()));
            }
            Ok(GrantAsked::Ciba { auth_req_id })
        }
        oidc::AUTHORIZATION_CODE_GRANT_TYPE => Ok(GrantAsked::Code {
            code: params.required("code")?.to_owned(),
            redirect_uri: params.required("redirect_uri")?.to_owned(),
            verifier: params.required("code_verifier")?.to_owned(),
        }),
        _ => Err(ServerError::UnsupportedGrantType),
    }
}

/// Exchanges the grant `auth_req_id` of `client_id` for the ID token, or says why not yet (or
/// not at all).
fn exchange(
    app: &App,
    conn: &mut Conn<'_>,
    client_id: &str,
    auth_req_id: &str,
) -> Result<TokenResponse> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let row = requests::grant(&tx, auth_req_id)?;
    // Another client's auth_req_id is as unknown as a made-up one.
    let Some(grant) = row.filter(|g| g.client_id == client_id) else {
        return exchange_unanswerable(app, tx, client_id, auth_req_id, now);
    };
    if grant.token_issued_at.is_some() {
        return Err(ServerError::InvalidGrant(
            "the token for this auth_req_id was already issued".into(),
        ));
    }
    match grant.status {
        Status::Pending => pending_poll(
            app,
            tx,
            PendingPoll {
                auth_req_id,
                expires_at: grant.expires_at,
                last_poll_at: grant.last_poll_at,
                now,
                record: requests::record_poll,
            },
        ),
        Status::Declined => Err(ServerError::AccessDenied(
            match grant.decline_reason {
                Some(DeclineReason::NotMe) => {
                    "the person declined: they did not start this request"
                }
                Some(DeclineReason::WrongNumber) => {
                    "the person picked another number than the one shown; the request is declined"
                }
                _ => "the person declined",
            }
            .into(),
        )),
        Status::Denied => Err(ServerError::AccessDenied(
            match grant.closed_reason {
                Some(ClosedReason::Superseded) => SUPERSEDED_DESCRIPTION,
                _ => "the request was closed: the person's digital key is blocked",
            }
            .into(),
        )),
        Status::Approved => {
            if now >= grant.expires_at + TOKEN_PICKUP_GRACE_SECS {
                return Err(ServerError::ExpiredToken);
            }
            let token = id_token(app, client_id, &grant, now, None)?;
            // The statement itself issues once, not only the read above.
            if !requests::mark_token_issued(&tx, auth_req_id, now)? {
                return Err(ServerError::InvalidGrant(
                    "the token for this auth_req_id was already issued".into(),
                ));
            }
            tx.commit()?;
            Ok(token)
        }
    }
}

/// Answers a poll of a request nobody can answer (a number without a usable key) exactly as a
/// poll of a person's request that is never answered: pending (or `slow_down`) until it
/// expires, then `expired_token`; `access_denied` once a newer request superseded it (decision
/// 0030). Anything else is an unknown `auth_req_id`.
fn exchange_unanswerable(
    app: &App,
    tx: Tx<'_>,
    client_id: &str,
    auth_req_id: &str,
    now: i64,
) -> Result<TokenResponse> {
    let row = unanswerable::grant(&tx, auth_req_id)?;
    let Some(grant) = row.filter(|g| g.client_id == client_id) else {
        return Err(ServerError::InvalidGrant("unknown auth_req_id".into()));
    };
    if grant.superseded {
        return Err(ServerError::AccessDenied(SUPERSEDED_DESCRIPTION.into()));
    }
    pending_poll(
        app,
        tx,
        PendingPoll {
            auth_req_id,
            expires_at: grant.expires_at,
            last_poll_at: grant.last_poll_at,
            now,
            record: unanswerable::record_poll,
        },
    )
}

/// A poll of a request still waiting for its answer, whether a person's or one nobody can
/// answer: both go through [`pending_poll`], so that the two cannot drift apart (decision
/// 0030 rests on their answers being the same).
struct PendingPoll<'a> {
    auth_req_id: &'a str,
    expires_at: i64,
    last_poll_at: Option<i64>,
    now: i64,
    /// Where the poll is counted: the table of the request's kind.
    record: fn(&Tx<'_>, &str, i64) -> std::result::Result<(), DbError>,
}

/// Answers a pending poll: `expired_token` once the request expired; otherwise the poll is
/// recorded and the answer is `slow_down` when it came sooner than the interval after the
/// previous one, `authorization_pending` when not.
fn pending_poll(app: &App, tx: Tx<'_>, poll: PendingPoll<'_>) -> Result<TokenResponse> {
    if poll.now >= poll.expires_at {
        return Err(ServerError::ExpiredToken);
    }
    (poll.record)(&tx, poll.auth_req_id, poll.now)?;
    tx.commit()?;
    let too_soon = poll
        .last_poll_at
        .is_some_and(|last| poll.now < last + app.policy.ciba_poll_interval_secs);
    Err(if too_soon {
        ServerError::SlowDown
    } else {
        ServerError::AuthorizationPending
    })
}

/// Why a superseded request is refused: the same words for a person's request and for one
/// nobody can answer.
const SUPERSEDED_DESCRIPTION: &str = "superseded by a newer request of this client";

/// The action request of a grant, read back from the JWS the server signed, stored, and the
/// phone answered. Its signature is not checked again: here the server's signing key is in the
/// same database file as the row, so whoever could change the one could sign with the other;
/// and with the key in an HSM, whoever can write the database can already mark any request of
/// any account approved, which the signature of the request would not stop. A check would cost
/// a signature verification per token and protect nothing.
fn signed_request(jws: &str) -> Result<ActionRequest> {
    let unreadable =
        |e: sleutel_protocol::ProtocolError| ServerError::Internal(format!("stored request: {e}"));
    let parsed = UnverifiedJws::parse(jws, "stored action request").map_err(unreadable)?;
    parsed.header.expect(ACTION_TYP).map_err(unreadable)?;
    jose::parse_claims(parsed.unverified_payload(), "stored action request").map_err(unreadable)
}

/// What the authorization code flow adds to the ID token: the request's `nonce`, and `at_hash`.
pub(super) struct CodeFlow {
    /// The `nonce` of the authorization request.
    pub(super) nonce: Option<String>,
}

/// The ID token of an approved grant: the claims the person consented to and the relying party
/// is still registered for, and what was approved, read from the signed request.
pub(super) fn id_token(
    app: &App,
    client_id: &str,
    grant: &Grant,
    now: i64,
    code_flow: Option<CodeFlow>,
) -> Result<TokenResponse> {
    let claims = identity_claims(app, client_id, grant, now)?;
    let access_token = random::id()?;
    let claims = match code_flow {
        None => claims,
        Some(flow) => IdTokenClaims {
            nonce: flow.nonce,
            at_hash: Some(at_hash(&access_token)),
            ..claims
        },
    };
    let payload = serde_json::to_vec(&claims).map_err(|e| ServerError::Internal(e.to_string()))?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_TTL_SECS,
        id_token: app.keys.sign(oidc::ID_TOKEN_TYP, &payload)?,
    })
}

/// The `at_hash` of an access token (OIDC Core §3.1.3.6): the base64url of the left half of
/// its SHA-256, the hash of ES256.
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    jose::b64(&digest[..digest.len() / 2])
}

/// The claims of the ID token of an approved grant, without `nonce` and `at_hash`.
pub(super) fn identity_claims(
    app: &App,
    client_id: &str,
    grant: &Grant,
    now: i64,
) -> Result<IdTokenClaims> {
    let consented: Vec<String> = match &grant.consented_claims {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| ServerError::Internal(format!("stored consent unreadable: {e}")))?,
        None => Vec::new(),
    };
    // The consent was checked against the request's claims, which the relying party was
    // allowed; checking the registration again covers a registration narrowed since.
    let allowed = app.clients.allowed_claims(client_id).unwrap_or_default();
    let released =
        |claim: &str| consented.iter().any(|c| c == claim) && allowed.iter().any(|c| c == claim);
    let age_over_18 = if released(claims::AGE_OVER_18) {
        let birth = identity::Date::parse(&grant.birthdate)
            .map_err(|e| ServerError::Internal(format!("stored birthdate unreadable: {e}")))?;
        Some(birth.age_on(identity::Date::from_unix(now)) >= ADULT_AGE_YEARS)
    } else {
        None
    };
    let biometric = grant.method == Some(UvMethod::Biometric);
    // What was approved comes from the signed request itself, the one whose hash the phone's
    // signatures cover, not from anything the relying party sent or could change later.
    let request = signed_request(&grant.request_jws)?;
    let sleutel_action = ApprovedAction::of_request(&request, &grant.request_jws);
    let claims = IdTokenClaims {
        iss: app.url.clone(),
        sub: app.keys.pairwise_subject(client_id, &grant.account_id)?,
        aud: client_id.to_owned(),
        iat: now,
        exp: now + app.policy.id_token_ttl_secs,
        auth_time: grant.auth_time.unwrap_or(now),
        acr: if biometric {
            oidc::ACR_CODE_OR_BIOMETRIC
        } else {
            oidc::ACR_CODE
        }
        .to_owned(),
        amr: amr(biometric, grant.device_key_in_hardware),
        name: released(claims::NAME).then(|| format!("{} {}", grant.given_name, grant.family_name)),
        given_name: released(claims::GIVEN_NAME).then(|| grant.given_name.clone()),
        family_name: released(claims::FAMILY_NAME).then(|| grant.family_name.clone()),
        birthdate: released(claims::BIRTHDATE).then(|| grant.birthdate.clone()),
        national_register_number: released(claims::NATIONAL_REGISTER_NUMBER)
            .then(|| grant.national_register_number.clone()),
        phone_number: if released(claims::PHONE_NUMBER) {
            grant.phone_number.clone()
        } else {
            None
        },
        age_over_18,
        nonce: None,
        at_hash: None,
        sleutel_action,
    };
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::amr;

    #[test]
    fn a_code_approval_from_a_software_key_is_swk_pin_mfa() {
        assert_eq!(amr(false, false), ["swk", "pin", "mfa"]);
    }

    #[test]
    fn a_hardware_key_replaces_swk_with_hwk() {
        assert_eq!(amr(false, true), ["hwk", "pin", "mfa"]);
        assert_eq!(amr(true, true), ["hwk", "user", "mfa"]);
    }

    #[test]
    fn a_biometric_approval_from_a_software_key_is_swk_user_mfa() {
        assert_eq!(amr(true, false), ["swk", "user", "mfa"]);
    }
}
