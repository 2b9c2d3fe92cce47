//! The test's own end of RabbitMQ, shared by the services' integration tests: publish events
//! to a suite prefix's exchange as another service would, watch what the service under test
//! emits through a queue of the test's own, count dead letters, and delete the prefix's
//! topology afterwards.
//!
//! Compiled only for tests: the services take this crate as a dev-dependency, so no service
//! binary contains it. It panics (with a message) instead of
//! answering errors, as test helpers do.

use common::events::Event;
use common::messaging::{dead_letter_queue, events_exchange, message_properties};
use common::metrics::queue::passive_depth;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The local RabbitMQ the tests run against.
pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// How long a test waits for an event or a state.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A connection to `<prefix>.events`: publishes as another service would, and reads what the
/// service under test emits from an exclusive watch queue of its own.
pub struct Bus {
    connection: Connection,
    channel: Channel,
    prefix: String,
    watch: String,
    log: Mutex<Log>,
}

/// What the watch queue delivered so far.
#[derive(Default)]
struct Log {
    /// Every message, in arrival order.
    seen: Vec<Seen>,
    /// How many of `seen` [`Bus::next`] has handed out.
    taken: usize,
}

/// One message seen on the watch queue.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its `type` property.
    pub event_type: String,
    /// The routing key it was published with (the event name, as the services publish).
    pub routing_key: String,
    pub payload: Vec<u8>,
}

impl Seen {
    pub fn decode<E: Event>(&self) -> E {
        assert_eq!(self.event_type, E::NAME, "event type");
        serde_json::from_slice(&self.payload).expect("the event decodes")
    }

    /// The payload as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("json event")
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
            connection,
            channel,
            prefix: prefix.to_string(),
            watch: queue,
            log: Mutex::new(Log::default()),
        }
    }

    /// Publish `event` as its producer would; answers the message id.
    pub async fn publish<E: Event>(&self, event: &E) -> Uuid {
        let id = Uuid::new_v4();
        self.publish_with_id(id, event).await;
        id
    }

    /// Publish `event` under `message_id` (again: a duplicate delivery).
    pub async fn publish_with_id<E: Event>(&self, message_id: Uuid, event: &E) {
        self.publish_as(
            message_id,
            E::NAME,
            &serde_json::to_vec(event).expect("json"),
        )
        .await;
    }

    /// Publish a message with this id, type (and routing key) and payload, whatever it is.
    pub async fn publish_as(&self, message_id: Uuid, event_type: &str, payload: &[u8]) {
        self.publish_raw(event_type, event_type, message_id, payload)
            .await;
    }

    /// Publish any bytes with routing key `key` and type property `event_type`.
    pub async fn publish_raw(&self, key: &str, event_type: &str, message_id: Uuid, payload: &[u8]) {
        // As the services publish: consumers see a test's message as another service's.
        let properties = message_properties(event_type, message_id);
        self.channel
            .basic_publish(
                events_exchange(&self.prefix).as_str().into(),
                key.into(),
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

    /// The first message [`Bus::next`] has not handed out yet, if one has arrived.
    async fn try_next(&self) -> Option<Seen> {
        self.drain().await;
        let mut log = self.log.lock().expect("lock");
        let seen = log.seen.get(log.taken).cloned()?;
        log.taken += 1;
        Some(seen)
    }

    /// Move every message waiting on the watch queue into the log.
    async fn drain(&self) {
        while let Some(got) = self
            .channel
            .basic_get(
                self.watch.as_str().into(),
                // Auto-ack: the watch queue is the test's own, nothing to redeliver.
                BasicGetOptions { no_ack: true },
            )
            .await
            .expect("basic.get")
        {
            let delivery = got.delivery;
            let seen = Seen {
                event_type: delivery
                    .properties
                    .kind()
                    .as_ref()
                    .map(|k| k.as_str().to_string())
                    .unwrap_or_default(),
                routing_key: delivery.routing_key.as_str().to_string(),
                payload: delivery.data,
            };
            self.log.lock().expect("lock").seen.push(seen);
        }
    }

    /// Every event observed so far, as (name, payload).
    pub async fn received(&self) -> Vec<(String, Value)> {
        self.drain().await;
        self.logged()
    }

    fn logged(&self) -> Vec<(String, Value)> {
        self.log
            .lock()
            .expect("lock")
            .seen
            .iter()
            .map(|seen| (seen.routing_key.clone(), seen.json()))
            .collect()
    }

    /// Every event about `order_id` observed so far, as (name, payload).
    pub async fn about_order(&self, order_id: Uuid) -> Vec<(String, Value)> {
        self.received()
            .await
            .into_iter()
            .filter(|(_, body)| body["order_id"] == order_id.to_string())
            .collect()
    }

    /// The events about `order_id`, once there are at least `count`.
    pub async fn wait_for_order(&self, order_id: Uuid, count: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self.about_order(order_id).await;
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{} event(s) about order {order_id}, expected {count}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The events named `name` about `reservation_id`, once there are at least `count`.
    pub async fn wait_for_reservation(
        &self,
        name: &str,
        reservation_id: Uuid,
        count: usize,
    ) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found: Vec<Value> = self
                .received()
                .await
                .into_iter()
                .filter(|(kind, body)| {
                    kind == name && body["reservation_id"] == reservation_id.to_string()
                })
                .map(|(_, body)| body)
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {name} for {reservation_id}; got {:?}",
                self.logged()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Messages waiting in `service`'s dead-letter queue.
    pub async fn dead_letters(&self, service: &str) -> u32 {
        passive_count(&self.channel, &dead_letter_queue(&self.prefix, service)).await
    }

    /// Wait until `service`'s dead-letter queue holds `count` messages.
    pub async fn wait_dead_letters(&self, service: &str, count: u32) {
        let deadline = Instant::now() + PATIENCE;
        while self.dead_letters(service).await != count {
            assert!(Instant::now() < deadline, "never dead-lettered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Close the connection (its watch queue goes with it).
    pub async fn close(self) {
        let _ = self.connection.close(200, "bye".into()).await;
    }
}

/// Messages waiting in `queue` (passive declare: never creates it), on a connection of its own.
pub async fn message_count(queue: &str) -> u32 {
    let connection = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let count = passive_count(&channel, queue).await;
    let _ = connection.close(200, "bye".into()).await;
    count
}

async fn passive_count(channel: &Channel, queue: &str) -> u32 {
    let depth = passive_depth(channel, queue)
        .await
        .expect("passive declare");
    u32::try_from(depth.ready).expect("a message count fits in u32")
}

/// Delete every queue and exchange of `prefix`, as the messaging tests of `common` do.
pub async fn delete_topology(prefix: &str) {
    let Ok(connection) = Connection::connect(AMQP, ConnectionProperties::default()).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    common::messaging::delete_topology(&channel, prefix).await;
    let _ = connection.close(200, "bye".into()).await;
}

/// A fresh secret that [`common::CommonConfig::check_secrets`] accepts (64 random hex
/// characters), for a test instance's `TOKEN_SECRET` or `INTERNAL_KEY`.
pub fn secret() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// A port nothing listens on right now (bound and let go), for an address that must refuse.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Wait (at most [`PATIENCE`]) until the service at `base` answers `/readyz` with 200.
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let last = match http.get(format!("{base}/readyz")).send().await {
            Ok(res) if res.status() == 200 => return,
            Ok(res) => res.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "never ready: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
