//! Relying parties' state: browser sign-in sessions, authorization codes, access tokens and
//! used client-assertion ids. (The rate counts, which enrollment shares, are in
//! [`super::rate_counts`].)
//!
//! Secrets (session ids, codes, tokens, assertion ids) arrive here already hashed: the domain
//! ([`crate::oidc`]) hashes them, and these functions store and find the hashes. The single-use
//! steps are conditional statements that say whether they took effect: binding a session,
//! using a code, ending a session, recording an assertion id.

use super::{DbError, OptionalRow, Row, Sql, Tx};
use crate::params;

// --- Browser sessions ---------------------------------------------------------------------------

/// A browser session of a sign-in, as the sign-in pages read it.
pub(crate) struct BrowserSession {
    /// The SHA-256 of the session id the cookie holds, base64url.
    pub(crate) id_hash: String,
    /// The relying party.
    pub(crate) client_id: String,
    /// Where the browser goes back.
    pub(crate) redirect_uri: String,
    /// The scope asked.
    pub(crate) scope: String,
    /// The relying party's `state`, echoed back.
    pub(crate) state: Option<String>,
    /// The relying party's `nonce`, for the ID token.
    pub(crate) nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub(crate) code_challenge: String,
    /// The phone number the relying party suggested.
    pub(crate) login_hint: Option<String>,
    /// The ACR values asked, as given.
    pub(crate) acr_values: Option<String>,
    /// The `claims` parameter, as given.
    pub(crate) claims: Option<String>,
    /// The language asked (`ui_locales`), as a tag.
    pub(crate) lang: Option<String>,
    /// The CSRF token of the number form.
    pub(crate) csrf_token: String,
    /// The short code the wait page and the phone both show, once bound.
    pub(crate) binding_code: Option<String>,
    /// The request started for the session, once there is one.
    pub(crate) auth_req_id: Option<String>,
    /// Until when the wait page waits (Unix seconds), once bound.
    pub(crate) wait_until: Option<i64>,
    /// The public id of the session's sign-in links (none for a session older than the links).
    pub(crate) link_id: Option<String>,
    /// The secret of the links' MACs, base64url.
    pub(crate) link_secret: Option<String>,
    /// How the session was bound to an account: `number`, `qr` or `app`; none until it is.
    pub(crate) bound_by: Option<String>,
}

/// The columns [`session_row`] reads, in its order.
const SESSION_COLUMNS: &str = "id_hash, client_id, redirect_uri, scope, state, nonce,
    code_challenge, login_hint, acr_values, claims, ui_locale, csrf_token, binding_code,
    auth_req_id, wait_until, link_id, link_secret, bound_by";

/// A session from a row of [`SESSION_COLUMNS`].
fn session_row(row: &Row<'_>) -> Result<BrowserSession, DbError> {
    Ok(BrowserSession {
        id_hash: row.get(0)?,
        client_id: row.get(1)?,
        redirect_uri: row.get(2)?,
        scope: row.get(3)?,
        state: row.get(4)?,
        nonce: row.get(5)?,
        code_challenge: row.get(6)?,
        login_hint: row.get(7)?,
        acr_values: row.get(8)?,
        claims: row.get(9)?,
        lang: row.get(10)?,
        csrf_token: row.get(11)?,
        binding_code: row.get(12)?,
        auth_req_id: row.get(13)?,
        wait_until: row.get(14)?,
        link_id: row.get(15)?,
        link_secret: row.get(16)?,
        bound_by: row.get(17)?,
    })
}

/// The session whose id hashes to `id_hash`, if it is still live at `now`.
pub(crate) fn session_by_id_hash(
    conn: &impl Sql,
    id_hash: &str,
    now: i64,
) -> Result<Option<BrowserSession>, DbError> {
    conn.query_row(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM browser_sessions
             WHERE id_hash = ?1 AND expires_at > ?2"
        ),
        params![id_hash, now],
        session_row,
    )
    .optional()
}

/// The session whose sign-in links carry `link_id`, if it is still live at `now`.
pub(crate) fn session_by_link_id(
    conn: &impl Sql,
    link_id: &str,
    now: i64,
) -> Result<Option<BrowserSession>, DbError> {
    conn.query_row(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM browser_sessions
             WHERE link_id = ?1 AND expires_at > ?2"
        ),
        params![link_id, now],
        session_row,
    )
    .optional()
}

