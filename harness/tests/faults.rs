//! Fault runs, CI-sized: 100 shoppers buy for 30 s through nginx while `harness::chaos`
//! kills one replica of every service with SIGKILL (and starts it again), drains one with
//! SIGTERM, and in async mode restarts RabbitMQ; then the suite drains and nothing may be
//! lost, charged twice, oversold or stuck.
//!
//! A binary of its own: cargo runs test binaries one after another, so its broker restart
//! never overlaps another binary's tests. The broker it restarts is a private RabbitMQ node
//! ([`PrivateRabbit`]), never the machine's, which other suites on the machine may be using.
//! A shopper may see a failure while a fault lasts; that is measured, not forbidden. What is
//! forbidden is breaking a promise: every order a shopper was given must end final, and as
//! the shopper was told.

#[allow(dead_code, unused_imports, unused_macros)]
#[path = "api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "api/shopper.rs"]
mod shopper;

use common::Mode;
use harness::chaos::{self, FaultPlan, Promises, RabbitNode, Recorder, Series};
use helpers::{free_port, spawn_suite_with, TestSuite};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const SHOPPERS: usize = 100;
const RUN: Duration = Duration::from_secs(30);
const REPLICAS: usize = 2;
/// The share of the shoppers' requests that may fail over the whole fault run.
const MAX_FAILED_SHARE: f64 = 0.005;
/// How long a shopper polls an accepted reservation or order before giving up on it (the
/// audit still checks it after the drain).
const POLL_LIMIT: Duration = Duration::from_secs(45);

// --- a private RabbitMQ node ------------------------------------------------------------------

/// A RabbitMQ node of the test's own: its own name, ports, data, logs and Erlang cookie (a
/// HOME in a temp folder), run as the test's user. Stopped and deleted on drop.
struct PrivateRabbit {
    dir: tempfile::TempDir,
    name: String,
    port: u16,
    env: Vec<(String, String)>,
}

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

