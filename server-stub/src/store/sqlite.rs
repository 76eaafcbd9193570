//! The SQLite store: opening (with a clear error for a corrupt or foreign file), the versioned
//! schema, the one connection every request uses in turn, and running statements on it.
//!
//! One connection, not a pool: SQLite lets one writer in at a time, and nearly every request
//! here writes, so several connections only queued on the file lock, slept in SQLite's busy
//! handler, and threw away each other's page caches with every commit. Requests now queue on a
//! mutex instead, and the connection keeps its statements prepared and its pages cached. The
//! connection still waits up to [`BUSY_TIMEOUT`] for another process's lock (a backup tool);
//! read-modify-write work runs in a `BEGIN IMMEDIATE` transaction ([`immediate`]) so that a
//! decision is never taken on a read another writer changed. A request's database work runs on
//! the async worker serving it when the connection is free, and waits for it on a blocking
//! thread when it is not, so no async worker ever waits for the connection (decision 0027).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::ValueRef as SqliteValue;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use rusqlite_migration::{M, Migrations};

use super::DbError;
use super::value::{Params, Row, RowInner, ValueRef};
use crate::error::{Result, ServerError, StartError};

/// How long a connection waits for another writer before giving up. Transactions here are
/// short (milliseconds); seconds of waiting means overload, and an error is the right answer.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pages the connection keeps in memory (`PRAGMA cache_size`, in KiB when negative): enough
/// for the whole working set of a busy server, so a transaction reads its pages from memory.
pub(crate) const PAGE_CACHE_KIB: i64 = 64 * 1024;

/// `PRAGMA application_id` of a Sleutel server database ("SLSV"): tells our file from another
/// program's SQLite file.
pub(crate) const APPLICATION_ID: i32 = 0x534C_5356;

/// The schema, one entry per version. Never edit a released entry: add a new one.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("schema/sqlite/v1.sql")),
    M::up(include_str!("schema/sqlite/v2.sql")),
    M::up(include_str!("schema/sqlite/v3.sql")),
    M::up(include_str!("schema/sqlite/v4.sql")),
    M::up(include_str!("schema/sqlite/v5.sql")),
    M::up(include_str!("schema/sqlite/v6.sql")),
    M::up(include_str!("schema/sqlite/v7.sql")),
    M::up(include_str!("schema/sqlite/v8.sql")),
    M::up(include_str!("schema/sqlite/v9.sql")),
    M::up(include_str!("schema/sqlite/v10.sql")),
    M::up(include_str!("schema/sqlite/v11.sql")),
    M::up(include_str!("schema/sqlite/v12.sql")),
    M::up(include_str!("schema/sqlite/v13.sql")),
    M::up(include_str!("schema/sqlite/v14.sql")),
    M::up(include_str!("schema/sqlite/v15.sql")),
    M::up(include_str!("schema/sqlite/v16.sql")),
    M::up(include_str!("schema/sqlite/v17.sql")),
    M::up(include_str!("schema/sqlite/v18.sql")),
    M::up(include_str!("schema/sqlite/v19.sql")),
    M::up(include_str!("schema/sqlite/v20.sql")),
];

/// The database: its path and its connection (`None` once closed).
#[derive(Debug)]
pub(crate) struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
    /// How many long jobs ([`SqliteStore::with_conn_long`]) wait for or hold the connection.
    long_work: AtomicUsize,
}

