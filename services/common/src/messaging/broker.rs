//! One connection per replica, kept alive by a supervisor task.

use super::consumer::{consume, Ended, Handler};
use super::topology::{declare_topology, events_exchange, queue_name};
use anyhow::Context;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The longest wait between two connection attempts while RabbitMQ is away (the waits
/// double from 100 ms, each with up to 100 ms of jitter).
pub const RECONNECT_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct BrokerOptions {
    pub url: String,
    /// Prefix of every exchange and queue name: one suite (or one test) per prefix.
    pub prefix: String,
    /// The service whose queue this replica consumes.
    pub service: &'static str,
    /// Name of the connection in RabbitMQ's management UI.
    pub instance: String,
    /// Unacked messages the broker may push to this replica at once.
    pub prefetch: u16,
    /// Deliveries of one message before it is dead-lettered.
    pub delivery_limit: u32,
    /// The frame size asked for when `url` names none (see `AMQP_FRAME_MAX`).
    pub frame_max: u32,
}

struct Inner {
    opts: BrokerOptions,
    publisher: RwLock<Option<Channel>>,
    connected: AtomicBool,
}

/// Handle to the replica's broker connection. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

/// `url` parsed, asking for `frame_max`-byte frames unless it names a size itself. lapin keeps
/// a receive and a send ring buffer of 32 frames per connection, so the frame size is the
/// connection's memory: 8 MiB at RabbitMQ's 128 KiB default.
pub fn amqp_uri(url: &str, frame_max: u32) -> Result<AMQPUri, String> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|e| format!("{url:?} is not an AMQP URL: {e}"))?;
    uri.query.frame_max.get_or_insert(frame_max);
    Ok(uri)
}

/// One message to publish: event name, message id, JSON payload.
pub type Outgoing = (String, Uuid, Vec<u8>);

impl Broker {
    /// Start the supervisor: connect (with backoff while RabbitMQ is away), declare the
    /// topology, consume with `handler`, and reconnect whenever the connection is lost, until
    /// `cancel`. The returned task ends after a graceful drain.
    pub fn start(
        opts: BrokerOptions,
        handler: Option<Handler>,
        cancel: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let broker = Self {
            inner: Arc::new(Inner {
                opts,
                publisher: RwLock::new(None),
                connected: AtomicBool::new(false),
            }),
        };
        let task = tokio::spawn(broker.clone().supervise(handler, cancel));
        (broker, task)
    }

    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    pub fn options(&self) -> &BrokerOptions {
        &self.inner.opts
    }

    /// Publish a batch and wait until the broker confirmed every message (persisted to the
    /// quorum queues it routes to). Fails if any message is nacked or unroutable.
    pub async fn publish(&self, batch: &[Outgoing]) -> anyhow::Result<()> {
        self.publish_with_headers(batch, &[]).await
    }

