//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, PKCE RFC 7636 §4.6)
//! and the UserInfo endpoint (OpenID Connect Core §5.3).
//!
//! A code is single-use and lives
//! [`AUTHORIZATION_CODE_TTL_SECS`](super::authorize::AUTHORIZATION_CODE_TTL_SECS); it is bound to its client,
//! its redirect URI and its PKCE challenge. A code presented a second time is refused and the
//! access token it issued is revoked (RFC 6749 §4.1.2): a replay means the code leaked, and
//! whoever holds the first token may be the thief.

use crate::store::Conn;
use crate::store::{relying_parties, requests};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sleutel_protocol::api::oidc::TokenResponse;
use sleutel_protocol::jose;
use subtle::ConstantTimeEq;

use super::authorize::digest;
use super::token::{ACCESS_TOKEN_TTL_SECS, CodeFlow, id_token, identity_claims};
use crate::clock;
use crate::error::{Result, ServerError};
use crate::requests::Status;
use crate::server::{App, AppState};

/// Shortest PKCE code verifier (RFC 7636 §4.1): 32 random bytes in base64url.
pub(super) const MIN_CODE_VERIFIER_CHARS: usize = 43;

/// Longest PKCE code verifier (RFC 7636 §4.1).
pub(super) const MAX_CODE_VERIFIER_CHARS: usize = 128;

/// Whether `verifier` is a well-formed PKCE verifier whose S256 is `challenge`, compared in
/// constant time.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (MIN_CODE_VERIFIER_CHARS..=MAX_CODE_VERIFIER_CHARS).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = jose::b64(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Exchanges the authorization code `code` of `client_id` for the ID token and an access token.
pub(super) fn exchange_code(
    app: &App,
    conn: &mut Conn<'_>,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<TokenResponse> {
    let now = clock::now();
    let tx = conn.immediate()?;
    let code_hash = digest(code);
    let stored = relying_parties::code(&tx, &code_hash)?;
    // Another client's code is as unknown as a made-up one.
    let Some(stored) = stored.filter(|c| c.client_id == client_id) else {
        return Err(ServerError::InvalidGrant("unknown code".into()));
    };
    if stored.used_at.is_some() {
        if let Some(token_hash) = &stored.access_token_hash {
            relying_parties::revoke_access_token(&tx, token_hash, now)?;
        }
        tx.commit()?;
        tracing::warn!(
            client_id,
            "an authorization code was presented again; its access token is revoked"
        );
        return Err(ServerError::InvalidGrant(
            "the code was already used; the token it issued is revoked".into(),
        ));
    }
    if now >= stored.expires_at {
        return Err(ServerError::InvalidGrant("the code has expired".into()));
    }
    if stored.redirect_uri != redirect_uri {
        return Err(ServerError::InvalidGrant(
            "redirect_uri is not the one of the authorization request".into(),
        ));
    }
    if !pkce_matches(verifier, &stored.code_challenge) {
        return Err(ServerError::InvalidGrant(
            "code_verifier does not match the code_challenge".into(),
        ));
    }
    let grant = requests::grant(&tx, &stored.auth_req_id)?
        .filter(|g| g.client_id == client_id && g.status == Status::Approved)
        .ok_or_else(|| ServerError::InvalidGrant("unknown code".into()))?;
    let token = id_token(
        app,
        client_id,
        &grant,
        now,
        Some(CodeFlow {
            nonce: stored.nonce,
        }),
    )?;
    let token_hash = digest(&token.access_token);
    // The statement itself uses the code once, not only the read above.
    if !relying_parties::use_code(&tx, &code_hash, &token_hash, now)? {
        return Err(ServerError::InvalidGrant(
            "the code was already used".into(),
        ));
    }
    relying_parties::insert_access_token(
        &tx,
        &token_hash,
        client_id,
        &stored.auth_req_id,
        now + ACCESS_TOKEN_TTL_SECS,
    )?;
    // The code's single use guards this flow; the stamp keeps the CIBA token endpoint from
    // issuing for the same request (it stays as it was if that endpoint issued first).
    requests::mark_token_issued(&tx, &stored.auth_req_id, now)?;
    tx.commit()?;
    Ok(token)
}

/// The bearer token of a request (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The answer to a request without a live access token (RFC 6750 §3.1).
fn invalid_token() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "error": "invalid_token",
            "error_description": "the access token is missing, unknown, expired or revoked",
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"sleutel\", error=\"invalid_token\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Members of the ID token that are about the token, not the person: UserInfo leaves them out.
const NOT_USER_CLAIMS: [&str; 9] = [
    "iss",
    "aud",
    "iat",
    "exp",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "at_hash",
];

/// `GET` and `POST /oidc/userinfo`: `sub` and the claims the person consented to, for a live
/// access token.
pub(super) async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return invalid_token();
    };
    let claims = state
        .db(move |app, conn| {
            let now = clock::now();
            let tx = conn.immediate()?;
            let Some(found) = relying_parties::live_access_token(&tx, &digest(&token), now)? else {
                return Ok(None);
            };
            let Some(grant) = requests::grant(&tx, &found.auth_req_id)? else {
                return Ok(None);
            };
            let claims = identity_claims(app, &found.client_id, &grant, now)?;
            let mut value =
                serde_json::to_value(claims).map_err(|e| ServerError::Internal(e.to_string()))?;
            if let Some(object) = value.as_object_mut() {
                for name in NOT_USER_CLAIMS
                    .iter()
                    .chain(std::iter::once(&sleutel_protocol::approval::CLAIM))
                {
                    object.remove(*name);
                }
            }
            Ok(Some(value))
        })
        .await;
    match claims {
        Ok(Some(claims)) => {
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(None) => invalid_token(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verifier_matches_its_s256_challenge() {
        assert!(pkce_matches(
            "dBjftJeZ4CK-P1UcR4dgkKUqeQQfqX6J-bMd6oJ3cPw",
            "xhUrj-o0xMrn2237aduIA29_XbviWkR_2LYXt5Ke63c"
        ));
    }

    #[test]
    fn a_short_or_wrong_verifier_does_not_match() {
        let challenge = "xhUrj-o0xMrn2237aduIA29_XbviWkR_2LYXt5Ke63c";
        assert!(!pkce_matches(
            "dBjftJeZ4CK-P1UcR4dgkKUqeQQfqX6J-bMd6oJ3cPx",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
    }
}
