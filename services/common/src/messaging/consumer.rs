//! Consuming one service's queue: manual acks after the handler (and so its database commit)
//! finished, sent in batches ([`super::acks`]), bounded concurrency, and a clear rule for each
//! kind of failure.

use super::acks::Acks;
use crate::error::ApiError;
use crate::events::Event;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicNackOptions, BasicRejectOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event_type: String,
    pub message_id: Uuid,
    pub payload: Vec<u8>,
    pub redelivered: bool,
    /// The trace it carries, its `receive` span in it (docs/tracing.md); `None` untraced.
    pub trace: Option<opentelemetry::Context>,
}

impl Incoming {
    /// A first delivery of `payload` as `event_type`, under a fresh message id: what a
    /// handler's unit test feeds it.
    pub fn first(event_type: &str, payload: &[u8]) -> Self {
        Self {
            event_type: event_type.into(),
            message_id: Uuid::new_v4(),
            payload: payload.to_vec(),
            redelivered: false,
            trace: None,
        }
    }

    /// The payload as event `E`; a payload that does not decode is poison.
    pub fn decode<E: Event>(&self) -> Result<E, HandleError> {
        serde_json::from_slice(&self.payload).map_err(|e| {
            HandleError::Poison(anyhow::anyhow!(
                "{} payload does not decode: {e}",
                self.event_type
            ))
        })
    }
}

/// Why a handler did not finish a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A dependency (the database) is away: retried here with backoff, without giving the
    /// message back, so an outage never pushes good messages into the dead-letter queue.
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    /// A failure that passes by itself (a deadlock or serialization failure PostgreSQL chose
    /// this transaction to lose, a statement timeout): retried here a few times with jittered
    /// backoff, without counting a delivery; if it persists, it is a [`HandleError::Failed`].
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
    /// The message can never be processed (undecodable, unknown type): dead-lettered at once.
    #[error("poison message: {0:#}")]
    Poison(anyhow::Error),
    /// Anything else: given back to the queue; after the delivery limit it is dead-lettered.
    #[error("handler failed: {0:#}")]
    Failed(anyhow::Error),
}

impl From<ApiError> for HandleError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable { message, .. } => HandleError::Unavailable(message),
            other => HandleError::Failed(anyhow::anyhow!("{other}: {:?}", other)),
        }
    }
}

impl From<tokio_postgres::Error> for HandleError {
    fn from(e: tokio_postgres::Error) -> Self {
        if crate::db::is_transient(&e) {
            return HandleError::Transient(anyhow::Error::new(e));
        }
        ApiError::from(e).into()
    }
}

/// In-place attempts of a [`HandleError::Transient`] failure before it counts as failed.
const TRANSIENT_TRIES: u32 = 5;

/// How long a failed delivery waits before it goes back to the queue: the n-th delivery of a
/// message waits about 100 ms × 2^(n−1), at most 2 s, with ±50 % jitter, so a message that
/// fails for a moment's reason does not spend its delivery limit in a few milliseconds, and
/// replicas retrying together spread out.
pub fn requeue_delay(delivery_count: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << delivery_count.saturating_sub(1).min(5));
    let base = base.min(2_000);
    let jitter = rand::random::<f64>() + 0.5;
    Duration::from_millis((base as f64 * jitter) as u64)
}

/// Deliveries of this message so far, the first included (the quorum queue's
/// `x-delivery-count` counts the earlier ones).
fn delivery_count(delivery: &Delivery) -> u32 {
    let earlier = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count").cloned())
        .and_then(|v| match v {
            lapin::types::AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            lapin::types::AMQPValue::LongInt(n) => u32::try_from(n).ok(),
            lapin::types::AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
            lapin::types::AMQPValue::LongUInt(n) => Some(n),
            _ => None,
        })
        .unwrap_or(0);
    earlier + 1
}

impl From<deadpool_postgres::PoolError> for HandleError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::from(e).into()
    }
}

pub use super::pipeline::Handler;

/// How the consume loop ended.
pub(crate) enum Ended {
    /// Cancelled: in-flight messages were finished and acked.
    Cancelled,
    /// The channel or connection failed; the broker supervisor reconnects.
    Lost,
}

