//! `flashsale`: start the flash-sale suite natively, check its invariants, compare the
//! architectures. Argument parsing only; the work is in the library.

use clap::{Parser, Subcommand, ValueEnum};
use harness::{commands, HashParams, SuiteOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "flashsale",
    version,
    about = "Flash-sale suite harness: sync (HTTP) vs async (RabbitMQ)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make sure PostgreSQL, Redis and RabbitMQ answer locally (installing and starting what
    /// is missing) and nginx is installed.
    Setup,
    /// Start the whole suite (runs `setup` first), print its URL, and leave it running.
    Up(UpArgs),
    /// Insert the seed users and products into a running suite's gateway and inventory
    /// databases (already migrated by the services), skipping what exists. docker-compose's
    /// `seed` service runs this; `up` seeds by itself.
    Seed {
        /// PostgreSQL server URL without a database name.
        #[arg(long, default_value = harness::infra::DEFAULT_DATABASE_URL)]
        database_url: String,
        #[arg(long, default_value = "flashsale")]
        db_prefix: String,
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 5)]
        products: usize,
        /// Seed for this scenario of `compare`: its stock and per-user limit (flash: the
        /// default `--flash-stock` of compare, one per user; sustained: more than any run
        /// sells, no limit). Without it: 1000 units, one per user.
        #[arg(long, value_enum)]
        scenario: Option<harness::compare::Scenario>,
        /// Units of each product, over the scenario's [env: STOCK, empty = unset].
        #[arg(long, env = "STOCK", value_parser = parse_optional_i32, hide_env = true)]
        stock: Option<OptionalI32>,
        /// Units of each product one user may buy, 0 = no limit; over the scenario's
        /// [env: PER_USER_LIMIT, empty = unset].
        #[arg(long, env = "PER_USER_LIMIT", value_parser = parse_optional_i32, hide_env = true)]
        per_user_limit: Option<OptionalI32>,
        #[arg(long, default_value = "flashsale")]
        password: String,
    },
    /// Stop exactly the processes `up` started.
    Down {
        #[arg(long, default_value = "run")]
        run_dir: PathBuf,
    },
    /// Check the invariants over the five databases; exit status 1 on any violation.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Where a running suite's state.json is (its database prefix and URL are used).
        #[arg(long, default_value = "run")]
        run_dir: PathBuf,
        /// Database prefix (default: the running suite's, else `flashsale`).
        #[arg(long)]
        db_prefix: Option<String>,
        /// PostgreSQL server URL without a database name.
        #[arg(long)]
        database_url: Option<String>,
        /// Work younger than this is in flight, not stuck.
        #[arg(long, default_value_t = 10.0)]
        grace_secs: f64,
        /// Wait at most this long for the suite to drain (outboxes, queues, PENDING work)
        /// before checking; 0 checks at once.
        #[arg(long, default_value_t = 30.0)]
        drain_secs: f64,
        /// RabbitMQ URL; the broker is checked when given or when the running suite is async.
        #[arg(long)]
        amqp_url: Option<String>,
    },
    /// Dead-lettered messages of an async suite.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Show every process of the running suite: alive, ready.
    Status {
        #[arg(long, default_value = "run")]
        run_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The main job: run the study's protocol on each mode (a fresh suite per mode and
    /// scenario, warm-ups, counted runs, drain and invariants after each) and write the
    /// comparison report under `--reports-dir`. Exit status 1 when any run's invariants fail.
    Compare(Box<CompareArgs>),
    /// The comparison's protocol for one mode against a suite that is already running and
    /// that flashsale did not start (docker-compose's `study` service runs this): warm-ups,
    /// counted runs, a new sale per flash run, drain and invariants after each, into
    /// `DIR/raw/<mode>/`. Run it once per mode into the same DIR, then `flashsale report
    /// --compose DIR`. Exit status 1 when a run's invariants failed or k6 failed.
    Study(Box<StudyArgs>),
    /// The instrument's ceiling on this machine: k6 runs the same journey, at the same virtual
    /// users, against a null backend (nginx answering every step itself, nothing behind it),
    /// in each mode's journey shape; writes `<reports-dir>/<timestamp>-ceiling/ceiling.md`.
    /// No comparison here can beat these figures. Exit status 1 when a journey failed.
    Ceiling(CeilingArgs),
    /// Rebuild report.md and report.html of a `compare` report folder from its raw data; with
    /// `--compose`, first make a compose study's folder one (its modes' runs.json merged, the
    /// services' metrics and the containers' CPU read back from InfluxDB).
    Report(ReportArgs),
    /// One run's k6 files from several runners (a distributed k6, e.g. a TestRun with
    /// `parallelism` N): concatenates their `k6.csv.gz` and computes the run's `summary.json`
    /// again from every sample, into `--out`, as one runner of all the virtual users would
    /// have written them; prints the run's window for `runs.json`.
    K6Merge {
        /// The run's folder in the report (e.g. `report/raw/async/run-500-1`).
        #[arg(long)]
        out: PathBuf,
        /// The runners' folders, each with its `k6.csv.gz` (or `k6.csv`).
        #[arg(required = true)]
        runners: Vec<PathBuf>,
    },
    /// Fault run against the suite that is up, while you drive load (e.g. k6): kill -9 one
    /// replica of each service and restart it, SIGTERM one, restart RabbitMQ once (async),
    /// spread over `--duration`; then drain, audit, and print the fault log. Exit status 1
    /// when anything was lost, charged twice, oversold or left stuck.
    Chaos(ChaosArgs),
    /// What changed from report folder A to report folder B: per VU level, mode and metric,
    /// both means with their spread, the change in %, and whether it is beyond the spread;
    /// the settings that differ first.
    Diff {
        /// The report before (a folder holding runs.json).
        a: PathBuf,
        /// The report after.
        b: PathBuf,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The report folder (the one holding runs.json; with --compose, the study folder holding
    /// raw/<mode>/runs.json).
    dir: PathBuf,
    /// DIR is a compose study (`flashsale study`, one mode per invocation): merge its modes,
    /// read their metrics and the containers' CPU (Telegraf) from InfluxDB, then build.
    #[arg(long)]
    compose: bool,
    /// InfluxDB's URL (--compose).
    #[arg(long, env = "INFLUX_URL", default_value = "http://127.0.0.1:8086")]
    influx_url: String,
    /// A token that may read the bucket (--compose).
    #[arg(
        long,
        env = "INFLUX_TOKEN",
        default_value = "flashsale-development-token",
        hide_env_values = true
    )]
    influx_token: String,
    #[arg(long, env = "INFLUX_ORG", default_value = "flashsale")]
    influx_org: String,
    #[arg(long, env = "INFLUX_BUCKET", default_value = "flashsale")]
    influx_bucket: String,
}

