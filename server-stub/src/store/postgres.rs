//! The PostgreSQL store: a pool of connections (deadpool-postgres over tokio-postgres, the
//! asynchronous driver), the schema and its migrations, and running a unit of work.
//!
//! The server's units of database work are synchronous functions of a [`super::Conn`], shared
//! with SQLite (decision 0028). Here one runs on a blocking thread holding one pooled
//! connection; each statement is handed to the driver and the thread waits for its answer,
//! while the connection's socket is served by the async runtime. The pool's size bounds how
//! many units run at once, so it also bounds the blocking threads they occupy.
//!
//! Every transaction is SERIALIZABLE (the session default): when two instances' transactions
//! would decide on each other's reads, PostgreSQL fails one of them, and [`PgStore::run`] runs
//! that unit of work again from the start, as long as none of its transactions had committed.

use std::cell::Cell;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use postgres_types::{IsNull, ToSql, Type, to_sql_checked};
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;

use super::value::{Params, Row, RowInner, ValueRef};
use super::{Conn, DbError, MAX_ATTEMPTS};
use crate::error::{Result, ServerError, StartError};

/// Connections in the pool: enough to keep the database busy from one instance (its work is
/// short and its CPU is the server's), few enough that several instances stay far below
/// PostgreSQL's default of 100 connections.
pub(crate) const POOL_SIZE: usize = 16;

/// How long a unit of work waits for a free connection before the request fails as busy.
pub(crate) const POOL_WAIT: Duration = Duration::from_secs(5);

/// How long opening a new connection may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection stays silent before TCP asks whether the other side is still there:
/// a lost machine's transactions would otherwise hold their locks for the OS's two hours.
pub(crate) const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// The server's session settings: every transaction SERIALIZABLE (also asked for explicitly at
/// each `BEGIN`), and bounds on waiting, so that a lost instance's locks or a stuck statement
/// cannot hold the others' requests: a lock waited for 2 s is given up (and the unit of work
/// runs again, as for a conflict), a statement runs at most 10 s, and a transaction left idle
/// 15 s (its instance gone quiet) is ended by PostgreSQL, its locks released.
const SESSION_OPTIONS: &str = "-c default_transaction_isolation=serializable \
     -c lock_timeout=2s -c statement_timeout=10s -c idle_in_transaction_session_timeout=15s";

/// The schema, one entry per version; PostgreSQL's history starts at version 16 (the SQLite
/// schema's version at the time). Never edit a released entry: add a new one, beside SQLite's.
const MIGRATIONS: &[(i64, &str)] = &[
    (16, include_str!("schema/postgres/v16.sql")),
    (17, include_str!("schema/postgres/v17.sql")),
    (18, include_str!("schema/postgres/v18.sql")),
    (19, include_str!("schema/postgres/v19.sql")),
    (20, include_str!("schema/postgres/v20.sql")),
];

/// The key of the advisory lock that lets one instance at a time migrate the schema.
const MIGRATION_LOCK: i64 = 0x534C_5356;

/// Threads of the runtime that serves the pool's connections (their sockets, not the work).
const DRIVER_THREADS: usize = 2;

