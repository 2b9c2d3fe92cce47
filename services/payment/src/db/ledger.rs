//! The provider's ledger: at most one charge per idempotency key.

use crate::domain::{AmountCents, Outcome};
use anyhow::Context;
use common::db::Prepared;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use uuid::Uuid;

/// Record `decision` for `key` unless a decision is already recorded, and answer the recorded
/// one.
///
/// Two statements on purpose: when a concurrent charge inserted the key first, the INSERT waits
/// for it to commit and then does nothing, and only a *new* statement's snapshot sees that row
/// (a CTE reading in the same statement would not).
pub async fn record(
    pool: &Pool,
    key: Uuid,
    amount: AmountCents,
    decision: Outcome,
) -> ApiResult<Outcome> {
    let client = pool.get().await?;
    let inserted = client
        .query_opt_cached(
            "INSERT INTO provider_charges (idempotency_key, amount_cents, outcome)
             VALUES ($1, $2, $3)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING outcome",
            &[&key, &amount.get(), &decision.as_str()],
        )
        .await?;
    let row = match inserted {
        Some(row) => row,
        None => {
            client
                .query_one_cached(
                    "SELECT outcome FROM provider_charges WHERE idempotency_key = $1",
                    &[&key],
                )
                .await?
        }
    };
    let outcome: &str = row.get(0);
    Outcome::parse(outcome)
        .with_context(|| format!("provider_charges holds an unknown outcome {outcome:?}"))
        .map_err(ApiError::Internal)
}

/// Give back the successful charge recorded for `key`, once (a refund again keeps the first
/// refund's time). A key without a successful charge has nothing to give back.
pub async fn refund(pool: &Pool, key: Uuid) -> ApiResult<()> {
    pool.get()
        .await?
        .execute_cached(
            "UPDATE provider_charges SET refunded_at = coalesce(refunded_at, now())
             WHERE idempotency_key = $1 AND outcome = 'SUCCEEDED'",
            &[&key],
        )
        .await?;
    Ok(())
}