#[derive(clap::Args)]
struct CeilingArgs {
    /// Journey shapes to measure, comma-separated [default: sync,async].
    #[arg(long, value_enum, value_delimiter = ',')]
    modes: Option<Vec<ModeArg>>,
    /// Virtual users, as in the comparison's counted runs.
    #[arg(long, default_value_t = 500)]
    vus: usize,
    /// Runs per journey shape; the report gives their median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Length of each run, e.g. 30s or 1m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// The report goes to `<reports-dir>/<timestamp>-ceiling/`.
    #[arg(long, default_value = "reports")]
    reports_dir: PathBuf,
    /// The null backend's port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The wait each status poll asks for, as in `compare --poll-wait`.
    #[arg(long, default_value_t = harness::compare::DEFAULT_POLL_WAIT_SECS)]
    poll_wait: u64,
    /// Journeys started per second (an open model), as in `compare --arrival-rate`; 0: a
    /// closed loop.
    #[arg(long, default_value_t = 0)]
    arrival_rate: u32,
    /// Run this journey script instead of the compiled-in one.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Do not check or install the servers first (k6 and nginx must be there).
    #[arg(long)]
    skip_setup: bool,
}

impl CeilingArgs {
    fn into_options(self) -> harness::ceiling::CeilingOptions {
        harness::ceiling::CeilingOptions {
            modes: self
                .modes
                .map(|m| m.into_iter().map(ModeArg::into_mode).collect())
                .unwrap_or_else(|| harness::ceiling::CeilingOptions::default().modes),
            vus: self.vus,
            runs: self.runs,
            duration: self.duration,
            reports_dir: self.reports_dir,
            port: self.port,
            poll_wait_secs: self.poll_wait,
            arrival_rate: self.arrival_rate,
            script: self.script,
            skip_setup: self.skip_setup,
        }
    }
}

