//! Transactional outbox and inbox, in each service's own database.
//!
//! A state change and the events it causes commit in one transaction ([`append`]). Once it
//! committed, the caller hands the events to its replica's [`relay`]
//! ([`RelaySignal::committed`]), which publishes them at once with publisher confirms and marks
//! the rows of all the events it published within [`MARK_EVERY`] sent in one statement: a
//! checkout's event costs no read of the outbox and a share of one commit. The relay
//! also scans for rows left unsent for [`RECOVER_AFTER`] (a replica that died between its
//! commit and the publish, RabbitMQ away), claiming them with `FOR UPDATE SKIP LOCKED` so
//! replicas share the work. A row published but not yet marked is published again by that
//! scan: consumers record each message id in their inbox in the same transaction as its effect
//! ([`first_delivery`]), so the copy has no second effect.
//!
//! Both tables come from the service's own migration (`outbox`, `inbox`), with the shape in
//! [`MIGRATION_SQL`].

use super::broker::{Broker, Outgoing};
use crate::db::Prepared;
use crate::events::Event;
use deadpool_postgres::{Pool, Transaction};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
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

/// How long a row may stay unsent before the relay's scan publishes it: far longer than a
/// committed event takes to be handed over and confirmed, so the scan only finds the rows of
/// a replica that died, or rows left while RabbitMQ was away.
pub const RECOVER_AFTER: Duration = Duration::from_secs(3);

/// Events handed over but not yet published, per replica, at most: beyond it (a relay that
/// cannot keep up, or none running) rows wait for the scan instead of growing memory.
const STAGED_MAX: usize = 10_000;

/// An event appended inside a transaction, for the relay to publish once that transaction
/// committed ([`RelaySignal::committed`]). One that was appended inside a savepoint that
/// rolled back must be dropped: it has no row.
#[must_use = "hand it to the relay after the commit (or drop it if its savepoint rolled back)"]
#[derive(Debug)]
pub struct Staged(Outgoing);

impl Staged {
    pub fn message_id(&self) -> Uuid {
        self.0 .1
    }
}