/// The session whose app-to-app return token hashes to `token_hash`, if it is still live at
/// `now`.
pub(crate) fn session_by_return_token(
    conn: &impl Sql,
    token_hash: &str,
    now: i64,
) -> Result<Option<BrowserSession>, DbError> {
    conn.query_row(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM browser_sessions
             WHERE return_token_hash = ?1 AND expires_at > ?2"
        ),
        params![token_hash, now],
        session_row,
    )
    .optional()
}

/// A new browser session, as the authorization endpoint opens it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewSession<'a> {
    /// The SHA-256 of the session id, base64url.
    pub(crate) id_hash: &'a str,
    /// The relying party.
    pub(crate) client_id: &'a str,
    /// Where the browser goes back.
    pub(crate) redirect_uri: &'a str,
    /// The scope asked.
    pub(crate) scope: &'a str,
    /// The relying party's `state`.
    pub(crate) state: Option<&'a str>,
    /// The relying party's `nonce`.
    pub(crate) nonce: Option<&'a str>,
    /// The PKCE S256 challenge.
    pub(crate) code_challenge: &'a str,
    /// The phone number the relying party suggested.
    pub(crate) login_hint: Option<&'a str>,
    /// The ACR values asked.
    pub(crate) acr_values: Option<&'a str>,
    /// The `claims` parameter.
    pub(crate) claims: Option<&'a str>,
    /// The language asked, as a tag.
    pub(crate) ui_locale: Option<&'a str>,
    /// The CSRF token of the number form.
    pub(crate) csrf_token: &'a str,
    /// When it opened (Unix seconds).
    pub(crate) created_at: i64,
    /// When it ends (Unix seconds).
    pub(crate) expires_at: i64,
    /// The public id of its sign-in links.
    pub(crate) link_id: &'a str,
    /// The secret of its links' MACs, base64url.
    pub(crate) link_secret: &'a str,
}

/// Stores a new browser session.
pub(crate) fn open_session(tx: &Tx<'_>, new: &NewSession<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO browser_sessions (id_hash, client_id, redirect_uri, scope, state,
             nonce, code_challenge, login_hint, acr_values, claims, ui_locale, csrf_token,
             created_at, expires_at, link_id, link_secret)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            new.id_hash,
            new.client_id,
            new.redirect_uri,
            new.scope,
            new.state,
            new.nonce,
            new.code_challenge,
            new.login_hint,
            new.acr_values,
            new.claims,
            new.ui_locale,
            new.csrf_token,
            new.created_at,
            new.expires_at,
            new.link_id,
            new.link_secret,
        ],
    )?;
    Ok(())
}

/// Binds the session `id_hash` by the number form, with the short code and the end of its wait,
/// if nothing bound it yet; `false` (nothing written) when something did.
pub(crate) fn bind_session_by_number(
    conn: &impl Sql,
    id_hash: &str,
    binding_code: &str,
    wait_until: i64,
    bound_by: &str,
) -> Result<bool, DbError> {
    let claimed = conn.execute(
        "UPDATE browser_sessions SET binding_code = ?2, wait_until = ?3, bound_by = ?4
         WHERE id_hash = ?1 AND bound_by IS NULL",
        params![id_hash, binding_code, wait_until, bound_by],
    )?;
    Ok(claimed > 0)
}

/// Records the request started for the session `id_hash` (`None`: none was).
pub(crate) fn set_session_request(
    conn: &impl Sql,
    id_hash: &str,
    auth_req_id: Option<&str>,
) -> Result<(), DbError> {
    conn.execute(
        "UPDATE browser_sessions SET auth_req_id = ?2 WHERE id_hash = ?1",
        params![id_hash, auth_req_id],
    )?;
    Ok(())
}

/// A session's binding by a sign-in link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkBinding<'a> {
    /// The session.
    pub(crate) id_hash: &'a str,
    /// The short code the wait page and the phone both show.
    pub(crate) binding_code: &'a str,
    /// The request started for it.
    pub(crate) auth_req_id: &'a str,
    /// Until when the wait page waits (Unix seconds).
    pub(crate) wait_until: i64,
    /// `qr` or `app`.
    pub(crate) bound_by: &'a str,
    /// For an app-to-app link, the SHA-256 of the one-time return token, base64url.
    pub(crate) return_token_hash: Option<&'a str>,
}

