//! Start the reservation service on port 0 against a fresh database of the real PostgreSQL,
//! and (when a test needs one) a real inventory service beside it. In async mode the service
//! also gets a queue prefix of its own on the real RabbitMQ, deleted when the test ends.

use common::auth::{TokenKeys, INTERNAL_KEY_HEADER};
use common::client::ServiceClient;
use common::{CommonConfig, Mode};
use deadpool_postgres::Pool;
use reservation::configuration::Settings;
use reservation::startup::Application;
use serde_json::Value;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use test_support::{delete_topology, AMQP, PATIENCE};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A sweep interval long enough that the background sweeper never runs during a test:
/// tests that need it drive `sweep_once` themselves (or ask for a short interval).
pub const NO_BACKGROUND_SWEEP_MS: u64 = 3_600_000;

pub struct TestApp {
    pub address: String,
    pub settings: Settings,
    /// A pool on the service's own database, for arranging and checking rows.
    pub pool: Pool,
    /// The client the sweeper uses, for `sweep_once`.
    pub client: ServiceClient,
    pub http: reqwest::Client,
    pub keys: TokenKeys,
    /// The inventory this app's UPSTREAM_URL points at, if one was started.
    pub inventory: Option<Inventory>,
    databases: Vec<String>,
    shutdown: CancellationToken,
}

pub struct Inventory {
    pub address: String,
    pub pool: Pool,
}

/// Settings of a test instance: port 0, a unique database prefix, small pools, the
/// background sweeper parked, and peers reached at `upstream_url`.
fn test_settings(prefix: &str, upstream_url: String) -> Settings {
    let common = CommonConfig {
        port: 0,
        database_prefix: prefix.to_string(),
        redis_prefix: prefix.to_string(),
        db_pool_size: 3,
        workers: 1,
        upstream_url,
        upstream_timeout_ms: 2_000,
        shutdown_grace_secs: 1,
        token_secret: test_support::secret(),
        internal_key: test_support::secret(),
        ..CommonConfig::default()
    };
    Settings {
        reservation_ttl_secs: 120,
        sweep_interval_ms: NO_BACKGROUND_SWEEP_MS,
        ..Settings::with_common(common)
    }
}

fn unique_prefix() -> String {
    format!("t_res_{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// An address where nothing listens: every call to a peer fails to connect.
fn dead_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    let port = listener.local_addr().expect("probe address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The service alone, its peers unreachable.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The service alone, with settings adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let prefix = unique_prefix();
    let mut settings = test_settings(&prefix, dead_upstream());
    tweak(&mut settings);
    start(settings, None).await
}

/// The service in async mode on a queue prefix of its own (= its database prefix), its peers
/// unreachable, once it is ready (connected to RabbitMQ, topology declared).
pub async fn spawn_async_app() -> TestApp {
    spawn_async_app_with(|_| {}).await
}

pub async fn spawn_async_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_with(|s| {
        s.common.mode = Mode::Async;
        s.common.amqp_prefix = s.common.database_prefix.clone();
        s.common.amqp_url = AMQP.into();
        tweak(s);
    })
    .await;
    app.wait_ready().await;
    app
}

/// The service with a real inventory service as its upstream (same paths as through nginx).
pub async fn spawn_app_with_inventory() -> TestApp {
    let prefix = unique_prefix();
    let inv_common = test_settings(&prefix, dead_upstream()).common;
    let inv = inventory::startup::Application::build(inventory::configuration::Settings {
        common: inv_common.clone(),
    })
    .await
    .expect("start the inventory");
    let inv_address = format!("http://127.0.0.1:{}", inv.port());
    tokio::spawn(inv.run_until_stopped());
    let inv_pool = database_pool(&inv_common, "inventory");
    let mut settings = test_settings(&prefix, inv_address.clone());
    // One suite: the inventory's secrets are the reservation service's.
    settings.common.token_secret = inv_common.token_secret.clone();
    settings.common.internal_key = inv_common.internal_key.clone();
    start(
        settings,
        Some(Inventory {
            address: inv_address,
            pool: inv_pool,
        }),
    )
    .await
}

fn database_pool(common: &CommonConfig, service: &str) -> Pool {
    common::db::pool(
        &common::db::database_url(&common.database_url, &common.database_name(service)),
        2,
    )
    .expect("test pool")
}

async fn start(settings: Settings, inventory: Option<Inventory>) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("start the reservation service");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.cancel_token();
    tokio::spawn(app.run_until_stopped());
    let common = &settings.common;
    let mut databases = vec![common.database_name("reservation")];
    if inventory.is_some() {
        databases.push(common.database_name("inventory"));
    }
    TestApp {
        address,
        pool: database_pool(common, "reservation"),
        client: ServiceClient::new(common).expect("service client"),
        http: reqwest::Client::new(),
        keys: TokenKeys::new(&common.token_secret, 3600),
        inventory,
        databases,
        settings,
        shutdown,
    }
}

