use harness::{HashParams, Suite, SuiteOptions};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use tempfile::TempDir;

/// A suite started for one test, with the folder it runs in. Dropped without
/// [`TestSuite::teardown`] (a failing test), it still kills the suite and drops its databases.
pub struct TestSuite {
    pub suite: Suite,
    pub dir: TempDir,
    torn_down: bool,
}

impl Drop for TestSuite {
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        self.suite.kill();
        let state = self.suite.state().clone();
        // Drop runs inside the test's runtime: clean up on a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().ok()?;
            rt.block_on(async {
                let _ = harness::store::drop_databases(&state.database_url, &state.db_prefix).await;
                let _ = harness::store::clear_redis(&state.redis_url, &state.redis_prefix).await;
                let _ = harness::broker::delete_topology(&state.amqp_url, &state.db_prefix).await;
            });
            Some(())
        })
        .join();
    }
}

impl TestSuite {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.suite.base_url())
    }

    pub fn run_dir(&self) -> &Path {
        self.suite.run_dir()
    }

    /// A connection to `service`'s database.
    pub async fn db(&self, service: &str) -> tokio_postgres::Client {
        let state = self.suite.state();
        harness::store::connect(
            &state.database_url,
            &harness::store::database_name(&state.db_prefix, service),
        )
        .await
        .expect("connect to the service database")
    }

    /// Stop the suite and drop its databases.
    pub async fn teardown(mut self) {
        self.suite.stop().await.expect("stop the suite");
        self.suite
            .drop_databases()
            .await
            .expect("drop the suite's databases");
        self.torn_down = true;
    }
}

/// Generate one `#[tokio::test]` per mode for each `async fn name(mode: Mode)` listed: the
/// same inputs must reach the same outcomes in both architectures.
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        mod sync_mode {
            $( #[tokio::test] async fn $name() { super::$name(common::Mode::Sync).await } )*
        }
        mod async_mode {
            $( #[tokio::test] async fn $name() { super::$name(common::Mode::Async).await } )*
        }
    };
}
pub(crate) use in_both_modes;

/// Check the invariants (and, in async mode, the broker) once the suite has drained.
pub async fn drained_report(t: &TestSuite) -> harness::verify::Report {
    let state = t.suite.state();
    let amqp = (state.mode == common::Mode::Async).then_some(state.amqp_url.as_str());
    let drained = harness::verify::wait_drained(
        &state.database_url,
        &state.db_prefix,
        amqp,
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("drain");
    assert!(drained, "the suite did not drain within 60 s");
    if let Some(url) = amqp {
        // Proof that the suite really ran async: every service consumes its queue.
        let queues = harness::broker::queue_depths(url, &state.db_prefix)
            .await
            .expect("queue depths");
        for q in queues.iter().filter(|q| !q.dead_letter) {
            assert!(
                q.consumers > 0,
                "nobody consumes {}: is the suite really async?",
                q.queue
            );
        }
        assert_eq!(
            queues.iter().filter(|q| !q.dead_letter).count(),
            4,
            "{queues:?}"
        );
    }
    let grace = std::time::Duration::from_secs(30);
    match amqp {
        Some(url) => {
            harness::verify::run_with_broker(&state.database_url, &state.db_prefix, url, grace)
                .await
        }
        None => harness::verify::run(&state.database_url, &state.db_prefix, grace).await,
    }
    .expect("verify")
}

/// Options of a small suite: one replica per service, a few users and products, a cheap
/// password hash, and a unique port, run folder and prefixes.
pub fn test_options(dir: &Path) -> SuiteOptions {
    let prefix = unique_prefix();
    SuiteOptions {
        replicas: 1,
        users: 20,
        products: 3,
        stock: 10,
        per_user_limit: 1,
        port: free_port(),
        run_dir: dir.join("run"),
        db_prefix: prefix.clone(),
        redis_prefix: prefix,
        hash_params: HashParams::cheap(),
        db_pool_size: 4,
        ..SuiteOptions::default()
    }
}

pub async fn spawn_suite() -> TestSuite {
    spawn_suite_with(|_| {}).await
}

pub async fn spawn_suite_with(customise: impl FnOnce(&mut SuiteOptions)) -> TestSuite {
    ensure_infra();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = test_options(dir.path());
    customise(&mut opts);
    let suite = Suite::start(opts).await.expect("start the suite");
    TestSuite {
        suite,
        dir,
        torn_down: false,
    }
}

/// `flashsale setup`, once per test binary: installs and starts only what is missing.
pub fn ensure_infra() {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    let result = SETUP.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(harness::infra::setup())
                .map_err(|e| format!("{e:#}"))
        })
        .join()
        .unwrap_or_else(|_| Err("setup panicked".into()))
    });
    if let Err(e) = result {
        panic!("flashsale setup failed: {e}");
    }
}

/// `t_<8 hex>`: a database and Redis prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A port for a suite's nginx that no other test process is given, and that nothing takes in
/// between: it lies outside the kernel's ephemeral range (where replicas binding port 0 and
/// every outgoing connection draw theirs), and a lock file held until this process exits
/// keeps it from the test binaries running in parallel. (A port picked by binding port 0 and
/// released again was, now and then, bound by another suite first.) It is even, and the odd
/// port after it is free too: a suite's internal listener takes the port after its public one.
pub fn free_port() -> u16 {
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let (band_start, band_end) = port_band();
    let dir = std::env::temp_dir().join("flashsale-test-ports");
    std::fs::create_dir_all(&dir).expect("the port lock folder");
    let span = u32::from(band_end - band_start);
    let offset = (uuid::Uuid::new_v4().as_u128() % u128::from(span)) as u32;
    for step in 0..span {
        let port = band_start + ((offset + step) % span) as u16;
        if port % 2 == 1 || port >= band_end - 1 {
            continue;
        }
        let Ok(file) = std::fs::File::create(dir.join(port.to_string())) else {
            continue;
        };
        if file.try_lock().is_err() {
            continue;
        }
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 1) {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
            return port;
        }
    }
    panic!("no free port in {band_start}..{band_end}");
}

/// Ports below the kernel's ephemeral range (`ip_local_port_range`), or above it when it
/// starts too low.
fn port_band() -> (u16, u16) {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u16>().ok());
    let (low, high) = (
        bounds.next().unwrap_or(32768),
        bounds.next().unwrap_or(60999),
    );
    if low >= 12_000 {
        (10_000, low)
    } else {
        (high.saturating_add(1).max(10_000), u16::MAX)
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        // Generous: tests check outcomes, not latency, and a loaded 2-core machine queues.
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// The body of a JSON answer, asserting it is labelled JSON.
pub async fn json_body(response: reqwest::Response) -> serde_json::Value {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
    response.json().await.expect("a JSON body")
}

/// The report fixture: a comparison's raw data (tests/fixtures/report).
pub fn report_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report")
}

/// `from`'s files and folders, copied under `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir").flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy fixture file");
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}