/// Binds a session by a sign-in link, if nothing bound it yet; `false` (nothing written) when
/// something did.
pub(crate) fn bind_session_by_link(
    tx: &Tx<'_>,
    binding: &LinkBinding<'_>,
) -> Result<bool, DbError> {
    let bound = tx.execute(
        "UPDATE browser_sessions SET binding_code = ?2, auth_req_id = ?3, wait_until = ?4,
             bound_by = ?5, return_token_hash = ?6
         WHERE id_hash = ?1 AND bound_by IS NULL AND binding_code IS NULL",
        params![
            binding.id_hash,
            binding.binding_code,
            binding.auth_req_id,
            binding.wait_until,
            binding.bound_by,
            binding.return_token_hash,
        ],
    )?;
    Ok(bound > 0)
}

/// Ends the session `id_hash`; `false` when it had ended already.
pub(crate) fn end_session(conn: &impl Sql, id_hash: &str) -> Result<bool, DbError> {
    let ended = conn.execute(
        "DELETE FROM browser_sessions WHERE id_hash = ?1",
        params![id_hash],
    )?;
    Ok(ended > 0)
}

/// The link id and link secret of a session (either may be missing on an old session).
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
pub(crate) struct SessionLink {
    /// The public id of the links.
    pub(crate) link_id: Option<String>,
    /// The secret of their MACs, base64url.
    pub(crate) link_secret: Option<String>,
}

/// The link of the session whose id hashes to `id_hash`, if it is still live at `now`.
#[cfg(feature = "testing")]
pub(crate) fn session_link(
    conn: &impl Sql,
    id_hash: &str,
    now: i64,
) -> Result<Option<SessionLink>, DbError> {
    conn.query_row(
        "SELECT link_id, link_secret FROM browser_sessions
         WHERE id_hash = ?1 AND expires_at > ?2",
        params![id_hash, now],
        |row| {
            Ok(SessionLink {
                link_id: row.get(0)?,
                link_secret: row.get(1)?,
            })
        },
    )
    .optional()
}

// --- Authorization codes and access tokens ---------------------------------------------------

/// A new authorization code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewCode<'a> {
    /// The SHA-256 of the code, base64url.
    pub(crate) code_hash: &'a str,
    /// The relying party it was issued to.
    pub(crate) client_id: &'a str,
    /// The redirect URI of the authorization request.
    pub(crate) redirect_uri: &'a str,
    /// The PKCE S256 challenge.
    pub(crate) code_challenge: &'a str,
    /// The `nonce` of the authorization request.
    pub(crate) nonce: Option<&'a str>,
    /// The approved request behind it.
    pub(crate) auth_req_id: &'a str,
    /// When it can no longer be exchanged (Unix seconds).
    pub(crate) expires_at: i64,
}

/// Stores a new authorization code.
pub(crate) fn insert_code(tx: &Tx<'_>, code: &NewCode<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri,
             code_challenge, nonce, auth_req_id, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            code.code_hash,
            code.client_id,
            code.redirect_uri,
            code.code_challenge,
            code.nonce,
            code.auth_req_id,
            code.expires_at,
        ],
    )?;
    Ok(())
}

/// An authorization code as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredCode {
    /// The relying party it was issued to.
    pub(crate) client_id: String,
    /// The redirect URI of the authorization request.
    pub(crate) redirect_uri: String,
    /// The PKCE S256 challenge.
    pub(crate) code_challenge: String,
    /// The `nonce` of the authorization request.
    pub(crate) nonce: Option<String>,
    /// The approved request behind it.
    pub(crate) auth_req_id: String,
    /// When it can no longer be exchanged (Unix seconds).
    pub(crate) expires_at: i64,
    /// When it was exchanged, if it was.
    pub(crate) used_at: Option<i64>,
    /// The SHA-256 of the access token it was exchanged for.
    pub(crate) access_token_hash: Option<String>,
}