impl SqliteStore {
    /// Opens (or creates, with mode 0600) the database at `path`, checks that it is ours and
    /// intact, and migrates it to the latest schema.
    pub(crate) fn open(path: &Path) -> Result<Self, StartError> {
        create_private_file(path)?;
        let unusable = |detail: String| StartError::DatabaseUnusable {
            path: path.display().to_string(),
            detail,
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unusable(format!("cannot open: {e}")))?;
        configure(&conn).map_err(|e| unusable(describe_open_error(&e)))?;
        check_is_ours(&conn).map_err(|e| match e {
            StartError::Fault(ServerError::Database(DbError::Sqlite(e))) => {
                unusable(describe_open_error(&e))
            }
            other => other,
        })?;
        check_integrity(&conn).map_err(|e| match e {
            StartError::Fault(ServerError::Database(DbError::Sqlite(e))) => {
                unusable(describe_open_error(&e))
            }
            other => other,
        })?;
        // WAL lets readers proceed while one writer commits; it is a property of the file.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| unusable(describe_open_error(&e)))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(unusable(format!(
                "cannot switch to WAL (journal mode {mode})"
            )));
        }
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|e| unusable(describe_migration_error(&e)))?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(Some(conn)),
            long_work: AtomicUsize::new(0),
        })
    }

    /// Runs `f` with the connection, waiting for the work before it (blocking: call from a
    /// blocking thread, or see [`SqliteStore::hold_unless_long`]). After [`SqliteStore::close`], `f` gets a new
    /// connection of its own.
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        Held {
            guard: self.lock(),
            db: self,
        }
        .run(f)
    }

    /// [`SqliteStore::with_conn`] for work that may hold the connection long (a purge of everything
    /// that expired): while it waits for or holds the connection, [`SqliteStore::hold_unless_long`]
    /// gives up at once instead of waiting for it.
    pub(crate) fn with_conn_long<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        /// Counts the long work for as long as it lives, a panic in `f` included: a count
        /// left behind would send every later request to a blocking thread.
        struct Counted<'a>(&'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.long_work.fetch_add(1, Ordering::SeqCst);
        let _counted = Counted(&self.long_work);
        self.with_conn(f)
    }

    /// The connection, waiting for the short work before it; `None` at once while long work
    /// ([`SqliteStore::with_conn_long`]) waits for or holds it, for the caller to wait with
    /// [`SqliteStore::with_conn`] on a thread where waiting blocks nothing else.
    pub(crate) fn hold_unless_long(&self) -> Option<Held<'_>> {
        if self.long_work.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(Held {
            guard: self.lock(),
            db: self,
        })
    }

    /// Closes the connection; the close checkpoints the WAL into the main file.
    pub(crate) fn close(&self) {
        if let Some(conn) = self.lock().take()
            && let Err((_, e)) = conn.close()
        {
            tracing::warn!(error = %e, "closing the database connection failed");
        }
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        Ok(conn)
    }

    /// The connection, out of a transaction. A request that panicked poisons the mutex; its
    /// transaction was rolled back as the panic unwound (a dropped `Transaction` rolls back),
    /// and one left open all the same is rolled back here, so the next request starts clean.
    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        let guard = self.conn.lock().unwrap_or_else(|poisoned| {
            self.conn.clear_poison();
            poisoned.into_inner()
        });
        self.clean(guard)
    }

    /// Rolls back a transaction left open; if that fails, the connection is replaced (or, if
    /// no new one opens, dropped: each call then opens its own until the file is usable again).
    fn clean<'a>(
        &self,
        mut guard: MutexGuard<'a, Option<Connection>>,
    ) -> MutexGuard<'a, Option<Connection>> {
        if let Some(conn) = guard.as_ref()
            && !conn.is_autocommit()
            && let Err(e) = conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "rolling back a transaction left open failed; reconnecting");
            *guard = self.connect().ok();
        }
        guard
    }
}

/// The connection, held: nobody else uses it until this is dropped.
pub(crate) struct Held<'a> {
    guard: MutexGuard<'a, Option<Connection>>,
    db: &'a SqliteStore,
}

impl Held<'_> {
    /// Runs `f` with the connection (a new one of its own after [`SqliteStore::close`]).
    pub(crate) fn run<T>(mut self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let Some(conn) = self.guard.as_mut() else {
            drop(self.guard);
            return f(&mut self.db.connect()?);
        };
        f(conn)
    }
}

/// Statements kept prepared per connection: more than the server's distinct statement texts
/// (about 150), so a statement is parsed once per connection and never again.
pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 256;

// Every statement goes through the connection's statement cache: parsing and planning a
// statement costs more than running most of ours, and every statement here is one of a fixed
// set of texts (values are always bound, never formatted in), so each is parsed once per
// connection.

/// Runs a statement; the rows it changed.
pub(super) fn execute(conn: &Connection, sql: &str, params: &Params<'_>) -> Result<usize, DbError> {
    Ok(conn.prepare_cached(sql)?.execute(bind(params))?)
}

/// The first row of a query, converted by `f`.
pub(super) fn query_row<T>(
    conn: &Connection,
    sql: &str,
    params: &Params<'_>,
    f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(bind(params))?;
    match rows.next()? {
        Some(row) => f(&Row(RowInner::Sqlite(row))),
        None => Err(DbError::NoRow),
    }
}

/// Every row of a query, converted by `f`.
pub(super) fn query_map<T>(
    conn: &Connection,
    sql: &str,
    params: &Params<'_>,
    mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(bind(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(&Row(RowInner::Sqlite(row)))?);
    }
    Ok(out)
}

fn bind<'a>(params: &'a Params<'a>) -> impl rusqlite::Params + 'a {
    rusqlite::params_from_iter(params.iter().map(|p| Bound(p.value())))
}

/// A parameter as SQLite binds it.
struct Bound<'a>(ValueRef<'a>);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            ValueRef::Null => SqliteValue::Null,
            ValueRef::Integer(i) => SqliteValue::Integer(i),
            ValueRef::Real(r) => SqliteValue::Real(r),
            ValueRef::Text(t) => SqliteValue::Text(t.as_bytes()),
            ValueRef::Blob(b) => SqliteValue::Blob(b),
        }))
    }
}