#[derive(clap::Args)]
struct ChaosArgs {
    #[arg(long, default_value = "run")]
    run_dir: PathBuf,
    /// Length of the run: as long as the load you drive, e.g. 60s or 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// How long a stopped replica (or RabbitMQ) stays down before it is started again.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    restart_after: Duration,
    /// Longest wait after the run for the suite to drain (PENDING orders are resumed after
    /// RECONCILE_AFTER_SECS, unpaid reservations expire after RESERVATION_TTL_SECS).
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// The RabbitMQ node to restart, e.g. rabbit@localhost [default: rabbitmqctl's].
    #[arg(long)]
    rabbitmq_node: Option<String>,
    /// Do not restart RabbitMQ (another suite uses the same broker).
    #[arg(long)]
    no_broker: bool,
    /// The load's k6 time series (`k6 run --out csv=FILE`), read once the load stopped: the
    /// failures shoppers saw, nginx's 503s included [default: the services' http metrics].
    #[arg(long, value_name = "FILE")]
    k6_csv: Option<PathBuf>,
    /// Print the fault log as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DlqAction {
    /// List dead letters (they stay where they are).
    List {
        #[command(flatten)]
        target: DlqTarget,
        #[arg(long)]
        json: bool,
    },
    /// Publish dead letters back to the queue they died in, then remove them from the DLQ.
    Replay {
        #[command(flatten)]
        target: DlqTarget,
    },
}

#[derive(clap::Args)]
struct DlqTarget {
    /// One queue only: a DLQ name (`<prefix>.<service>.dlq`) or a service name.
    #[arg(long)]
    queue: Option<String>,
    #[arg(long, default_value = "run")]
    run_dir: PathBuf,
    /// Queue prefix (default: the running suite's database prefix, else `flashsale`).
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long)]
    amqp_url: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Sync,
    Async,
}

impl ModeArg {
    fn into_mode(self) -> common::Mode {
        match self {
            ModeArg::Sync => common::Mode::Sync,
            ModeArg::Async => common::Mode::Async,
        }
    }
}

#[derive(clap::Args)]
struct UpArgs {
    #[arg(long, value_enum)]
    mode: ModeArg,
    /// Processes per service.
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 5)]
    products: usize,
    /// Initial units of every product.
    #[arg(long, default_value_t = 1000)]
    stock: i32,
    /// Units of each product one user may buy; 0 = no limit.
    #[arg(long, default_value_t = 1)]
    per_user_limit: i32,
    /// nginx's port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, default_value = "run")]
    run_dir: PathBuf,
    #[arg(long, default_value = "flashsale")]
    db_prefix: String,
    #[arg(long, default_value = "flashsale")]
    redis_prefix: String,
    /// actix workers per replica.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// PostgreSQL connections per replica.
    #[arg(long, default_value_t = 4)]
    db_pool_size: usize,
    /// The seeded users' password.
    #[arg(long, default_value = "flashsale")]
    password: String,
    /// Folder of the service binaries (default: beside this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Extra environment for every service, e.g. `--env PAYMENT_LATENCY_MS=200` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Keep the databases and Redis keys of an earlier run.
    #[arg(long)]
    keep_databases: bool,
    /// RabbitMQ URL of the suite (e.g. a node of its own, so that `flashsale chaos` may
    /// restart it) [default: the machine's, amqp://guest:guest@127.0.0.1:5672/%2f].
    #[arg(long)]
    amqp_url: Option<String>,
    /// Do not check or start PostgreSQL, Redis and RabbitMQ first.
    #[arg(long)]
    skip_setup: bool,
    /// The share of traces the services record, 0 to 1 (`TRACE_SAMPLE_RATIO`, spans in
    /// `<run-dir>/traces/<instance>.jsonl`; docs/tracing.md); 0: tracing off. A k6 you drive
    /// yourself takes the same `TRACE_SAMPLE_RATIO`.
    #[arg(
        long,
        value_name = "RATIO",
        env = "TRACE_SAMPLE_RATIO",
        default_value_t = 0.0,
        value_parser = parse_ratio
    )]
    trace_sample: f64,
}