/// The authorization code whose hash is `code_hash`, if any.
pub(crate) fn code(conn: &impl Sql, code_hash: &str) -> Result<Option<StoredCode>, DbError> {
    conn.query_row(
        "SELECT client_id, redirect_uri, code_challenge, nonce, auth_req_id, expires_at,
                used_at, access_token_hash
         FROM authorization_codes WHERE code_hash = ?1",
        params![code_hash],
        |row| {
            Ok(StoredCode {
                client_id: row.get(0)?,
                redirect_uri: row.get(1)?,
                code_challenge: row.get(2)?,
                nonce: row.get(3)?,
                auth_req_id: row.get(4)?,
                expires_at: row.get(5)?,
                used_at: row.get(6)?,
                access_token_hash: row.get(7)?,
            })
        },
    )
    .optional()
}

/// Marks the code `code_hash` used, for the access token `access_token_hash`, if it was not
/// used yet; `false` (nothing written) when it was.
pub(crate) fn use_code(
    tx: &Tx<'_>,
    code_hash: &str,
    access_token_hash: &str,
    now: i64,
) -> Result<bool, DbError> {
    let used = tx.execute(
        "UPDATE authorization_codes SET used_at = ?2, access_token_hash = ?3
         WHERE code_hash = ?1 AND used_at IS NULL",
        params![code_hash, now, access_token_hash],
    )?;
    Ok(used > 0)
}

/// Stores a new access token of `client_id` for the request `auth_req_id`.
pub(crate) fn insert_access_token(
    tx: &Tx<'_>,
    token_hash: &str,
    client_id: &str,
    auth_req_id: &str,
    expires_at: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO access_tokens (token_hash, client_id, auth_req_id, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, client_id, auth_req_id, expires_at],
    )?;
    Ok(())
}

/// Revokes the access token `token_hash` (one revoked already keeps its time).
pub(crate) fn revoke_access_token(tx: &Tx<'_>, token_hash: &str, now: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE access_tokens SET revoked_at = ?2
         WHERE token_hash = ?1 AND revoked_at IS NULL",
        params![token_hash, now],
    )?;
    Ok(())
}

/// What a live access token opens.
#[derive(Debug, Clone)]
pub(crate) struct TokenGrant {
    /// The relying party it was issued to.
    pub(crate) client_id: String,
    /// The approved request behind it.
    pub(crate) auth_req_id: String,
}

/// What the access token `token_hash` opens, if it is neither revoked nor expired at `now`.
pub(crate) fn live_access_token(
    conn: &impl Sql,
    token_hash: &str,
    now: i64,
) -> Result<Option<TokenGrant>, DbError> {
    conn.query_row(
        "SELECT client_id, auth_req_id FROM access_tokens
         WHERE token_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2",
        params![token_hash, now],
        |row| {
            Ok(TokenGrant {
                client_id: row.get(0)?,
                auth_req_id: row.get(1)?,
            })
        },
    )
    .optional()
}

// --- Client assertions ---------------------------------------------------------------------------

/// Records the use of a client assertion id (`jti_hash`) of `client_id`, kept until
/// `keep_until`; `false` (nothing written) when the client's same id is still kept at `now`.
/// The insert decides under the table's primary key, so of two concurrent uses exactly one
/// passes; a row kept past its assertion's life is taken over.
pub(crate) fn record_assertion_id(
    tx: &Tx<'_>,
    client_id: &str,
    jti_hash: &str,
    keep_until: i64,
    now: i64,
) -> Result<bool, DbError> {
    let inserted = tx.execute(
        "INSERT INTO client_assertion_jtis (client_id, jti_hash, expires_at)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (client_id, jti_hash) DO UPDATE SET expires_at = excluded.expires_at
             WHERE client_assertion_jtis.expires_at < ?4",
        params![client_id, jti_hash, keep_until, now],
    )?;
    Ok(inserted > 0)
}

// --- The purge ---------------------------------------------------------------------------------