/// A column's value as the rest of the store reads it. SQLite text is UTF-8 here (the server
/// writes nothing else); a column that is not is read as bytes and refused by text readers.
pub(super) fn value_ref(value: SqliteValue<'_>) -> ValueRef<'_> {
    match value {
        SqliteValue::Null => ValueRef::Null,
        SqliteValue::Integer(i) => ValueRef::Integer(i),
        SqliteValue::Real(r) => ValueRef::Real(r),
        SqliteValue::Text(t) => std::str::from_utf8(t).map_or(ValueRef::Blob(t), ValueRef::Text),
        SqliteValue::Blob(b) => ValueRef::Blob(b),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // With WAL, NORMAL loses at most the last commits on power loss, never consistency.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Creates the file with owner-only permissions before SQLite opens it: the database holds
/// the server's private keys. (SQLite gives the -wal and -shm files the same permissions.)
fn create_private_file(path: &Path) -> Result<(), StartError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StartError::DatabaseUnusable {
            path: path.display().to_string(),
            detail: format!("cannot create: {e}"),
        }),
    }
}

/// Refuses another program's SQLite file: ours carries [`APPLICATION_ID`]; a new file is empty.
fn check_is_ours(conn: &Connection) -> Result<(), StartError> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    if app_id == APPLICATION_ID {
        return Ok(());
    }
    let objects: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))?;
    if app_id == 0 && objects == 0 {
        return Ok(());
    }
    Err(StartError::DatabaseUnusable {
        path: conn.path().unwrap_or_default().to_owned(),
        detail: "this SQLite file belongs to another program (not a Sleutel server database)"
            .into(),
    })
}

fn check_integrity(conn: &Connection) -> Result<(), StartError> {
    let verdict: String = conn.pragma_query_value(None, "quick_check", |row| row.get(0))?;
    if verdict != "ok" {
        return Err(StartError::DatabaseUnusable {
            path: conn.path().unwrap_or_default().to_owned(),
            detail: format!("the file is corrupt ({verdict})"),
        });
    }
    Ok(())
}

fn describe_open_error(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            "not a SQLite database (the file is corrupt or belongs to something else)".into()
        }
        Some(ErrorCode::DatabaseCorrupt) => "the file is corrupt".into(),
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            format!("cannot open: {e}")
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            "locked by another process".into()
        }
        _ => e.to_string(),
    }
}

