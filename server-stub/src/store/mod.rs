//! The storage layer: the one place that speaks SQL. Embedded SQLite (the default: one file,
//! nothing to install) or PostgreSQL (`--database postgres://...`, shared by several server
//! instances). One body of SQL serves both: statements are written portable, with `?N`
//! parameters (rewritten to `$N` for PostgreSQL), integers, text and bytes as the only column
//! types, and `ON CONFLICT` rather than SQLite's `INSERT OR ...`.
//!
//! A unit of database work is a synchronous function of a [`Conn`] (decision 0028): it opens a
//! transaction with [`Conn::immediate`], reads and writes through [`Sql`], and commits. With
//! SQLite it runs on the request's async worker with the one connection (decision 0027); with
//! PostgreSQL it runs on a blocking thread with a pooled connection, each statement waiting for
//! the asynchronous driver's answer, and every transaction is SERIALIZABLE: two instances see
//! exactly the outcomes one SQLite connection would give, and the loser of a conflict is run
//! again from the start ([`MAX_ATTEMPTS`]).

pub(crate) mod accounts;
pub(crate) mod enrollments;
pub(crate) mod identity_codes;
pub(crate) mod outboxes;
pub(crate) mod pings;
mod postgres;
pub(crate) mod rate_counts;
pub(crate) mod relying_parties;
pub(crate) mod requests;
pub(crate) mod secrets;
mod sqlite;
pub(crate) mod unanswerable;
mod value;

use std::sync::Arc;

pub(crate) use value::{FromValue, Param, Params, Row, ValueRef};

use crate::error::{Result, StartError};

/// How often a unit of work runs when PostgreSQL refuses it for a conflict with a concurrent
/// one (a serialization failure or a deadlock). Conflicts are between requests on one account
/// or one rate-limit count; with pauses growing to 64 ms, eight tries settle a burst of dozens
/// of such requests; past that the request fails as busy.
pub(crate) const MAX_ATTEMPTS: u32 = 8;

/// A failure of the database or of a value read from it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused or failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed, or the connection to it broke.
    #[error("{}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool in time.
    #[error("no database connection: {0}")]
    Pool(String),
    /// A query that must return a row returned none.
    #[error("no row")]
    NoRow,
    /// A column's value could not be converted to what the code reads.
    #[error("{0}")]
    Value(String),
}

impl DbError {
    /// Whether the database refused the work for a conflict with concurrent work, so that
    /// running it again may succeed.
    pub(crate) fn is_conflict(&self) -> bool {
        match self {
            Self::Postgres(e) => postgres::is_conflict(e),
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    /// Whether a unique or primary-key constraint refused the write.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            Self::Postgres(e) => postgres::is_unique_violation(e),
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }
}

/// `.optional()` on a query that may find no row.
pub(crate) trait OptionalRow<T> {
    /// `Ok(None)` for no row, the value or the error otherwise.
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> OptionalRow<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(DbError::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Running statements: a connection outside a transaction (each statement commits alone) or a
/// transaction.
pub(crate) trait Sql {
    /// Runs a statement; the number of rows it changed.
    fn execute(&self, sql: &str, params: &Params<'_>) -> Result<usize, DbError>;

    /// The first row of a query, converted by `f`; [`DbError::NoRow`] when there is none.
    fn query_row<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError>;

    /// Every row of a query, each converted by `f`.
    fn query_map<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError>;

    /// The first column of the first row; [`DbError::NoRow`] when there is none.
    fn query_value<T: FromValue>(&self, sql: &str, params: &Params<'_>) -> Result<T, DbError> {
        self.query_row(sql, params, |row| row.get(0))
    }
}

/// A connection lent to one unit of work.
pub(crate) enum Conn<'a> {
    /// The SQLite connection.
    Sqlite(&'a mut rusqlite::Connection),
    /// A pooled PostgreSQL connection.
    Postgres(&'a mut postgres::PgConn),
}

impl Conn<'_> {
    /// Starts a transaction that decides on what it reads: with SQLite `BEGIN IMMEDIATE`
    /// (the write lock at once, so a read cannot go stale before the write), with PostgreSQL
    /// a SERIALIZABLE one (a concurrent change to what it read makes one of the two fail, and
    /// the unit of work runs again).
    pub(crate) fn immediate(&mut self) -> Result<Tx<'_>, DbError> {
        match self {
            Self::Sqlite(conn) => Ok(Tx::Sqlite(
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            )),
            Self::Postgres(conn) => Ok(Tx::Postgres(conn.begin()?)),
        }
    }
}

impl Sql for Conn<'_> {
    fn execute(&self, sql: &str, params: &Params<'_>) -> Result<usize, DbError> {
        match self {
            Self::Sqlite(conn) => sqlite::execute(conn, sql, params),
            Self::Postgres(conn) => conn.execute(sql, params),
        }
    }

    fn query_row<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        match self {
            Self::Sqlite(conn) => sqlite::query_row(conn, sql, params, f),
            Self::Postgres(conn) => conn.query_row(sql, params, f),
        }
    }

