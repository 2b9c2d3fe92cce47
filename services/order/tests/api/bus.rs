//! The test's own end of RabbitMQ: publish events to a suite prefix's exchange as another
//! service would, watch what the service under test emits through a queue of the test's
//! own, count dead letters, and delete the prefix's topology afterwards.

use common::events::{Event, SUBSCRIPTIONS};
use common::messaging::{dead_letter_queue, events_exchange, queue_name};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How long a test waits for an event or a state.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub struct Bus {
    _connection: Connection,
    channel: Channel,
    prefix: String,
    watch: String,
}

/// One message seen on the watch queue.
#[derive(Debug)]
pub struct Seen {
    pub event_type: String,
    pub payload: Vec<u8>,
}

impl Seen {
    pub fn decode<E: Event>(&self) -> E {
        assert_eq!(self.event_type, E::NAME, "event type");
        serde_json::from_slice(&self.payload).expect("the event decodes")
    }
}

impl Bus {
    /// Connect, and watch the events named in `watch` on `<prefix>.events` through a queue of
    /// the test's own (exclusive: it goes away with the connection). The exchange must exist:
    /// call once the service is ready (connected, topology declared).
    pub async fn connect(prefix: &str, watch: &[&str]) -> Self {
        let connection = Connection::connect(AMQP, ConnectionProperties::default())
            .await
            .expect("connect to RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        let queue = format!("{prefix}.test-watch-{}", Uuid::new_v4().simple());
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare the watch queue");
        for event in watch {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    events_exchange(prefix).as_str().into(),
                    (*event).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind the watch queue");
        }
        Self {
            _connection: connection,
            channel,
            prefix: prefix.to_string(),
            watch: queue,
        }
    }

    /// Publish `event` as its producer would; answers the message id.
    pub async fn publish<E: Event>(&self, event: &E) -> Uuid {
        let id = Uuid::new_v4();
        self.publish_as(id, E::NAME, &serde_json::to_vec(event).expect("json"))
            .await;
        id
    }

    /// Publish a message with this id, type (and routing key) and payload, whatever it is.
    pub async fn publish_as(&self, message_id: Uuid, event_type: &str, payload: &[u8]) {
        let properties = BasicProperties::default()
            .with_message_id(message_id.to_string().into())
            .with_type(event_type.into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        self.channel
            .basic_publish(
                events_exchange(&self.prefix).as_str().into(),
                event_type.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                payload,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("published");
    }

    /// The next message on the watch queue, waiting up to [`PATIENCE`].
    pub async fn next(&self) -> Seen {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(seen) = self.try_next().await {
                return seen;
            }
            assert!(Instant::now() < deadline, "no event emitted in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The next event, which must be an `E`.
    pub async fn next_event<E: Event>(&self) -> E {
        self.next().await.decode()
    }

    /// Assert that nothing more arrives on the watch queue for `quiet`.
    pub async fn assert_quiet(&self, quiet: Duration) {
        tokio::time::sleep(quiet).await;
        if let Some(seen) = self.try_next().await {
            panic!("unexpected event {}", seen.event_type);
        }
    }

    async fn try_next(&self) -> Option<Seen> {
        let got = self
            .channel
            .basic_get(
                self.watch.as_str().into(),
                // Auto-ack: the watch queue is the test's own, nothing to redeliver.
                BasicGetOptions { no_ack: true },
            )
            .await
            .expect("basic.get")?;
        let delivery = got.delivery;
        Some(Seen {
            event_type: delivery
                .properties
                .kind()
                .as_ref()
                .map(|k| k.as_str().to_string())
                .unwrap_or_default(),
            payload: delivery.data,
        })
    }

    /// Messages waiting in `service`'s dead-letter queue.
    pub async fn dead_letters(&self, service: &str) -> u32 {
        self.channel
            .queue_declare(
                dead_letter_queue(&self.prefix, service).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("passive declare of the dead-letter queue")
            .message_count()
    }

    /// Wait until `service`'s dead-letter queue holds `count` messages.
    pub async fn wait_dead_letters(&self, service: &str, count: u32) {
        let deadline = Instant::now() + PATIENCE;
        while self.dead_letters(service).await != count {
            assert!(Instant::now() < deadline, "never dead-lettered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Delete every queue and exchange of `prefix`, as the messaging tests of `common` do.
pub async fn delete_topology(prefix: &str) {
    let Ok(connection) = Connection::connect(AMQP, ConnectionProperties::default()).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    for (service, _) in SUBSCRIPTIONS {
        for queue in [
            queue_name(prefix, service),
            dead_letter_queue(prefix, service),
        ] {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in [events_exchange(prefix), format!("{prefix}.dlx")] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "bye".into()).await;
}
