//! Start the order service on port 0 against a fresh database of its own, with its peers
//! (reservation, payment) pointed where nothing listens — or, when a test needs it, at a real
//! reservation service started beside it — and drop the databases (and in async mode the
//! queue prefix's topology) when the test ends.

use common::auth::TokenKeys;
use common::{CommonConfig, Mode};
use deadpool_postgres::Pool;
use order::configuration::Settings;
use order::startup::Application;
use serde_json::Value;
use std::time::{Duration, Instant};
use test_support::{delete_topology, AMQP, PATIENCE};
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub keys: TokenKeys,
    pub settings: Settings,
    /// The reservation service this app's UPSTREAM_URL points at, if one was started.
    pub reservation: Option<Reservation>,
    database_url: String,
    database_name: String,
    databases: Vec<String>,
    shutdown: Vec<CancellationToken>,
}

/// A real reservation service beside the order, on the same database and queue prefix.
pub struct Reservation {
    pub pool: Pool,
}

fn test_common() -> CommonConfig {
    let prefix = format!("t_ord_{}", &Uuid::new_v4().simple().to_string()[..8]);
    CommonConfig {
        port: 0,
        database_prefix: prefix.clone(),
        redis_prefix: prefix.clone(),
        amqp_prefix: prefix,
        amqp_url: AMQP.into(),
        workers: 1,
        db_pool_size: 4,
        upstream_url: format!("http://127.0.0.1:{}", test_support::free_port()),
        upstream_timeout_ms: 1000,
        token_secret: test_support::secret(),
        internal_key: test_support::secret(),
        ..CommonConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The service alone, with settings adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::with_common(test_common());
    tweak(&mut settings);
    start(settings, None).await
}

/// The service in async mode on a queue prefix of its own, once it is ready (connected to
/// RabbitMQ, topology declared).
pub async fn spawn_async_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_with(|s| {
        s.common.mode = Mode::Async;
        tweak(s);
    })
    .await;
    app.wait_ready().await;
    app
}

pub async fn spawn_async_app() -> TestApp {
    spawn_async_app_with(|_| {}).await
}

/// The order in async mode with a real reservation service as its upstream, the reservation
/// running in `reservation_mode` on the same prefixes.
pub async fn spawn_async_app_with_reservation(reservation_mode: Mode) -> TestApp {
    let mut reservation_common = test_common();
    reservation_common.mode = reservation_mode;
    let mut settings = Settings::with_common(reservation_common.clone());
    settings.common.mode = Mode::Async;
    let reservation = reservation::startup::Application::build(
        reservation::configuration::Settings::with_common(reservation_common.clone()),
    )
    .await
    .expect("start the reservation service");
    settings.common.upstream_url = format!("http://127.0.0.1:{}", reservation.port());
    let reservation_shutdown = reservation.cancel_token();
    tokio::spawn(reservation.run_until_stopped());
    let pool = common::db::pool(
        &common::db::database_url(
            &reservation_common.database_url,
            &reservation_common.database_name("reservation"),
        ),
        2,
    )
    .expect("reservation pool");
    let mut app = start(settings, Some(Reservation { pool })).await;
    app.shutdown.push(reservation_shutdown);
    app.databases
        .push(reservation_common.database_name("reservation"));
    app.wait_ready().await;
    app
}

async fn start(settings: Settings, reservation: Option<Reservation>) -> TestApp {
    let keys = TokenKeys::new(
        &settings.common.token_secret,
        settings.common.token_ttl_secs,
    );
    let database_url = settings.common.database_url.clone();
    let database_name = settings.common.database_name(order::SERVICE);
    let app = Application::build(settings.clone())
        .await
        .expect("the order service starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = vec![app.cancel_token()];
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        keys,
        settings,
        reservation,
        databases: vec![database_name.clone()],
        database_url,
        database_name,
        shutdown,
    }
}

impl TestApp {
    pub fn token_for(&self, user_id: Uuid) -> String {
        self.keys.issue(user_id).expect("token issued")
    }