fn describe_migration_error(e: &rusqlite_migration::Error) -> String {
    use rusqlite_migration::{Error, MigrationDefinitionError};
    match e {
        Error::MigrationDefinition(MigrationDefinitionError::DatabaseTooFarAhead) => {
            "written by a newer server version (schema too new); upgrade the server".into()
        }
        Error::RusqliteError { err, .. } => describe_open_error(err),
        Error::InvalidUserVersion => "schema version is invalid (not our database?)".into(),
        other => format!("migration failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(Migrations::from_slice(MIGRATIONS).validate().is_ok());
    }

    #[test]
    fn a_new_file_is_created_private_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        SqliteStore::open(&path).unwrap().close();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(SqliteStore::open(&path).is_ok());
    }

    #[test]
    fn a_transaction_left_open_is_rolled_back_before_the_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let insert = "INSERT INTO secrets (name, value, created_at) VALUES ('left', x'00', 0)";
        db.with_conn(|conn| Ok(conn.execute_batch(&format!("BEGIN IMMEDIATE; {insert};"))?))
            .unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.with_conn(|conn| -> Result<()> {
                conn.execute_batch(&format!("BEGIN IMMEDIATE; {insert};"))?;
                panic!("a request fails half-way");
            })
        }));
        assert!(panicked.is_err());

        let (open, kept): (bool, i64) = db
            .with_conn(|conn| {
                let kept = conn.query_row(
                    "SELECT count(*) FROM secrets WHERE name = 'left'",
                    [],
                    |row| row.get(0),
                )?;
                Ok((!conn.is_autocommit(), kept))
            })
            .unwrap();
        assert!(!open);
        assert_eq!(kept, 0);
    }

    #[test]
    fn long_work_that_panics_leaves_requests_on_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.with_conn_long(|_| -> Result<()> { panic!("a purge fails half-way") })
        }));
        assert!(panicked.is_err());

        assert!(db.hold_unless_long().is_some());
    }

    #[test]
    fn the_schema_marks_the_file_as_ours() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let app_id: i32 = db
            .with_conn(|conn| Ok(conn.pragma_query_value(None, "application_id", |r| r.get(0))?))
            .unwrap();
        assert_eq!(app_id, APPLICATION_ID);
    }

    #[test]
    fn version_2_gives_existing_devices_their_accounts_pin_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let mut conn = Connection::open(&path).unwrap();
        Migrations::from_slice(&MIGRATIONS[..1])
            .to_latest(&mut conn)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (id, national_register_number, given_name, family_name,
                 birthdate, identity_source, identity_issuer, evidence_type, evidence_reference,
                 pin_jwk, created_at, updated_at)
             VALUES ('acct', '85073003328', 'An', 'Peeters', '1985-07-30', 'bank', 'bank:kbc',
                 'bank_debit_card', '1234', '{\"pin\":1}', 0, 0);
             INSERT INTO devices (jkt, account_id, jwk, phone_number, enrolled_at)
             VALUES ('d1', 'acct', '{}', '+32470000000', 0),
                    ('d2', 'acct', '{}', '+32470000001', 0);",
        )
        .unwrap();
        drop(conn);

        let db = SqliteStore::open(&path).unwrap();

        let keys: Vec<Option<String>> = db
            .with_conn(|conn| {
                let mut statement = conn.prepare("SELECT pin_jwk FROM devices ORDER BY jkt")?;
                let rows = statement.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(keys, vec![Some("{\"pin\":1}".to_owned()); 2]);
        let account_columns: Vec<String> = db
            .with_conn(|conn| {
                let mut statement =
                    conn.prepare("SELECT name FROM pragma_table_info('accounts')")?;
                let rows = statement.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert!(!account_columns.iter().any(|c| c == "pin_jwk"));
    }

    #[test]
    fn version_16_keeps_every_rate_event_as_a_count_per_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v15.db");
        let mut conn = Connection::open(&path).unwrap();
        Migrations::from_slice(&MIGRATIONS[..15])
            .to_latest(&mut conn)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO rate_events (bucket, at, expires_at) VALUES
                 ('b', 100, 160), ('b', 100, 160), ('b', 100, 3700), ('b', 101, 161),
                 ('c', 100, 160);",
        )
        .unwrap();
        drop(conn);

        let db = SqliteStore::open(&path).unwrap();

        let rows: Vec<(String, i64, i64, i64)> = db
            .with_conn(|conn| {
                let mut statement = conn.prepare(
                    "SELECT bucket, at, count, expires_at FROM rate_counts ORDER BY bucket, at",
                )?;
                let rows = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("b".to_owned(), 100, 3, 3700),
                ("b".to_owned(), 101, 1, 161),
                ("c".to_owned(), 100, 1, 160),
            ]
        );
    }

    #[test]
    fn the_counter_link_migration_leaves_earlier_codes_without_a_link_and_keeps_links_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.db");
        let mut conn = Connection::open(&path).unwrap();
        Migrations::from_slice(&MIGRATIONS[..5])
            .to_latest(&mut conn)
            .unwrap();
        let insert = |conn: &Connection, id: &str, code: &[u8], link: Option<&[u8]>| {
            conn.execute(
                "INSERT INTO identity_codes (id, kind, code_hash, email, given_name, family_name,
                     birthdate, national_register_number, issuer, evidence_type,
                     evidence_reference, created_at, expires_at)
                 VALUES (?1, 'counter', ?2, 'a@b.be', 'An', 'Peeters', '1985-07-30',
                     '85073003328', 'counter', 'counter_identity_check', 'document x', 0, 1)",
                rusqlite::params![id, code],
            )?;
            if let Some(link) = link {
                conn.execute(
                    "UPDATE identity_codes SET link_hash = ?2 WHERE id = ?1",
                    rusqlite::params![id, link],
                )?;
            }
            Ok::<_, rusqlite::Error>(())
        };
        insert(&conn, "old", b"c0", None).unwrap();
        drop(conn);

        let db = SqliteStore::open(&path).unwrap();

        db.with_conn(|conn| {
            let link: Option<Vec<u8>> = conn.query_row(
                "SELECT link_hash FROM identity_codes WHERE id = 'old'",
                [],
                |row| row.get(0),
            )?;
            assert_eq!(link, None);
            insert(conn, "a", b"c1", Some(b"l1"))?;
            assert!(insert(conn, "b", b"c2", Some(b"l1")).is_err());
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn garbage_and_foreign_files_are_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0x42u8; 8192]).unwrap();
        let err = SqliteStore::open(&garbage).unwrap_err();
        assert!(matches!(err, StartError::DatabaseUnusable { .. }), "{err}");
        assert!(err.to_string().contains("not a SQLite database"), "{err}");

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE photos (id INTEGER);")
            .unwrap();
        let err = SqliteStore::open(&foreign).unwrap_err();
        assert!(err.to_string().contains("another program"), "{err}");
    }
}
