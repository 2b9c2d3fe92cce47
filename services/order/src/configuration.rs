//! Settings of the order service: only the common ones so far.

use common::CommonConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    pub common: CommonConfig,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            common: CommonConfig::from_env()?,
        })
    }
}
