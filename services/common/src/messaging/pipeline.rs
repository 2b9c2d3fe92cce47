//! The consumer skeleton every service shares: decode, one transaction, inbox, effect,
//! commit, then wake the relay and the status waiters. A service writes only its effect
//! ([`Consume::apply`]), and, where part of the work must not hold a transaction (payment's
//! charge), what comes before it ([`Consume::prepare`]).
//!
//! Deliveries are handled in batches: the messages a replica already holds when a batch
//! starts (up to `AMQP_BATCH_MAX`) share one transaction, one inbox insert and one commit,
//! so under load a commit's WAL flush and round trips are paid once for many messages, the
//! way the relay's claim is shared by its rows. When the queue is quiet a batch is one
//! message and nothing waits for company. Any failure rolls the whole batch back, and its
//! messages are then handled one by one with the consumer's rules for each kind of failure
//! (retry, requeue, dead-letter), so one bad message never holds back or dooms the others,
//! and each is applied exactly once: by the batch, or after it by itself.

use super::consumer::{HandleError, Incoming};
use super::outbox::{self, RelaySignal};
use crate::changes::Changes;
use crate::db::Prepared as _;
use crate::telemetry::propagate;
use deadpool_postgres::{Pool, Transaction};
use futures::future::{try_join_all, BoxFuture};
use std::sync::Arc;
use tracing::Instrument as _;
use uuid::Uuid;

/// What applying one message did, for the work after the commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effect {
    /// It appended to the outbox: the relay is woken after the commit.
    pub appended: bool,
    /// It settled the status of this id: published to the status waiters after the commit.
    pub changed: Option<Uuid>,
}

impl Effect {
    /// Nothing for after the commit (a no-op, or a change nobody waits for).
    pub const NONE: Effect = Effect {
        appended: false,
        changed: None,
    };
    /// Events appended.
    pub const APPENDED: Effect = Effect {
        appended: true,
        changed: None,
    };

    /// The status of `id` changed, if `Some`.
    pub fn changed(id: Option<Uuid>) -> Self {
        Effect {
            appended: false,
            changed: id,
        }
    }
}

/// One service's part of consuming its queue. Both steps must be idempotent: a message whose
/// batch failed is applied again on its own.
pub trait Consume: Send + Sync + 'static {
    /// What [`Consume::prepare`] hands to [`Consume::apply`].
    type Prepared: Send + 'static;

    /// Whether batches of this consumer run one at a time across its replicas (a
    /// transaction-scoped advisory lock, taken only by transactions of more than one
    /// message). For effects on shared rows (inventory's stock): a batch locks rows in the
    /// order of its messages, so two batches in flight could each wait on the other's rows.
    const SERIAL_BATCHES: bool = false;

    /// Work before the transaction, with no transaction held (a call that takes its time);
    /// the messages of a batch are prepared concurrently. A payload that does not decode is
    /// poison here already.
    fn prepare<'a>(
        &'a self,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<Self::Prepared, HandleError>>;

    /// The message's effect, inside the batch's transaction, after its inbox row; a message
    /// the inbox has seen before is not applied at all.
    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        message: &'a Incoming,
        prepared: Self::Prepared,
    ) -> BoxFuture<'a, Result<Effect, HandleError>>;
}

/// How a consumer handles what it receives: a batch at a time, at most `max_batch` messages.
#[derive(Clone)]
pub struct Handler {
    pub(crate) max_batch: usize,
    pub(crate) run: BatchFn,
}

type BatchFn =
    Arc<dyn Fn(Vec<Incoming>) -> BoxFuture<'static, Result<(), HandleError>> + Send + Sync>;

impl Handler {
    /// A handler of one message at a time, concurrently up to the prefetch: for consumers
    /// that keep their own state, as the messaging tests do.
    pub fn each(
        handle: impl Fn(Incoming) -> BoxFuture<'static, Result<(), HandleError>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            max_batch: 1,
            run: Arc::new(move |mut batch: Vec<Incoming>| match batch.pop() {
                Some(message) if batch.is_empty() => handle(message),
                _ => Box::pin(async {
                    Err(HandleError::Failed(anyhow::anyhow!(
                        "a one-at-a-time handler was given a batch"
                    )))
                }),
            }),
        }
    }

    /// The skeleton around `consume` (see the module's documentation): batches of up to
    /// `max_batch` messages in `pool`'s database, `relay` woken after a commit that appended,
    /// and changed ids published to `changes`.
    pub fn pipeline<C: Consume>(
        consume: C,
        pool: Pool,
        relay: Option<RelaySignal>,
        changes: Option<Changes>,
        max_batch: usize,
    ) -> Self {
        let pipeline = Arc::new(Pipeline {
            consume,
            pool,
            relay,
            changes,
        });
        Self {
            max_batch: max_batch.max(1),
            run: Arc::new(move |batch: Vec<Incoming>| {
                let pipeline = pipeline.clone();
                Box::pin(async move { pipeline.run(&batch).await })
            }),
        }
    }
}

/// The advisory lock of [`Consume::SERIAL_BATCHES`], in the two-key space (which no
/// single-key lock of the services can meet).
const BATCH_LOCK: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&7201i32, &2i32];

struct Pipeline<C> {
    consume: C,
    pool: Pool,
    relay: Option<RelaySignal>,
    changes: Option<Changes>,
}

impl<C: Consume> Pipeline<C> {
    async fn run(&self, batch: &[Incoming]) -> Result<(), HandleError> {
        // Each traced message's `process` span, open until the commit is done with; an
        // event appended under it joins its trace.
        let spans: Vec<tracing::Span> = batch
            .iter()
            .map(|m| {
                propagate::process_span(&m.event_type, m.message_id, m.trace.as_ref(), batch.len())
            })
            .collect();
        let result = self.run_traced(batch, &spans).await;
        if result.is_err() {
            for span in &spans {
                propagate::failed(span, None);
            }
        }
        result
    }

    async fn run_traced(
        &self,
        batch: &[Incoming],
        spans: &[tracing::Span],
    ) -> Result<(), HandleError> {
        let prepared = try_join_all(
            batch
                .iter()
                .zip(spans)
                .map(|(m, span)| self.consume.prepare(m).instrument(span.clone())),
        )
        .await?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if C::SERIAL_BATCHES && batch.len() > 1 {
            tx.execute_cached("SELECT pg_advisory_xact_lock($1, $2)", &BATCH_LOCK)
                .await?;
        }
        let mut fresh = outbox::first_deliveries(&tx, batch).await?;
        let mut effects = Vec::with_capacity(batch.len());
        for ((message, prepared), span) in batch.iter().zip(prepared).zip(spans) {
            // `remove`: a message delivered twice within one batch is applied once.
            if !fresh.remove(&message.message_id) {
                tracing::debug!(message_id = %message.message_id, event = %message.event_type, "duplicate message: no second effect");
                continue;
            }
            let effect = self
                .consume
                .apply(&tx, message, prepared)
                .instrument(span.clone())
                .await?;
            effects.push(effect);
        }
        tx.commit().await?;
        if let Some(relay) = &self.relay {
            if effects.iter().any(|e| e.appended) {
                relay.wake();
            }
        }
        if let Some(changes) = &self.changes {
            for id in effects.iter().filter_map(|e| e.changed) {
                changes.publish(id);
            }
        }
        Ok(())
    }
}
