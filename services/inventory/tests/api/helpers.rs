use common::auth::INTERNAL_KEY_HEADER;
use common::CommonConfig;
use inventory::configuration::Settings;
use inventory::startup::Application;
use serde_json::{json, Value};
use tokio_postgres::NoTls;
use uuid::Uuid;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub internal_key: String,
    pub db_url: String,
    server_url: String,
    db_name: String,
}

pub async fn spawn_app() -> TestApp {
    let prefix = format!("t_inv_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let common = CommonConfig {
        database_prefix: prefix,
        db_pool_size: 16,
        workers: 2,
        internal_key: format!("key-{}", Uuid::new_v4()),
        ..CommonConfig::default()
    };
    let db_name = common.database_name(inventory::SERVICE);
    let app = Application::build(Settings {
        common: common.clone(),
    })
    .await
    .expect("inventory starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        http: reqwest::Client::new(),
        internal_key: common.internal_key.clone(),
        db_url: common::db::database_url(&common.database_url, &db_name),
        server_url: common.database_url.clone(),
        db_name,
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

    pub async fn cleanup(self) {
        if let Ok((client, conn)) = tokio_postgres::connect(
            &common::db::database_url(&self.server_url, "postgres"),
            NoTls,
        )
        .await
        {
            tokio::spawn(conn);
            let _ = client
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.db_name
                ))
                .await;
        }
    }
}