    fn query_map<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match self {
            Self::Sqlite(conn) => sqlite::query_map(conn, sql, params, f),
            Self::Postgres(conn) => conn.query_map(sql, params, f),
        }
    }
}

/// A transaction: dropped without [`Tx::commit`], it rolls back.
pub(crate) enum Tx<'a> {
    /// A SQLite transaction.
    Sqlite(rusqlite::Transaction<'a>),
    /// A PostgreSQL transaction.
    Postgres(postgres::PgTx<'a>),
}

impl Tx<'_> {
    /// Commits. With PostgreSQL the commit itself may fail for a conflict (see
    /// [`DbError::is_conflict`]); the unit of work then runs again.
    pub(crate) fn commit(self) -> Result<(), DbError> {
        match self {
            Self::Sqlite(tx) => Ok(tx.commit()?),
            Self::Postgres(tx) => tx.commit(),
        }
    }
}

impl Sql for Tx<'_> {
    fn execute(&self, sql: &str, params: &Params<'_>) -> Result<usize, DbError> {
        match self {
            Self::Sqlite(tx) => sqlite::execute(tx, sql, params),
            Self::Postgres(tx) => tx.execute(sql, params),
        }
    }

    fn query_row<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        match self {
            Self::Sqlite(tx) => sqlite::query_row(tx, sql, params, f),
            Self::Postgres(tx) => tx.query_row(sql, params, f),
        }
    }

    fn query_map<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match self {
            Self::Sqlite(tx) => sqlite::query_map(tx, sql, params, f),
            Self::Postgres(tx) => tx.query_map(sql, params, f),
        }
    }
}

/// Whether the database answers (readiness).
pub(crate) fn ping(conn: &mut Conn<'_>) -> Result<()> {
    conn.query_value::<i64>("SELECT 1", crate::params![])?;
    Ok(())
}

/// Where the server keeps its state. `Debug` never shows a URL (it may carry a password).
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// An embedded SQLite file (created if missing).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database, by URL (`postgres://user@host:port/db`); several server
    /// instances may share it.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(_) => f.write_str("Postgres(<url>)"),
        }
    }
}

impl Database {
    /// Reads `--database`: a `postgres://` or `postgresql://` URL, or a path to a SQLite file.
    /// Anything that looks like a database address but is not one of those (another scheme, a
    /// misspelt one, a `host=... password=...` connection string) is refused, without echoing
    /// it: taken as a file name it would quietly start a server on a SQLite file of its own.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(Self::Postgres(value.to_owned()));
        }
        let lower = value.to_ascii_lowercase();
        let looks_like_an_address = value.contains("://")
            || lower.starts_with("postgres")
            || value.contains('@')
            || value.split_whitespace().any(|word| word.contains('='));
        if looks_like_an_address {
            return Err(
                "--database: not a SQLite file path, and not a postgres:// or \
                        postgresql:// URL (libpq key=value strings are not read)"
                    .into(),
            );
        }
        Ok(Self::Sqlite(value.into()))
    }
}

/// The open store: a cheap handle, shared by the server's parts.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    /// Embedded SQLite.
    Sqlite(Arc<sqlite::SqliteStore>),
    /// PostgreSQL, shared with other instances.
    Postgres(Arc<postgres::PgStore>),
}

