//! Redis: a pooled connection with bounded waits, and the suite's key prefix.

use anyhow::Context;
use deadpool_redis::{Config, Pool, Runtime, Timeouts};
use std::time::Duration;

pub use deadpool_redis::Pool as RedisPool;

pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let mut cfg = Config::from_url(url);
    let mut pool_cfg = deadpool_redis::PoolConfig::new(size.max(1));
    // Opening a connection and the PING that recycles one are bounded (a refused connection
    // fails at once on loopback, so Redis away still answers 503 fast); waiting for a busy
    // pool may take longer, because a spike should queue rather than fail. The bounds are
    // generous because a saturated 2-core machine can take seconds to schedule a PING.
    pool_cfg.timeouts = Timeouts {
        wait: Some(Duration::from_secs(10)),
        create: Some(Duration::from_secs(5)),
        recycle: Some(Duration::from_secs(5)),
    };
    cfg.pool = Some(pool_cfg);
    cfg.create_pool(Some(Runtime::Tokio1))
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