/// Record `event` for publication, inside the caller's transaction.
pub async fn append<E: Event>(
    tx: &Transaction<'_>,
    event: &E,
) -> Result<Staged, tokio_postgres::Error> {
    let message_id = Uuid::new_v4();
    let payload = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    tx.execute_cached(
        "INSERT INTO outbox (message_id, event_type, payload) VALUES ($1, $2, $3)",
        &[&message_id, &E::NAME, &payload],
    )
    .await?;
    let bytes = serde_json::to_vec(&payload).unwrap_or_default();
    Ok(Staged((E::NAME.to_string(), message_id, bytes)))
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

/// The way from committed transactions to the replica's relay: the events they appended,
/// published within milliseconds instead of at the next scan.
#[derive(Clone, Default)]
pub struct RelaySignal(Arc<Handover>);

#[derive(Default)]
struct Handover {
    wake: Notify,
    staged: Mutex<Vec<Outgoing>>,
}

impl RelaySignal {
    /// Hand over the events of a transaction that committed.
    pub fn committed(&self, events: impl IntoIterator<Item = Staged>) {
        {
            let mut staged = self.staged();
            for Staged(event) in events {
                if staged.len() >= STAGED_MAX {
                    // Its row waits for the scan.
                    break;
                }
                staged.push(event);
            }
        }
        self.0.wake.notify_one();
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Vec<Outgoing>> {
        self.0.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.staged())
    }
}

/// Mark the rows of published events sent, in one statement; answers how many were marked
/// (fewer when the scan took some first).
pub async fn mark_sent(pool: &Pool, ids: &[Uuid]) -> anyhow::Result<u64> {
    let client = pool.get().await?;
    let marked = client
        .execute_cached(
            "UPDATE outbox SET published_at = now()
             WHERE message_id = ANY($1) AND published_at IS NULL",
            &[&ids],
        )
        .await?;
    Ok(marked)
}

/// Publish one batch of rows unsent for at least `min_age`; answers how many were published.
pub async fn publish_batch(
    pool: &Pool,
    broker: &Broker,
    max: i64,
    min_age: Duration,
) -> anyhow::Result<usize> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let min_age = min_age.as_secs_f64();
    let rows = tx
        .query_cached(
            "SELECT id, message_id, event_type, payload FROM outbox
             WHERE published_at IS NULL AND created_at <= now() - make_interval(secs => $2)
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[&max, &min_age],
        )
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut batch: Vec<Outgoing> = Vec::with_capacity(rows.len());
    for row in &rows {
        ids.push(row.get::<_, i64>(0));
        let payload: serde_json::Value = row.get(3);
        batch.push((row.get(2), row.get(1), serde_json::to_vec(&payload)?));
    }
    broker.publish(&batch).await?;
    tx.execute_cached(
        "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Rows one publish carries at most, handed over or scanned.
const BATCH: usize = 500;

/// How long published events wait to be marked sent together: one commit for all the events
/// of that time instead of one per publish. Far below [`RECOVER_AFTER`], so the scan never
/// takes a row only because its mark was pending.
pub const MARK_EVERY: Duration = Duration::from_millis(50);

/// The relay loop: publish what committed transactions hand over as soon as they do (their
/// rows are marked sent every [`MARK_EVERY`]), and every `poll` scan for rows unsent for
/// [`RECOVER_AFTER`] (a replica that died, rows left while RabbitMQ was away). Published rows
/// older than a day are purged.
pub fn relay(
    pool: Pool,
    broker: Broker,
    signal: RelaySignal,
    poll: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut health = Health::default();
        let mut next_scan = Instant::now();
        let mut last_purge = Instant::now();
        // Published, not yet marked sent; and when they are due to be.
        let mut sent: Vec<Uuid> = Vec::new();
        let mut next_mark = Instant::now();
        loop {
            for events in signal.take().chunks(BATCH) {
                let published = broker.publish(events).await;
                if published.is_ok() {
                    if sent.is_empty() {
                        next_mark = Instant::now() + MARK_EVERY;
                    }
                    sent.extend(events.iter().map(|(_, id, _)| *id));
                }
                health.note(published);
            }
            if !sent.is_empty() && (Instant::now() >= next_mark || sent.len() >= BATCH) {
                match mark_sent(&pool, &sent).await {
                    Ok(_) => sent.clear(),
                    Err(e) => {
                        // Tried again at the next mark; past the cap the scan republishes
                        // them (the inboxes drop the copies).
                        let over = sent.len().saturating_sub(STAGED_MAX);
                        sent.drain(..over);
                        next_mark = Instant::now() + MARK_EVERY;
                        health.note(Err(e));
                    }
                }
            }
            if Instant::now() >= next_scan {
                let scanned = publish_batch(&pool, &broker, BATCH as i64, RECOVER_AFTER).await;
                // A full batch: there may be more, scan again at once.
                let full = matches!(scanned, Ok(n) if n >= BATCH);
                health.note(scanned.map(|_| ()));
                next_scan = match (full, health.failing()) {
                    (true, _) => Instant::now(),
                    (false, false) => Instant::now() + poll,
                    (false, true) => Instant::now() + poll.max(Duration::from_millis(200)),
                };
            }
            if last_purge.elapsed() > Duration::from_secs(600) {
                last_purge = Instant::now();
                if let Ok(client) = pool.get().await {
                    let _ = client
                        .execute_cached(
                            "DELETE FROM outbox WHERE published_at < now() - interval '1 day'",
                            &[],
                        )
                        .await;
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    // Drain what is already committed before the process exits.
                    let drain = async {
                        for events in signal.take().chunks(BATCH) {
                            if broker.publish(events).await.is_ok() {
                                sent.extend(events.iter().map(|(_, id, _)| *id));
                            }
                        }
                        if !sent.is_empty() {
                            let _ = mark_sent(&pool, &sent).await;
                        }
                        publish_batch(&pool, &broker, BATCH as i64, Duration::ZERO).await
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(3), drain).await;
                    break;
                }
                _ = signal.0.wake.notified() => {}
                _ = tokio::time::sleep_until(next_scan) => {}
                _ = tokio::time::sleep_until(next_mark), if !sent.is_empty() => {}
            }
        }
    })
}

/// The relay's failures in a row, logged once every 20 and once when it recovers.
#[derive(Default)]
struct Health {
    failures: u32,
}

impl Health {
    fn note(&mut self, result: anyhow::Result<()>) {
        match result {
            Ok(()) => {
                if self.failures > 0 {
                    tracing::info!("outbox relay publishing again");
                }
                self.failures = 0;
            }
            Err(e) => {
                if self.failures.is_multiple_of(20) {
                    tracing::warn!(error = %format!("{e:#}"), "outbox relay cannot publish yet; the rows wait in the outbox");
                }
                self.failures += 1;
            }
        }
    }

    fn failing(&self) -> bool {
        self.failures > 0
    }
}