impl PrivateRabbit {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fs-rabbit-")
            .tempdir()
            .expect("temp dir");
        let (port, dist_port) = (free_port(), free_port());
        let name = format!(
            "faults{}@localhost",
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let p = |sub: &str| dir.path().join(sub).to_string_lossy().into_owned();
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .expect("rabbitmq.conf");
        std::fs::write(dir.path().join("env.conf"), "").expect("env.conf");
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").expect("enabled_plugins");
        let env: Vec<(String, String)> = vec![
            ("HOME".into(), p("home")),
            ("RABBITMQ_CONF_ENV_FILE".into(), p("env.conf")),
            ("RABBITMQ_CONFIG_FILE".into(), p("rabbitmq.conf")),
            ("RABBITMQ_NODENAME".into(), name.clone()),
            ("RABBITMQ_MNESIA_BASE".into(), p("mnesia")),
            ("RABBITMQ_LOG_BASE".into(), p("log")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE".into(), p("enabled_plugins")),
            ("RABBITMQ_DIST_PORT".into(), dist_port.to_string()),
            ("RABBITMQ_PID_FILE".into(), p("pid")),
            ("ERL_EPMD_ADDRESS".into(), "127.0.0.1".into()),
        ];
        let status = Command::new(format!("{RABBIT_BIN}/rabbitmq-server"))
            .arg("-detached")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmq-server runs");
        assert!(status.success(), "rabbitmq-server -detached failed");
        let rabbit = Self {
            dir,
            name,
            port,
            env,
        };
        // Booting Erlang and RabbitMQ takes a while on a loaded 2-core machine.
        let deadline = Instant::now() + Duration::from_secs(150);
        while !harness::infra::port_answers(port) {
            assert!(
                Instant::now() < deadline,
                "the private RabbitMQ never listened; its log:\n{}",
                rabbit.log_tail()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        rabbit
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn node(&self) -> RabbitNode {
        RabbitNode {
            ctl: format!("{RABBIT_BIN}/rabbitmqctl").into(),
            node: Some(self.name.clone()),
            env: self.env.clone(),
        }
    }

    fn log_tail(&self) -> String {
        let log = self
            .dir
            .path()
            .join("log")
            .join(format!("{}.log", self.name));
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        let stopped = Command::new(format!("{RABBIT_BIN}/rabbitmqctl"))
            .args(["-n", &self.name, "stop"])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            // Only the node this test started: its own pid file.
            let pid = std::fs::read_to_string(self.dir.path().join("pid")).unwrap_or_default();
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

// --- shoppers that keep buying through faults -------------------------------------------------

/// What every shopper was told, and every request they made.
#[derive(Default)]
struct Ledger {
    promises: Mutex<Promises>,
    checkouts: Mutex<Vec<&'static str>>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    recorder: Recorder,
}

impl Client {
    /// One request; `None` is a transport failure. 5xx and transport failures are recorded as
    /// failed, everything else as answered.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Option<(StatusCode, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let answer = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                Some((status, body))
            }
            Err(_) => None,
        };
        self.recorder
            .record(answer.as_ref().is_none_or(|(s, _)| s.is_server_error()));
        answer
    }

    async fn post(&self, path: &str, body: Value) -> Option<(StatusCode, Value)> {
        self.send(reqwest::Method::POST, path, Some(body), None)
            .await
    }

    async fn get(&self, path: &str) -> Option<(StatusCode, Value)> {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    /// GET `path` until its status leaves `waiting` (failures are retried: the resource
    /// exists, only the way to it is down); `None` after [`POLL_LIMIT`].
    async fn poll(&self, path: &str, waiting: &str) -> Option<String> {
        let deadline = Instant::now() + POLL_LIMIT;
        let mut pause = Duration::from_millis(20);
        while Instant::now() < deadline {
            if let Some((s, body)) = self.get(path).await {
                let status = body["status"].as_str().unwrap_or_default();
                if s == StatusCode::OK && status != waiting {
                    return Some(status.to_string());
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(300));
        }
        None
    }
}

fn id(body: &Value, field: &str) -> Option<Uuid> {
    body[field].as_str().and_then(|s| s.parse().ok())
}

/// One journey: cart, one unit of a random product, reserve, pay (again after a failure, as
/// a client may: paying is idempotent per reservation). Returns how it ended.
async fn journey(c: &Client, products: &[String], mode: Mode, ledger: &Ledger) -> &'static str {
    let Some((StatusCode::CREATED, cart)) = c.post("/api/carts", json!({})).await else {
        return "failed: cart";
    };
    let Some(cart) = cart["id"].as_str().map(str::to_string) else {
        return "failed: cart";
    };
    let product = &products[rand::thread_rng().gen_range(0..products.len())];
    let item = json!({"product_id": product, "quantity": 1});
    match c.post(&format!("/api/carts/{cart}/items"), item).await {
        Some((StatusCode::OK, _)) => {}
        _ => return "failed: add item",
    }
    let reservation = match c.post("/api/reservations", json!({"cart_id": cart})).await {
        Some((StatusCode::CREATED, body)) => id(&body, "id"),
        Some((StatusCode::ACCEPTED, body)) => {
            let Some(r) = id(&body, "id") else {
                return "failed: reserve";
            };
            ledger
                .promises
                .lock()
                .expect("lock")
                .accepted_reservations
                .push(r);
            match c
                .poll(&format!("/api/reservations/{r}"), "PENDING")
                .await
                .as_deref()
            {
                Some("RESERVED") => Some(r),
                Some("SOLD_OUT") | Some("LIMIT_REACHED") => return "sold out",
                Some(_) => return "reservation over",
                None => return "reservation still pending",
            }
        }
        Some((StatusCode::CONFLICT, _)) => return "sold out",
        _ => return "failed: reserve",
    };
    let Some(reservation) = reservation else {
        return "failed: reserve";
    };
    if mode == Mode::Sync {
        ledger
            .promises
            .lock()
            .expect("lock")
            .accepted_reservations
            .push(reservation);
    }
    let key = Uuid::new_v4().to_string();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let body = json!({"reservation_id": reservation});
        let answer = c
            .send(
                reqwest::Method::POST,
                "/api/payments",
                Some(body),
                Some(&key),
            )
            .await;
        let Some((status, body)) = answer else {
            continue;
        };
        let order = id(&body, "order_id");
        let promises = || ledger.promises.lock().expect("lock");
        match (status.as_u16(), order) {
            (200, Some(order)) => {
                let mut p = promises();
                p.accepted_orders.push(order);
                p.confirmed_orders.push(order);
                return "confirmed";
            }
            (402, Some(order)) => {
                let mut p = promises();
                p.accepted_orders.push(order);
                p.declined_orders.push(order);
                return "declined";
            }
            (202, Some(order)) => {
                promises().accepted_orders.push(order);
                return match c
                    .poll(&format!("/api/orders/{order}"), "PENDING")
                    .await
                    .as_deref()
                {
                    Some("CONFIRMED") => {
                        promises().confirmed_orders.push(order);
                        "confirmed"
                    }
                    Some("DECLINED") => {
                        promises().declined_orders.push(order);
                        "declined"
                    }
                    Some(_) => "order cancelled",
                    None => "order still pending",
                };
            }
            (409, _) => return "expired",
            (s, _) if s >= 500 => continue,
            _ => return "failed: pay",
        }
    }
    "failed: pay"
}

/// `SHOPPERS` logged-in shoppers buying in a loop until `stop`.
fn start_load(
    t: &TestSuite,
    recorder: &Recorder,
    ledger: &Arc<Ledger>,
    tokens: Vec<String>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let products: Arc<Vec<String>> = Arc::new(
        t.suite
            .products()
            .iter()
            .map(|p| p.id.to_string())
            .collect(),
    );
    let mode = t.suite.mode();
    tokens
        .into_iter()
        .map(|token| {
            let client = Client {
                http: helpers::http(),
                base: t.suite.base_url().to_string(),
                token,
                recorder: recorder.clone(),
            };
            let (products, ledger, stop) = (products.clone(), ledger.clone(), stop.clone());
            tokio::spawn(async move {
                while !*stop.borrow() {
                    let outcome = journey(&client, &products, mode, &ledger).await;
                    if outcome == "confirmed" {
                        client.recorder.record_confirmed();
                    }
                    ledger.checkouts.lock().expect("lock").push(outcome);
                    if outcome.starts_with("failed") {
                        // A shopper who met an error tries again a moment later.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            })
        })
        .collect()
}

/// One fault run at a time: two suites of 10 replicas each under load on a 2-core machine
/// would only measure each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn fault_run(mode: Mode, replicas: usize) {
    let _serial = SERIAL.lock().await;
    // RabbitMQ must be installed before a private node of it can start.
    helpers::ensure_infra();
    let rabbit = (mode == Mode::Async).then(PrivateRabbit::start);
    let amqp = rabbit.as_ref().map(PrivateRabbit::url);
    let mut t = spawn_suite_with(|o| {
        o.mode = mode;
        o.replicas = replicas;
        o.users = SHOPPERS;
        o.products = 3;
        o.stock = 1000;
        o.per_user_limit = 0;
        o.ready_timeout_secs = 120;
        if let Some(url) = amqp {
            o.amqp_url = url;
        }
        o.extra_env.extend(
            [
                // Charges in flight when a replica dies, and some declines (a release path).
                ("PAYMENT_LATENCY_MS", "30"),
                ("PAYMENT_DECLINE_RATE", "0.1"),
                // Abandoned reservations give their stock back within the drain.
                ("RESERVATION_TTL_SECS", "20"),
                // Orders left PENDING by a dead replica are resumed within the drain.
                ("RECONCILE_AFTER_SECS", "3"),
                ("SHUTDOWN_GRACE_SECS", "5"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    })
    .await;

    let api = shopper::Api::new(t.suite.base_url());
    let tokens: Vec<String> = futures::future::join_all((1..=SHOPPERS).map(|k| {
        let api = api.clone();
        async move { api.shopper(k).await.token }
    }))
    .await;
    let recorder = Recorder::new();
    let ledger = Arc::new(Ledger::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = start_load(&t, &recorder, &ledger, tokens, stopped);

    let mut plan = FaultPlan::standard(mode, replicas, RUN);
    plan.broker = rabbit.as_ref().map(PrivateRabbit::node);
    let mut log = chaos::run(&mut t.suite, &plan)
        .await
        .expect("the fault plan runs");
    let _ = stop.send(true);
    for task in load {
        task.await.expect("a shopper task");
    }

    let series = recorder.series("the test's shoppers (5xx or no answer)");
    log.measure(&series);
    let promises = ledger.promises.lock().expect("lock").clone();
    let outcome = log
        .settle(&t.suite, &promises, Duration::from_secs(90))
        .await
        .expect("drain and audit")
        .clone();
    let mut tally: std::collections::BTreeMap<&str, usize> = Default::default();
    for o in ledger.checkouts.lock().expect("lock").iter() {
        *tally.entry(*o).or_default() += 1;
    }
    println!(
        "{mode} mode, {replicas} replica(s) per service, {SHOPPERS} shoppers, journeys: {tally:?}"
    );
    println!("{}", log.render_markdown());
    if let Ok(series) = Series::from_metrics_dir(&t.run_dir().join("metrics")) {
        let mut by_metrics = log.clone();
        by_metrics.measure(&series);
        let per_fault: Vec<String> = by_metrics
            .faults
            .iter()
            .map(|f| {
                format!(
                    "{} {}: {} of {} failed, recovered after {:?} s",
                    f.fault.label(),
                    f.target,
                    f.failed.unwrap_or(0),
                    f.requests.unwrap_or(0),
                    f.recovery_secs
                )
            })
            .collect();
        println!(
            "The same windows in the services' metrics:\n{}",
            per_fault.join("\n")
        );
    }

    for f in &log.faults {
        assert!(
            f.error.is_none() && f.back_at.is_some(),
            "fault {} {} did not complete: {:?}",
            f.fault.label(),
            f.target,
            f.error
        );
    }
    assert_eq!(log.faults.len(), if mode == Mode::Async { 7 } else { 6 });
    // With two replicas of everything a fault costs a shopper latency, not a failed request:
    // every POST may be sent to the other replica (resend-safe), and only a broker restart
    // or a request in flight on a replica that nginx could not pass on may fail.
    let total = series.total();
    assert!(
        total.requests > 1_000,
        "too little load to judge: {total:?}"
    );
    let share = total.failures as f64 / total.requests as f64;
    // With one replica a kill is an outage of its service: that run checks the sagas only.
    assert!(
        replicas < 2 || share <= MAX_FAILED_SHARE,
        "{} of {} requests failed ({:.3} %, at most {:.1} % allowed):\n{}",
        total.failures,
        total.requests,
        share * 100.0,
        MAX_FAILED_SHARE * 100.0,
        log.render_markdown()
    );
    assert!(outcome.drained, "the suite did not drain");
    assert_eq!(
        outcome.orders_lost, 0,
        "orders lost: {:?}",
        outcome.findings
    );
    assert_eq!(
        outcome.double_charges, 0,
        "double charges: {:?}",
        outcome.findings
    );
    assert_eq!(
        outcome.oversold_units, 0,
        "oversold: {:?}",
        outcome.findings
    );
    assert_eq!(outcome.stuck, 0, "stuck: {:?}", outcome.stuck_by_kind);
    assert!(outcome.verify_ok, "invariants: {:?}", outcome.violations);

    // The explicit checks behind those counts, straight from the databases.
    let confirmed_promised = promises.confirmed_orders.len();
    assert!(
        confirmed_promised > 0,
        "the load confirmed nothing: {tally:?}"
    );
    let one = |db: tokio_postgres::Client, sql: &'static str| async move {
        db.query_one(sql, &[]).await.expect(sql).get::<_, i64>(0)
    };
    let confirmed = one(
        t.db("order").await,
        "SELECT count(*) FROM orders WHERE status = 'CONFIRMED'",
    )
    .await;
    let charged = one(
        t.db("payment").await,
        "SELECT count(*) FROM provider_charges WHERE outcome = 'SUCCEEDED'",
    )
    .await;
    let charged_keys = one(
        t.db("payment").await,
        "SELECT count(DISTINCT idempotency_key) FROM provider_charges WHERE outcome = 'SUCCEEDED'",
    )
    .await;
    assert_eq!(
        charged, confirmed,
        "one successful charge per confirmed order"
    );
    assert_eq!(charged_keys, charged, "no order charged twice");
    assert!(
        confirmed as usize >= confirmed_promised,
        "{confirmed} confirmed orders, {confirmed_promised} promised"
    );
    let held = one(
        t.db("inventory").await,
        "SELECT COALESCE(sum(reserved), 0)::bigint FROM stock",
    )
    .await;
    let live = one(
        t.db("reservation").await,
        "SELECT count(*) FROM reservations WHERE status = 'RESERVED' AND expires_at > now()",
    )
    .await;
    assert!(
        held == 0 || live > 0,
        "{held} unit(s) held with no live reservation"
    );
    t.teardown().await;
    drop(rabbit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_loses_nothing_when_every_service_loses_a_replica_mid_sale() {
    fault_run(Mode::Sync, REPLICAS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mode_loses_nothing_when_replicas_crash_and_rabbitmq_restarts_mid_sale() {
    fault_run(Mode::Async, REPLICAS).await;
}

/// With one replica per service every kill takes a whole service down: shoppers see
/// failures, and what their sagas leave half-way (orders PENDING, reservations PENDING,
/// releases owed) is finished by the reconciler and the sweeper alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_with_one_replica_completes_or_compensates_every_saga_a_crash_interrupts() {
    fault_run(Mode::Sync, 1).await;
}

// --- the report's Faults section ------------------------------------------------------------

/// A settled fault log as `compare --faults` keeps it: two faults, one window with failures.
fn sample_log(lost: u64) -> chaos::FaultLog {
    use chaos::{FaultKind, FaultLog, FaultRecord, Outcome, Tally};
    let t0: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
    let record = |kind: FaultKind, target: &str, at: f64, back: f64, failed: u64| FaultRecord {
        fault: kind,
        target: target.into(),
        planned_secs: at,
        injected_secs: at,
        injected_at: t0 + chrono::Duration::milliseconds((at * 1000.0) as i64),
        back_secs: Some(back),
        back_at: Some(t0 + chrono::Duration::milliseconds((back * 1000.0) as i64)),
        detail: "exited in 0.1 s, restarted 1.0 s later, ready 0.4 s after that".into(),
        error: None,
        probes: 20,
        probes_failed: 1,
        requests: Some(900),
        failed: Some(failed),
        confirmed: Some(40),
        confirmed_at_baseline: Some(45.0),
        baseline_rps: Some(180.0),
        recovery_secs: Some(2.0),
        recovered_before_next: true,
    };
    let kill = |service: &str| FaultKind::Kill {
        service: service.into(),
        index: 0,
    };
    FaultLog {
        mode: Mode::Sync,
        started_at: t0,
        ended_at: t0 + chrono::Duration::seconds(60),
        planned_secs: 60.0,
        duration_secs: 60.2,
        faults: vec![
            record(kill("payment"), "payment-0", 7.5, 9.9, 0),
            record(kill("order"), "order-0", 37.1, 39.6, 21),
        ],
        probes: 1000,
        probes_failed: 2,
        load_source: Some("k6's time series".into()),
        load: Some(Tally {
            requests: 9000,
            failures: 21,
            confirmed: 2300,
        }),
        failed_outside_windows: Some(0),
        outcome: Some(Outcome {
            drained: true,
            settle_secs: 1.5,
            orders_lost: lost,
            double_charges: 0,
            oversold_units: 0,
            stuck_by_kind: Default::default(),
            stuck: 0,
            findings: Vec::new(),
            orders: [("CONFIRMED".to_string(), 2300)].into_iter().collect(),
            charges: [("SUCCEEDED".to_string(), 2300)].into_iter().collect(),
            verify_ok: true,
            violations: Vec::new(),
        }),
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn the_report_shows_each_fault_run_in_its_faults_section_and_fails_a_run_that_lost_orders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report");
    copy_dir(&fixture, dir.path());
    let write = |run: &str, log: &chaos::FaultLog| {
        let path = dir.path().join(run).join(chaos::FAULTS_FILE);
        std::fs::write(path, serde_json::to_string(log).expect("json")).expect("write");
    };
    write("raw/sync/run-500-1", &sample_log(0));

    let built = harness::report::build(dir.path()).expect("build the report");
    let md = std::fs::read_to_string(&built.markdown).expect("report.md");
    let html = std::fs::read_to_string(&built.html).expect("report.html");
    assert!(md.contains("## Faults"), "{md}");
    assert!(
        md.contains("### Synchronous + Round Robin, run 1\n"),
        "{md}"
    );
    assert!(
        md.contains("| 2 | kill -9 | order-0 | 37.1 s | 39.6 s | 21 / 900 | 40 (45) | 1 / 20 | 180.0 | 2 s |"),
        "{md}"
    );
    assert!(md.contains("| orders lost | 0 ✓ |"), "{md}");
    assert!(md.contains("Verdict: **nothing lost** ✓"), "{md}");
    assert!(html.contains("<h2>Faults</h2>") && html.contains("<td>order-0</td>"));
    assert!(md.contains("hold (fault run: nothing lost) |"), "{md}");

    write("raw/sync/run-500-1", &sample_log(3));
    let built = harness::report::build(dir.path()).expect("build the report");
    let md = std::fs::read_to_string(&built.markdown).expect("report.md");
    assert!(md.contains("| orders lost | **3** ✗ |"), "{md}");
    assert!(
        md.contains("FAIL: the fault run lost something (see Faults)") && !built.invariants_ok,
        "a fault run that lost orders fails its run: {md}"
    );
}
