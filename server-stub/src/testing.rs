//! What tests read of a running server that no HTTP route serves, behind the `testing` feature
//! (the server's own integration tests and the harness's tests enable it): the evidence kept of
//! a request, an account's history, identity tokens minted with any binding and lifetime, and
//! the count of dropped pushes.
//! A deployed server is built without it, so none of this is part of its API.

use crate::store::{Conn, Sql, requests};
use sleutel_protocol::identity::Bank;
use sleutel_protocol::jose::Jwk;

use crate::error::{Result, ServerError};
use crate::server::RunningServer;
use crate::sim;

impl RunningServer {
    /// Runs `work` with the server's database on a thread of its own: a test calls these hooks
    /// from its async runtime, which may be the one serving the server (and its connections),
    /// and must not block it.
    fn work<T: Send>(&self, work: impl Fn(&mut Conn<'_>) -> Result<T> + Sync) -> Result<T> {
        let store = &self.state.store;
        std::thread::scope(|scope| {
            scope
                .spawn(|| store.run(&work))
                .join()
                .unwrap_or_else(|_| Err(ServerError::Internal("a test hook panicked".into())))
        })
    }

    /// The history of `account_id` as `(event, detail, at)`, oldest first.
    pub fn account_events(&self, account_id: &str) -> Result<Vec<(String, String, i64)>> {
        self.work(|conn| {
            Ok(requests::history_of_account(conn, account_id)?
                .into_iter()
                .map(|e| (e.event, e.detail, e.at))
                .collect())
        })
    }

    /// The QR link that the sign-in session whose cookie value is `session_id` shows
    /// `steps_back` time steps before now (0: the code on the screen now); `None` for no such
    /// live session. Tests cannot read the QR image; this is the link it encodes.
    pub fn sign_in_qr_link(&self, session_id: &str, steps_back: i64) -> Result<Option<String>> {
        let url = self.url();
        self.work(|conn| crate::oidc::qr_link_of_session(conn, &url, session_id, steps_back))
    }

    /// Holds the database for `duration` (blocking the calling thread), as a long purge or
    /// another process's lock would: SQLite's one connection, or every connection of the
    /// PostgreSQL pool.
    pub fn hold_database(&self, duration: std::time::Duration) -> Result<()> {
        self.state.store.hold(duration)
    }

    /// Whether the server stores in PostgreSQL (else in its SQLite file).
    pub fn uses_postgres(&self) -> bool {
        self.state.store.is_postgres()
    }

    /// Runs `sql` (portable: `?N` parameters) against the server's database, whichever it is,
    /// and returns every row's columns as text (`None` for NULL; integers in decimal, bytes in
    /// hex). For tests that look at or set up what no route shows.
    pub fn sql(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<Option<String>>>> {
        self.work(|conn| {
            let bound: Vec<&dyn crate::store::Param> = params
                .iter()
                .map(|p| p as &dyn crate::store::Param)
                .collect();
            Ok(conn.query_map(sql, &bound, |row| {
                (0..row.len()).map(|index| row.shown(index)).collect()
            })?)
        })
    }

    /// Runs the statement `sql` (portable: `?N` parameters) against the server's database and
    /// returns the number of rows it changed. For tests that set up what no route can (a time
    /// moved into the past).
    pub fn sql_execute(&self, sql: &str, params: &[SqlValue]) -> Result<usize> {
        self.work(|conn| {
            let bound: Vec<&dyn crate::store::Param> = params
                .iter()
                .map(|p| p as &dyn crate::store::Param)
                .collect();
            Ok(conn.execute(sql, &bound)?)
        })
    }

    /// Pushes dropped since start because the push queue was full (or its worker gone).
    pub fn dropped_pushes(&self) -> u64 {
        self.state.push.dropped()
    }

    /// The evidence the server keeps of one request (the signed action request and the phone's
    /// signed answer), found by `lookup`; `None` once purged or for an unknown id.
    pub fn request_evidence(&self, lookup: RequestLookup<'_>) -> Result<Option<RequestEvidence>> {
        self.work(|conn| Ok(requests::evidence(conn, lookup)?))
    }

    /// An identity token signed by `bank`'s trusted key for an existing simulated citizen, with
    /// the given binding and lifetime (which may be in the past, or wrong, on purpose).
    pub fn mint_identity_token(
        &self,
        bank: Bank,
        citizen_id: &str,
        enrollment_id: &str,
        nonce: &str,
        iat: i64,
        exp: i64,
    ) -> Result<String> {
        let app = &self.state;
        self.work(|conn| {
            sim::bank::mint_identity_token(
                app,
                conn,
                bank,
                citizen_id,
                enrollment_id,
                nonce,
                iat,
                exp,
            )
        })
    }
}

/// How to find a request's evidence: by the relying party's `auth_req_id`, the request id the
/// phone saw, or the `request_hash` an ID token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLookup<'a> {
    /// The `auth_req_id` the backchannel authentication endpoint gave the relying party.
    AuthReqId(&'a str),
    /// The request id (`jti` of the action request, `request_id` of the response).
    RequestId(&'a str),
    /// The `request_hash` of an ID token's `sleutel_action` (requests made since schema v8).
    RequestHash(&'a str),
}

/// What the server keeps of one request to settle a dispute: the action request it signed and
/// the phone showed, and the phone's signed answer ([`RunningServer::request_evidence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEvidence {
    /// The request id.
    pub request_id: String,
    /// The relying party's `auth_req_id`.
    pub auth_req_id: String,
    /// The relying party's client id.
    pub client_id: String,
    /// The account the request was for.
    pub account_id: String,
    /// `pending`, `approved`, `declined` or `denied` (closed by the server).
    pub status: String,
    /// Why the person declined (`cancelled`, `not_me`, `wrong_number`).
    pub decline_reason: Option<String>,
    /// When the request was made (Unix seconds).
    pub created_at: i64,
    /// When it was answered or closed (Unix seconds).
    pub answered_at: Option<i64>,
    /// The action request: the compact JWS the server signed and the phone verified and showed.
    pub request_jws: String,
    /// base64url SHA-256 of `request_jws`: the `request_hash` of the response and the ID token.
    pub request_hash: String,
    /// The phone's answer exactly as the server received and verified it (general-JSON JWS,
    /// device signature first, then the code's or biometric key's for an approval); `None`
    /// while pending, for a request the server closed or that expired, and for a wrong code,
    /// which is no answer.
    pub response_jws: Option<String>,
    /// The device key the response's first signature verified with.
    pub device_key: Option<Jwk>,
    /// The key the response's second signature (the code's, or the biometric key's, as its
    /// `kid` says) verified with, for an approval. Kept here because a code change or a new
    /// biometric key replaces it on the device, and the evidence must still verify after.
    pub user_verification_key: Option<Jwk>,
}

/// A parameter of [`RunningServer::sql`].
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<&String> for SqlValue {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        Self::Integer(value)
    }
}

impl crate::store::Param for SqlValue {
    fn value(&self) -> crate::store::ValueRef<'_> {
        use crate::store::ValueRef;
        match self {
            Self::Null => ValueRef::Null,
            Self::Integer(i) => ValueRef::Integer(*i),
            Self::Text(t) => ValueRef::Text(t),
            Self::Bytes(b) => ValueRef::Blob(b),
        }
    }
}
