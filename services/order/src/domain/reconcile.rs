//! Recovery of orders left PENDING: a payer who got a 503 and never came back, or a replica
//! that died in the middle of the saga. The order keeps its reservation bound, so the expiry
//! sweeper leaves that stock alone; this loop drives such orders to a final state by running
//! the (idempotent) Pay saga again on the payer's behalf.
//!
//! Replicas share the work: each pass claims a batch with `FOR UPDATE SKIP LOCKED` and
//! touches `updated_at`, which keeps the claimed orders out of every replica's next passes
//! for `after`; two replicas resuming the same order at once would still be harmless.
//!
//! Each claim counts an attempt. Past `max_attempts` the order is given up instead
//! ([`pay::give_up`]): its reservation cancelled, its charge refunded, FAILED, where an
//! operator finds it. An order whose give-up meets a 503 stays PENDING and is tried again.

use crate::domain::pay;
use crate::domain::peers::Peers;
use crate::domain::{Order, OrderStatus};
use common::db::Prepared;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Claim up to 50 PENDING orders untouched for `$1` seconds (touching them, so that no other
/// replica resumes them at the same time, and counting the attempt). `orders_pending_idx`
/// serves its scan.
pub const CLAIM_STALE_SQL: &str = "UPDATE orders SET updated_at = now(), attempts = attempts + 1
     WHERE id IN (SELECT id FROM orders
                  WHERE status = 'PENDING'
                    AND updated_at < now() - make_interval(secs => $1)
                  ORDER BY updated_at LIMIT 50
                  FOR UPDATE SKIP LOCKED)
     RETURNING id, reservation_id, user_id, total_cents, attempts";

/// Resume (or past `max_attempts` give up) every PENDING order untouched for `after`;
/// answers how many were claimed.
pub async fn reconcile_once(
    pool: &Pool,
    peers: &Peers,
    after: Duration,
    max_attempts: i32,
) -> anyhow::Result<usize> {
    let client = pool.get().await?;
    let rows = client
        .query_cached(CLAIM_STALE_SQL, &[&after.as_secs_f64()])
        .await?;
    drop(client);
    for row in &rows {
        let attempts: i32 = row.get(4);
        let order = Order {
            id: row.get(0),
            reservation_id: row.get(1),
            user_id: row.get(2),
            status: OrderStatus::Pending,
            total_cents: row.get(3),
        };
        let order_id = order.id;
        if attempts > max_attempts {
            match pay::give_up(pool, peers, &order).await {
                Ok(_) => {
                    tracing::warn!(%order_id, attempts, "pending order given up: confirmed after all")
                }
                Err(e) if e.code() == "order_failed" => {
                    tracing::warn!(%order_id, attempts, "pending order given up: reservation cancelled, payment refunded, FAILED")
                }
                Err(e) => {
                    tracing::warn!(%order_id, attempts, code = e.code(), "pending order could not be given up yet")
                }
            }
            continue;
        }
        // Business answers (declined, expired) are final states too; only a 503 means the
        // order is still pending and a later pass tries again.
        match pay::pay(pool, peers, order.user_id, order.reservation_id, None).await {
            Ok(_) => tracing::info!(%order_id, "pending order resumed: confirmed"),
            Err(e) => tracing::info!(%order_id, code = e.code(), "pending order resumed"),
        }
    }
    Ok(rows.len())
}

/// Run [`reconcile_once`] every `interval` until `cancel`.
pub fn spawn(
    pool: Pool,
    peers: Peers,
    interval: Duration,
    after: Duration,
    max_attempts: i32,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = reconcile_once(&pool, &peers, after, max_attempts).await {
                tracing::warn!(error = %format!("{e:#}"), "order reconciliation pass failed");
            }
        }
    })
}
