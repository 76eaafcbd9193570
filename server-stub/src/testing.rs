//! What tests read of a running server that no HTTP route serves, behind the `testing` feature
//! (the server's own integration tests and the harness's tests enable it): the evidence kept of
//! a request, an account's history, identity tokens minted with any binding and lifetime, and
//! the count of dropped pushes.
//! A deployed server is built without it, so none of this is part of its API.

use crate::store::{Conn, Sql, Store, requests};
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

/// The server's database opened by a test while no server runs on it, as the next start would
/// find it: the crash tests read it between killing a server and starting it again. Reads only;
/// each answer comes from one query, on a thread of its own (the PostgreSQL store blocks on a
/// runtime of its own, which an async test's thread must not do).
pub struct OpenedDatabase {
    store: Store,
}

impl std::fmt::Debug for OpenedDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedDatabase").finish_non_exhaustive()
    }
}

/// What [`OpenedDatabase::account`] finds of an account: the parts an enrollment's completion
/// writes together, and its wrong-code state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountParts {
    /// The account id.
    pub account_id: String,
    /// Devices of the account not revoked, each with its PIN key.
    pub active_devices: u32,
    /// Phone numbers verified for the account.
    pub phone_numbers: u32,
    /// Enrollments marked done for the account.
    pub done_enrollments: u32,
    /// Consecutive wrong codes on the account since the last right one.
    pub wrong_codes: u32,
    /// Whether the account is blocked.
    pub blocked: bool,
}

/// What [`OpenedDatabase::request`] finds of an action request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    /// The relying party's `auth_req_id`.
    pub auth_req_id: String,
    /// `pending`, `approved`, `declined` or `denied`.
    pub status: String,
    /// Whether the relying party collected its token.
    pub token_issued: bool,
}

/// What [`OpenedDatabase::enrollment`] finds of an enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentState {
    /// `identity`, `sms`, `keys`, `done` or `failed`.
    pub step: String,
    /// SMS codes sent for it.
    pub sms_sends: u32,
    /// The account it made or unblocked, once done.
    pub account_id: Option<String>,
}

impl OpenedDatabase {
    /// Opens `database` (checking and migrating it as a start would). Run it only while no
    /// server uses a SQLite file.
    pub fn open(database: &crate::Database) -> std::result::Result<Self, crate::StartError> {
        let database = database.clone();
        std::thread::spawn(move || Store::open(&database))
            .join()
            .unwrap_or_else(|_| {
                Err(crate::StartError::DatabaseUnusable {
                    path: "(the test's database)".into(),
                    detail: "opening it panicked".into(),
                })
            })
            .map(|store| Self { store })
    }

    fn rows(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<Option<String>>>> {
        let store = &self.store;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    store.run(|conn| {
                        let bound: Vec<&dyn crate::store::Param> = params
                            .iter()
                            .map(|p| p as &dyn crate::store::Param)
                            .collect();
                        Ok(conn.query_map(sql, &bound, |row| {
                            (0..row.len()).map(|index| row.shown(index)).collect()
                        })?)
                    })
                })
                .join()
                .unwrap_or_else(|_| Err(ServerError::Internal("a test hook panicked".into())))
        })
    }

    /// The account of the person with `national_register_number`, with its parts; `None` if
    /// there is none.
    pub fn account(&self, national_register_number: &str) -> Result<Option<AccountParts>> {
        let rows = self.rows(
            "SELECT a.id, \
                (SELECT count(*) FROM devices d WHERE d.account_id = a.id \
                    AND d.revoked_at IS NULL AND d.pin_jwk IS NOT NULL), \
                (SELECT count(*) FROM phone_numbers p WHERE p.account_id = a.id), \
                (SELECT count(*) FROM enrollments e WHERE e.account_id = a.id \
                    AND e.step = 'done'), \
                a.pin_failures, a.blocked_at \
             FROM accounts a WHERE a.national_register_number = ?1",
            &[national_register_number.into()],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let text = |index: usize| row.get(index).cloned().flatten().unwrap_or_default();
        let count = |index: usize| text(index).parse::<u32>().unwrap_or(0);
        Ok(Some(AccountParts {
            account_id: text(0),
            active_devices: count(1),
            phone_numbers: count(2),
            done_enrollments: count(3),
            wrong_codes: count(4),
            blocked: row.get(5).is_some_and(Option::is_some),
        }))
    }

    /// Accounts that lack a part an enrollment's completion writes with them (a device with a
    /// PIN key, a verified phone number, the enrollment marked done), and enrollments marked
    /// done without their account: what a completion cut short would leave. Each as a line
    /// that says what is missing. An account blocked or whose devices were all revoked since
    /// keeps its enrollment and number, so only those two are asked of every account.
    pub fn half_completed_enrollments(&self) -> Result<Vec<String>> {
        let mut found = Vec::new();
        for row in self.rows(
            "SELECT a.id FROM accounts a WHERE NOT EXISTS \
                (SELECT 1 FROM devices d WHERE d.account_id = a.id AND d.pin_jwk IS NOT NULL)",
            &[],
        )? {
            found.push(format!("account {:?} without a device", row.first()));
        }
        for row in self.rows(
            "SELECT a.id FROM accounts a WHERE NOT EXISTS \
                (SELECT 1 FROM phone_numbers p WHERE p.account_id = a.id)",
            &[],
        )? {
            found.push(format!("account {:?} without a phone number", row.first()));
        }
        for row in self.rows(
            "SELECT a.id FROM accounts a WHERE NOT EXISTS \
                (SELECT 1 FROM enrollments e WHERE e.account_id = a.id AND e.step = 'done')",
            &[],
        )? {
            found.push(format!(
                "account {:?} without a done enrollment",
                row.first()
            ));
        }
        for row in self.rows(
            "SELECT e.id FROM enrollments e WHERE e.step = 'done' AND NOT EXISTS \
                (SELECT 1 FROM accounts a WHERE a.id = e.account_id)",
            &[],
        )? {
            found.push(format!(
                "enrollment {:?} done without an account",
                row.first()
            ));
        }
        Ok(found)
    }

    /// The action request the phone knows as `request_id`; `None` for an unknown one.
    pub fn request(&self, request_id: &str) -> Result<Option<RequestState>> {
        let rows = self.rows(
            "SELECT auth_req_id, status, token_issued_at FROM action_requests WHERE id = ?1",
            &[request_id.into()],
        )?;
        Ok(rows.into_iter().next().map(|row| RequestState {
            auth_req_id: row.first().cloned().flatten().unwrap_or_default(),
            status: row.get(1).cloned().flatten().unwrap_or_default(),
            token_issued: row.get(2).is_some_and(Option::is_some),
        }))
    }

    /// The enrollment `enrollment_id`; `None` for an unknown (or purged) one.
    pub fn enrollment(&self, enrollment_id: &str) -> Result<Option<EnrollmentState>> {
        let rows = self.rows(
            "SELECT step, sms_sends, account_id FROM enrollments WHERE id = ?1",
            &[enrollment_id.into()],
        )?;
        Ok(rows.into_iter().next().map(|row| EnrollmentState {
            step: row.first().cloned().flatten().unwrap_or_default(),
            sms_sends: row
                .get(1)
                .cloned()
                .flatten()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            account_id: row.get(2).cloned().flatten(),
        }))
    }
}

impl Drop for OpenedDatabase {
    fn drop(&mut self) {
        // Off the caller's thread for the same reason as the queries.
        let store = &self.store;
        std::thread::scope(|scope| {
            let _ = scope.spawn(|| store.close()).join();
        });
    }
}