impl Drop for TestApp {
    /// Drop the test databases, best effort. It runs on its own thread and runtime so that it
    /// also runs when a test panics.
    fn drop(&mut self) {
        self.shutdown.cancel();
        let server = self.settings.common.database_url.clone();
        let names = std::mem::take(&mut self.databases);
        let amqp_prefix = (self.settings.common.mode == Mode::Async)
            .then(|| self.settings.common.amqp_prefix.clone());
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
                let url = common::db::database_url(&server, "postgres");
                let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(conn);
                for name in names {
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A reservation row to insert directly, bypassing the Reserve flow.
pub struct Row {
    pub user_id: Uuid,
    pub status: &'static str,
    /// Seconds from now to `expires_at`; negative for the past.
    pub expires_in_secs: i64,
    pub order_id: Option<Uuid>,
    pub product_id: Uuid,
    pub quantity: i32,
}

impl Default for Row {
    fn default() -> Self {
        Self {
            user_id: Uuid::new_v4(),
            status: "RESERVED",
            expires_in_secs: 120,
            order_id: None,
            product_id: Uuid::new_v4(),
            quantity: 1,
        }
    }
}

pub struct Stored {
    pub status: String,
    pub order_id: Option<Uuid>,
    pub release_pending: bool,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Wait until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        test_support::wait_ready(&self.http, &self.address).await;
    }

    /// The suite prefix of this app's exchange and queues.
    pub fn amqp_prefix(&self) -> &str {
        &self.settings.common.amqp_prefix
    }

    /// Wait until reservation `id` has `status`.
    pub async fn wait_status(&self, id: Uuid, status: &str) -> Stored {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stored = self.stored(id).await;
            if stored.status == status {
                return stored;
            }
            assert!(
                Instant::now() < deadline,
                "reservation still {} instead of {status}",
                stored.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Count of rows of the service's own `table` matching `condition` (trusted test SQL).
    pub async fn count(&self, table: &str, condition: &str) -> i64 {
        let client = self.pool.get().await.expect("connection");
        client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE {condition}"),
                &[],
            )
            .await
            .expect("count")
            .get(0)
    }

    pub fn token(&self, user_id: Uuid) -> String {
        self.keys.issue(user_id).expect("issue a token")
    }

    /// `POST /api/reservations` with an `Idempotency-Key`.
    pub async fn reserve_keyed(&self, token: &str, body: &Value, key: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/reservations"))
            .json(body)
            .bearer_auth(token)
            .header("idempotency-key", key)
            .send()
            .await
            .expect("POST /api/reservations")
    }

    pub async fn reserve(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self.http.post(self.url("/api/reservations")).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("POST /api/reservations")
    }

    pub async fn get_reservation(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/api/reservations/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /api/reservations/{id}")
    }

    /// POST an internal route of this service with the internal key.
    pub async fn internal_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header(INTERNAL_KEY_HEADER, &self.settings.common.internal_key)
            .json(body)
            .send()
            .await
            .expect("internal POST")
    }

    pub async fn internal_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header(INTERNAL_KEY_HEADER, &self.settings.common.internal_key)
            .send()
            .await
            .expect("internal GET")
    }

    pub async fn begin_payment(&self, id: Uuid, order_id: Uuid) -> reqwest::Response {
        self.internal_post(
            &format!("/internal/reservations/{id}/begin-payment"),
            &serde_json::json!({ "order_id": order_id }),
        )
        .await
    }

    pub async fn insert(&self, row: Row) -> Uuid {
        let id = Uuid::new_v4();
        let items = serde_json::json!([{
            "product_id": row.product_id,
            "quantity": row.quantity,
            "price_cents": 500,
        }]);
        let client = self.pool.get().await.expect("connection");
        client
            .execute(
                "INSERT INTO reservations
                   (id, user_id, cart_id, status, items, total_cents, expires_at, order_id)
                 VALUES ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 second', $8)",
                &[
                    &id,
                    &row.user_id,
                    &Uuid::new_v4(),
                    &row.status,
                    &items,
                    &(500 * i64::from(row.quantity)),
                    &row.expires_in_secs,
                    &row.order_id,
                ],
            )
            .await
            .expect("insert a reservation");
        id
    }

    pub async fn stored(&self, id: Uuid) -> Stored {
        let client = self.pool.get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT status, order_id, release_pending FROM reservations WHERE id = $1",
                &[&id],
            )
            .await
            .expect("read a reservation");
        Stored {
            status: row.get(0),
            order_id: row.get(1),
            release_pending: row.get(2),
        }
    }