/// Deletes the sign-in sessions, access tokens and kept client assertion ids expired at `now`,
/// and the authorization codes that expired at or before `codes_expired_by`; returns how many
/// rows went.
pub(crate) fn purge_expired(
    conn: &impl Sql,
    now: i64,
    codes_expired_by: i64,
) -> Result<usize, DbError> {
    let sessions = conn.execute(
        "DELETE FROM browser_sessions WHERE expires_at <= ?1",
        params![now],
    )?;
    let codes = conn.execute(
        "DELETE FROM authorization_codes WHERE expires_at <= ?1",
        params![codes_expired_by],
    )?;
    let tokens = conn.execute(
        "DELETE FROM access_tokens WHERE expires_at <= ?1",
        params![now],
    )?;
    let assertions = conn.execute(
        "DELETE FROM client_assertion_jtis WHERE expires_at < ?1",
        params![now],
    )?;
    Ok(sessions + codes + tokens + assertions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const NOW: i64 = 1_800_000_000;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("s.db")).unwrap();
        (dir, store)
    }

    fn new_session<'a>(id_hash: &'a str, link_id: &'a str) -> NewSession<'a> {
        NewSession {
            id_hash,
            client_id: "rp",
            redirect_uri: "https://rp.example/cb",
            scope: "openid",
            state: None,
            nonce: None,
            code_challenge: "c",
            login_hint: None,
            acr_values: None,
            claims: None,
            ui_locale: None,
            csrf_token: "csrf",
            created_at: NOW,
            expires_at: NOW + 900,
            link_id,
            link_secret: "secret",
        }
    }

    fn link_binding(id_hash: &str) -> LinkBinding<'_> {
        LinkBinding {
            id_hash,
            binding_code: "1234",
            auth_req_id: "req",
            wait_until: NOW + 300,
            bound_by: "qr",
            return_token_hash: None,
        }
    }

    #[test]
    fn a_code_is_used_once_and_keeps_its_first_token() {
        let (_dir, store) = store();
        let (first, second) = store
            .run(|conn| {
                let tx = conn.immediate()?;
                insert_code(
                    &tx,
                    &NewCode {
                        code_hash: "code",
                        client_id: "rp",
                        redirect_uri: "https://rp.example/cb",
                        code_challenge: "c",
                        nonce: None,
                        auth_req_id: "req",
                        expires_at: NOW + 60,
                    },
                )?;
                let first = use_code(&tx, "code", "token-1", NOW)?;
                let second = use_code(&tx, "code", "token-2", NOW + 1)?;
                tx.commit()?;
                Ok((first, second))
            })
            .unwrap();

        assert!(first);
        assert!(!second);
        let stored = store.run(|conn| Ok(code(conn, "code")?)).unwrap().unwrap();
        assert_eq!(stored.used_at, Some(NOW));
        assert_eq!(stored.access_token_hash.as_deref(), Some("token-1"));
    }

    #[test]
    fn a_session_bound_by_a_link_is_not_bound_again() {
        let (_dir, store) = store();
        let (first, second) = store
            .run(|conn| {
                let tx = conn.immediate()?;
                open_session(&tx, &new_session("session", "link"))?;
                let first = bind_session_by_link(&tx, &link_binding("session"))?;
                let second = bind_session_by_link(&tx, &link_binding("session"))?;
                tx.commit()?;
                Ok((first, second))
            })
            .unwrap();

        assert!(first);
        assert!(!second);
    }

    #[test]
    fn a_session_bound_by_the_number_form_is_not_bound_by_a_link() {
        let (_dir, store) = store();
        let (by_number, by_link) = store
            .run(|conn| {
                let tx = conn.immediate()?;
                open_session(&tx, &new_session("session", "link"))?;
                let by_number =
                    bind_session_by_number(&tx, "session", "5678", NOW + 300, "number")?;
                let by_link = bind_session_by_link(&tx, &link_binding("session"))?;
                tx.commit()?;
                Ok((by_number, by_link))
            })
            .unwrap();

        assert!(by_number);
        assert!(!by_link);
        let session = store
            .run(|conn| Ok(session_by_link_id(conn, "link", NOW)?))
            .unwrap()
            .unwrap();
        assert_eq!(session.binding_code.as_deref(), Some("5678"));
        assert_eq!(session.bound_by.as_deref(), Some("number"));
    }

    #[test]
    fn an_assertion_id_passes_once_while_it_is_kept() {
        let (_dir, store) = store();
        let outcomes = store
            .run(|conn| {
                let tx = conn.immediate()?;
                let first = record_assertion_id(&tx, "rp", "jti", NOW + 60, NOW)?;
                let replay = record_assertion_id(&tx, "rp", "jti", NOW + 60, NOW + 30)?;
                let other_client = record_assertion_id(&tx, "other", "jti", NOW + 60, NOW)?;
                let after_expiry = record_assertion_id(&tx, "rp", "jti", NOW + 200, NOW + 61)?;
                tx.commit()?;
                Ok([first, replay, other_client, after_expiry])
            })
            .unwrap();

        assert_eq!(outcomes, [true, false, true, true]);
    }
}