/// The pool, and the runtime that serves its connections.
pub(crate) struct PgStore {
    pool: Pool,
    runtime: Handle,
    /// The pool's own runtime: the connections are driven there, whatever runtime (or none)
    /// the caller runs on, so a caller that blocks never stalls a connection it waits for.
    driver: Option<tokio::runtime::Runtime>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which an async context may not do.
        if let Some(driver) = self.driver.take() {
            driver.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PgStore {
    /// No URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url`, checks the database is ours (or empty) and migrates it. Blocking:
    /// call from a thread that is not driving async tasks.
    pub(crate) fn open(url: &str) -> Result<Self, StartError> {
        let unusable = |detail: String| StartError::DatabaseUnusable {
            path: redact(url),
            detail,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| unusable(format!("not a PostgreSQL URL: {e}")))?;
        let no_tls = "TLS to PostgreSQL is not built into this server: connect over a unix \
                      socket or loopback, state sslmode=disable for a network you trust, or go \
                      through a local TLS proxy";
        match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => {}
            tokio_postgres::config::SslMode::Prefer
                if is_local_only(config.get_hosts(), config.get_hostaddrs()) => {}
            _ => return Err(unusable(no_tls.into())),
        }
        // The operator's own options (a search_path) are kept; ours follow.
        let options = match config.get_options() {
            Some(given) if !given.is_empty() => format!("{given} {SESSION_OPTIONS}"),
            _ => SESSION_OPTIONS.to_owned(),
        };
        config
            .ssl_mode(tokio_postgres::config::SslMode::Disable)
            .application_name("sleutel-server")
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .options(&options);
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| unusable(format!("cannot set up the pool: {e}")))?;
        let driver = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(DRIVER_THREADS)
            .thread_name("sleutel-postgres")
            .enable_all()
            .build()
            .map_err(|e| unusable(format!("cannot start the driver's threads: {e}")))?;
        let store = Self {
            pool,
            runtime: driver.handle().clone(),
            driver: Some(driver),
        };
        let mut client = store
            .runtime
            .block_on(store.pool.get())
            .map_err(|e| unusable(format!("cannot connect: {e}")))?;
        store
            .runtime
            .block_on(migrate(&mut client))
            .map_err(unusable)?;
        Ok(store)
    }

