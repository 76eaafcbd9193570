//! The local store: one SQLite file (`sleutel.db`) with accounts, the enrollment in progress,
//! pending requests and the history of decisions.
//!
//! No secret ever goes in here: salts and software keys live in the keystore. The file carries
//! a Sleutel `application_id` so a foreign SQLite file is recognised instead of being migrated.
//! Every change that touches more than one row runs in one transaction.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sleutel_protocol::identity::{Bank, IdentitySource};
use sleutel_protocol::jose::Jwks;

use crate::account::{AccountEvent, AccountEventKind, AccountStatus};
use crate::actions::HistoryEntry;
use crate::enrollment::EnrollmentStep;
use crate::error::CoreError;

/// Name of the database file inside the app's data directory.
pub(crate) const DB_FILE_NAME: &str = "sleutel.db";

/// `PRAGMA application_id` of a Sleutel store ("SLEU" in ASCII). SQLite reserves the header
/// field for this, so tools such as `file(1)` and our own open can tell the file apart.
pub(crate) const APPLICATION_ID: i32 = 0x534C_4555;

/// How long a write waits for another connection (the app and a background push handler may
/// open the same file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one migration per version. Never edit a released migration: add a new one.
const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE accounts (
        account_id   TEXT PRIMARY KEY NOT NULL,
        server_url   TEXT NOT NULL,
        issuer       TEXT NOT NULL,
        display_name TEXT NOT NULL,
        phone_number TEXT NOT NULL,
        device_alias TEXT NOT NULL,
        server_keys  TEXT NOT NULL,
        status       TEXT NOT NULL,
        created_at   INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE enrollment_in_progress (
        slot          INTEGER PRIMARY KEY NOT NULL CHECK (slot = 1),
        enrollment_id TEXT NOT NULL,
        nonce         TEXT NOT NULL,
        server_url    TEXT NOT NULL,
        phone_number  TEXT NOT NULL,
        bank          TEXT NOT NULL,
        device_alias  TEXT NOT NULL,
        handoff_url   TEXT NOT NULL,
        step          TEXT NOT NULL,
        display_name  TEXT,
        expires_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE pending_requests (
        request_id  TEXT PRIMARY KEY NOT NULL,
        account_id  TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
        jws         TEXT NOT NULL,
        issued_at   INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX pending_requests_account ON pending_requests (account_id);
    CREATE TABLE history (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        rp_name    TEXT NOT NULL,
        kind       TEXT NOT NULL,
        text       TEXT NOT NULL,
        decision   TEXT NOT NULL,
        reason     TEXT,
        method     TEXT,
        decided_at INTEGER NOT NULL
    ) STRICT;",
    ),
    // Version 2: enrollments through the eID and the counter (no bank, no handoff URL) and
    // unblocks that reuse an account's device key; the biometric key of an account; the
    // history of each account's life. The one-row enrollment table is rebuilt, since SQLite
    // cannot drop a NOT NULL constraint.
    M::up(
        "CREATE TABLE enrollment_in_progress_v2 (
        slot               INTEGER PRIMARY KEY NOT NULL CHECK (slot = 1),
        enrollment_id      TEXT NOT NULL,
        nonce              TEXT NOT NULL,
        server_url         TEXT NOT NULL,
        phone_number       TEXT NOT NULL,
        source             TEXT NOT NULL,
        bank               TEXT,
        device_alias       TEXT NOT NULL,
        handoff_url        TEXT,
        step               TEXT NOT NULL,
        display_name       TEXT,
        expires_at         INTEGER NOT NULL,
        unblock_account_id TEXT
    ) STRICT;
    INSERT INTO enrollment_in_progress_v2
        SELECT slot, enrollment_id, nonce, server_url, phone_number, 'bank', bank, device_alias,
               handoff_url, step, display_name, expires_at, NULL
        FROM enrollment_in_progress;
    DROP TABLE enrollment_in_progress;
    ALTER TABLE enrollment_in_progress_v2 RENAME TO enrollment_in_progress;
    ALTER TABLE accounts ADD COLUMN biometric_alias TEXT;
    CREATE TABLE account_events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL,
        event      TEXT NOT NULL,
        at         INTEGER NOT NULL
    ) STRICT;",
    ),
    // Version 3: the code change whose answer the phone has not had yet, known by the proof id
    // of its request, so that the phone can ask the server what became of it.
    M::up("ALTER TABLE accounts ADD COLUMN pending_code_change TEXT;"),
    // Version 4: the alias of a biometric key being registered: set before the registration is sent and
    // cleared with its outcome, so an app killed in between finds it and knows the server may
    // hold either key.
    M::up("ALTER TABLE accounts ADD COLUMN biometric_pending_alias TEXT;"),
];

