//! Start the payment service on port 0 against a fresh database of its own, and drop that
//! database when the test ends.

use common::CommonConfig;
use payment::configuration::Settings;
use payment::startup::Application;
use serde_json::Value;
use tokio_postgres::NoTls;

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub internal_key: String,
    database_url: String,
    database_name: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Start the service with settings adjusted by `tweak` (never the process environment).
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let prefix = format!("t_pay_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
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
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        http: reqwest::Client::new(),
        internal_key,
        database_url,
        database_name,
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

    /// A direct connection to the service's database, to check what it stored.
    pub async fn db(&self) -> tokio_postgres::Client {
        connect(&common::db::database_url(
            &self.database_url,
            &self.database_name,
        ))
        .await
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
