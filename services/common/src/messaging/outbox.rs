//! Transactional outbox and inbox, in each service's own database.
//!
//! A state change and the events it causes commit in one transaction ([`append`]); the
//! [`relay`] claims unsent rows for a lease (`FOR UPDATE SKIP LOCKED`, so replicas share the
//! work), publishes them with publisher confirms outside any transaction and marks them sent. A row published but not yet marked
//! when a replica dies is published again: consumers record each message id in their inbox in
//! the same transaction as its effect ([`first_deliveries`]), so the copy has no second effect.
//!
//! Both tables (`outbox`, `inbox`) and the relay's lease column come from the migrations here,
//! which each service adds to its own ([`with_migrations`]).

use super::broker::{Broker, Outgoing};
use crate::db::Prepared;
use crate::events::Event;
use crate::telemetry::propagate::{self, Outbound};
use deadpool_postgres::{Pool, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The outbox and inbox tables, the migration every consuming service runs
/// ([`with_migrations`]).
pub const MIGRATION_SQL: &str = include_str!("../../migrations/messaging.sql");

/// The relay's lease on the rows it is publishing, the migration after [`MIGRATION_SQL`].
pub const CLAIM_MIGRATION_SQL: &str = include_str!("../../migrations/outbox_claim.sql");

/// The trace an event belongs to, the migration after [`CLAIM_MIGRATION_SQL`].
pub const TRACE_MIGRATION_SQL: &str = include_str!("../../migrations/outbox_trace.sql");

/// The shared migrations in order: what a test's own database runs to hold an outbox and an
/// inbox without a service's folder.
pub const SHARED_MIGRATIONS: [&str; 3] = [MIGRATION_SQL, CLAIM_MIGRATION_SQL, TRACE_MIGRATION_SQL];

/// The versions a service gives the shared migrations, free in its own folder.
#[derive(Debug, Clone, Copy)]
pub struct SharedVersions {
    /// [`MIGRATION_SQL`], `V<messaging>__messaging`.
    pub messaging: u32,
    /// [`CLAIM_MIGRATION_SQL`], `V<claim>__outbox_claim`.
    pub claim: u32,
    /// [`TRACE_MIGRATION_SQL`], `V<trace>__outbox_trace`.
    pub trace: u32,
}

/// A service's own migrations (`embedded`) with the shared ones added at `versions`, in
/// version order. The service's own folder leaves those versions free; a version taken twice
/// is a bug, caught at start.
pub fn with_migrations(embedded: refinery::Runner, versions: SharedVersions) -> refinery::Runner {
    let mut all = embedded.get_migrations().clone();
    for (version, name, sql) in [
        (versions.messaging, "messaging", MIGRATION_SQL),
        (versions.claim, "outbox_claim", CLAIM_MIGRATION_SQL),
        (versions.trace, "outbox_trace", TRACE_MIGRATION_SQL),
    ] {
        assert!(
            all.iter().all(|m| m.version() != version),
            "migration V{version} is taken by the service's own folder"
        );
        let migration = refinery::Migration::unapplied(&format!("V{version}__{name}"), sql)
            .expect("the shared migrations are well named");
        all.push(migration);
    }
    all.sort_by_key(|m| m.version());
    refinery::Runner::new(&all)
}

/// Record `event` for publication, inside the caller's transaction, with the trace of the
/// current span when it is recorded.
pub async fn append<E: Event>(
    tx: &Transaction<'_>,
    event: &E,
) -> Result<Uuid, tokio_postgres::Error> {
    let message_id = Uuid::new_v4();
    let payload = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
    let traceparent = propagate::current_traceparent();
    tx.execute_cached(
        // `clock_timestamp()`, the insert's own time rather than its transaction's start:
        // where the event's `outbox` span begins.
        "INSERT INTO outbox (message_id, event_type, payload, traceparent, created_at)
         VALUES ($1, $2, $3, $4, clock_timestamp())",
        &[&message_id, &E::NAME, &payload, &traceparent],
    )
    .await?;
    Ok(message_id)
}

/// Record that `messages` are being processed, inside the handler's transaction, in one
/// statement: answers the ids not processed before (the others are redeliveries or
/// duplicates: do nothing for them).
pub async fn first_deliveries(
    tx: &Transaction<'_>,
    messages: &[super::Incoming],
) -> Result<std::collections::HashSet<Uuid>, tokio_postgres::Error> {
    let ids: Vec<Uuid> = messages.iter().map(|m| m.message_id).collect();
    let types: Vec<&str> = messages.iter().map(|m| m.event_type.as_str()).collect();
    let rows = tx
        .query_cached(
            "INSERT INTO inbox (message_id, event_type)
             SELECT * FROM unnest($1::uuid[], $2::text[])
             ON CONFLICT DO NOTHING RETURNING message_id",
            &[&ids, &types],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
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
/// its rows are released for the next attempt. No transaction is open meanwhile.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a claim keeps a batch from the other relays: longer than [`PUBLISH_TIMEOUT`]
/// plus the mark, so only a relay that died with its claim lets the rows go to another.
pub const CLAIM_LEASE: Duration = Duration::from_secs(15);

/// Claim up to `max` unsent rows no live claim holds, in outbox order, for `lease`. One
/// statement in a transaction of its own: replicas share the work through `SKIP LOCKED`, and
/// the row locks last only as long as the statement.
const CLAIM_SQL: &str = "UPDATE outbox SET claimed_until = now() + make_interval(secs => $2)
     WHERE id IN (SELECT id FROM outbox
                  WHERE published_at IS NULL
                    AND (claimed_until IS NULL OR claimed_until < now())
                  ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING id, message_id, event_type, payload, created_at, traceparent";
const MARK_SENT_SQL: &str =
    "UPDATE outbox SET published_at = now(), claimed_until = NULL WHERE id = ANY($1)";
const RELEASE_SQL: &str = "UPDATE outbox SET claimed_until = NULL WHERE id = ANY($1)";

/// One claimed batch: the row ids, the messages in outbox order, and the trace of each
/// (`None`: not traced).
pub struct Claim {
    pub ids: Vec<i64>,
    pub messages: Vec<Outgoing>,
    pub traces: Vec<Option<Outbound>>,
}

/// Run `statement` in a transaction of its own whose commit does not wait for its WAL flush,
/// in one round trip (tokio-postgres pipelines the three requests). Both of the relay's
/// writes may be lost in a PostgreSQL crash at no cost: a lost claim is no claim, and a lost
/// mark publishes the rows again, which the consumers' inboxes drop.
async fn unflushed<T>(
    client: &deadpool_postgres::Client,
    statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    // `biased`: polled first in this order, so the requests leave in this order.
    let (begin, result, commit) = tokio::join!(
        biased;
        client.batch_execute("BEGIN; SET LOCAL synchronous_commit TO off"),
        statement,
        // After a failed statement COMMIT ends the aborted transaction as a rollback, so the
        // connection goes back to the pool clean whatever happened.
        client.batch_execute("COMMIT"),
    );
    begin?;
    let value = result?;
    commit?;
    Ok(value)
}

/// Claim a batch of unsent rows for `lease` (see [`CLAIM_SQL`]).
pub async fn claim(pool: &Pool, max: i64, lease: Duration) -> anyhow::Result<Claim> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(CLAIM_SQL).await?;
    let lease = lease.as_secs_f64();
    let rows = unflushed(&client, client.query(&statement, &[&max, &lease])).await?;
    let mut batch: Vec<(i64, Outgoing, Option<Outbound>)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let payload: serde_json::Value = row.get(3);
        let trace = row.get::<_, Option<String>>(5).map(|traceparent| Outbound {
            traceparent,
            created_at: row.get::<_, chrono::DateTime<chrono::Utc>>(4).into(),
        });
        batch.push((
            row.get(0),
            (row.get(2), row.get(1), serde_json::to_vec(&payload)?),
            trace,
        ));
    }
    // Published in outbox order, as the rows were written.
    batch.sort_by_key(|(id, _, _)| *id);
    let mut claim = Claim {
        ids: Vec::with_capacity(batch.len()),
        messages: Vec::with_capacity(batch.len()),
        traces: Vec::with_capacity(batch.len()),
    };
    for (id, message, trace) in batch {
        claim.ids.push(id);
        claim.messages.push(message);
        claim.traces.push(trace);
    }
    Ok(claim)
}

/// Publish one batch of unsent rows; answers how many were published.
///
/// Three short steps, none holding a transaction across the network to RabbitMQ: claim the
/// rows ([`claim`]), publish them with confirms (within [`PUBLISH_TIMEOUT`]), mark them sent.
/// A publish that fails releases the claim at once, so the next attempt (another replica's,
/// or this one's once RabbitMQ is back) takes the rows without waiting for the lease. A relay
/// that dies between publish and mark leaves the rows to be published again when its lease
/// ends; the consumers' inboxes drop the copies.
pub async fn publish_batch(pool: &Pool, broker: &Broker, max: i64) -> anyhow::Result<usize> {
    let Claim {
        ids,
        messages,
        traces,
    } = claim(pool, max, CLAIM_LEASE).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let (spans, headers): (Vec<_>, Vec<_>) = messages
        .iter()
        .zip(&traces)
        .map(|((event, _, _), trace)| {
            trace
                .as_ref()
                .and_then(|t| propagate::publishing(event, t))
                .unzip()
        })
        .unzip();
    let published = tokio::time::timeout(
        PUBLISH_TIMEOUT,
        broker.publish_with_headers(&messages, &headers),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no publisher confirms within {PUBLISH_TIMEOUT:?}"))
    .and_then(|confirmed| confirmed);
    for span in spans.into_iter().flatten() {
        span.end(published.is_ok());
    }
    let client = pool.get().await?;
    let sql = if published.is_ok() {
        MARK_SENT_SQL
    } else {
        RELEASE_SQL
    };
    let statement = client.prepare_cached(sql).await?;
    unflushed(&client, client.execute(&statement, &[&ids])).await?;
    published?;
    Ok(ids.len())
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
            // After a failure, 200-300 ms: replicas that failed together do not all come
            // back at the same instant.
            let wait = if failures > 0 {
                poll.max(Duration::from_millis(200 + rand::random::<u64>() % 100))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> refinery::Runner {
        refinery::Runner::new(&[
            refinery::Migration::unapplied("V1__own", "SELECT 1").expect("V1"),
            refinery::Migration::unapplied("V3__more", "SELECT 3").expect("V3"),
        ])
    }

    #[test]
    fn the_shared_migrations_join_a_services_own_in_version_order() {
        let runner = with_migrations(
            own(),
            SharedVersions {
                messaging: 2,
                claim: 4,
                trace: 5,
            },
        );
        let names: Vec<String> = runner
            .get_migrations()
            .iter()
            .map(|m| format!("V{}__{}", m.version(), m.name()))
            .collect();
        assert_eq!(
            names,
            [
                "V1__own",
                "V2__messaging",
                "V3__more",
                "V4__outbox_claim",
                "V5__outbox_trace"
            ]
        );
        let sql: Vec<_> = runner.get_migrations().iter().map(|m| m.sql()).collect();
        assert_eq!(sql[1], Some(MIGRATION_SQL));
        assert_eq!(sql[3], Some(CLAIM_MIGRATION_SQL));
        assert_eq!(sql[4], Some(TRACE_MIGRATION_SQL));
    }

    #[test]
    #[should_panic(expected = "migration V3 is taken")]
    fn a_version_the_service_uses_itself_is_refused() {
        let _ = with_migrations(
            own(),
            SharedVersions {
                messaging: 2,
                claim: 3,
                trace: 4,
            },
        );
    }
}
