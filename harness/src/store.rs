//! The harness's direct access to the suite's stores, as the operator: connecting to a
//! service's database, dropping a suite's databases, clearing its Redis keys. Services never
//! do this to each other; the harness does it to start fresh, seed, and verify.

use crate::nginx::SERVICES;
use anyhow::Context;
use tokio_postgres::{Client, NoTls};

/// Name of `service`'s database under `prefix`.
pub fn database_name(prefix: &str, service: &str) -> String {
    format!("{prefix}_{service}")
}

/// Open a connection to database `name` on the server at `server_url`.
pub async fn connect(server_url: &str, name: &str) -> anyhow::Result<Client> {
    let url = common::db::database_url(server_url, name);
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .with_context(|| format!("connecting to database {name} at {server_url}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("database connection closed: {e}");
        }
    });
    Ok(client)
}

fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database prefix {prefix:?} must be [A-Za-z0-9_]+"
    );
    Ok(())
}

/// `DROP DATABASE IF EXISTS <prefix>_<service> WITH (FORCE)` for the five services.
pub async fn drop_databases(server_url: &str, prefix: &str) -> anyhow::Result<()> {
    check_prefix(prefix)?;
    let client = connect(server_url, "postgres").await?;
    for service in SERVICES {
        let name = database_name(prefix, service);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .with_context(|| format!("dropping database {name}"))?;
    }
    Ok(())
}

/// True when `<prefix>_<service>` exists.
pub async fn database_exists(
    server_url: &str,
    prefix: &str,
    service: &str,
) -> anyhow::Result<bool> {
    let client = connect(server_url, "postgres").await?;
    let row = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&database_name(prefix, service)],
        )
        .await?;
    Ok(row.is_some())
}

/// Delete every Redis key under `<prefix>:` (SCAN + UNLINK, never KEYS). Returns how many.
pub async fn clear_redis(redis_url: &str, prefix: &str) -> anyhow::Result<usize> {
    use deadpool_redis::redis;
    anyhow::ensure!(
        !prefix.is_empty(),
        "an empty Redis prefix would match every key"
    );
    let client = redis::Client::open(redis_url).context("parsing the Redis URL")?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to Redis at {redis_url}"))?;
    let pattern = format!("{}:*", escape_glob(prefix));
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .context("SCAN")?;
        if !keys.is_empty() {
            let n: usize = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .context("UNLINK")?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