/// Consume until cancelled or lost. A one-at-a-time handler runs up to `prefetch` messages at
/// once; a batching one runs `prefetch / max_batch` batches at once (at least one), each made
/// of the first delivery to arrive and whatever else has arrived by then, so batches grow with
/// the load by themselves.
pub(crate) async fn consume(
    mut consumer: lapin::Consumer,
    channel: lapin::Channel,
    handler: Handler,
    prefetch: usize,
    cancel: CancellationToken,
    lost: impl Fn() -> bool,
) -> Ended {
    let max_batch = handler.max_batch.max(1);
    let in_flight = (prefetch.max(1) / max_batch).max(1);
    let slots = Arc::new(Semaphore::new(in_flight));
    let acks = Acks::new(channel);
    let acks_done = CancellationToken::new();
    let acker = tokio::spawn(acks.clone().run(acks_done.clone().cancelled_owned()));
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let ended = 'consuming: loop {
        // A free slot first, then the deliveries: what arrives while every slot is busy
        // makes the next batch.
        let permit = tokio::select! {
            _ = cancel.cancelled() => break Ended::Cancelled,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break Ended::Lost,
            },
        };
        let first = loop {
            tokio::select! {
                _ = cancel.cancelled() => break 'consuming Ended::Cancelled,
                _ = check.tick() => if lost() { break 'consuming Ended::Lost },
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => break delivery,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consumer failed");
                        break 'consuming Ended::Lost;
                    }
                    None => break 'consuming Ended::Lost,
                },
            }
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match consumer.next().now_or_never() {
                Some(Some(Ok(delivery))) => batch.push(delivery),
                // Nothing more yet, or the stream failed: the next poll sees the failure.
                _ => break,
            }
        }
        for delivery in &batch {
            acks.received(delivery.delivery_tag);
        }
        let (handler, cancel, acks) = (handler.clone(), cancel.clone(), acks.clone());
        tokio::spawn(async move {
            process_batch(batch, &handler, &cancel, &acks).await;
            drop(permit);
        });
    };
    // Let the messages in flight finish (and be acked) before the channel goes away; the
    // ones prefetched but not started are returned to the queue when the channel closes.
    let all = u32::try_from(in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all)).await;
    // Then their acks, before the channel closes.
    acks_done.cancel();
    let _ = acker.await;
    ended
}

/// The message as a handler sees it, or `None` (rejected, dead-lettered) without a valid id.
async fn incoming(delivery: &Delivery, acks: &Acks) -> Option<Incoming> {
    let event_type = delivery
        .properties
        .kind()
        .as_ref()
        .map(|k| k.as_str().to_string())
        .unwrap_or_else(|| delivery.routing_key.as_str().to_string());
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .and_then(|id| Uuid::try_parse(id.as_str()).ok());
    let Some(message_id) = message_id else {
        tracing::error!(%event_type, "message without a valid message id: dead-lettered");
        let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        acks.settled(delivery.delivery_tag);
        return None;
    };
    let trace = crate::telemetry::propagate::received(&delivery.properties, &event_type);
    Some(Incoming {
        event_type,
        message_id,
        payload: delivery.data.clone(),
        redelivered: delivery.redelivered,
        trace,
    })
}

/// A batch in one go; if that fails, each of its messages on its own ([`process_one`]).
async fn process_batch(
    deliveries: Vec<Delivery>,
    handler: &Handler,
    cancel: &CancellationToken,
    acks: &Acks,
) {
    let mut messages = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        if let Some(message) = incoming(&delivery, acks).await {
            messages.push((delivery, message));
        }
    }
    if messages.len() > 1 {
        let batch = messages.iter().map(|(_, m)| m.clone()).collect();
        match (handler.run)(batch).await {
            Ok(()) => {
                // Acked only now: the batch's transaction has committed.
                for (delivery, _) in &messages {
                    acks.finished(delivery.delivery_tag);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, size = messages.len(), "batch rolled back: its messages one by one");
            }
        }
    }
    futures::future::join_all(
        messages
            .into_iter()
            .map(|(delivery, message)| process_one(delivery, message, handler, cancel, acks)),
    )
    .await;
}

async fn process_one(
    delivery: Delivery,
    incoming: Incoming,
    handler: &Handler,
    cancel: &CancellationToken,
    acks: &Acks,
) {
    let tag = delivery.delivery_tag;
    let message_id = incoming.message_id;
    let mut pause = Duration::from_millis(50);
    let mut transient = 0;
    loop {
        match (handler.run)(vec![incoming.clone()]).await {
            Ok(()) => {
                // Acked only now: the handler's transaction (state change, inbox row and
                // outbox rows) has committed.
                acks.finished(tag);
                return;
            }
            Err(HandleError::Unavailable(why)) => {
                if cancel.is_cancelled() {
                    // Shutting down: give it back for another replica (counts one delivery).
                    let _ = delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await;
                    acks.settled(tag);
                    return;
                }
                tracing::warn!(%why, event = %incoming.event_type, "dependency away, retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(HandleError::Poison(e)) => {
                tracing::error!(error = %format!("{e:#}"), event = %incoming.event_type, %message_id, "poison message: dead-lettered");
                let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
                acks.settled(tag);
                return;
            }
            Err(HandleError::Transient(e)) if transient + 1 < TRANSIENT_TRIES => {
                transient += 1;
                tracing::warn!(error = %format!("{e:#}"), event = %incoming.event_type, %message_id, attempt = transient, "transient failure, retrying in place");
                tokio::time::sleep(requeue_delay(transient)).await;
            }
            Err(HandleError::Failed(e) | HandleError::Transient(e)) => {
                let delay = requeue_delay(delivery_count(&delivery));
                tracing::error!(error = %format!("{e:#}"), event = %incoming.event_type, %message_id, ?delay, "handler failed: requeued after a delay");
                // Back to the queue after a pause; the quorum queue counts it toward the
                // delivery limit. Shutting down gives it back at once.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => {}
                }
                let _ = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await;
                acks.settled(tag);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_delivery_waits_longer_each_time_within_its_bounds() {
        for _ in 0..50 {
            let first = requeue_delay(1).as_millis();
            assert!((50..=150).contains(&first), "{first}");
            let third = requeue_delay(3).as_millis();
            assert!((200..=600).contains(&third), "{third}");
            let late = requeue_delay(30).as_millis();
            assert!((1_000..=3_000).contains(&late), "{late}");
        }
    }
}
