//! What a suite is started with. Every field has a default, so tests write
//! `SuiteOptions { mode: Mode::Async, ..SuiteOptions::default() }`.

use common::Mode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SuiteOptions {
    pub mode: Mode,
    /// Processes per service.
    pub replicas: usize,
    /// Seeded users `user1..userN`.
    pub users: usize,
    /// Seeded products `Flash product 1..N`.
    pub products: usize,
    /// Initial stock of every product.
    pub stock: i32,
    /// Units of each product one user may hold or buy; 0 = no limit.
    pub per_user_limit: i32,
    /// nginx's port on 127.0.0.1: the suite's one public address. Its internal listener, the
    /// one the services call each other through, is the next port ([`Self::internal_port`]).
    pub port: u16,
    /// Where state.json, logs, pid and port files and nginx's files go.
    pub run_dir: PathBuf,
    /// Databases are `<db_prefix>_<service>`.
    pub db_prefix: String,
    /// Redis keys are `<redis_prefix>:...`.
    pub redis_prefix: String,
    /// Where the service binaries are; default: beside the running executable (or its parent
    /// when that is cargo's `deps` folder, as for integration tests).
    pub bin_dir: Option<PathBuf>,
    /// actix workers per replica.
    pub workers: usize,
    /// PostgreSQL connections per replica.
    pub db_pool_size: usize,
    /// The one password of every seeded user.
    pub password: String,
    /// argon2id cost of the seeded users' password hash (tests use [`HashParams::cheap`]).
    pub hash_params: HashParams,
    /// Set on every service process after the harness's own variables, so they win
    /// (`RESERVATION_TTL_SECS`, `PAYMENT_LATENCY_MS`, ...).
    pub extra_env: Vec<(String, String)>,
    /// Keep the databases and Redis keys of an earlier run instead of starting fresh; seeding
    /// then adds only what is missing.
    pub keep_databases: bool,
    /// PostgreSQL server URL without a database name.
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    /// How long start-up may take before the suite gives up and stops what it started.
    pub ready_timeout_secs: u64,
    /// The share of traces the services record (`TRACE_SAMPLE_RATIO`, docs/tracing.md), 0 to
    /// 1; 0: tracing off.
    pub trace_sample_ratio: f64,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Sync,
            replicas: 2,
            users: 1000,
            products: 5,
            stock: 1000,
            per_user_limit: 1,
            port: 8080,
            run_dir: PathBuf::from("run"),
            db_prefix: "flashsale".into(),
            redis_prefix: "flashsale".into(),
            bin_dir: None,
            workers: 1,
            db_pool_size: 4,
            password: "flashsale".into(),
            hash_params: HashParams::default(),
            extra_env: Vec::new(),
            keep_databases: false,
            database_url: crate::infra::DEFAULT_DATABASE_URL.into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            amqp_url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            ready_timeout_secs: 60,
            trace_sample_ratio: 0.0,
        }
    }
}

impl SuiteOptions {
    /// nginx's internal listener: `/internal/...` for service-to-service calls, on the port
    /// after the public one. The public listener answers 404 to every internal route.
    pub fn internal_port(&self) -> anyhow::Result<u16> {
        internal_port(self.port)
    }
}

/// The internal listener's port for public port `port`.
pub fn internal_port(port: u16) -> anyhow::Result<u16> {
    port.checked_add(1).ok_or_else(|| {
        anyhow::anyhow!("port {port} leaves no room for the internal listener (port + 1)")
    })
}

/// argon2id parameters of the seeded password hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for HashParams {
    /// The OWASP minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            m_cost: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl HashParams {
    /// The cheapest valid parameters: for tests, where a login must not cost 50 ms of CPU.
    pub fn cheap() -> Self {
        Self {
            m_cost: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }
}