    /// Runs `work` with a pooled connection, again from the start when it lost a conflict
    /// before any of its transactions committed. Blocking: call from a blocking thread.
    pub(crate) fn run<T>(&self, work: impl Fn(&mut Conn<'_>) -> Result<T>) -> Result<T> {
        let client = self
            .runtime
            .block_on(self.pool.get())
            .map_err(|e| match e {
                // Every connection stayed busy for POOL_WAIT: overload, answered as busy.
                deadpool_postgres::PoolError::Timeout(_) => ServerError::Busy,
                other => ServerError::Database(DbError::Pool(other.to_string())),
            })?;
        let mut conn = PgConn {
            client,
            runtime: self.runtime.clone(),
            commits: Cell::new(0),
        };
        let mut attempt = 1;
        loop {
            conn.commits.set(0);
            match work(&mut Conn::Postgres(&mut conn)) {
                Err(ServerError::Database(e))
                    if e.is_conflict() && conn.commits.get() == 0 && attempt < MAX_ATTEMPTS =>
                {
                    // A random pause that grows with each try, so that the sides of a conflict
                    // do not meet again at once.
                    let ceiling = 1000u32 << attempt.min(6);
                    attempt += 1;
                    std::thread::sleep(Duration::from_micros(u64::from(
                        crate::random::below(ceiling).unwrap_or(ceiling / 2),
                    )));
                }
                Err(ServerError::Database(e)) if e.is_conflict() => {
                    return Err(ServerError::Busy);
                }
                other => return other,
            }
        }
    }

    /// Holds every connection of the pool for `duration` (blocking the calling thread), as a
    /// burst of long work would: the tests' stand-in for SQLite's held connection.
    #[cfg(feature = "testing")]
    pub(crate) fn hold_all(&self, duration: Duration) -> Result<()> {
        let mut held = Vec::new();
        for _ in 0..POOL_SIZE {
            held.push(
                self.runtime
                    .block_on(self.pool.get())
                    .map_err(|e| ServerError::Database(DbError::Pool(e.to_string())))?,
            );
        }
        std::thread::sleep(duration);
        Ok(())
    }

    /// Closes the pool: idle connections close, connections in use close when given back.
    pub(crate) fn close(&self) {
        self.pool.close();
    }
}

/// Applies the migrations the database lacks, one instance at a time.
async fn migrate(client: &mut deadpool_postgres::Object) -> std::result::Result<(), String> {
    let fail = |what: &str, e: tokio_postgres::Error| format!("{what}: {e}");
    client
        .query("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| fail("cannot take the migration lock", e))?;
    let result = migrate_locked(client).await;
    client
        .query("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| fail("cannot release the migration lock", e))?;
    result
}

async fn migrate_locked(client: &mut deadpool_postgres::Object) -> std::result::Result<(), String> {
    let fail = |what: &str, e: tokio_postgres::Error| format!("{what}: {e}");
    let has_version_table: bool = client
        .query_one(
            "SELECT to_regclass('sleutel_schema_version') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| fail("cannot read the schema version", e))?
        .get(0);
    let current: i64 = if has_version_table {
        client
            .query_one("SELECT version FROM sleutel_schema_version", &[])
            .await
            .map_err(|e| fail("cannot read the schema version", e))?
            .get(0)
    } else {
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = current_schema()",
                &[],
            )
            .await
            .map_err(|e| fail("cannot list the tables", e))?
            .get(0);
        if tables > 0 {
            return Err(
                "this database holds another program's tables (not a Sleutel server database)"
                    .into(),
            );
        }
        0
    };
    let latest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    if current > latest {
        return Err(format!(
            "written by a newer server version (schema {current}, this server knows {latest}); \
             upgrade the server"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        let tx = client
            .transaction()
            .await
            .map_err(|e| fail("cannot start the migration", e))?;
        tx.batch_execute(sql)
            .await
            .map_err(|e| fail(&format!("migration to version {version} failed"), e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS sleutel_schema_version (version BIGINT NOT NULL);
             DELETE FROM sleutel_schema_version;",
        )
        .await
        .map_err(|e| fail("cannot record the schema version", e))?;
        tx.execute(
            "INSERT INTO sleutel_schema_version (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(|e| fail("cannot record the schema version", e))?;
        tx.commit()
            .await
            .map_err(|e| fail(&format!("migration to version {version} failed"), e))?;
    }
    Ok(())
}

/// One pooled connection lent to a unit of work.
pub(crate) struct PgConn {
    client: deadpool_postgres::Object,
    runtime: Handle,
    /// Transactions (and statements outside one) committed by the current unit of work: once
    /// one has, running the work again would repeat it, so a conflict is not retried.
    commits: Cell<u32>,
}

impl PgConn {
    /// Starts a transaction (SERIALIZABLE, the session's default).
    pub(super) fn begin(&mut self) -> Result<PgTx<'_>, DbError> {
        // SERIALIZABLE asked for here too, not only as the session's default: a connection
        // pooler that drops startup options must not quietly give READ COMMITTED.
        let tx = self.runtime.block_on(
            self.client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::Serializable)
                .start(),
        )?;
        Ok(PgTx {
            tx,
            runtime: &self.runtime,
            commits: &self.commits,
        })
    }

    pub(super) fn execute(&self, sql: &str, params: &Params<'_>) -> Result<usize, DbError> {
        let changed = self.runtime.block_on(execute(&self.client, sql, params))?;
        self.committed();
        Ok(changed)
    }

    /// Notes that a statement outside a transaction succeeded, so committed: a statement that
    /// failed committed nothing, and the unit of work may still run again.
    fn committed(&self) {
        self.commits.set(self.commits.get() + 1);
    }

    pub(super) fn query_row<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let rows = self.runtime.block_on(query(&self.client, sql, params))?;
        self.committed();
        first(&rows, f)
    }

    pub(super) fn query_map<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let rows = self.runtime.block_on(query(&self.client, sql, params))?;
        self.committed();
        all(&rows, f)
    }
}

/// A transaction on a pooled connection; dropped without [`PgTx::commit`], it rolls back.
pub(crate) struct PgTx<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    runtime: &'a Handle,
    commits: &'a Cell<u32>,
}

impl PgTx<'_> {
    pub(super) fn commit(self) -> Result<(), DbError> {
        self.runtime.block_on(self.tx.commit())?;
        self.commits.set(self.commits.get() + 1);
        Ok(())
    }

    pub(super) fn execute(&self, sql: &str, params: &Params<'_>) -> Result<usize, DbError> {
        self.runtime.block_on(execute(&self.tx, sql, params))
    }

    pub(super) fn query_row<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let rows = self.runtime.block_on(query(&self.tx, sql, params))?;
        first(&rows, f)
    }

