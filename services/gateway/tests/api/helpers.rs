//! `spawn_app()`: the gateway on port 0 with its own database and Redis prefix, the real
//! inventory beside it (its availability source), and seeded users, products and stock.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use common::auth::{TokenKeys, INTERNAL_KEY_HEADER};
use common::CommonConfig;
use gateway::configuration::Settings;
use gateway::startup::Application;
use rand::RngCore;
use reqwest::StatusCode;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_postgres::NoTls;
use uuid::Uuid;

const SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";
const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub struct TestUser {
    pub id: Uuid,
    pub username: String,
    pub password: String,
}

pub struct TestProduct {
    pub id: Uuid,
    pub name: &'static str,
    pub price_cents: i64,
    /// Units the inventory is seeded with; `None`: the inventory does not stock it.
    pub stock: Option<i32>,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub keys: TokenKeys,
    pub internal_key: String,
    pub prefix: String,
    pub redis_url: String,
    /// alice, bob.
    pub users: Vec<TestUser>,
    /// Seeded in an order other than by name, so sorting is visible.
    pub products: Vec<TestProduct>,
    pub catalog_cache_ms: u64,
}

/// How to start a test app.
pub struct Setup {
    /// Start the real inventory and point `UPSTREAM_URL` at it. Without it, upstream calls go
    /// to a closed port.
    pub inventory: bool,
    pub redis_url: String,
    pub catalog_cache_ms: u64,
    /// The failed-login limits; the gateway's defaults unless a test tightens them.
    pub login_limits: Option<gateway::cache::logins::LoginLimits>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            inventory: true,
            redis_url: REDIS_URL.to_string(),
            catalog_cache_ms: 250,
            login_limits: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Setup::default()).await
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn test_common(
    prefix: &str,
    redis_url: &str,
    token_secret: &str,
    internal_key: &str,
) -> CommonConfig {
    CommonConfig {
        host: "127.0.0.1".into(),
        port: 0,
        workers: 1,
        database_url: SERVER_URL.into(),
        database_prefix: prefix.into(),
        db_pool_size: 4,
        redis_url: redis_url.into(),
        redis_prefix: prefix.into(),
        token_secret: token_secret.into(),
        token_ttl_secs: 600,
        internal_key: internal_key.into(),
        upstream_timeout_ms: 2000,
        shutdown_grace_secs: 1,
        ..CommonConfig::default()
    }
}

pub async fn spawn_app_with(setup: Setup) -> TestApp {
    let prefix = format!("t_gw_{}", random_hex(4));
    let token_secret = random_hex(32);
    let internal_key = random_hex(32);
    let mut common = test_common(&prefix, &setup.redis_url, &token_secret, &internal_key);

    let products = vec![
        TestProduct {
            id: Uuid::new_v4(),
            name: "Smartwatch",
            price_cents: 19_900,
            stock: Some(5),
        },
        TestProduct {
            id: Uuid::new_v4(),
            name: "Earbuds",
            price_cents: 4_950,
            stock: Some(3),
        },
        TestProduct {
            id: Uuid::new_v4(),
            name: "Phone",
            price_cents: 59_900,
            stock: None,
        },
    ];

    if setup.inventory {
        let inventory =
            inventory::startup::Application::build(inventory::configuration::Settings {
                common: common.clone(),
            })
            .await
            .expect("build the inventory");
        common.upstream_url = format!("http://127.0.0.1:{}", inventory.port());
        tokio::spawn(inventory.run_until_stopped());
        let db = connect(&format!("{prefix}_inventory")).await;
        for p in &products {
            if let Some(stock) = p.stock {
                db.execute(
                    "INSERT INTO stock (product_id, initial, available, reserved, sold, per_user_limit)
                     VALUES ($1, $2, $2, 0, 0, 1)",
                    &[&p.id, &stock],
                )
                .await
                .expect("seed stock");
            }
        }
    } else {
        common.upstream_url = format!("http://127.0.0.1:{}", test_support::free_port());
    }

    let mut settings = Settings::new(common).with_catalog_cache_ms(setup.catalog_cache_ms);
    // The users' hashes are cheap (`cheap_hash`), and so must the unknown user's decoy be.
    settings.password_hash = CHEAP_COST;
    if let Some(limits) = setup.login_limits {
        settings.login_limits = limits;
    }
    let app = Application::build(settings)
        .await
        .expect("build the gateway");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    // The gateway's migrations ran in build; seed its tables directly.
    let db = connect(&format!("{prefix}_gateway")).await;
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let user = TestUser {
            id: Uuid::new_v4(),
            username: name.to_string(),
            password: format!("{name}-password"),
        };
        db.execute(
            "INSERT INTO users (id, username, password_hash) VALUES ($1, $2, $3)",
            &[&user.id, &user.username, &cheap_hash(&user.password)],
        )
        .await
        .expect("seed a user");
        users.push(user);
    }
    for p in &products {
        db.execute(
            "INSERT INTO products (id, name, price_cents) VALUES ($1, $2, $3)",
            &[&p.id, &p.name, &p.price_cents],
        )
        .await
        .expect("seed a product");
    }

    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("reqwest client"),
        keys: TokenKeys::new(&token_secret, 600),
        internal_key,
        prefix,
        redis_url: setup.redis_url,
        users,
        products,
        catalog_cache_ms: setup.catalog_cache_ms,
    }
}