/// An enrolled account as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AccountRow {
    pub(crate) account_id: String,
    pub(crate) server_url: String,
    pub(crate) issuer: String,
    pub(crate) display_name: String,
    pub(crate) phone_number: String,
    pub(crate) device_alias: String,
    /// The server's public keys, pinned at enrollment.
    pub(crate) server_keys: Jwks,
    pub(crate) status: AccountStatus,
    pub(crate) created_at: i64,
    /// The keystore alias of the biometric key, when biometrics are enabled.
    pub(crate) biometric_alias: Option<String>,
    /// The proof id of a code change sent without an answer yet: until the server says what
    /// became of it, no code is used for this account.
    pub(crate) pending_code_change: Option<String>,
    /// The alias of a biometric key whose registration was sent and whose outcome the phone
    /// never learnt (the app died): the server may hold it or the earlier key.
    pub(crate) biometric_pending_alias: Option<String>,
}

/// The one enrollment in progress, kept so the app can be killed during the bank handoff.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnrollmentRow {
    pub(crate) enrollment_id: String,
    pub(crate) nonce: String,
    pub(crate) server_url: String,
    pub(crate) phone_number: String,
    pub(crate) source: IdentitySource,
    pub(crate) bank: Option<Bank>,
    pub(crate) device_alias: String,
    pub(crate) handoff_url: Option<String>,
    pub(crate) step: EnrollmentStep,
    pub(crate) display_name: Option<String>,
    pub(crate) expires_at: i64,
    /// The account this enrollment unblocks, if it is an unblock: the enrollment's device key
    /// replaces the account's when it completes.
    pub(crate) unblock_account_id: Option<String>,
}

/// A verified action request waiting for the person, with the exact JWS it came in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingRow {
    pub(crate) request_id: String,
    pub(crate) account_id: String,
    pub(crate) jws: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
}