    pub async fn pay(&self, user_id: Uuid, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/payments", self.address))
            .bearer_auth(self.token_for(user_id))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_order(&self, user_id: Uuid, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/orders/{id}", self.address))
            .bearer_auth(self.token_for(user_id))
            .send()
            .await
            .expect("request sent")
    }

    /// A direct connection to the service's database, to arrange and check rows.
    pub async fn db(&self) -> tokio_postgres::Client {
        let url = common::db::database_url(&self.database_url, &self.database_name);
        let (client, conn) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("connected to PostgreSQL");
        tokio::spawn(conn);
        client
    }

    /// Insert an order row as the Pay saga would have left it; answers its id.
    pub async fn insert_order(&self, reservation_id: Uuid, user_id: Uuid, status: &str) -> Uuid {
        let id = Uuid::new_v4();
        self.db()
            .await
            .execute(
                "INSERT INTO orders (id, reservation_id, user_id, status, total_cents, items)
                 VALUES ($1, $2, $3, $4, 4200, '[]'::jsonb)",
                &[&id, &reservation_id, &user_id, &status],
            )
            .await
            .expect("order inserted");
        id
    }

    pub async fn order_status(&self, id: Uuid) -> String {
        self.db()
            .await
            .query_one("SELECT status FROM orders WHERE id = $1", &[&id])
            .await
            .expect("order exists")
            .get(0)
    }

    /// Wait until order `id` has `status`.
    pub async fn wait_order_status(&self, id: Uuid, status: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.order_status(id).await;
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "order still {now} instead of {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Count of rows of the service's own `table` matching `condition` (trusted test SQL).
    pub async fn count(&self, table: &str, condition: &str) -> i64 {
        self.db()
            .await
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE {condition}"),
                &[],
            )
            .await
            .expect("count")
            .get(0)
    }

    /// Wait until message `message_id` is in the inbox: the handler committed it.
    pub async fn wait_processed(&self, message_id: Uuid) {
        let deadline = Instant::now() + PATIENCE;
        while self
            .count("inbox", &format!("message_id = '{message_id}'"))
            .await
            == 0
        {
            assert!(Instant::now() < deadline, "message never processed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        test_support::wait_ready(&self.http, &self.address).await;
    }

    pub fn amqp_prefix(&self) -> &str {
        &self.settings.common.amqp_prefix
    }

    pub fn reservation(&self) -> &Reservation {
        self.reservation
            .as_ref()
            .expect("this test app runs without a reservation service")
    }
}

/// A reservation row to insert in the reservation service's database.
pub struct ReservationRow {
    pub user_id: Uuid,
    pub status: &'static str,
    /// Seconds from now to `expires_at`; negative for the past.
    pub expires_in_secs: i64,
    pub order_id: Option<Uuid>,
}

impl Default for ReservationRow {
    fn default() -> Self {
        Self {
            user_id: Uuid::new_v4(),
            status: "RESERVED",
            expires_in_secs: 120,
            order_id: None,
        }
    }
}

impl Reservation {
    /// Insert a reservation of 2 × 500 cents; answers its id.
    pub async fn insert(&self, row: ReservationRow) -> Uuid {
        let id = Uuid::new_v4();
        let items = serde_json::json!([{
            "product_id": Uuid::new_v4(),
            "quantity": 2,
            "price_cents": 500,
        }]);
        self.pool
            .get()
            .await
            .expect("connection")
            .execute(
                "INSERT INTO reservations
                   (id, user_id, cart_id, status, items, total_cents, expires_at, order_id)
                 VALUES ($1, $2, $3, $4, $5, 1000, now() + $6::bigint * interval '1 second', $7)",
                &[
                    &id,
                    &row.user_id,
                    &Uuid::new_v4(),
                    &row.status,
                    &items,
                    &row.expires_in_secs,
                    &row.order_id,
                ],
            )
            .await
            .expect("insert a reservation");
        id
    }

    /// (status, order_id) of a reservation.
    pub async fn stored(&self, id: Uuid) -> (String, Option<Uuid>) {
        let row = self
            .pool
            .get()
            .await
            .expect("connection")
            .query_one(
                "SELECT status, order_id FROM reservations WHERE id = $1",
                &[&id],
            )
            .await
            .expect("read a reservation");
        (row.get(0), row.get(1))
    }

    /// Wait until reservation `id` has `status`.
    pub async fn wait_status(&self, id: Uuid, status: &str) -> Option<Uuid> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (now, order_id) = self.stored(id).await;
            if now == status {
                return order_id;
            }
            assert!(
                Instant::now() < deadline,
                "reservation still {now} instead of {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestApp {
    /// Best effort: stop the services, delete the queue prefix's topology (async mode) and
    /// drop the test databases, even when the test failed. Its own runtime on its own thread,
    /// because the test's runtime may be shutting down.
    fn drop(&mut self) {
        for token in &self.shutdown {
            token.cancel();
        }
        let server = common::db::database_url(&self.database_url, "postgres");
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
                if let Ok((client, conn)) = tokio_postgres::connect(&server, NoTls).await {
                    tokio::spawn(conn);
                    for name in names {
                        let _ = client
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                }
            });
        })
        .join();
    }
}
