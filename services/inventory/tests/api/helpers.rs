use common::auth::INTERNAL_KEY_HEADER;
use common::events::Event;
use common::messaging::dead_letter_queue;
use common::{CommonConfig, Mode};
use inventory::configuration::Settings;
use inventory::startup::Application;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use test_support::{delete_topology, message_count, Bus, AMQP};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub internal_key: String,
    pub db_url: String,
    /// Queue prefix of this test (async mode only).
    pub amqp_prefix: Option<String>,
    server_url: String,
    db_name: String,
    cancel: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    cleaned: bool,
}

fn test_prefix() -> String {
    format!("t_inv_{}", &Uuid::new_v4().simple().to_string()[..8])
}

fn config(prefix: &str) -> CommonConfig {
    CommonConfig {
        database_prefix: prefix.to_string(),
        db_pool_size: 16,
        workers: 2,
        token_secret: test_support::secret(),
        internal_key: test_support::secret(),
        ..CommonConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn(config(&test_prefix()), None).await
}

/// Sync mode, but with `AMQP_URL` pointing where nothing listens.
pub async fn spawn_app_with_amqp(url: &str) -> TestApp {
    let mut common = config(&test_prefix());
    common.amqp_url = url.into();
    spawn(common, None).await
}

/// The service in async mode on a queue prefix of its own. Prefetch 1: messages are handled
/// one at a time in queue order, so once a later message shows its effect every earlier one
/// has been handled (and acked).
pub async fn spawn_async_app() -> TestApp {
    spawn_async_app_with_prefetch(1).await
}

/// The service in async mode handling up to `prefetch` messages at once.
pub async fn spawn_async_app_with_prefetch(prefetch: u16) -> TestApp {
    let prefix = test_prefix();
    let mut common = config(&prefix);
    common.mode = Mode::Async;
    common.amqp_url = AMQP.into();
    common.amqp_prefix = prefix.clone();
    common.amqp_prefetch = prefetch;
    common.amqp_delivery_limit = 3;
    common.outbox_poll_ms = 50;
    let app = spawn(common, Some(prefix)).await;
    app.wait_ready().await;
    app
}

async fn spawn(common: CommonConfig, amqp_prefix: Option<String>) -> TestApp {
    let db_name = common.database_name(inventory::SERVICE);
    let app = Application::build(Settings {
        common: common.clone(),
    })
    .await
    .expect("inventory starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let cancel = app.cancel_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        http: reqwest::Client::new(),
        internal_key: common.internal_key.clone(),
        db_url: common::db::database_url(&common.database_url, &db_name),
        amqp_prefix,
        server_url: common.database_url.clone(),
        db_name,
        cancel,
        server: Some(server),
        cleaned: false,
    }
}

impl TestApp {
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.db_url, NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
    }

    /// A product with `stock` units and a per-user limit (0 = none).
    pub async fn product(&self, stock: i32, limit: i32) -> Uuid {
        let id = Uuid::new_v4();
        self.sql()
            .await
            .execute(
                "INSERT INTO stock (product_id, initial, available, reserved, sold, per_user_limit)
                 VALUES ($1, $2, $2, 0, 0, $3)",
                &[&id, &stock, &limit],
            )
            .await
            .expect("seed stock");
        id
    }

    pub async fn level(&self, product: Uuid) -> (i32, i32, i32) {
        let row = self
            .sql()
            .await
            .query_one(
                "SELECT available, reserved, sold FROM stock WHERE product_id = $1",
                &[&product],
            )
            .await
            .expect("stock row");
        (row.get(0), row.get(1), row.get(2))
    }

    /// A number from the test database (`SELECT count(*) ...`).
    pub async fn count(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> i64 {
        self.sql()
            .await
            .query_one(sql, params)
            .await
            .expect("count")
            .get(0)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .header(INTERNAL_KEY_HEADER, &self.internal_key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn hold(
        &self,
        reservation: Uuid,
        user: Uuid,
        product: Uuid,
        qty: i64,
    ) -> (u16, Value) {
        self.post(
            "/internal/inventory/holds",
            json!({
                "reservation_id": reservation,
                "user_id": user,
                "items": [{"product_id": product, "quantity": qty}],
            }),
        )
        .await
    }

    /// `/readyz` answers 200: the database answers and the broker is connected (its topology
    /// declared).
    pub async fn wait_ready(&self) {
        test_support::wait_ready(&self.http, &self.base).await;
    }

    /// A connection to this test's exchange that observes the events the inventory emits.
    pub async fn bus(&self) -> Bus {
        let prefix = self.amqp_prefix.as_deref().expect("an async app");
        Bus::connect(
            prefix,
            &[
                common::events::StockReserved::NAME,
                common::events::StockRejected::NAME,
            ],
        )
        .await
    }

    /// Stop the service (drained, as on SIGTERM), delete this test's queues, exchanges and
    /// database.
    pub async fn cleanup(mut self) {
        self.cancel.cancel();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
        drop_test_resources(&self.server_url, &self.db_name, self.amqp_prefix.as_deref()).await;
        self.cleaned = true;
    }
}

impl Drop for TestApp {
    /// A test that failed before `cleanup`: stop the service and delete what it made anyway,
    /// on a runtime of its own (the test's may be shutting down).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        self.cancel.cancel();
        let (server_url, db_name) = (self.server_url.clone(), self.db_name.clone());
        let prefix = self.amqp_prefix.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(drop_test_resources(
                &server_url,
                &db_name,
                prefix.as_deref(),
            ));
        })
        .join();
    }
}

async fn drop_test_resources(server_url: &str, db_name: &str, amqp_prefix: Option<&str>) {
    if let Some(prefix) = amqp_prefix {
        delete_topology(prefix).await;
    }
    if let Ok((client, conn)) =
        tokio_postgres::connect(&common::db::database_url(server_url, "postgres"), NoTls).await
    {
        tokio::spawn(conn);
        let _ = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
            ))
            .await;
    }
}

pub async fn wait_for_messages(queue: &str, expected: u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = message_count(queue).await;
        if n == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{queue} holds {n} messages, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn dlq(prefix: &str) -> String {
    dead_letter_queue(prefix, inventory::SERVICE)
}