    pub async fn count_with_status(&self, status: &str) -> i64 {
        let client = self.pool.get().await.expect("connection");
        client
            .query_one(
                "SELECT count(*) FROM reservations WHERE status = $1",
                &[&status],
            )
            .await
            .expect("count")
            .get(0)
    }

    pub fn inventory(&self) -> &Inventory {
        self.inventory
            .as_ref()
            .expect("this test app runs without an inventory")
    }

    /// Put `initial` units of a new product on sale at inventory; returns the product id.
    pub async fn seed_stock(&self, initial: i32) -> Uuid {
        let product_id = Uuid::new_v4();
        let client = self.inventory().pool.get().await.expect("connection");
        client
            .execute(
                "INSERT INTO stock (product_id, initial, available, reserved, sold, per_user_limit)
                 VALUES ($1, $2, $2, 0, 0, 0)",
                &[&product_id, &initial],
            )
            .await
            .expect("seed stock");
        product_id
    }

    /// (available, reserved, sold) of a product at inventory.
    pub async fn stock(&self, product_id: Uuid) -> (i32, i32, i32) {
        let client = self.inventory().pool.get().await.expect("connection");
        let row = client
            .query_one(
                "SELECT available, reserved, sold FROM stock WHERE product_id = $1",
                &[&product_id],
            )
            .await
            .expect("read stock");
        (row.get(0), row.get(1), row.get(2))
    }

    /// Hold stock at inventory for a reservation, as the Reserve flow would.
    pub async fn hold_at_inventory(
        &self,
        reservation_id: Uuid,
        user_id: Uuid,
        product_id: Uuid,
        quantity: i32,
    ) {
        let resp = self
            .http
            .post(format!(
                "{}/internal/inventory/holds",
                self.inventory().address
            ))
            .header(INTERNAL_KEY_HEADER, &self.settings.common.internal_key)
            .json(&serde_json::json!({
                "reservation_id": reservation_id,
                "user_id": user_id,
                "items": [{ "product_id": product_id, "quantity": quantity }],
            }))
            .send()
            .await
            .expect("POST hold");
        assert_eq!(resp.status().as_u16(), 200, "hold at inventory");
    }
}

/// The JSON body of an answer, and assert it is one.
pub async fn json(resp: reqwest::Response) -> Value {
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "expected a JSON answer, got {content_type:?}"
    );
    resp.json().await.expect("a JSON body")
}

/// Assert an error answer: its status and its `code`.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let body = json(resp).await;
    assert_eq!(body["code"], code, "error code in {body}");
    assert!(body["message"].is_string(), "message in {body}");
    body
}
