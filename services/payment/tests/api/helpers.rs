//! Start the payment service on port 0 against a fresh database of its own (and in async mode
//! a queue prefix of its own), and drop them when the test ends.

use common::events::Event;
use common::messaging::{dead_letter_queue, queue_name};
use common::{CommonConfig, Mode};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use payment::configuration::Settings;
use payment::startup::Application;
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub internal_key: String,
    /// Queue prefix of this test (async mode with a reachable broker only).
    pub amqp_prefix: Option<String>,
    database_url: String,
    database_name: String,
    cancel: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Start the service with settings adjusted by `tweak` (never the process environment).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(tweak, None).await
}

/// The service in async mode on a queue prefix of its own, ready (connected to RabbitMQ).
/// Prefetch 1: messages are handled one at a time in queue order, so once a later message
/// shows its effect every earlier one has been handled (and acked).
pub async fn spawn_async_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let prefix = format!("t_pay_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let app = spawn(
        |s| {
            s.common.mode = Mode::Async;
            s.common.amqp_url = AMQP.into();
            s.common.amqp_prefix = prefix.clone();
            s.common.amqp_prefetch = 1;
            s.common.amqp_delivery_limit = 3;
            s.common.outbox_poll_ms = 50;
            tweak(s);
        },
        Some(prefix.clone()),
    )
    .await;
    app.wait_ready().await;
    app
}

/// Async mode with `AMQP_URL` pointing where nothing listens.
pub async fn spawn_async_app_without_broker() -> TestApp {
    spawn(
        |s| {
            s.common.mode = Mode::Async;
            s.common.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
        },
        None,
    )
    .await
}

async fn spawn(tweak: impl FnOnce(&mut Settings), amqp_prefix: Option<String>) -> TestApp {
    let prefix = format!("t_pay_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let common = CommonConfig {
        port: 0,
        database_prefix: prefix,
        workers: 1,
        db_pool_size: 4,
        ..CommonConfig::default()
    };
    let mut settings = Settings::with_common(common);
    // Fast provider: the tests are about correctness, not latency.
    settings.payment_latency_ms = 1;
    settings.payment_latency_jitter_ms = 2;
    tweak(&mut settings);
    let database_url = settings.common.database_url.clone();
    let database_name = settings.common.database_name(payment::SERVICE);
    let internal_key = settings.common.internal_key.clone();
    let app = Application::build(settings)
        .await
        .expect("the payment service starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let cancel = app.cancel_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        internal_key,
        amqp_prefix,
        database_url,
        database_name,
        cancel,
        server: Some(server),
    }
}