/// The SQLite store. One connection behind a mutex: every operation is short and never held
/// across an `await`.
pub(crate) struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, checks it is a Sleutel store and migrates
    /// it to the current schema.
    pub(crate) fn open(dir: &Path) -> Result<Self, CoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CoreError::storage(format!("cannot create {}: {e}", dir.display())))?;
        let mut conn = Connection::open(dir.join(DB_FILE_NAME))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        check_application_id(&conn)?;
        // WAL: readers are not blocked by a writer, and a crash mid-write cannot damage the file.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleted rows are overwritten with zeros, not left in free pages where a copy of the
        // file would still show them (an ended enrollment's id and nonce, a forgotten account).
        conn.pragma_update(None, "secure_delete", true)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|e| match e {
                rusqlite_migration::Error::RusqliteError { err, .. } => CoreError::from(err),
                rusqlite_migration::Error::MigrationDefinition(
                    rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
                ) => CoreError::corrupt("the store was written by a newer version of the app"),
                other => CoreError::storage(other),
            })?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, CoreError> {
        // A panic while holding the lock cannot leave a half-done change: SQLite rolls back an
        // unfinished transaction. So a poisoned lock is safe to use.
        Ok(self.conn.lock().unwrap_or_else(|p| p.into_inner()))
    }

    // ---- accounts ----

    pub(crate) fn accounts(&self) -> Result<Vec<AccountRow>, CoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, rowid"
        ))?;
        let rows = stmt.query_map([], account_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn account(&self, account_id: &str) -> Result<Option<AccountRow>, CoreError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?1"),
                [account_id],
                account_from_row,
            )
            .optional()?)
    }

    /// Sets the account's status and, when it changes to blocked or revoked, records that in
    /// the account's history, both or neither.
    pub(crate) fn set_account_status(
        &self,
        account_id: &str,
        status: AccountStatus,
    ) -> Result<(), CoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE accounts SET status = ?2 WHERE account_id = ?1 AND status != ?2",
            params![account_id, to_text(&status)],
        )?;
        let event = match status {
            AccountStatus::Blocked => Some(AccountEventKind::Blocked),
            AccountStatus::Revoked => Some(AccountEventKind::Revoked),
            AccountStatus::Active => None,
        };
        if changed > 0
            && let Some(event) = event
        {
            insert_event(&tx, account_id, event, crate::now())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks `alias` as the biometric key whose registration is about to be sent (or clears the
    /// mark): an app killed before the outcome is recorded finds it on its next start.
    pub(crate) fn set_biometric_pending(
        &self,
        account_id: &str,
        alias: Option<&str>,
    ) -> Result<(), CoreError> {
        self.lock()?.execute(
            "UPDATE accounts SET biometric_pending_alias = ?2 WHERE account_id = ?1",
            params![account_id, alias],
        )?;
        Ok(())
    }

    /// Sets (or clears) the account's biometric key alias, clears a pending registration's mark
    /// and records `event`, all or none.
    pub(crate) fn set_biometric_alias(
        &self,
        account_id: &str,
        alias: Option<&str>,
        event: AccountEventKind,
    ) -> Result<(), CoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE accounts SET biometric_alias = ?2, biometric_pending_alias = NULL \
             WHERE account_id = ?1",
            params![account_id, alias],
        )?;
        insert_event(&tx, account_id, event, crate::now())?;
        tx.commit()?;
        Ok(())
    }

    /// Records that code change `change_id` is on its way to the server. Written before the
    /// request is sent, and after the new salt is in the keystore: a phone killed at any point
    /// finds either no change (and an unused salt, which the next change replaces) or this one,
    /// which it asks the server about.
    pub(crate) fn start_code_change(
        &self,
        account_id: &str,
        change_id: &str,
    ) -> Result<(), CoreError> {
        let conn = self.lock()?;
        conn.execute(
            "UPDATE accounts SET pending_code_change = ?2 WHERE account_id = ?1",
            params![account_id, change_id],
        )?;
        Ok(())
    }

    /// Records the outcome of code change `change_id`: it is no longer pending and, when
    /// `applied`, the account's history says the code changed, both or neither. A change that
    /// is no longer the pending one changes nothing (an outcome recorded twice is recorded once).
    /// Returns whether it was the pending change.
    pub(crate) fn finish_code_change(
        &self,
        account_id: &str,
        change_id: &str,
        applied: bool,
    ) -> Result<bool, CoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let finished = tx.execute(
            "UPDATE accounts SET pending_code_change = NULL
             WHERE account_id = ?1 AND pending_code_change = ?2",
            params![account_id, change_id],
        )?;
        if finished > 0 && applied {
            insert_event(&tx, account_id, AccountEventKind::CodeChanged, crate::now())?;
        }
        tx.commit()?;
        Ok(finished > 0)
    }

    /// Removes an account and its pending requests, and records `event` (its history stays),
    /// all or nothing.
    pub(crate) fn delete_account(
        &self,
        account_id: &str,
        event: AccountEventKind,
    ) -> Result<(), CoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM pending_requests WHERE account_id = ?1",
            [account_id],
        )?;
        tx.execute("DELETE FROM accounts WHERE account_id = ?1", [account_id])?;
        insert_event(&tx, account_id, event, crate::now())?;
        tx.commit()?;
        Ok(())
    }

    /// Every account event on this phone, newest first.
    pub(crate) fn account_events(&self) -> Result<Vec<AccountEvent>, CoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT account_id, event, at FROM account_events ORDER BY at DESC, id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AccountEvent {
                account_id: r.get(0)?,
                event: from_text(r, 1)?,
                at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- enrollment in progress ----

    pub(crate) fn enrollment(&self) -> Result<Option<EnrollmentRow>, CoreError> {
        let conn = self.lock()?;
        Ok(enrollment(&conn)?)
    }

    /// Stores `row` as the enrollment in progress and returns the one it replaced, if any. Read
    /// and write are one write transaction, so two enrollments started at once (or by the app
    /// and a background process on the same file) cannot both miss the row the other replaces,
    /// whose device key would then be left behind.
    pub(crate) fn replace_enrollment(
        &self,
        row: &EnrollmentRow,
    ) -> Result<Option<EnrollmentRow>, CoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let previous = enrollment(&tx)?;
        tx.execute(
            "INSERT OR REPLACE INTO enrollment_in_progress
               (slot, enrollment_id, nonce, server_url, phone_number, source, bank, device_alias,
                handoff_url, step, display_name, expires_at, unblock_account_id)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                row.enrollment_id,
                row.nonce,
                row.server_url,
                row.phone_number,
                to_text(&row.source),
                row.bank.map(Bank::id),
                row.device_alias,
                row.handoff_url,
                to_text(&row.step),
                row.display_name,
                row.expires_at,
                row.unblock_account_id,
            ],
        )?;
        tx.commit()?;
        if previous.is_some() {
            forget_old_pages(&conn);
        }
        Ok(previous)
    }

    pub(crate) fn set_enrollment_step(
        &self,
        enrollment_id: &str,
        step: EnrollmentStep,
        display_name: Option<&str>,
    ) -> Result<(), CoreError> {
        self.lock()?.execute(
            "UPDATE enrollment_in_progress
             SET step = ?2, display_name = COALESCE(?3, display_name)
             WHERE enrollment_id = ?1",
            params![enrollment_id, to_text(&step), display_name],
        )?;
        Ok(())
    }

    /// Moves the enrollment's expiry to `expires_at` if that is later.
    pub(crate) fn extend_enrollment(
        &self,
        enrollment_id: &str,
        expires_at: i64,
    ) -> Result<(), CoreError> {
        self.lock()?.execute(
            "UPDATE enrollment_in_progress SET expires_at = max(expires_at, ?2)
             WHERE enrollment_id = ?1",
            params![enrollment_id, expires_at],
        )?;
        Ok(())
    }

    pub(crate) fn delete_enrollment(&self, enrollment_id: &str) -> Result<(), CoreError> {
        let conn = self.lock()?;
        conn.execute(
            "DELETE FROM enrollment_in_progress WHERE enrollment_id = ?1",
            [enrollment_id],
        )?;
        forget_old_pages(&conn);
        Ok(())
    }

    /// Stores the new account, ends the enrollment and records `event` in the account's history,
    /// all or nothing. Returns the account it replaced (a new activation of the same account on
    /// this phone), whose keys the caller must delete.
    pub(crate) fn finish_enrollment(
        &self,
        enrollment_id: &str,
        account: &AccountRow,
        event: AccountEventKind,
    ) -> Result<Option<AccountRow>, CoreError> {
        let keys = serde_json::to_string(&account.server_keys)
            .map_err(|e| CoreError::storage(format!("server keys: {e}")))?;
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let replaced = tx
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = ?1"),
                [&account.account_id],
                account_from_row,
            )
            .optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO accounts
               (account_id, server_url, issuer, display_name, phone_number, device_alias,
                server_keys, status, created_at, biometric_alias)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                account.account_id,
                account.server_url,
                account.issuer,
                account.display_name,
                account.phone_number,
                account.device_alias,
                keys,
                to_text(&account.status),
                account.created_at,
                account.biometric_alias,
            ],
        )?;
        tx.execute(
            "DELETE FROM enrollment_in_progress WHERE enrollment_id = ?1",
            [enrollment_id],
        )?;
        insert_event(&tx, &account.account_id, event, crate::now())?;
        tx.commit()?;
        forget_old_pages(&conn);
        Ok(replaced)
    }

    // ---- pending requests ----

    /// Stores a verified request; storing one that is already there changes nothing, so a push
    /// delivered twice shows once.
    pub(crate) fn insert_pending(&self, row: &PendingRow) -> Result<(), CoreError> {
        let conn = self.lock()?;
        insert_pending(&conn, row)?;
        Ok(())
    }

    pub(crate) fn pending(&self, request_id: &str) -> Result<Option<PendingRow>, CoreError> {
        let conn = self.lock()?;
        Ok(conn
            .query_row(
                &format!("SELECT {PENDING_COLUMNS} FROM pending_requests WHERE request_id = ?1"),
                [request_id],
                pending_from_row,
            )
            .optional()?)
    }

    /// Removes expired requests and returns the others, oldest first.
    pub(crate) fn unexpired_pending(&self, now: i64) -> Result<Vec<PendingRow>, CoreError> {
        let conn = self.lock()?;
        conn.execute("DELETE FROM pending_requests WHERE expires_at <= ?1", [now])?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {PENDING_COLUMNS} FROM pending_requests ORDER BY issued_at, request_id"
        ))?;
        let rows = stmt.query_map([], pending_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn delete_pending(&self, request_id: &str) -> Result<(), CoreError> {
        self.lock()?.execute(
            "DELETE FROM pending_requests WHERE request_id = ?1",
            [request_id],
        )?;
        Ok(())
    }

    /// Makes the account's pending requests exactly `rows` (what the server still lists).
    pub(crate) fn sync_pending(
        &self,
        account_id: &str,
        rows: &[PendingRow],
    ) -> Result<(), CoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let local: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT request_id FROM pending_requests WHERE account_id = ?1")?;
            stmt.query_map([account_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        for id in local {
            if !rows.iter().any(|r| r.request_id == id) {
                tx.execute("DELETE FROM pending_requests WHERE request_id = ?1", [&id])?;
            }
        }
        for row in rows {
            insert_pending(&tx, row)?;
        }
        tx.commit()?;
        Ok(())
    }

    // ---- history ----

    /// Ends a pending request with a decision: the request leaves the pending list and the
    /// decision enters the history, both or neither.
    pub(crate) fn record_decision(&self, entry: &HistoryEntry) -> Result<(), CoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM pending_requests WHERE request_id = ?1",
            [&entry.request_id],
        )?;
        tx.execute(
            "INSERT INTO history
               (request_id, account_id, rp_name, kind, text, decision, reason, method, decided_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.request_id,
                entry.account_id,
                entry.rp_name,
                to_text(&entry.kind),
                entry.text,
                to_text(&entry.decision),
                entry.reason.as_ref().map(to_text),
                entry.method.as_ref().map(to_text),
                entry.decided_at,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every decision, newest first.
    pub(crate) fn history(&self) -> Result<Vec<HistoryEntry>, CoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT request_id, account_id, rp_name, kind, text, decision, reason, method,
                    decided_at
             FROM history ORDER BY decided_at DESC, id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(HistoryEntry {
                request_id: r.get(0)?,
                account_id: r.get(1)?,
                rp_name: r.get(2)?,
                kind: from_text(r, 3)?,
                text: r.get(4)?,
                decision: from_text(r, 5)?,
                reason: optional_from_text(r, 6)?,
                method: optional_from_text(r, 7)?,
                decided_at: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Copies the write-ahead log into the database file and truncates it. `secure_delete` zeroes
/// deleted rows in the database file, but the log still holds the pages as they were before
/// the delete until a checkpoint: after deleting an enrollment (its id and nonce) nothing of it
/// should stay on disk. Best effort: a reader holding the log open only delays it to the next
/// checkpoint, which SQLite runs by itself.
fn forget_old_pages(conn: &Connection) {
    let checkpoint = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    match checkpoint {
        Ok(0) => {}
        Ok(_) => debug!("the log checkpoint was held up by a reader"),
        Err(e) => warn!("the log checkpoint failed: {e}"),
    }
}

/// Refuses a file that is not SQLite, or is another application's database. A brand-new (empty)
/// file is claimed for Sleutel.
fn check_application_id(conn: &Connection) -> Result<(), CoreError> {
    // On a file that is not SQLite this is the first read, and fails with SQLITE_NOTADB.
    let id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if id == APPLICATION_ID {
        return Ok(());
    }
    if id != 0 {
        return Err(CoreError::corrupt(format!(
            "application_id {id:#x} is not Sleutel's"
        )));
    }
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    if objects > 0 {
        return Err(CoreError::corrupt(
            "an SQLite database of another application",
        ));
    }
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}

const ACCOUNT_COLUMNS: &str = "account_id, server_url, issuer, display_name, phone_number, \
                               device_alias, server_keys, status, created_at, biometric_alias, \
                               pending_code_change, biometric_pending_alias";

fn insert_event(
    conn: &Connection,
    account_id: &str,
    event: AccountEventKind,
    at: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO account_events (account_id, event, at) VALUES (?1, ?2, ?3)",
        params![account_id, to_text(&event), at],
    )
}

fn account_from_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    let keys: String = r.get(6)?;
    Ok(AccountRow {
        account_id: r.get(0)?,
        server_url: r.get(1)?,
        issuer: r.get(2)?,
        display_name: r.get(3)?,
        phone_number: r.get(4)?,
        device_alias: r.get(5)?,
        server_keys: serde_json::from_str(&keys).map_err(|e| conversion(6, e))?,
        status: from_text(r, 7)?,
        created_at: r.get(8)?,
        biometric_alias: r.get(9)?,
        pending_code_change: r.get(10)?,
        biometric_pending_alias: r.get(11)?,
    })
}

const ENROLLMENT_COLUMNS: &str = "enrollment_id, nonce, server_url, phone_number, bank, \
                                  device_alias, handoff_url, step, display_name, expires_at, \
                                  source, unblock_account_id";

/// The enrollment in progress, read with `conn` (the store's connection or a transaction).
fn enrollment(conn: &Connection) -> rusqlite::Result<Option<EnrollmentRow>> {
    conn.query_row(
        &format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollment_in_progress WHERE slot = 1"),
        [],
        enrollment_from_row,
    )
    .optional()
}

fn enrollment_from_row(r: &Row<'_>) -> rusqlite::Result<EnrollmentRow> {
    let bank: Option<String> = r.get(4)?;
    Ok(EnrollmentRow {
        enrollment_id: r.get(0)?,
        nonce: r.get(1)?,
        server_url: r.get(2)?,
        phone_number: r.get(3)?,
        bank: bank
            .map(|b| Bank::from_id(&b).map_err(|e| conversion(4, e)))
            .transpose()?,
        device_alias: r.get(5)?,
        handoff_url: r.get(6)?,
        step: from_text(r, 7)?,
        display_name: r.get(8)?,
        expires_at: r.get(9)?,
        source: from_text(r, 10)?,
        unblock_account_id: r.get(11)?,
    })
}

const PENDING_COLUMNS: &str = "request_id, account_id, jws, issued_at, expires_at";

fn pending_from_row(r: &Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok(PendingRow {
        request_id: r.get(0)?,
        account_id: r.get(1)?,
        jws: r.get(2)?,
        issued_at: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

fn insert_pending(conn: &Connection, row: &PendingRow) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "INSERT OR IGNORE INTO pending_requests ({PENDING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
        ),
        params![
            row.request_id,
            row.account_id,
            row.jws,
            row.issued_at,
            row.expires_at,
        ],
    )
}

/// The wire name of an enum (`login`, `not_me`, ...), so stored values read like the protocol.
fn to_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn from_text<T: DeserializeOwned>(r: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    serde_json::from_value(serde_json::Value::String(text)).map_err(|e| conversion(idx, e))
}

fn optional_from_text<T: DeserializeOwned>(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = r.get(idx)?;
    text.map(|t| {
        serde_json::from_value(serde_json::Value::String(t)).map_err(|e| conversion(idx, e))
    })
    .transpose()
}

fn conversion(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sleutel_protocol::action::ActionKind;
    use sleutel_protocol::response::{Decision, DeclineReason, UvMethod};

    fn account(id: &str) -> AccountRow {
        AccountRow {
            account_id: id.into(),
            server_url: "http://127.0.0.1:1".into(),
            issuer: "http://127.0.0.1:1".into(),
            display_name: "Jan Peeters".into(),
            phone_number: "+32470123456".into(),
            device_alias: format!("device-{id}"),
            server_keys: Jwks { keys: vec![] },
            status: AccountStatus::Active,
            created_at: 1,
            biometric_alias: None,
            pending_code_change: None,
            biometric_pending_alias: None,
        }
    }

    fn enrollment(id: &str) -> EnrollmentRow {
        EnrollmentRow {
            enrollment_id: id.into(),
            nonce: "n".into(),
            server_url: "http://127.0.0.1:1".into(),
            phone_number: "+32470123456".into(),
            source: IdentitySource::Bank,
            bank: Some(Bank::Kbc),
            device_alias: format!("device-{id}"),
            handoff_url: Some("http://127.0.0.1:1/sim/bank/kbc/authorize".into()),
            step: EnrollmentStep::BankHandoff,
            display_name: None,
            expires_at: 100,
            unblock_account_id: None,
        }
    }

    fn pending(id: &str, account: &str, exp: i64) -> PendingRow {
        PendingRow {
            request_id: id.into(),
            account_id: account.into(),
            jws: format!("jws-{id}"),
            issued_at: 10,
            expires_at: exp,
        }
    }

    /// Whether `needle` appears anywhere in the store's files on disk (database and log).
    fn on_disk(dir: &Path, needle: &str) -> bool {
        ["", "-wal"].iter().any(|suffix| {
            let path = dir.join(format!("{DB_FILE_NAME}{suffix}"));
            std::fs::read(path).is_ok_and(|bytes| {
                bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            })
        })
    }

    fn with_secret_nonce(id: &str) -> EnrollmentRow {
        EnrollmentRow {
            nonce: format!("NONCE-{id}-0123456789abcdef"),
            ..enrollment(id)
        }
    }

    #[test]
    fn a_finished_enrollment_leaves_no_id_or_nonce_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let row = with_secret_nonce("enrollment-finished-x");
        store.replace_enrollment(&row).unwrap();
        assert!(
            on_disk(dir.path(), &row.nonce),
            "the test must see the nonce first"
        );

        store
            .finish_enrollment(
                &row.enrollment_id,
                &account("a1"),
                AccountEventKind::Activated,
            )
            .unwrap();

        assert!(!on_disk(dir.path(), &row.nonce));
        assert!(!on_disk(dir.path(), &row.enrollment_id));
    }

    #[test]
    fn an_abandoned_or_replaced_enrollment_leaves_no_nonce_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = with_secret_nonce("enrollment-replaced-x");
        let second = with_secret_nonce("enrollment-abandoned-y");
        store.replace_enrollment(&first).unwrap();

        store.replace_enrollment(&second).unwrap();
        assert!(!on_disk(dir.path(), &first.nonce));

        store.delete_enrollment(&second.enrollment_id).unwrap();
        assert!(!on_disk(dir.path(), &second.nonce));
    }

    #[test]
    fn migrations_are_valid() {
        assert!(Migrations::from_slice(MIGRATIONS).validate().is_ok());
    }

    #[test]
    fn fresh_store_is_created_and_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("nested")).unwrap();
        assert!(store.accounts().unwrap().is_empty());
        let conn = Connection::open(dir.path().join("nested").join(DB_FILE_NAME)).unwrap();
        let id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn reopening_keeps_accounts_enrollment_and_history() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .finish_enrollment("e0", &account("a1"), AccountEventKind::Activated)
                .unwrap();
            store.replace_enrollment(&enrollment("e1")).unwrap();
            store.insert_pending(&pending("r1", "a1", 50)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.accounts().unwrap(), vec![account("a1")]);
        assert_eq!(store.enrollment().unwrap(), Some(enrollment("e1")));
        assert_eq!(store.pending("r1").unwrap(), Some(pending("r1", "a1", 50)));
    }

    #[test]
    fn version_2_keeps_a_bank_enrollment_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            Migrations::from_slice(&MIGRATIONS[..1])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO enrollment_in_progress VALUES (1, 'e1', 'n', 'http://127.0.0.1:1',
                     '+32470123456', 'kbc', 'device-e1',
                     'http://127.0.0.1:1/sim/bank/kbc/authorize', 'bank_handoff', NULL, 100);",
            )
            .unwrap();
        }

        let store = Store::open(dir.path()).unwrap();

        assert_eq!(store.enrollment().unwrap(), Some(enrollment("e1")));
        assert!(store.account_events().unwrap().is_empty());
    }

    #[test]
    fn garbage_file_is_a_corrupt_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE_NAME), [0x5a; 4096]).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(CoreError::CorruptStore { .. })
        ));
    }

    #[test]
    fn foreign_sqlite_database_is_a_corrupt_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
            conn.execute_batch("CREATE TABLE notes (body TEXT);")
                .unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(CoreError::CorruptStore { .. })
        ));
    }

    #[test]
    fn database_of_another_application_id_is_a_corrupt_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
            conn.pragma_update(None, "application_id", 42).unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(CoreError::CorruptStore { .. })
        ));
    }

    #[test]
    fn store_from_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        {
            let conn = Connection::open(dir.path().join(DB_FILE_NAME)).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(CoreError::CorruptStore { .. })
        ));
    }

    #[test]
    fn finishing_an_enrollment_stores_the_account_and_ends_the_enrollment() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.replace_enrollment(&enrollment("e1")).unwrap();
        store
            .finish_enrollment("e1", &account("a1"), AccountEventKind::Activated)
            .unwrap();
        assert_eq!(store.enrollment().unwrap(), None);
        assert_eq!(store.account("a1").unwrap(), Some(account("a1")));
    }

    #[test]
    fn finishing_an_enrollment_returns_the_account_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .finish_enrollment("e1", &account("a1"), AccountEventKind::Activated)
                .unwrap(),
            None
        );
        let mut again = account("a1");
        again.device_alias = "device-new".into();
        assert_eq!(
            store
                .finish_enrollment("e2", &again, AccountEventKind::Activated)
                .unwrap(),
            Some(account("a1"))
        );
        assert_eq!(store.accounts().unwrap(), vec![again]);
    }

    #[test]
    fn a_new_enrollment_replaces_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.replace_enrollment(&enrollment("e1")).unwrap(), None);
        let replaced = store.replace_enrollment(&enrollment("e2")).unwrap();
        assert_eq!(replaced.map(|r| r.enrollment_id), Some("e1".into()));
        store
            .set_enrollment_step("e2", EnrollmentStep::ChooseCode, Some("Jan"))
            .unwrap();
        let row = store.enrollment().unwrap().unwrap();
        assert_eq!(row.step, EnrollmentStep::ChooseCode);
        assert_eq!(row.display_name.as_deref(), Some("Jan"));
    }

    #[test]
    fn pending_requests_are_idempotent_expire_and_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .finish_enrollment("e", &account("a1"), AccountEventKind::Activated)
            .unwrap();
        store.insert_pending(&pending("r1", "a1", 50)).unwrap();
        store.insert_pending(&pending("r1", "a1", 50)).unwrap();
        store.insert_pending(&pending("r2", "a1", 20)).unwrap();
        assert_eq!(store.unexpired_pending(10).unwrap().len(), 2);
        assert_eq!(
            store.unexpired_pending(20).unwrap(),
            vec![pending("r1", "a1", 50)]
        );
        assert_eq!(store.pending("r2").unwrap(), None);

        store
            .sync_pending("a1", &[pending("r3", "a1", 60)])
            .unwrap();
        assert_eq!(
            store.unexpired_pending(12).unwrap(),
            vec![pending("r3", "a1", 60)]
        );
    }

    #[test]
    fn a_decision_moves_the_request_to_history_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .finish_enrollment("e", &account("a1"), AccountEventKind::Activated)
            .unwrap();
        store.insert_pending(&pending("r1", "a1", 50)).unwrap();
        let entry = |id: &str, at: i64, decision| HistoryEntry {
            request_id: id.into(),
            account_id: "a1".into(),
            rp_name: "Online overheid".into(),
            kind: ActionKind::Login,
            text: "Ik log in".into(),
            decision,
            reason: (decision == Decision::Decline).then_some(DeclineReason::NotMe),
            method: (decision == Decision::Approve).then_some(UvMethod::Pin),
            decided_at: at,
        };
        store
            .record_decision(&entry("r1", 20, Decision::Approve))
            .unwrap();
        store
            .record_decision(&entry("r2", 30, Decision::Decline))
            .unwrap();
        assert_eq!(store.pending("r1").unwrap(), None);
        assert_eq!(
            store.history().unwrap(),
            vec![
                entry("r2", 30, Decision::Decline),
                entry("r1", 20, Decision::Approve)
            ]
        );
    }

    #[test]
    fn account_status_changes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .finish_enrollment("e", &account("a1"), AccountEventKind::Activated)
            .unwrap();
        store
            .set_account_status("a1", AccountStatus::Blocked)
            .unwrap();
        assert_eq!(
            store.account("a1").unwrap().unwrap().status,
            AccountStatus::Blocked
        );
    }
}
