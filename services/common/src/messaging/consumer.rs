//! Consuming one service's queue: manual acks after the handler (and so its database commit)
//! finished, sent in batches ([`super::acks`]), bounded concurrency, and a clear rule for each
//! kind of failure.

use super::acks::Acks;
use crate::error::ApiError;
use crate::events::Event;
use futures::future::BoxFuture;
use futures::StreamExt;
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
}

impl Incoming {
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
        ApiError::from(e).into()
    }
}

impl From<deadpool_postgres::PoolError> for HandleError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::from(e).into()
    }
}

/// A service's message handler. It must be idempotent (see [`super::outbox::first_delivery`]).
pub type Handler =
    Arc<dyn Fn(Incoming) -> BoxFuture<'static, Result<(), HandleError>> + Send + Sync>;

/// How the consume loop ended.
pub(crate) enum Ended {
    /// Cancelled: in-flight messages were finished and acked.
    Cancelled,
    /// The channel or connection failed; the broker supervisor reconnects.
    Lost,
}

pub(crate) async fn consume(
    mut consumer: lapin::Consumer,
    channel: lapin::Channel,
    handler: Handler,
    concurrency: usize,
    cancel: CancellationToken,
    lost: impl Fn() -> bool,
) -> Ended {
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let acks = Acks::new(channel);
    let acks_done = CancellationToken::new();
    let acker = tokio::spawn(acks.clone().run(acks_done.clone().cancelled_owned()));
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let ended = loop {
        tokio::select! {
            _ = cancel.cancelled() => break Ended::Cancelled,
            _ = check.tick() => if lost() { break Ended::Lost },
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    let Ok(permit) = slots.clone().acquire_owned().await else { break Ended::Lost };
                    acks.received(delivery.delivery_tag);
                    let (handler, cancel, acks) = (handler.clone(), cancel.clone(), acks.clone());
                    tokio::spawn(async move {
                        process(delivery, &handler, &cancel, &acks).await;
                        drop(permit);
                    });
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer failed");
                    break Ended::Lost;
                }
                None => break Ended::Lost,
            },
        }
    };
    // Let the messages in flight finish (and be acked) before the channel goes away; the
    // ones prefetched but not started are returned to the queue when the channel closes.
    let all = u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all)).await;
    // Then their acks, before the channel closes.
    acks_done.cancel();
    let _ = acker.await;
    ended
}

async fn process(delivery: Delivery, handler: &Handler, cancel: &CancellationToken, acks: &Acks) {
    let tag = delivery.delivery_tag;
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
        acks.settled(tag);
        return;
    };
    let incoming = Incoming {
        event_type,
        message_id,
        payload: delivery.data.clone(),
        redelivered: delivery.redelivered,
    };
    let mut pause = Duration::from_millis(50);
    loop {
        match handler(incoming.clone()).await {
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
            Err(HandleError::Failed(e)) => {
                tracing::error!(error = %format!("{e:#}"), event = %incoming.event_type, %message_id, "handler failed: requeued");
                // Back to the queue; the quorum queue counts it toward the delivery limit.
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
