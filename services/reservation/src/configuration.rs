//! Settings of the reservation service: the common ones, how long stock is held, and how
//! often the expiry sweeper runs.

use common::CommonConfig;
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonConfig,
    /// `RESERVATION_TTL_SECS`: how long a reservation holds its stock before it expires.
    /// Default 120.
    pub reservation_ttl_secs: u64,
    /// `SWEEP_INTERVAL_MS`: pause between two passes of the expiry sweeper. Default 500.
    pub sweep_interval_ms: u64,
}

/// The variables only this service reads.
#[derive(Deserialize)]
struct Own {
    #[serde(default = "defaults::reservation_ttl_secs")]
    reservation_ttl_secs: u64,
    #[serde(default = "defaults::sweep_interval_ms")]
    sweep_interval_ms: u64,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let own: Own = common::config::from_env()?;
        Ok(Self {
            common: CommonConfig::from_env()?,
            reservation_ttl_secs: own.reservation_ttl_secs,
            sweep_interval_ms: own.sweep_interval_ms,
        })
    }

    /// These common settings with this service's defaults.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            reservation_ttl_secs: defaults::reservation_ttl_secs(),
            sweep_interval_ms: defaults::sweep_interval_ms(),
        }
    }
}

mod defaults {
    pub fn reservation_ttl_secs() -> u64 {
        120
    }
    pub fn sweep_interval_ms() -> u64 {
        500
    }
}