    /// [`Broker::publish`], message `i` with `headers[i]` when that is `Some` (its trace).
    pub async fn publish_with_headers(
        &self,
        batch: &[Outgoing],
        headers: &[Option<FieldTable>],
    ) -> anyhow::Result<()> {
        let channel = self
            .inner
            .publisher
            .read()
            .await
            .clone()
            .context("not connected to RabbitMQ")?;
        let exchange = events_exchange(&self.inner.opts.prefix);
        let mut confirms = Vec::with_capacity(batch.len());
        for (i, (event_type, message_id, payload)) in batch.iter().enumerate() {
            let mut properties = message_properties(event_type, *message_id);
            if let Some(Some(headers)) = headers.get(i) {
                properties = properties.with_headers(headers.clone());
            }
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    event_type.as_str().into(),
                    // mandatory: a message no queue would take comes back instead of vanishing.
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    payload,
                    properties,
                )
                .await
                .context("publishing")?;
            confirms.push((event_type, confirm));
        }
        for (event_type, confirm) in confirms {
            let confirmation = confirm.await.context("waiting for the publisher confirm")?;
            anyhow::ensure!(
                !confirmation.is_nack(),
                "RabbitMQ nacked a {event_type} message"
            );
            if let Some(returned) = confirmation.take_message() {
                anyhow::bail!("{event_type} was unroutable: {}", returned.reply_text);
            }
        }
        Ok(())
    }

    async fn supervise(self, handler: Option<Handler>, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut failures = 0u32;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let session = tokio::select! {
                _ = cancel.cancelled() => break,
                s = self.connect() => s,
            };
            let (connection, consumer_channel) = match session {
                Ok(s) => s,
                Err(e) => {
                    if failures.is_multiple_of(20) {
                        tracing::warn!(error = %format!("{e:#}"), "RabbitMQ unavailable, retrying");
                    }
                    failures += 1;
                    let jitter = Duration::from_millis(rand::random::<u64>() % 100);
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff + jitter) => {}
                    }
                    // A restarted broker is back within seconds, and every second a replica
                    // waits past that is a second of lost throughput; a refused connection
                    // costs nothing, so the wait stops growing at 1 s.
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    continue;
                }
            };
            if failures > 0 {
                tracing::info!("connected to RabbitMQ again");
            }
            failures = 0;
            backoff = Duration::from_millis(100);
            self.inner.connected.store(true, Ordering::Relaxed);

            let status = connection.status().clone();
            let lost = move || !status.connected();
            let ended = match (&handler, &consumer_channel) {
                (Some(handler), Some(channel)) => match self.start_consumer(channel).await {
                    Ok(consumer) => {
                        consume(
                            consumer,
                            channel.clone(),
                            handler.clone(),
                            usize::from(self.inner.opts.prefetch),
                            cancel.clone(),
                            lost,
                        )
                        .await
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "could not start consuming");
                        Ended::Lost
                    }
                },
                _ => {
                    // Publish-only: just watch the connection.
                    let mut check = tokio::time::interval(Duration::from_millis(250));
                    loop {
                        tokio::select! {
                            _ = cancel.cancelled() => break Ended::Cancelled,
                            _ = check.tick() => if lost() { break Ended::Lost },
                        }
                    }
                }
            };
            self.inner.connected.store(false, Ordering::Relaxed);
            *self.inner.publisher.write().await = None;
            match ended {
                Ended::Cancelled => {
                    if let Some(channel) = consumer_channel {
                        let _ = channel.close(200, "shutting down".into()).await;
                    }
                    let _ = connection.close(200, "shutting down".into()).await;
                    break;
                }
                Ended::Lost => tracing::warn!("lost the RabbitMQ connection, reconnecting"),
            }
        }
        tracing::info!("broker connection closed");
    }

    async fn connect(&self) -> anyhow::Result<(Connection, Option<Channel>)> {
        let opts = &self.inner.opts;
        let properties =
            ConnectionProperties::default().with_connection_name(opts.instance.as_str().into());
        let uri = amqp_uri(&opts.url, opts.frame_max).map_err(anyhow::Error::msg)?;
        let connection = tokio::time::timeout(
            Duration::from_secs(5),
            Connection::connect_uri(uri, properties),
        )
        .await
        .context("connecting to RabbitMQ timed out")?
        .context("connecting to RabbitMQ")?;
        let publisher = connection.create_channel().await?;
        declare_topology(&publisher, &opts.prefix, opts.delivery_limit)
            .await
            .context("declaring the topology")?;
        // Publisher confirms: a message counts as sent only once the broker has it.
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *self.inner.publisher.write().await = Some(publisher);
        let consumer = connection.create_channel().await?;
        Ok((connection, Some(consumer)))
    }

    async fn start_consumer(&self, channel: &Channel) -> anyhow::Result<lapin::Consumer> {
        let opts = &self.inner.opts;
        // Prefetch bounds what one replica holds unacked: enough to keep its handlers busy,
        // few enough that a crashed replica leaves little to redeliver and the other replica
        // gets its share.
        channel
            .basic_qos(opts.prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue_name(&opts.prefix, opts.service).as_str().into(),
                opts.instance.as_str().into(),
                // no_ack = false: manual acks, sent only after the handler's commit.
                BasicConsumeOptions {
                    no_ack: false,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(consumer)
    }
}

/// The properties every event is published with: its id and type (what consumers dedupe and
/// dispatch on), JSON, persistent (2: written to disk, so a broker restart loses nothing),
/// and when it was sent.
pub fn message_properties(event_type: &str, message_id: uuid::Uuid) -> BasicProperties {
    BasicProperties::default()
        .with_message_id(message_id.to_string().into())
        .with_type(event_type.into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_timestamp(crate::auth::now_secs())
}
