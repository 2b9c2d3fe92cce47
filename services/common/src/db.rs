//! PostgreSQL: one database per service, created if missing, migrated at start-up, and a small
//! connection pool that fails fast when the server is away.

use anyhow::Context;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts,
};
use std::future::Future;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, NoTls, Row};

pub use deadpool_postgres::Pool as PgPool;

/// Connection string of database `name` on the server at `server_url`.
pub fn database_url(server_url: &str, name: &str) -> String {
    format!("{}/{}", server_url.trim_end_matches('/'), name)
}

/// Create database `name` unless it exists. Replicas starting together race here, so a
/// concurrent creation is not an error.
pub async fn ensure_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?} must be [A-Za-z0-9_]"
    );
    let (client, conn) = tokio_postgres::connect(&database_url(server_url, "postgres"), NoTls)
        .await
        .context("connecting to PostgreSQL to create the service database")?;
    let conn = tokio::spawn(conn);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            // 42P04 duplicate_database, 23505 unique_violation on pg_database: a replica won.
            let raced = e
                .code()
                .is_some_and(|c| c.code() == "42P04" || c.code() == "23505");
            if !raced {
                return Err(e).context(format!("creating database {name}"));
            }
        }
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Apply the service's embedded migrations. An advisory lock serialises replicas that start
/// at the same moment; the second one finds nothing left to do.
pub async fn migrate(url: &str, runner: refinery::Runner) -> anyhow::Result<()> {
    let (mut client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to PostgreSQL for migrations")?;
    let conn = tokio::spawn(conn);
    client
        .batch_execute("SELECT pg_advisory_lock(7201001)")
        .await
        .context("taking the migration lock")?;
    let result = runner.run_async(&mut client).await;
    client
        .batch_execute("SELECT pg_advisory_unlock(7201001)")
        .await
        .context("releasing the migration lock")?;
    result.context("applying migrations")?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Whether PostgreSQL failed this statement for a reason that passes by itself: a deadlock
/// (40P01) or serialization failure (40001) it chose this transaction to lose, a lock it
/// could not get in time (55P03), or a statement that ran out of [`STATEMENT_TIMEOUT`]
/// (57014). Running the transaction again is the cure.
pub fn is_transient(e: &Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code(), "40P01" | "40001" | "55P03" | "57014"))
}

/// The longest a statement of a service may run before PostgreSQL cancels it: shorter than a
/// caller's whole-call timeout (`UPSTREAM_TIMEOUT_MS`, 5 s), so no statement outlives the
/// request it serves and holds the hot stock row for nobody.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(4);

/// The longest a connection may sit in an open transaction doing nothing before PostgreSQL
/// ends the session: a replica stuck or frozen mid-transaction gives its row locks back.
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a busy pool's connection before it answers 503
/// `database_busy`: under a spike queueing beats failing, but never longer than a caller
/// would wait for the answer (`UPSTREAM_TIMEOUT_MS`, 5 s).
pub const POOL_WAIT: Duration = Duration::from_secs(4);

/// A pool of at most `size` connections. Opening a connection is bounded (5 s; a refused
/// connection fails at once, so with PostgreSQL away a request answers 503 fast instead of
/// hanging); broken connections are dropped on recycle, so the pool heals by itself. Waiting
/// for a *busy* pool is bounded by [`POOL_WAIT`]. Every session has a
/// [`STATEMENT_TIMEOUT`] and an [`IDLE_IN_TRANSACTION_TIMEOUT`].
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let mut pg: tokio_postgres::Config = url.parse().context("parsing the database URL")?;
    let options = format!(
        "{} -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        pg.get_options().unwrap_or_default(),
        STATEMENT_TIMEOUT.as_millis(),
        IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
    );
    pg.options(options.trim());
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            // `Fast` checks only `is_closed()`: a connection the server closed is replaced,
            // without an extra round trip on every checkout.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(POOL_WAIT),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .build()
        .context("building the database pool")
}

/// Everything a service needs before it serves: the database exists, is migrated, and a
/// pool to it.
pub async fn setup(
    server_url: &str,
    name: &str,
    pool_size: usize,
    runner: refinery::Runner,
) -> anyhow::Result<Pool> {
    ensure_database(server_url, name).await?;
    let url = database_url(server_url, name);
    migrate(&url, runner).await?;
    pool(&url, pool_size)
}

/// Readiness probe: one round trip on a pooled connection.
pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let client = pool.get().await.context("getting a database connection")?;
    client.simple_query("SELECT 1").await.context("SELECT 1")?;
    Ok(())
}

/// Statements prepared once per pooled connection and reused from deadpool's statement cache.
///
/// `client.query("SELECT …", …)` with a plain string prepares an unnamed statement on every
/// call: one extra round trip, and PostgreSQL parses and plans the text again each time. On
/// the checkout path (about 30 statements per checkout) that doubled the round trips. These
/// methods take the same arguments and prepare each distinct text once per connection.
pub trait Prepared: GenericClient {
    fn query_cached<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query(&statement, params).await
        }
    }

    fn query_one_cached<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_one(&statement, params).await
        }
    }

    fn query_opt_cached<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_opt(&statement, params).await
        }
    }

    fn execute_cached<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send + 'a
    where
        Self: Sized,
    {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.execute(&statement, params).await
        }
    }
}

impl<C: GenericClient> Prepared for C {}