/// A share from 0 to 1, e.g. `0.1`; empty (`TRACE_SAMPLE_RATIO=` in the environment) is 0.
fn parse_ratio(raw: &str) -> Result<f64, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(0.0);
    }
    raw.parse::<f64>()
        .ok()
        .filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{raw:?} is not a share from 0 to 1 (e.g. 0.1)"))
}

/// A number, or nothing: an empty `STOCK=` in the environment (how compose passes a variable
/// nobody set) means unset, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OptionalI32(Option<i32>);

fn parse_optional_i32(raw: &str) -> Result<OptionalI32, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(OptionalI32(None));
    }
    raw.parse()
        .map(|n| OptionalI32(Some(n)))
        .map_err(|e| format!("{raw:?} is not a whole number: {e}"))
}

fn parse_env(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {raw:?}"))
}

impl UpArgs {
    fn into_options(self) -> SuiteOptions {
        SuiteOptions {
            mode: self.mode.into_mode(),
            replicas: self.replicas,
            users: self.users,
            products: self.products,
            stock: self.stock,
            per_user_limit: self.per_user_limit,
            port: self.port,
            run_dir: self.run_dir,
            db_prefix: self.db_prefix,
            redis_prefix: self.redis_prefix,
            bin_dir: self.bin_dir,
            workers: self.workers,
            db_pool_size: self.db_pool_size,
            password: self.password,
            hash_params: HashParams::default(),
            extra_env: self.env,
            keep_databases: self.keep_databases,
            amqp_url: self
                .amqp_url
                .unwrap_or_else(|| SuiteOptions::default().amqp_url),
            trace_sample_ratio: self.trace_sample,
            ..SuiteOptions::default()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ScenarioArg {
    Flash,
    Sustained,
    Both,
}

/// The protocol's runs and journey, shared by `compare` and `study`. Options left unset take
/// the study's value, or the `--quick` profile's with `--quick`.
#[derive(clap::Args)]
struct ProtocolArgs {
    /// Virtual users of the warm-up runs [default: 250; --quick: 20].
    #[arg(long)]
    warmup_vus: Option<usize>,
    /// Warm-up runs per mode, not counted [default: 2; --quick: 1].
    #[arg(long)]
    warmups: Option<usize>,
    /// Virtual users of the counted runs; several levels comma-separated, e.g. 250,500
    /// [default: 500; --quick: 50].
    #[arg(long, value_delimiter = ',')]
    vus: Option<Vec<usize>>,
    /// Counted runs per mode and VU level [default: 3; --quick: 1].
    #[arg(long)]
    runs: Option<usize>,
    /// Length of each counted run, e.g. 60s or 2m [default: 60s; --quick: 10s, or 60s with
    /// --faults].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Length of each warm-up run [default: --duration; --quick: 5s].
    #[arg(long, value_parser = parse_duration)]
    warmup_duration: Option<Duration>,
    /// The CI smoke profile: 1 warm-up of 5 s at 20 VUs, 1 counted run of 10 s at 50 VUs,
    /// 1 replica per service, 50 shoppers; explicit options still win.
    #[arg(long)]
    quick: bool,
    /// Seeded shoppers [default: the largest VU count, one shopper per virtual user].
    #[arg(long)]
    users: Option<usize>,
    /// Units of each product in the flash scenario [default: 100; --quick: 20].
    #[arg(long)]
    flash_stock: Option<i32>,
    /// Seconds a shopper pauses after each journey.
    #[arg(long, default_value_t = 0.0)]
    think_time: f64,
    /// An open model: start this many journeys per second whatever the answers' speed, with
    /// at most the level's virtual users under way (journeys k6 could not start are reported);
    /// 0: a closed loop, each virtual user starting its next journey when the last one ended.
    #[arg(long, default_value_t = 0)]
    arrival_rate: u32,
    /// Seconds a status poll asks the service to hold it until the status changes
    /// (`Prefer: wait=N`); 0: short polls with a backoff, as before long polls.
    #[arg(long, default_value_t = harness::compare::DEFAULT_POLL_WAIT_SECS)]
    poll_wait: u64,
    /// Log in at the start of every journey (the study's exact journey) instead of once per
    /// virtual user before the sale opens.
    #[arg(long)]
    login_every_iteration: bool,
    /// Longest wait after a run for the suite to drain [default: 120s; --quick: 30s].
    #[arg(long, value_parser = parse_duration)]
    drain_timeout: Option<Duration>,
    /// Run this k6 script instead of the journey compiled into flashsale (k6/journey.js).
    #[arg(long)]
    script: Option<PathBuf>,
    /// Trace this share of the journeys, 0 to 1 (docs/tracing.md): k6 sends each journey's
    /// `traceparent`, sampled with this probability, and the services record the sampled
    /// ones; the report breaks the checkout traces down by hop. `compare` gives the
    /// services the same `TRACE_SAMPLE_RATIO` and keeps their spans in `raw/<mode>/traces/`;
    /// for `study` it is k6's alone (compose's services send their spans to Jaeger, and
    /// compose gives the study container their `TRACE_SAMPLE_RATIO`); 0: off [default:
    /// sustained 0.01, flash 0.2: enough checkout traces to fill the breakdown].
    #[arg(long, value_name = "RATIO", env = "TRACE_SAMPLE_RATIO", value_parser = parse_ratio)]
    trace_sample: Option<f64>,
}

/// Options left unset take the study's value, or the `--quick` profile's with `--quick`.
#[derive(clap::Args)]
struct CompareArgs {
    /// Modes to compare, comma-separated [default: sync,async].
    #[arg(long, value_enum, value_delimiter = ',')]
    modes: Option<Vec<ModeArg>>,
    /// flash: a small stock that sells out (one unit per shopper); sustained: stock and
    /// limit so every journey completes [default: both].
    #[arg(long, value_enum)]
    scenario: Option<ScenarioArg>,
    #[command(flatten)]
    protocol: ProtocolArgs,
    /// Reports go to `<reports-dir>/<timestamp>-<scenario>/`.
    #[arg(long, default_value = "reports")]
    reports_dir: PathBuf,
    /// Processes per service [default: 2; --quick: 1, or 2 with --faults].
    #[arg(long)]
    replicas: Option<usize>,
    /// Folder of the service binaries (default: beside this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// nginx's port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Each mode's suite runs in `<run-dir>/<mode>`.
    #[arg(long, default_value = "run/compare")]
    run_dir: PathBuf,
    #[arg(long, default_value = "flashsale")]
    db_prefix: String,
    #[arg(long, default_value = "flashsale")]
    redis_prefix: String,
    /// Extra environment for every service, e.g. `--env PAYMENT_LATENCY_MS=200` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Do not check or start PostgreSQL, Redis, RabbitMQ and k6 first.
    #[arg(long)]
    skip_setup: bool,
    /// Fault runs: during every counted run, kill -9 one replica of each service and restart
    /// it, SIGTERM one, restart RabbitMQ once (async); audit each run for lost orders, double
    /// charges, oversold units and stuck sagas; the report gets a Faults section.
    #[arg(long)]
    faults: bool,
    /// The RabbitMQ node `--faults` restarts, e.g. rabbit@localhost [default: rabbitmqctl's].
    #[arg(long)]
    rabbitmq_node: Option<String>,
    /// The suites' RabbitMQ URL [default: the machine's, amqp://guest:guest@127.0.0.1:5672/%2f].
    #[arg(long)]
    amqp_url: Option<String>,
}

#[derive(clap::Args)]
struct StudyArgs {
    /// The suite's mode (what its services and nginx run as).
    #[arg(long, value_enum)]
    mode: ModeArg,
    #[arg(long, value_enum, default_value = "flash")]
    scenario: harness::compare::Scenario,
    /// The study folder, shared by both modes' studies.
    #[arg(long)]
    dir: PathBuf,
    /// The suite's public address (its nginx).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The suite's PostgreSQL server, without a database name.
    #[arg(long, default_value = harness::infra::DEFAULT_DATABASE_URL)]
    database_url: String,
    #[arg(long, default_value = "flashsale")]
    db_prefix: String,
    /// The suite's RabbitMQ [default: amqp://guest:guest@127.0.0.1:5672/%2f].
    #[arg(long)]
    amqp_url: Option<String>,
    /// The seeded users' password.
    #[arg(long, default_value = "flashsale")]
    password: String,
    /// The RUN_ID the suite's services tag their metrics with.
    #[arg(long, env = "RUN_ID", default_value = "compose")]
    run_id: String,
    /// Processes per service of the suite, for the report.
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// Every run also exports k6's web dashboard as `k6-dashboard.html` beside its summary.
    #[arg(long)]
    web_dashboard: bool,
    /// InfluxDB 2, where each run is marked for Grafana (`study_run`); unset: no marks.
    #[arg(long, env = "INFLUX_URL")]
    influx_url: Option<String>,
    #[arg(long, env = "INFLUX_ORG", default_value = "flashsale")]
    influx_org: String,
    #[arg(long, env = "INFLUX_BUCKET", default_value = "flashsale")]
    influx_bucket: String,
    #[arg(long, env = "INFLUX_TOKEN", default_value = "", hide_env_values = true)]
    influx_token: String,
    #[command(flatten)]
    protocol: ProtocolArgs,
}

impl StudyArgs {
    fn into_options(self) -> harness::compare::study::StudyOptions {
        use harness::compare::study::{StudyOptions, StudyTarget};
        let protocol = harness::compare::CompareOptions {
            replicas: self.replicas,
            k6_web_dashboard: self.web_dashboard,
            ..self.protocol.into_options(false)
        };
        StudyOptions {
            protocol,
            scenario: self.scenario,
            target: StudyTarget {
                mode: self.mode.into_mode(),
                base_url: self.base_url,
                database_url: self.database_url,
                db_prefix: self.db_prefix,
                amqp_url: self
                    .amqp_url
                    .unwrap_or_else(|| SuiteOptions::default().amqp_url),
                password: self.password,
                run_id: self.run_id,
            },
            dir: self.dir,
            influx: self.influx_url.map(|url| harness::report::flux::Influx {
                url,
                org: self.influx_org,
                bucket: self.influx_bucket,
                token: self.influx_token,
            }),
        }
    }
}

/// `60s`, `2m`, `1m30s`, `500ms` or a bare number of seconds.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let text = raw.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite())
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(|| format!("{raw:?} is not a duration"));
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{raw:?} is not a duration (e.g. 60s, 2m, 1m30s)"))?;
        number.clear();
        total += match c {
            'h' => value * 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                value / 1000.0
            }
            'm' => value * 60.0,
            's' => value,
            _ => return Err(format!("{raw:?} is not a duration (e.g. 60s, 2m, 1m30s)")),
        };
    }
    if !number.is_empty() {
        return Err(format!(
            "{raw:?} is not a duration: a unit is missing after {number}"
        ));
    }
    Ok(Duration::from_secs_f64(total))
}

