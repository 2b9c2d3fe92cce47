//! Payments: created once per order, then settled once with the provider's outcome.

use crate::domain::{AmountCents, Outcome, Payment, PaymentStatus};
use anyhow::Context;
use common::db::Prepared;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, order_id, user_id, amount_cents, status";

fn payment(row: &Row) -> ApiResult<Payment> {
    let status: &str = row.get(4);
    let status = PaymentStatus::parse(status)
        .with_context(|| format!("payments holds an unknown status {status:?}"))
        .map_err(ApiError::Internal)?;
    Ok(Payment {
        payment_id: row.get(0),
        order_id: row.get(1),
        user_id: row.get(2),
        amount_cents: row.get(3),
        status,
    })
}

/// The payment of `order_id`, created `PENDING` if there is none yet. Concurrent callers all
/// get the one row that won.
pub async fn create_or_get(
    pool: &Pool,
    order_id: Uuid,
    user_id: Uuid,
    amount: AmountCents,
) -> ApiResult<Payment> {
    let client = pool.get().await?;
    let inserted = client
        .query_opt_cached(
            &format!(
                "INSERT INTO payments (id, order_id, user_id, amount_cents, status)
                 VALUES ($1, $2, $3, $4, 'PENDING')
                 ON CONFLICT (order_id) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[&Uuid::new_v4(), &order_id, &user_id, &amount.get()],
        )
        .await?;
    if let Some(row) = inserted {
        return payment(&row);
    }
    // Not inserted: a new statement sees the row even when a concurrent caller inserted it.
    let row = client
        .query_one_cached(
            &format!("SELECT {COLUMNS} FROM payments WHERE order_id = $1"),
            &[&order_id],
        )
        .await?;
    payment(&row)
}

/// Store the provider's outcome unless one is stored already, and answer the stored payment.
pub async fn settle(pool: &Pool, order_id: Uuid, outcome: Outcome) -> ApiResult<Payment> {
    transition(pool, order_id, PaymentStatus::Pending, outcome.into()).await
}

/// SUCCEEDED → REFUNDED; answers the stored payment, whatever it is now.
pub async fn mark_refunded(pool: &Pool, order_id: Uuid) -> ApiResult<Payment> {
    transition(
        pool,
        order_id,
        PaymentStatus::Succeeded,
        PaymentStatus::Refunded,
    )
    .await
}

/// `from` → `to` unless the payment has moved on (a concurrent caller did it first, or it
/// was never `from`), and answer the stored payment either way.
async fn transition(
    pool: &Pool,
    order_id: Uuid,
    from: PaymentStatus,
    to: PaymentStatus,
) -> ApiResult<Payment> {
    let client = pool.get().await?;
    let updated = client
        .query_opt_cached(
            &format!(
                "UPDATE payments SET status = $3, updated_at = now()
                 WHERE order_id = $1 AND status = $2
                 RETURNING {COLUMNS}"
            ),
            &[&order_id, &from.as_str(), &to.as_str()],
        )
        .await?;
    if let Some(row) = updated {
        return payment(&row);
    }
    // A new statement sees the row as the concurrent caller left it.
    let row = client
        .query_one_cached(
            &format!("SELECT {COLUMNS} FROM payments WHERE order_id = $1"),
            &[&order_id],
        )
        .await?;
    payment(&row)
}

pub async fn by_order(pool: &Pool, order_id: Uuid) -> ApiResult<Option<Payment>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            &format!("SELECT {COLUMNS} FROM payments WHERE order_id = $1"),
            &[&order_id],
        )
        .await?;
    row.as_ref().map(payment).transpose()
}
