//! The fictitious payment provider. In real life it is a remote service; here it sleeps for
//! its latency, decides with the configured decline rate, and records the charge in its own
//! ledger (`provider_charges`), which honours idempotency keys like a real provider: the first
//! decision recorded for a key is the answer for that key forever, so a retried or concurrent
//! charge never charges twice and never gets a different outcome.

use crate::configuration::Settings;
use crate::db::ledger;
use crate::domain::{AmountCents, Outcome};
use common::ApiResult;
use deadpool_postgres::Pool;
use rand::Rng;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone)]
pub struct Provider {
    latency_ms: u64,
    jitter_ms: u64,
    decline_rate: f64,
    ledger: Pool,
}

impl Provider {
    pub fn new(settings: &Settings, ledger: Pool) -> Self {
        Self {
            latency_ms: settings.payment_latency_ms,
            jitter_ms: settings.payment_latency_jitter_ms,
            decline_rate: settings.payment_decline_rate,
            ledger,
        }
    }

    /// Charge `amount` under `idempotency_key` and answer the ledger's outcome for that key.
    ///
    /// No connection is held while the provider "thinks": with a slow provider, holding one
    /// would starve the pool long before the provider became the bottleneck.
    pub async fn charge(&self, idempotency_key: Uuid, amount: AmountCents) -> ApiResult<Outcome> {
        let (delay, decision) = {
            // The thread-local generator is not `Send`: draw everything before awaiting.
            let mut rng = rand::thread_rng();
            let jitter = if self.jitter_ms > 0 {
                rng.gen_range(0..=self.jitter_ms)
            } else {
                0
            };
            let declined = rng.gen_bool(self.decline_rate.clamp(0.0, 1.0));
            (
                Duration::from_millis(self.latency_ms.saturating_add(jitter)),
                if declined {
                    Outcome::Declined
                } else {
                    Outcome::Succeeded
                },
            )
        };
        tokio::time::sleep(delay).await;
        ledger::record(&self.ledger, idempotency_key, amount, decision).await
    }

    /// Give back the charge made under `idempotency_key`, once.
    pub async fn refund(&self, idempotency_key: Uuid) -> ApiResult<()> {
        ledger::refund(&self.ledger, idempotency_key).await
    }
}
