//! Orders: created once per reservation, then finished once.
//!
//! The `…_in` functions run on a connection or transaction the caller holds: async mode
//! commits them together with the inbox and outbox rows of the same step.

use crate::domain::{NewOrder, Order, OrderStatus};
use anyhow::Context;
use common::db::Prepared;
use common::{ApiError, ApiResult};
use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, reservation_id, user_id, status, total_cents";

fn order(row: &Row) -> ApiResult<Order> {
    let status: &str = row.get(3);
    let status = OrderStatus::parse(status)
        .with_context(|| format!("orders holds an unknown status {status:?}"))
        .map_err(ApiError::Internal)?;
    Ok(Order {
        id: row.get(0),
        reservation_id: row.get(1),
        user_id: row.get(2),
        status,
        total_cents: row.get(4),
    })
}

pub async fn by_reservation(pool: &Pool, reservation_id: Uuid) -> ApiResult<Option<Order>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            &format!("SELECT {COLUMNS} FROM orders WHERE reservation_id = $1"),
            &[&reservation_id],
        )
        .await?;
    row.as_ref().map(order).transpose()
}

/// The order `id` if `user_id` owns it.
pub async fn of_user(pool: &Pool, id: Uuid, user_id: Uuid) -> ApiResult<Option<Order>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            &format!("SELECT {COLUMNS} FROM orders WHERE id = $1 AND user_id = $2"),
            &[&id, &user_id],
        )
        .await?;
    row.as_ref().map(order).transpose()
}

/// The order of the reservation, created `PENDING` from `new` if there is none yet.
/// Concurrent payers all get the one row that won.
pub async fn create_or_get(pool: &Pool, new: &NewOrder) -> ApiResult<Order> {
    let (order, _) = create_or_get_in(&pool.get().await?, new).await?;
    Ok(order)
}

/// [`create_or_get`], and whether this call created the row (`true`) or found it.
pub async fn create_or_get_in(
    client: &impl GenericClient,
    new: &NewOrder,
) -> ApiResult<(Order, bool)> {
    let inserted = client
        .query_opt_cached(
            &format!(
                "INSERT INTO orders (id, reservation_id, user_id, status, total_cents, items,
                                     idempotency_key)
                 VALUES ($1, $2, $3, 'PENDING', $4, $5, $6)
                 ON CONFLICT (reservation_id) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &new.id,
                &new.reservation_id,
                &new.user_id,
                &new.total_cents,
                &Json(&new.items),
                &new.idempotency_key,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok((order(&row)?, true));
    }
    // Not inserted: a new statement sees the row even when a concurrent payer inserted it.
    let row = client
        .query_one_cached(
            &format!("SELECT {COLUMNS} FROM orders WHERE reservation_id = $1"),
            &[&new.reservation_id],
        )
        .await?;
    Ok((order(&row)?, false))
}

/// Move a `PENDING` order to its final `status` (a final order keeps its status), and answer
/// the stored order.
pub async fn finish(pool: &Pool, id: Uuid, status: OrderStatus) -> ApiResult<Order> {
    let client = pool.get().await?;
    let finished = client
        .query_opt_cached(
            &format!(
                "UPDATE orders SET status = $2, updated_at = now()
                 WHERE id = $1 AND status = 'PENDING'
                 RETURNING {COLUMNS}"
            ),
            &[&id, &status.as_str()],
        )
        .await?;
    if let Some(row) = finished {
        return order(&row);
    }
    // Final already: answer what is stored.
    let row = client
        .query_one_cached(
            &format!("SELECT {COLUMNS} FROM orders WHERE id = $1"),
            &[&id],
        )
        .await?;
    order(&row)
}

/// Move a `PENDING` order to its final `status`; `false` when it was not PENDING (already
/// final, or unknown).
pub async fn finish_in(
    client: &impl GenericClient,
    id: Uuid,
    status: OrderStatus,
) -> ApiResult<bool> {
    let updated = client
        .execute_cached(
            "UPDATE orders SET status = $2, updated_at = now()
             WHERE id = $1 AND status = 'PENDING'",
            &[&id, &status.as_str()],
        )
        .await?;
    Ok(updated == 1)
}
