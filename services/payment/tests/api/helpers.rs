//! Start the payment service on port 0 against a fresh database of its own (and in async mode
//! a queue prefix of its own), and drop them when the test ends.

use common::events::Event;
use common::messaging::dead_letter_queue;
use common::{CommonConfig, Mode};
use payment::configuration::Settings;
use payment::startup::Application;
use serde_json::Value;
use std::time::Duration;
use test_support::{delete_topology, Bus, AMQP};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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
        token_secret: test_support::secret(),
        internal_key: test_support::secret(),
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

    pub async fn refund(&self, order_id: Uuid) -> reqwest::Response {
        self.http
            .post(format!("{}/internal/payments/refunds", self.address))
            .header(common::auth::INTERNAL_KEY_HEADER, &self.internal_key)
            .json(&serde_json::json!({ "order_id": order_id }))
            .send()
            .await
            .expect("request sent")
    }

    /// How many of `order_id`'s provider charges were given back.
    pub async fn refunds_of(&self, order_id: Uuid) -> i64 {
        self.db()
            .await
            .query_one(
                "SELECT count(*) FROM provider_charges
                 WHERE idempotency_key = $1 AND refunded_at IS NOT NULL",
                &[&order_id],
            )
            .await
            .expect("count")
            .get(0)
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
        test_support::wait_ready(&self.http, &self.address).await;
    }

    /// A connection to this test's exchange that observes the events payment emits.
    pub async fn bus(&self) -> Bus {
        let prefix = self.amqp_prefix.as_deref().expect("an async app");
        Bus::connect(
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
            delete_topology(&prefix).await;
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
                    delete_topology(&prefix).await;
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

pub fn dlq(prefix: &str) -> String {
    dead_letter_queue(prefix, payment::SERVICE)
}
