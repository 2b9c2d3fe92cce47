//! Settings of the order service.

use common::CommonConfig;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonConfig,
    pub order: OrderSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderSettings {
    /// `RECONCILE_AFTER_SECS`: a PENDING order untouched this long is resumed by the
    /// reconciler. Default 30: longer than a payer's own call with its retries.
    #[serde(default = "defaults::reconcile_after_secs")]
    pub reconcile_after_secs: f64,
    /// `RECONCILE_INTERVAL_MS`: how often the reconciler looks. Default 1000.
    #[serde(default = "defaults::reconcile_interval_ms")]
    pub reconcile_interval_ms: u64,
    /// `RECONCILE_MAX_ATTEMPTS`: passes after which the reconciler gives an order up: it
    /// cancels the reservation, refunds the charge and marks the order FAILED. Default 10
    /// (with the defaults above, five minutes of retries).
    #[serde(default = "defaults::reconcile_max_attempts")]
    pub reconcile_max_attempts: i32,
}

impl Default for OrderSettings {
    fn default() -> Self {
        Self {
            reconcile_after_secs: defaults::reconcile_after_secs(),
            reconcile_interval_ms: defaults::reconcile_interval_ms(),
            reconcile_max_attempts: defaults::reconcile_max_attempts(),
        }
    }
}

impl OrderSettings {
    pub fn reconcile_after(&self) -> Duration {
        Duration::from_secs_f64(self.reconcile_after_secs.max(0.0))
    }
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_millis(self.reconcile_interval_ms.max(10))
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            common: CommonConfig::from_env()?,
            order: common::config::from_env()?,
        })
    }

    /// Defaults for everything but the common settings (tests build these directly).
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            order: OrderSettings::default(),
        }
    }
}

mod defaults {
    pub fn reconcile_after_secs() -> f64 {
        30.0
    }
    pub fn reconcile_interval_ms() -> u64 {
        1000
    }
    pub fn reconcile_max_attempts() -> i32 {
        10
    }
}