impl Store {
    /// Opens (creating, checking and migrating as needed) the store. Blocking: call from a
    /// thread that is not driving async tasks.
    pub(crate) fn open(database: &Database) -> Result<Self, StartError> {
        match database {
            Database::Sqlite(path) => Ok(Self::Sqlite(Arc::new(sqlite::SqliteStore::open(path)?))),
            Database::Postgres(url) => Ok(Self::Postgres(Arc::new(postgres::PgStore::open(url)?))),
        }
    }

    /// Opens a SQLite store at `path` (the unit tests' store).
    #[cfg(test)]
    pub(crate) fn open_sqlite(path: &std::path::Path) -> Result<Self, StartError> {
        Ok(Self::Sqlite(Arc::new(sqlite::SqliteStore::open(path)?)))
    }

    /// Runs `work` with a connection (blocking: call it from a blocking thread, or see
    /// [`Store::run_inline`]). With PostgreSQL, `work` runs again from the start when it lost a
    /// conflict before any of its transactions committed.
    pub(crate) fn run<T>(&self, work: impl Fn(&mut Conn<'_>) -> Result<T>) -> Result<T> {
        match self {
            Self::Sqlite(store) => store.with_conn(|conn| work(&mut Conn::Sqlite(conn))),
            Self::Postgres(store) => store.run(work),
        }
    }

    /// [`Store::run`] for work that may hold the connection long (a purge): SQLite requests
    /// then wait for it off the async workers.
    pub(crate) fn run_long<T>(&self, work: impl Fn(&mut Conn<'_>) -> Result<T>) -> Result<T> {
        match self {
            Self::Sqlite(store) => store.with_conn_long(|conn| work(&mut Conn::Sqlite(conn))),
            Self::Postgres(store) => store.run(work),
        }
    }

    /// Runs `work` at once on the calling async worker when that cannot block it (SQLite, no
    /// long work waiting: decision 0027); gives `work` back otherwise, for a blocking thread.
    pub(crate) fn run_inline<T, F>(&self, work: F) -> std::result::Result<Result<T>, F>
    where
        F: Fn(&mut Conn<'_>) -> Result<T>,
    {
        match self {
            Self::Sqlite(store) => match store.hold_unless_long() {
                Some(held) => Ok(held.run(|conn| work(&mut Conn::Sqlite(conn)))),
                None => Err(work),
            },
            Self::Postgres(_) => Err(work),
        }
    }

    /// Whether other server instances may share this store (PostgreSQL).
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Closes the store: SQLite checkpoints its log into the file; PostgreSQL's pool closes.
    pub(crate) fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close(),
            Self::Postgres(store) => store.close(),
        }
    }

    /// Holds the database for `duration` (blocking the calling thread): SQLite's one connection
    /// as long work, or every connection of PostgreSQL's pool. For tests of what still answers.
    #[cfg(feature = "testing")]
    pub(crate) fn hold(&self, duration: std::time::Duration) -> Result<()> {
        match self {
            Self::Sqlite(store) => store.with_conn_long(|_| {
                std::thread::sleep(duration);
                Ok(())
            }),
            Self::Postgres(store) => store.hold_all(duration),
        }
    }

    /// Whether this is the PostgreSQL store.
    #[cfg(feature = "testing")]
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_address_that_is_not_a_postgres_url_is_refused_and_not_echoed() {
        for value in [
            "postgres:/u:s3cret@db/x",
            "host=db user=u password=s3cret",
            "mysql://u:s3cret@db/x",
            "u:s3cret@db",
        ] {
            let refused = Database::parse(value).unwrap_err();
            assert!(!refused.contains("s3cret"), "{refused}");
        }
        assert!(matches!(
            Database::parse("postgresql://u@127.0.0.1/db"),
            Ok(Database::Postgres(_))
        ));
        assert!(matches!(
            Database::parse("/var/lib/sleutel/server.db"),
            Ok(Database::Sqlite(_))
        ));
    }

    #[test]
    fn a_postgres_database_does_not_debug_print_its_url() {
        let shown = format!(
            "{:?}",
            Database::Postgres("postgres://u:s3cret@db/x".into())
        );
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