impl TestApp {
    pub async fn charge(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/internal/payments/charges", self.address))
            .header(common::auth::INTERNAL_KEY_HEADER, &self.internal_key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn by_order(&self, order_id: &str) -> reqwest::Response {
        self.http
            .get(format!(
                "{}/internal/payments/by-order/{order_id}",
                self.address
            ))
            .header(common::auth::INTERNAL_KEY_HEADER, &self.internal_key)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A direct connection to the service's database, to check what it stored.
    pub async fn db(&self) -> tokio_postgres::Client {
        connect(&common::db::database_url(
            &self.database_url,
            &self.database_name,
        ))
        .await
    }

    /// `(payments, provider charges)` of `order_id`.
    pub async fn charges_of(&self, order_id: Uuid) -> (i64, i64) {
        let row = self
            .db()
            .await
            .query_one(
                "SELECT (SELECT count(*) FROM payments WHERE order_id = $1),
                        (SELECT count(*) FROM provider_charges WHERE idempotency_key = $1)",
                &[&order_id],
            )
            .await
            .expect("counts");
        (row.get(0), row.get(1))
    }

    /// `/readyz` answers 200: the database answers and the broker is connected (its topology
    /// declared).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self.get("/readyz").await;
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "never ready: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A connection to this test's exchange that observes the events payment emits.
    pub async fn bus(&self) -> TestBus {
        let prefix = self.amqp_prefix.as_deref().expect("an async app");
        TestBus::connect(
            prefix,
            &[
                common::events::PaymentSucceeded::NAME,
                common::events::PaymentDeclined::NAME,
            ],
        )
        .await
    }

    /// Stop the service (drained, as on SIGTERM) and delete this test's queues and exchanges;
    /// the database goes when the app is dropped.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
        if let Some(prefix) = self.amqp_prefix.take() {
            cleanup_amqp(&prefix).await;
        }
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connected to PostgreSQL");
    tokio::spawn(conn);
    client
}

impl Drop for TestApp {
    /// Best effort: drop the test database (and the queue prefix of a test that failed before
    /// `stop`), even when the test failed. Its own runtime on its own thread, because the
    /// test's runtime may be shutting down.
    fn drop(&mut self) {
        self.cancel.cancel();
        let server = common::db::database_url(&self.database_url, "postgres");
        let name = self.database_name.clone();
        let amqp_prefix = self.amqp_prefix.take();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Some(prefix) = amqp_prefix {
                    cleanup_amqp(&prefix).await;
                }
                if let Ok((client, conn)) = tokio_postgres::connect(&server, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Messages waiting in `queue` (passive declare: never creates it).
pub async fn message_count(queue: &str) -> u32 {
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("passive declare");
    let _ = conn.close(200, "bye".into()).await;
    q.message_count()
}

pub fn dlq(prefix: &str) -> String {
    dead_letter_queue(prefix, payment::SERVICE)
}

/// Every queue and exchange of `prefix`, as common's messaging tests delete them.
async fn cleanup_amqp(prefix: &str) {
    let Ok(conn) = Connection::connect(AMQP, ConnectionProperties::default()).await else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    for (service, _) in common::events::SUBSCRIPTIONS {
        for q in [
            queue_name(prefix, service),
            dead_letter_queue(prefix, service),
        ] {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for x in [format!("{prefix}.events"), format!("{prefix}.dlx")] {
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "bye".into()).await;
}

/// The test's side of RabbitMQ: publishes to `<prefix>.events` as another service would, and
/// reads what the service emits from an exclusive queue of its own.
pub struct TestBus {
    conn: Connection,
    channel: Channel,
    exchange: String,
    observed: String,
    received: Mutex<Vec<(String, Value)>>,
}

impl TestBus {
    async fn connect(prefix: &str, keys: &[&str]) -> Self {
        let conn = Connection::connect(AMQP, ConnectionProperties::default())
            .await
            .expect("connect");
        let channel = conn.create_channel().await.expect("channel");
        let exchange = format!("{prefix}.events");
        let observed = format!("{prefix}.observer");
        channel
            .queue_declare(
                observed.as_str().into(),
                // Exclusive: gone with this connection, whatever happens to the test.
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("observer queue");
        for key in keys {
            channel
                .queue_bind(
                    observed.as_str().into(),
                    exchange.as_str().into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind the observer");
        }
        Self {
            conn,
            channel,
            exchange,
            observed,
            received: Mutex::new(Vec::new()),
        }
    }

    /// Publish `event` under a new message id; answers the id.
    pub async fn publish<E: Event>(&self, event: &E) -> Uuid {
        let id = Uuid::new_v4();
        self.publish_as(id, event).await;
        id
    }

    /// Publish `event` under `message_id` (again: a duplicate delivery).
    pub async fn publish_as<E: Event>(&self, message_id: Uuid, event: &E) {
        self.publish_raw(
            E::NAME,
            message_id,
            &serde_json::to_vec(event).expect("json"),
        )
        .await;
    }

    /// Publish any bytes as event `name`.
    pub async fn publish_raw(&self, name: &str, message_id: Uuid, payload: &[u8]) {
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                name.into(),
                BasicPublishOptions::default(),
                payload,
                BasicProperties::default()
                    .with_message_id(message_id.to_string().into())
                    .with_type(name.into())
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("published");
    }

    async fn drain(&self) {
        while let Some(msg) = self
            .channel
            .basic_get(
                self.observed.as_str().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .expect("basic.get")
        {
            let kind = msg.delivery.routing_key.as_str().to_string();
            let body: Value = serde_json::from_slice(&msg.delivery.data).expect("json event");
            self.received.lock().expect("lock").push((kind, body));
        }
    }

    /// Every event about `order_id` observed so far, as (name, payload).
    pub async fn about(&self, order_id: Uuid) -> Vec<(String, Value)> {
        self.drain().await;
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, body)| body["order_id"] == order_id.to_string())
            .cloned()
            .collect()
    }

    /// The events about `order_id`, once there are at least `count`.
    pub async fn wait_for(&self, order_id: Uuid, count: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self.about(order_id).await;
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

    pub async fn close(self) {
        let _ = self.conn.close(200, "bye".into()).await;
    }
}