impl ProtocolArgs {
    /// The protocol's options over the study's (or the quick profile's) defaults; `faults`:
    /// whether fault runs need their longer default duration.
    fn into_options(self, faults: bool) -> harness::compare::CompareOptions {
        use harness::compare::CompareOptions;
        let base = if self.quick {
            CompareOptions::quick()
        } else {
            CompareOptions::study()
        };
        // Each fault needs a few seconds before the next to show its recovery.
        let duration = self.duration.unwrap_or(if faults {
            base.duration.max(harness::compare::FAULT_RUN_MIN)
        } else {
            base.duration
        });
        CompareOptions {
            warmup_vus: self.warmup_vus.unwrap_or(base.warmup_vus),
            warmups: self.warmups.unwrap_or(base.warmups),
            vus: self.vus.unwrap_or_else(|| base.vus.clone()),
            runs: self.runs.unwrap_or(base.runs),
            duration,
            // Warm-ups last as long as the counted runs, except in the quick profile.
            warmup_duration: self.warmup_duration.unwrap_or(if self.quick {
                base.warmup_duration.min(duration)
            } else {
                duration
            }),
            quick: self.quick,
            users: self.users.unwrap_or(base.users),
            flash_stock: self.flash_stock.unwrap_or(base.flash_stock),
            think_time_secs: self.think_time.max(0.0),
            arrival_rate: self.arrival_rate,
            poll_wait_secs: self.poll_wait,
            login_every_iteration: self.login_every_iteration,
            drain_timeout: self.drain_timeout.unwrap_or(base.drain_timeout),
            script: self.script,
            trace_sample_ratio: self.trace_sample,
            ..base
        }
    }
}

