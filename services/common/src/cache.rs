//! Redis: a pooled connection with bounded waits, and the suite's key prefix.

use anyhow::Context;
use deadpool_redis::{Config, Hook, Pool, Runtime, Timeouts};
use std::time::Duration;

pub use deadpool_redis::Pool as RedisPool;

/// The longest one command may wait for its answer before the caller is told the cache is
/// unavailable (a 503), instead of waiting on a Redis that stopped answering for as long as
/// the socket stays open. A command takes well under a millisecond; 2 s leaves room for a
/// saturated machine and stays under the 5 s a caller gives a whole request.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Opening a connection, and so the wait of a request that meets a Redis that is gone or
/// frozen: the idle connection's recycling PING fails within [`COMMAND_TIMEOUT`] and a new
/// one within this, 4 s in all, under the caller's 5 s.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(2);

/// Waiting for a busy pool: as for PostgreSQL (`db::POOL_WAIT`), under the caller's 5 s.
pub const POOL_WAIT: Duration = Duration::from_secs(4);

pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    pool_with(url, size, COMMAND_TIMEOUT)
}

/// [`pool`] with another command timeout.
pub fn pool_with(url: &str, size: usize, command_timeout: Duration) -> anyhow::Result<Pool> {
    let mut cfg = Config::from_url(url);
    let mut pool_cfg = deadpool_redis::PoolConfig::new(size.max(1));
    // A refused connection fails at once on loopback, so Redis away still answers 503 fast;
    // a frozen one costs at most the recycling PING and one connection attempt. The recycle
    // PING is a command, so it is bounded by the command timeout too.
    pool_cfg.timeouts = Timeouts {
        wait: Some(POOL_WAIT),
        create: Some(CREATE_TIMEOUT),
        recycle: Some(command_timeout),
    };
    cfg.pool = Some(pool_cfg);
    cfg.builder()
        .context("configuring the Redis pool")?
        .runtime(Runtime::Tokio1)
        // Every connection the pool opens bounds its commands' answers (deadpool-redis opens
        // them without a response timeout).
        .post_create(Hook::sync_fn(move |conn, _| {
            conn.set_response_timeout(command_timeout);
            Ok(())
        }))
        .build()
        .context("building the Redis pool")
}

/// Readiness probe: PING.
pub async fn ping(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool.get().await.context("getting a Redis connection")?;
    let _: String = deadpool_redis::redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .context("PING")?;
    Ok(())
}
