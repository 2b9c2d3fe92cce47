//! Settings of the payment service: the common ones and the fictitious provider's behaviour.

use common::CommonConfig;
use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonConfig,
    /// `PAYMENT_LATENCY_MS`: how long the provider takes to answer. Default 5.
    pub payment_latency_ms: u64,
    /// `PAYMENT_LATENCY_JITTER_MS`: uniform extra latency, 0 up to this. Default 2.
    pub payment_latency_jitter_ms: u64,
    /// `PAYMENT_DECLINE_RATE`: probability (0 ..= 1) that the provider declines. Default 0.
    pub payment_decline_rate: f64,
}

/// The payment-specific variables, read beside [`CommonConfig`].
#[derive(Deserialize)]
struct PaymentEnv {
    #[serde(default = "default_latency_ms")]
    payment_latency_ms: u64,
    #[serde(default = "default_latency_jitter_ms")]
    payment_latency_jitter_ms: u64,
    #[serde(default)]
    payment_decline_rate: f64,
}

fn default_latency_ms() -> u64 {
    5
}

fn default_latency_jitter_ms() -> u64 {
    2
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let env: PaymentEnv = common::config::from_env()?;
        let settings = Self {
            common: CommonConfig::from_env()?,
            payment_latency_ms: env.payment_latency_ms,
            payment_latency_jitter_ms: env.payment_latency_jitter_ms,
            payment_decline_rate: env.payment_decline_rate,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// The defaults of every payment setting around `common`.
    pub fn with_common(common: CommonConfig) -> Self {
        Self {
            common,
            payment_latency_ms: default_latency_ms(),
            payment_latency_jitter_ms: default_latency_jitter_ms(),
            payment_decline_rate: 0.0,
        }
    }

    /// Refuse to start with a setting that has no meaning.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.payment_decline_rate),
            "PAYMENT_DECLINE_RATE must be a number from 0 to 1, got {}",
            self.payment_decline_rate
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decline_rate_outside_zero_to_one_is_refused() {
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            let mut s = Settings::with_common(CommonConfig::default());
            s.payment_decline_rate = bad;
            assert!(s.validate().is_err(), "{bad}");
        }
        for good in [0.0, 0.5, 1.0] {
            let mut s = Settings::with_common(CommonConfig::default());
            s.payment_decline_rate = good;
            assert!(s.validate().is_ok(), "{good}");
        }
    }
}
