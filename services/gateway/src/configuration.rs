//! Settings of the gateway: the common ones plus cart and catalog cache lifetimes and the
//! login's protections.

use crate::cache::logins::LoginLimits;
use crate::domain::HashCost;
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
    /// `LOGIN_FAILURES_PER_USER` (5), `LOGIN_FAILURES_PER_CLIENT` (50) and
    /// `LOGIN_WINDOW_SECS` (60): failed logins per username and per client address within
    /// the window before the next attempt is answered 429.
    pub login_limits: LoginLimits,
    /// `LOGIN_QUEUE`: logins that may wait for a password check per replica (beyond one
    /// running per CPU) before the next is answered 429 `login_busy`. Default 128 (a few
    /// seconds of checks at the default cost on two cores).
    pub login_queue: usize,
    /// `PASSWORD_HASH_PARAMS`: the argon2id cost the users' hashes were made with, e.g.
    /// `m=19456,t=2,p=1` (the default): an unknown username is checked against a decoy of the
    /// same cost, so its answer takes as long as a wrong password's.
    pub password_hash: HashCost,
}

/// The gateway's own variables, read beside [`CommonConfig`].
#[derive(Deserialize)]
struct GatewayEnv {
    #[serde(default = "default_cart_ttl_secs")]
    cart_ttl_secs: u64,
    #[serde(default = "default_catalog_cache_ms")]
    catalog_cache_ms: u64,
    #[serde(default = "default_login_failures_per_user")]
    login_failures_per_user: u64,
    #[serde(default = "default_login_failures_per_client")]
    login_failures_per_client: u64,
    #[serde(default = "default_login_window_secs")]
    login_window_secs: u64,
    #[serde(default = "default_login_queue")]
    login_queue: usize,
    #[serde(default)]
    password_hash_params: Option<String>,
}

fn default_login_failures_per_user() -> u64 {
    5
}

fn default_login_failures_per_client() -> u64 {
    50
}

fn default_login_window_secs() -> u64 {
    60
}

fn default_login_queue() -> usize {
    128
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
        let mut settings = Self::new(CommonConfig::from_env()?)
            .with_cart_ttl_secs(own.cart_ttl_secs)
            .with_catalog_cache_ms(own.catalog_cache_ms);
        settings.login_limits = LoginLimits {
            per_user: own.login_failures_per_user,
            per_client: own.login_failures_per_client,
            window_secs: own.login_window_secs,
        };
        settings.login_queue = own.login_queue;
        if let Some(params) = own.password_hash_params {
            settings.password_hash = params
                .parse()
                .map_err(|e| anyhow::anyhow!("PASSWORD_HASH_PARAMS: {e:#}"))?;
        }
        Ok(settings)
    }

    /// The gateway's defaults on top of `common`.
    pub fn new(common: CommonConfig) -> Self {
        Self {
            common,
            cart_ttl_secs: default_cart_ttl_secs(),
            catalog_cache_ms: default_catalog_cache_ms(),
            login_limits: LoginLimits {
                per_user: default_login_failures_per_user(),
                per_client: default_login_failures_per_client(),
                window_secs: default_login_window_secs(),
            },
            login_queue: default_login_queue(),
            password_hash: HashCost::default(),
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