/// The cost of [`cheap_hash`].
pub const CHEAP_COST: gateway::domain::HashCost = gateway::domain::HashCost {
    m_cost: 1024,
    t_cost: 1,
    p_cost: 1,
};

/// An argon2id hash with cheap parameters: the gateway must honour the hash's own.
pub fn cheap_hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("salt");
    let params = Params::new(1024, 1, 1, None).expect("params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// A client to database `name` on the test server.
pub async fn connect(name: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&format!("{SERVER_URL}/{name}"), NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(conn);
    client
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn alice(&self) -> &TestUser {
        &self.users[0]
    }

    pub fn bob(&self) -> &TestUser {
        &self.users[1]
    }

    pub fn token(&self, user: &TestUser) -> String {
        self.keys.issue(user.id).expect("issue a token")
    }

    pub fn product(&self, name: &str) -> &TestProduct {
        self.products
            .iter()
            .find(|p| p.name == name)
            .expect("a seeded product")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("send GET")
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("send POST")
    }

    /// POST a raw body with the given content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("send POST")
    }

    /// A login as the client at `address` (the `X-Real-IP` nginx would set).
    pub async fn login_from(
        &self,
        address: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.client
            .post(format!("{}/api/auth/login", self.address))
            .header("x-real-ip", address)
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/login",
            None,
            &serde_json::json!({"username": username, "password": password}),
        )
        .await
    }

    /// A new cart of `token`'s user; its id.
    pub async fn create_cart(&self, token: &str) -> String {
        let resp = self
            .post_json("/api/carts", Some(token), &serde_json::json!({}))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.expect("cart JSON");
        body["id"].as_str().expect("cart id").to_string()
    }

    pub async fn add_item(
        &self,
        token: &str,
        cart_id: &str,
        product_id: Uuid,
        quantity: i64,
    ) -> reqwest::Response {
        self.post_json(
            &format!("/api/carts/{cart_id}/items"),
            Some(token),
            &serde_json::json!({"product_id": product_id, "quantity": quantity}),
        )
        .await
    }

    /// The cart as its owner sees it, asserting 200.
    pub async fn cart(&self, token: &str, cart_id: &str) -> Value {
        let resp = self
            .get(&format!("/api/carts/{cart_id}"), Some(token))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.expect("cart JSON")
    }

    pub async fn internal_get(&self, path: &str, key: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(key) = key {
            req = req.header(INTERNAL_KEY_HEADER, key);
        }
        req.send().await.expect("send GET")
    }
}

/// Assert the answer is `status` with the suite's error body `{code, message}`; the body.
pub async fn assert_error(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    let got = resp.status();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.expect("answer body");
    assert_eq!(got, status, "expected {code}, got the answer {text}");
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
    let body: Value = serde_json::from_str(&text).expect("error JSON");
    assert_eq!(body["code"], code, "body {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body {body}"
    );
    body
}

/// Drop the test's databases and Redis keys, even when the test failed. Runs on its own thread
/// and runtime because `Drop` cannot await.
impl Drop for TestApp {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let redis_url = self.redis_url.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&format!("{SERVER_URL}/postgres"), NoTls).await
                {
                    tokio::spawn(conn);
                    for service in ["gateway", "inventory"] {
                        let _ = client
                            .batch_execute(&format!(
                                "DROP DATABASE IF EXISTS \"{prefix}_{service}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                }
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    delete_redis_keys(&redis_url, &prefix),
                )
                .await;
            });
        });
        let _ = cleanup.join();
    }
}

async fn delete_redis_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    use deadpool_redis::redis;
    let pool = common::cache::pool(url, 1)?;
    let mut conn = pool.get().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        let () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
    }
    Ok(())
}

/// A private `redis-server` on a fixed port, so a test can stop and restart it under a
/// running gateway. Killed when dropped.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let mut redis = Self {
            port: test_support::free_port(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and wait until it accepts connections.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