    pub(super) fn query_map<T>(
        &self,
        sql: &str,
        params: &Params<'_>,
        f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let rows = self.runtime.block_on(query(&self.tx, sql, params))?;
        all(&rows, f)
    }
}

/// What statements run on: a connection or a transaction, with the pool's statement cache.
trait Prepares: deadpool_postgres::GenericClient {}
impl<T: deadpool_postgres::GenericClient> Prepares for T {}

async fn execute(client: &impl Prepares, sql: &str, params: &Params<'_>) -> Result<usize, DbError> {
    let statement = client.prepare_cached(&placeholders(sql)).await?;
    let bound: Vec<Bound<'_>> = params.iter().map(|p| Bound(p.value())).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
    let changed = client.execute(&statement, &refs).await?;
    Ok(usize::try_from(changed).unwrap_or(usize::MAX))
}

async fn query(
    client: &impl Prepares,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, DbError> {
    let statement = client.prepare_cached(&placeholders(sql)).await?;
    let bound: Vec<Bound<'_>> = params.iter().map(|p| Bound(p.value())).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
    Ok(client.query(&statement, &refs).await?)
}

fn first<T>(
    rows: &[tokio_postgres::Row],
    f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    match rows.first() {
        Some(row) => f(&Row(RowInner::Postgres(row))),
        None => Err(DbError::NoRow),
    }
}

fn all<T>(
    rows: &[tokio_postgres::Row],
    mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
) -> Result<Vec<T>, DbError> {
    rows.iter()
        .map(|row| f(&Row(RowInner::Postgres(row))))
        .collect()
}

/// The statement with SQLite's `?N` parameters written as PostgreSQL's `$N` (a bare `?` as
/// the next number), outside string literals and quoted names.
pub(super) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 1u32;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                out.push('$');
                let mut number = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    number.push(*d);
                    chars.next();
                }
                if number.is_empty() {
                    out.push_str(&next.to_string());
                } else {
                    out.push_str(&number);
                }
                next += 1;
            }
            None => out.push(c),
        }
    }
    out
}

/// A parameter as PostgreSQL binds it: converted to the type PostgreSQL inferred for the
/// placeholder (an integer into `bigint`, `integer` or `boolean`; text into any text type).
#[derive(Debug)]
struct Bound<'a>(ValueRef<'a>);

impl ToSql for Bound<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            ValueRef::Null => Ok(IsNull::Yes),
            ValueRef::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            ValueRef::Real(r) => match *ty {
                Type::FLOAT8 => r.to_sql(ty, out),
                _ => Err(format!("a real cannot be bound to a {ty} parameter").into()),
            },
            ValueRef::Text(t) => {
                if <&str as ToSql>::accepts(ty) {
                    t.to_sql(ty, out)
                } else {
                    Err(format!("text cannot be bound to a {ty} parameter").into())
                }
            }
            ValueRef::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("bytes cannot be bound to a {ty} parameter").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Column `index` of `row`, as a [`ValueRef`] handed to `f`.
