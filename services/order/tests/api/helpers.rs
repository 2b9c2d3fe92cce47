//! Start the order service on port 0 against a fresh database of its own, with its peers
//! (reservation, payment) pointed where nothing listens, and drop the database when the test
//! ends.

use common::auth::TokenKeys;
use common::CommonConfig;
use order::configuration::Settings;
use order::startup::Application;
use serde_json::Value;
use tokio_postgres::NoTls;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub keys: TokenKeys,
    database_url: String,
    database_name: String,
}

/// A local port with nothing listening on it.
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub async fn spawn_app() -> TestApp {
    let prefix = format!("t_ord_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let common = CommonConfig {
        port: 0,
        database_prefix: prefix,
        workers: 1,
        db_pool_size: 4,
        upstream_url: format!("http://127.0.0.1:{}", unused_port()),
        upstream_timeout_ms: 1000,
        ..CommonConfig::default()
    };
    let settings = Settings::with_common(common);
    let keys = TokenKeys::new(
        &settings.common.token_secret,
        settings.common.token_ttl_secs,
    );
    let database_url = settings.common.database_url.clone();
    let database_name = settings.common.database_name(order::SERVICE);
    let app = Application::build(settings)
        .await
        .expect("the order service starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        keys,
        database_url,
        database_name,
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
}

impl Drop for TestApp {
    /// Best effort: drop the test database, even when the test failed. Its own runtime on its
    /// own thread, because the test's runtime may be shutting down.
    fn drop(&mut self) {
        let server = common::db::database_url(&self.database_url, "postgres");
        let name = self.database_name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
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