impl CompareArgs {
    fn into_options(self) -> harness::compare::CompareOptions {
        use harness::compare::Scenario;
        let base = self.protocol.into_options(self.faults);
        harness::compare::CompareOptions {
            modes: self.modes.map_or(base.modes.clone(), |modes| {
                modes.into_iter().map(ModeArg::into_mode).collect()
            }),
            scenarios: match self.scenario {
                None | Some(ScenarioArg::Both) => vec![Scenario::Flash, Scenario::Sustained],
                Some(ScenarioArg::Flash) => vec![Scenario::Flash],
                Some(ScenarioArg::Sustained) => vec![Scenario::Sustained],
            },
            reports_dir: self.reports_dir,
            // A fault plan kills one replica of each service, which only a pool of two or
            // more survives.
            replicas: self.replicas.unwrap_or(if self.faults {
                base.replicas.max(2)
            } else {
                base.replicas
            }),
            bin_dir: self.bin_dir,
            port: self.port,
            run_dir: self.run_dir,
            db_prefix: self.db_prefix,
            redis_prefix: self.redis_prefix,
            service_env: self.env,
            skip_setup: self.skip_setup,
            faults: self.faults,
            rabbitmq_node: self.rabbitmq_node,
            amqp_url: self.amqp_url,
            ..base
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .init();

    let result = match Cli::parse().command {
        Command::Setup => harness::infra::setup().await.map(|()| true),
        Command::Seed {
            database_url,
            db_prefix,
            users,
            products,
            scenario,
            stock,
            per_user_limit,
            password,
        } => {
            let (stock, per_user_limit) = harness::seed::stock_and_limit(
                scenario,
                stock.and_then(|s| s.0),
                per_user_limit.and_then(|l| l.0),
            );
            tracing::info!(
                "seeding {stock} units of each product, per-user limit {per_user_limit}"
            );
            let opts = SuiteOptions {
                db_prefix,
                users,
                products,
                stock,
                per_user_limit,
                password,
                ..SuiteOptions::default()
            };
            harness::seed::seed(&database_url, &opts)
                .await
                .map(|seeded| {
                    tracing::info!("seeded {users} users and {} products", seeded.len());
                    true
                })
        }
        Command::Up(args) => {
            let skip = args.skip_setup;
            commands::up(args.into_options(), skip).await.map(|()| true)
        }
        Command::Down { run_dir } => commands::down(&run_dir).await.map(|()| true),
        Command::Verify {
            json,
            run_dir,
            db_prefix,
            database_url,
            grace_secs,
            drain_secs,
            amqp_url,
        } => {
            commands::verify(
                &run_dir,
                commands::VerifyArgs {
                    db_prefix,
                    database_url,
                    amqp_url,
                    grace: Duration::from_secs_f64(grace_secs.max(0.0)),
                    drain: Duration::from_secs_f64(drain_secs.max(0.0)),
                },
                json,
            )
            .await
        }
        Command::Dlq { action } => match action {
            DlqAction::List { target, json } => {
                commands::dlq_list(
                    &target.run_dir,
                    target.prefix,
                    target.amqp_url,
                    target.queue.as_deref(),
                    json,
                )
                .await
            }
            DlqAction::Replay { target } => {
                commands::dlq_replay(
                    &target.run_dir,
                    target.prefix,
                    target.amqp_url,
                    target.queue.as_deref(),
                )
                .await
            }
        },
        Command::Status { run_dir, json } => commands::status(&run_dir, json).await,
        Command::Compare(args) => commands::compare(args.into_options()).await,
        Command::Study(args) => commands::study(args.into_options()).await,
        Command::Ceiling(args) => commands::ceiling(args.into_options()).await,
        Command::Report(args) if args.compose => {
            let influx = harness::report::flux::Influx {
                url: args.influx_url,
                token: args.influx_token,
                org: args.influx_org,
                bucket: args.influx_bucket,
            };
            commands::report_compose(&args.dir, &influx).await
        }
        Command::Report(args) => commands::report(&args.dir),
        Command::K6Merge { out, runners } => commands::k6_merge(&runners, &out),
        Command::Chaos(args) => {
            commands::chaos(commands::ChaosArgs {
                run_dir: args.run_dir,
                duration: args.duration,
                restart_after: args.restart_after,
                drain_timeout: args.drain_timeout,
                rabbitmq_node: args.rabbitmq_node,
                no_broker: args.no_broker,
                k6_csv: args.k6_csv,
                json: args.json,
            })
            .await
        }
        Command::Diff { a, b, json } => commands::diff(&a, &b, json),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::compare::Scenario;

    #[test]
    fn an_empty_override_is_unset_and_a_bad_one_is_refused() {
        assert_eq!(parse_optional_i32(""), Ok(OptionalI32(None)));
        assert_eq!(parse_optional_i32(" 42 "), Ok(OptionalI32(Some(42))));
        assert!(parse_optional_i32("many").is_err());
    }

    #[test]
    fn the_trace_sample_is_a_share_from_0_to_1_for_compare_study_and_up() {
        let compare = |extra: &[&str]| {
            let mut args = vec!["flashsale", "compare", "--quick"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Compare(args) => args.into_options().trace_sample_ratio,
                _ => panic!("not compare"),
            })
        };
        // Unset: each scenario's own share (CompareOptions::trace_sample).
        let unset = compare(&[]).expect("parses");
        assert_eq!(unset, None);
        assert_eq!(
            compare(&["--trace-sample", "0"]).expect("parses"),
            Some(0.0)
        );
        assert_eq!(
            compare(&["--trace-sample", "0.1"]).expect("parses"),
            Some(0.1)
        );
        assert_eq!(
            compare(&["--trace-sample", "1"]).expect("parses"),
            Some(1.0)
        );
        for bad in ["1.5", "-0.1", "some", "NaN"] {
            assert!(compare(&["--trace-sample", bad]).is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from([
            "flashsale",
            "study",
            "--mode",
            "async",
            "--dir",
            "x",
            "--trace-sample",
            "0.5",
        ])
        .expect("parses");
        match cli.command {
            Command::Study(args) => {
                assert_eq!(args.into_options().protocol.trace_sample_ratio, Some(0.5))
            }
            _ => panic!("not study"),
        }
        let cli =
            Cli::try_parse_from(["flashsale", "up", "--mode", "sync", "--trace-sample", "0.2"])
                .expect("parses");
        match cli.command {
            Command::Up(args) => assert_eq!(args.into_options().trace_sample_ratio, 0.2),
            _ => panic!("not up"),
        }
    }

    #[test]
    fn the_trace_sample_falls_back_on_the_services_variable() {
        // Compose gives the study container the services' TRACE_SAMPLE_RATIO: k6 must sample
        // with the same share, or no checkout is one trace.
        use clap::CommandFactory;
        let cli = Cli::command();
        for name in ["compare", "study", "up"] {
            let command = cli.find_subcommand(name).expect(name);
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == "trace_sample")
                .unwrap_or_else(|| panic!("{name} has no --trace-sample"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some("TRACE_SAMPLE_RATIO"),
                "{name}"
            );
        }
        assert_eq!(parse_ratio(""), Ok(0.0));
        assert_eq!(parse_ratio(" 0.01 "), Ok(0.01));
    }

    #[test]
    fn seed_takes_the_scenario_and_overrides_from_the_command_line() {
        let cli = Cli::try_parse_from([
            "flashsale",
            "seed",
            "--scenario",
            "sustained",
            "--stock",
            "9",
        ])
        .expect("parses");
        match cli.command {
            Command::Seed {
                scenario, stock, ..
            } => {
                assert_eq!(scenario, Some(Scenario::Sustained));
                assert_eq!(stock, Some(OptionalI32(Some(9))));
            }
            _ => panic!("not seed"),
        }
    }
}