pub(super) fn column<T>(
    row: &tokio_postgres::Row,
    index: usize,
    f: impl FnOnce(ValueRef<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let Some(column) = row.columns().get(index) else {
        return Err(DbError::Value(format!("no column {index}")));
    };
    let ty = column.type_().clone();
    let value = match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(ValueRef::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)?
            .map(|i| ValueRef::Integer(i.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)?
            .map(|i| ValueRef::Integer(i.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)?
            .map(|b| ValueRef::Integer(b.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(ValueRef::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)?
            .map(|r| ValueRef::Real(r.into())),
        Type::BYTEA => {
            return f(row
                .try_get::<_, Option<&[u8]>>(index)?
                .map_or(ValueRef::Null, ValueRef::Blob));
        }
        ref other if <&str as postgres_types::FromSql>::accepts(other) => {
            return f(row
                .try_get::<_, Option<&str>>(index)?
                .map_or(ValueRef::Null, ValueRef::Text));
        }
        other => {
            return Err(DbError::Value(format!(
                "column {index} has type {other}, which the store does not read (cast it)"
            )));
        }
    };
    f(value.unwrap_or(ValueRef::Null))
}

/// What went wrong, with PostgreSQL's own message and SQLSTATE (the driver's `Display` says
/// only "db error"). Messages name tables, columns and constraints, never bound values.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL {}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Whether PostgreSQL refused the work for a conflict with concurrent work: a serialization
/// failure, a deadlock, or a lock not had within `lock_timeout`.
pub(super) fn is_conflict(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(
            &SqlState::T_R_SERIALIZATION_FAILURE
                | &SqlState::T_R_DEADLOCK_DETECTED
                | &SqlState::LOCK_NOT_AVAILABLE
        )
    )
}

/// Whether a unique constraint refused the write.
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// The URL as far as an error message may show it: scheme, user, host, port and database; never
/// a password, in the user part or among the parameters.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}{}{}",
            parsed.scheme(),
            match parsed.username() {
                "" => String::new(),
                user => format!("{user}@"),
            },
            parsed.host_str().unwrap_or(""),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default(),
            parsed.path()
        ),
        Err(_) => "the PostgreSQL URL".into(),
    }
}

/// Whether every address the connection may use is this machine: the hosts are unix sockets
/// or loopback names and addresses, and any `hostaddr` (which overrides the host) is loopback.
fn is_local_only(hosts: &[tokio_postgres::config::Host], addrs: &[std::net::IpAddr]) -> bool {
    (!hosts.is_empty() || !addrs.is_empty())
        && hosts.iter().all(is_local)
        && addrs.iter().all(std::net::IpAddr::is_loopback)
}

/// Whether a host is this machine (a unix socket or loopback), where no TLS is needed.
fn is_local(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Unix(_) => true,
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_and_bare_placeholders_become_dollar_numbers() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?2 AND c = ?1 AND d = ?"),
            "SELECT a FROM t WHERE b = $2 AND c = $1 AND d = $3"
        );
    }

    #[test]
    fn question_marks_inside_quotes_are_left_alone() {
        assert_eq!(
            placeholders("SELECT '?1', \"q?\" FROM t WHERE a = ?1"),
            "SELECT '?1', \"q?\" FROM t WHERE a = $1"
        );
    }

    #[test]
    fn a_password_never_reaches_an_error_message() {
        for url in [
            "postgres://sleutel:s3cret@db.example:5432/sleutel",
            "postgres://sleutel@db.example/sleutel?password=s3cret",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("db.example"), "{shown}");
        }
    }

    fn opens_without_tls(url: &str) -> bool {
        let config: tokio_postgres::Config = url.parse().unwrap();
        match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => true,
            tokio_postgres::config::SslMode::Prefer => {
                is_local_only(config.get_hosts(), config.get_hostaddrs())
            }
            _ => false,
        }
    }

    #[test]
    fn plaintext_goes_only_to_this_machine_unless_stated() {
        assert!(opens_without_tls("postgres://u@127.0.0.1:5432/db"));
        assert!(opens_without_tls("postgres://u@localhost/db"));
        assert!(opens_without_tls(
            "postgres://u@db.example/db?sslmode=disable"
        ));
        assert!(!opens_without_tls("postgres://u@db.example/db"));
        assert!(!opens_without_tls(
            "postgres://u@localhost/db?hostaddr=203.0.113.9"
        ));
        assert!(!opens_without_tls("postgres://u@/db?hostaddr=203.0.113.9"));
        assert!(!opens_without_tls(
            "postgres://u@localhost/db?sslmode=require"
        ));
    }
}
