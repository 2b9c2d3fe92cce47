//! Transactional outbox and inbox, in each service's own database.
//!
//! A state change and the events it causes commit in one transaction ([`append`]); the
//! [`relay`] publishes unsent rows with publisher confirms and marks them sent, claiming rows
//! with `FOR UPDATE SKIP LOCKED` so replicas share the work. A row published but not yet marked
//! when a replica dies is published again: consumers record each message id in their inbox in
//! the same transaction as its effect ([`first_delivery`]), so the copy has no second effect.
//!
//! Both tables come from the service's own migration (`outbox`, `inbox`), with the shape in
//! [`MIGRATION_SQL`].

use super::broker::{Broker, Outgoing};
use crate::db::Prepared;
use crate::events::Event;
use deadpool_postgres::{Pool, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The tables every service's migration creates (copy into `V<n>__messaging.sql`).
pub const MIGRATION_SQL: &str = "
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    message_id   UUID NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    payload      JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE TABLE inbox (
    message_id   UUID PRIMARY KEY,
    event_type   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
";

/// Record `event` for publication, inside the caller's transaction.
pub async fn append<E: Event>(
    tx: &Transaction<'_>,
    event: &E,
) -> Result<Uuid, tokio_postgres::Error> {
    let message_id = Uuid::new_v4();
    let payload = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    tx.execute_cached(
        "INSERT INTO outbox (message_id, event_type, payload) VALUES ($1, $2, $3)",
        &[&message_id, &E::NAME, &payload],
    )
    .await?;
    Ok(message_id)
}

/// Record that message `message_id` is being processed, inside the handler's transaction.
/// `false` means it was processed before (a redelivery or a duplicate): do nothing.
pub async fn first_delivery(
    tx: &Transaction<'_>,
    message_id: Uuid,
    event_type: &str,
) -> Result<bool, tokio_postgres::Error> {
    let inserted = tx
        .execute_cached(
            "INSERT INTO inbox (message_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&message_id, &event_type],
        )
        .await?;
    Ok(inserted == 1)
}

/// Wakes the relay right after a commit that appended rows, so an event leaves within
/// milliseconds instead of at the next poll.
#[derive(Clone, Default)]
pub struct RelaySignal(Arc<Notify>);

impl RelaySignal {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The longest a batch's publish (and its confirms) may take before the batch is given up and
/// its rows are left for the next attempt; the claiming transaction is open meanwhile.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// Publish one batch of unsent rows; answers how many were published.
///
/// One statement claims the rows and marks them sent (`UPDATE … RETURNING` over rows locked
/// with `SKIP LOCKED`, so replicas share the work); the transaction commits only once RabbitMQ
/// confirmed every message, and rolls back (the rows stay unsent) if it did not. The commit
/// does not wait for its WAL flush (`synchronous_commit = off`): should PostgreSQL crash
/// before the flush, the rows are published again and the consumers' inboxes drop the copies,
/// the same as after a relay crashed between its publish and its commit.
pub async fn publish_batch(pool: &Pool, broker: &Broker, max: i64) -> anyhow::Result<usize> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let rows = tx
        .query_cached(
            "UPDATE outbox SET published_at = now()
             WHERE id IN (SELECT id FROM outbox WHERE published_at IS NULL
                          ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING id, message_id, event_type, payload",
            &[&max],
        )
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    // Only a claim that found rows pays for this round trip; an empty poll just rolls back.
    tx.batch_execute("SET LOCAL synchronous_commit TO off")
        .await?;
    let mut batch: Vec<(i64, Outgoing)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let payload: serde_json::Value = row.get(3);
        batch.push((
            row.get(0),
            (row.get(2), row.get(1), serde_json::to_vec(&payload)?),
        ));
    }
    // Published in outbox order, as the rows were written.
    batch.sort_by_key(|(id, _)| *id);
    let batch: Vec<Outgoing> = batch.into_iter().map(|(_, out)| out).collect();
    tokio::time::timeout(PUBLISH_TIMEOUT, broker.publish(&batch))
        .await
        .map_err(|_| anyhow::anyhow!("no publisher confirms within {PUBLISH_TIMEOUT:?}"))??;
    tx.commit().await?;
    Ok(rows.len())
}

/// The relay loop: publish whenever signalled, and every `poll` anyway (rows of a replica
/// that died, rows left while RabbitMQ was away). Published rows older than a day are purged.
pub fn relay(
    pool: Pool,
    broker: Broker,
    signal: RelaySignal,
    poll: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failures = 0u32;
        let mut last_purge = tokio::time::Instant::now();
        loop {
            match publish_batch(&pool, &broker, 500).await {
                // A full batch: there may be more, go again at once.
                Ok(n) if n >= 500 => continue,
                Ok(_) => {
                    if failures > 0 {
                        tracing::info!("outbox relay publishing again");
                    }
                    failures = 0;
                }
                Err(e) => {
                    if failures.is_multiple_of(20) {
                        tracing::warn!(error = %format!("{e:#}"), "outbox relay cannot publish yet");
                    }
                    failures += 1;
                }
            }
            if last_purge.elapsed() > Duration::from_secs(600) {
                last_purge = tokio::time::Instant::now();
                if let Ok(client) = pool.get().await {
                    let _ = client
                        .execute_cached(
                            "DELETE FROM outbox WHERE published_at < now() - interval '1 day'",
                            &[],
                        )
                        .await;
                }
            }
            let wait = if failures > 0 {
                poll.max(Duration::from_millis(200))
            } else {
                poll
            };
            tokio::select! {
                _ = cancel.cancelled() => {
                    // Drain what is already committed before the process exits.
                    let _ = tokio::time::timeout(Duration::from_secs(3), publish_batch(&pool, &broker, 500)).await;
                    break;
                }
                _ = signal.0.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}
