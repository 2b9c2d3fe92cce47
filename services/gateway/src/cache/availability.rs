//! Availability as the inventory last reported it, kept for `CATALOG_CACHE_MS`.
//!
//! The cache is shared by every gateway replica, so a crowd opening the same product page
//! costs the inventory about one query per product per period, whatever the replica count.

use super::Keys;
use anyhow::Context;
use common::cache::RedisPool;
use common::ApiResult;
use deadpool_redis::redis;
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Clone)]
pub struct AvailabilityCache {
    redis: RedisPool,
    keys: Keys,
    ttl_ms: u64,
}

impl AvailabilityCache {
    pub fn new(redis: RedisPool, keys: Keys, ttl_ms: u64) -> Self {
        Self {
            redis,
            keys,
            ttl_ms,
        }
    }

    /// A zero period turns the cache off (and `PX 0` would be an error).
    fn enabled(&self) -> bool {
        self.ttl_ms > 0
    }

    pub async fn all(&self) -> ApiResult<Option<HashMap<Uuid, i64>>> {
        if !self.enabled() {
            return Ok(None);
        }
        let mut conn = self.redis.get().await?;
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.availability_list())
            .query_async(&mut conn)
            .await?;
        raw.map(|json| serde_json::from_str(&json).context("cached availability list is not JSON"))
            .transpose()
            .map_err(Into::into)
    }

    /// Store the whole list, and each product's entry so that single-product reads hit too.
    pub async fn store_all(&self, levels: &HashMap<Uuid, i64>) -> ApiResult<()> {
        if !self.enabled() {
            return Ok(());
        }
        let json = serde_json::to_string(levels).context("serialising availability")?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.keys.availability_list())
            .arg(json)
            .arg("PX")
            .arg(self.ttl_ms)
            .ignore();
        for (product_id, available) in levels {
            pipe.cmd("SET")
                .arg(self.keys.availability(*product_id))
                .arg(*available)
                .arg("PX")
                .arg(self.ttl_ms)
                .ignore();
        }
        let mut conn = self.redis.get().await?;
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    pub async fn one(&self, product_id: Uuid) -> ApiResult<Option<i64>> {
        if !self.enabled() {
            return Ok(None);
        }
        let mut conn = self.redis.get().await?;
        Ok(redis::cmd("GET")
            .arg(self.keys.availability(product_id))
            .query_async(&mut conn)
            .await?)
    }

    pub async fn store_one(&self, product_id: Uuid, available: i64) -> ApiResult<()> {
        if !self.enabled() {
            return Ok(());
        }
        let mut conn = self.redis.get().await?;
        let () = redis::cmd("SET")
            .arg(self.keys.availability(product_id))
            .arg(available)
            .arg("PX")
            .arg(self.ttl_ms)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}
