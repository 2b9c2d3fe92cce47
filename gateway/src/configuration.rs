//! Settings of the gateway: the common ones plus cart and catalog cache lifetimes.

use common::CommonConfig;
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonConfig,
    /// `CART_TTL_SECS`: a cart expires this long after its last write. Default 3600.
    pub cart_ttl_secs: u64,
    /// `CATALOG_CACHE_MS`: how long a product's availability is served from Redis before the
    /// inventory is asked again. Default 250: fresh enough that "available" is honest during
    /// a sell-out, long enough to absorb a crowd refreshing the same page.
    pub catalog_cache_ms: u64,
}

/// The gateway's own variables, read beside [`CommonConfig`].
#[derive(Deserialize)]
struct GatewayEnv {
    #[serde(default = "default_cart_ttl_secs")]
    cart_ttl_secs: u64,
    #[serde(default = "default_catalog_cache_ms")]
    catalog_cache_ms: u64,
}

fn default_cart_ttl_secs() -> u64 {
    3600
}

fn default_catalog_cache_ms() -> u64 {
    250
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let own: GatewayEnv = common::config::from_env()?;
        Ok(Self::new(CommonConfig::from_env()?)
            .with_cart_ttl_secs(own.cart_ttl_secs)
            .with_catalog_cache_ms(own.catalog_cache_ms))
    }

    /// The gateway's defaults on top of `common`.
    pub fn new(common: CommonConfig) -> Self {
        Self {
            common,
            cart_ttl_secs: default_cart_ttl_secs(),
            catalog_cache_ms: default_catalog_cache_ms(),
        }
    }

    pub fn with_cart_ttl_secs(mut self, secs: u64) -> Self {
        self.cart_ttl_secs = secs;
        self
    }

    pub fn with_catalog_cache_ms(mut self, ms: u64) -> Self {
        self.catalog_cache_ms = ms;
        self
    }
}
