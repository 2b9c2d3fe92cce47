//! The suite's RabbitMQ topology seen from outside (async mode): queue depths, dead letters,
//! replay, and removing a suite's exchanges and queues. Names come from
//! `common::messaging` so the harness and the services cannot disagree.

use anyhow::Context;
use common::events::SUBSCRIPTIONS;
use common::messaging::{dead_letter_queue, queue_name};
use common::metrics::queue::passive_depth;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::{Channel, Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Messages waiting in one queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: String,
    pub service: String,
    pub dead_letter: bool,
    /// Ready messages (unacked ones are not counted by a passive declare).
    pub messages: u32,
    pub consumers: u32,
}

/// One dead-lettered message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub queue: String,
    pub event_type: String,
    pub message_id: String,
    pub payload: String,
    /// Why and how often it died, from RabbitMQ's `x-death` header (when present).
    pub reason: String,
}

async fn connect(amqp_url: &str) -> anyhow::Result<(Connection, Channel)> {
    let conn = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect(amqp_url, ConnectionProperties::default()),
    )
    .await
    .context("connecting to RabbitMQ timed out")?
    .context("connecting to RabbitMQ")?;
    let channel = conn.create_channel().await?;
    Ok((conn, channel))
}

/// Ready messages and consumers of `queue`, or `None` when it does not exist.
async fn passive(channel: &Channel, queue: &str) -> Option<(u32, u32)> {
    let depth = passive_depth(channel, queue).await.ok()?;
    Some((
        u32::try_from(depth.ready).unwrap_or(u32::MAX),
        u32::try_from(depth.consumers).unwrap_or(u32::MAX),
    ))
}

/// Depth of every service queue and dead-letter queue of the suite `prefix` that exists.
pub async fn queue_depths(amqp_url: &str, prefix: &str) -> anyhow::Result<Vec<QueueDepth>> {
    let (conn, _) = connect(amqp_url).await?;
    let mut depths = Vec::new();
    for (service, _) in SUBSCRIPTIONS {
        for (queue, dead_letter) in [
            (queue_name(prefix, service), false),
            (dead_letter_queue(prefix, service), true),
        ] {
            // A passive declare of a missing queue closes the channel: one channel per probe.
            let channel = conn.create_channel().await?;
            if let Some((messages, consumers)) = passive(&channel, &queue).await {
                depths.push(QueueDepth {
                    queue,
                    service: (*service).to_string(),
                    dead_letter,
                    messages,
                    consumers,
                });
                let _ = channel.close(200, "ok".into()).await;
            }
        }
    }
    let _ = conn.close(200, "ok".into()).await;
    Ok(depths)
}

fn dlq_names(prefix: &str, queue: Option<&str>) -> Vec<(String, String)> {
    SUBSCRIPTIONS
        .iter()
        .map(|(service, _)| ((*service).to_string(), dead_letter_queue(prefix, service)))
        .filter(|(service, dlq)| queue.is_none_or(|q| q == dlq || q == service))
        .collect()
}

/// The dead letters of the suite (or of one DLQ, by queue or service name), left in place.
pub async fn dead_letters(
    amqp_url: &str,
    prefix: &str,
    queue: Option<&str>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let (conn, _) = connect(amqp_url).await?;
    let mut out = Vec::new();
    for (_, dlq) in dlq_names(prefix, queue) {
        let channel = conn.create_channel().await?;
        let Some((count, _)) = passive(&channel, &dlq).await else {
            continue;
        };
        // Peek: get without ack, then give everything back on close (order is kept).
        let mut held = Vec::new();
        for _ in 0..count {
            let Some(msg) = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            let delivery = msg.delivery;
            out.push(DeadLetter {
                queue: dlq.clone(),
                event_type: delivery
                    .properties
                    .kind()
                    .as_ref()
                    .map(|k| k.to_string())
                    .unwrap_or_default(),
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|k| k.to_string())
                    .unwrap_or_default(),
                payload: String::from_utf8_lossy(&delivery.data).into_owned(),
                reason: death_reason(&delivery.properties),
            });
            held.push(delivery);
        }
        for delivery in held {
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
        }
        let _ = channel.close(200, "ok".into()).await;
    }
    let _ = conn.close(200, "ok".into()).await;
    Ok(out)
}

fn death_reason(properties: &lapin::BasicProperties) -> String {
    let Some(headers) = properties.headers() else {
        return String::new();
    };
    headers
        .inner()
        .iter()
        .find(|(k, _)| k.as_str() == "x-death")
        .map(|(_, v)| format!("{v:?}"))
        .unwrap_or_default()
}

/// Publish every dead letter (of one DLQ, or all) back to the queue it died in, with its
/// message id unchanged (consumers' inboxes drop what was already processed), and remove it
/// from the DLQ once the broker confirmed the copy. Answers how many were replayed.
pub async fn replay(amqp_url: &str, prefix: &str, queue: Option<&str>) -> anyhow::Result<usize> {
    let (conn, channel) = connect(amqp_url).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut replayed = 0;
    for (service, dlq) in dlq_names(prefix, queue) {
        let probe = conn.create_channel().await?;
        let Some((count, _)) = passive(&probe, &dlq).await else {
            continue;
        };
        let _ = probe.close(200, "ok".into()).await;
        let target = queue_name(prefix, &service);
        // At most the messages there now: one that dies again during the replay waits for
        // the next replay instead of looping.
        for _ in 0..count {
            let Some(msg) = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            let delivery = msg.delivery;
            let confirm = channel
                .basic_publish(
                    "".into(),
                    target.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &delivery.data,
                    delivery.properties.clone(),
                )
                .await?
                .await?;
            anyhow::ensure!(!confirm.is_nack(), "RabbitMQ refused the replayed message");
            delivery.ack(BasicAckOptions::default()).await?;
            replayed += 1;
        }
    }
    let _ = conn.close(200, "ok".into()).await;
    Ok(replayed)
}

/// Remove the suite's exchanges and queues (a fresh `up`, a test's teardown). Nothing to
/// remove, or RabbitMQ away, is not an error for a sync suite.
pub async fn delete_topology(amqp_url: &str, prefix: &str) -> anyhow::Result<()> {
    let (conn, channel) = connect(amqp_url).await?;
    common::messaging::delete_topology(&channel, prefix).await;
    let _ = conn.close(200, "ok".into()).await;
    Ok(())
}
