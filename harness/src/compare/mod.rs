//! `flashsale compare`: the study's experiment on both architectures, and its report.
//!
//! For each scenario and each mode: a fresh suite (fresh databases, stock and queues), the
//! warm-up runs (kept and shown, never counted), then the counted runs at each VU level.
//! After every run the suite drains (nothing left PENDING, no outbox backlog, no queued
//! message) and the invariants are checked. k6's summary and time series, the harness's
//! load samples and the services' metrics files are kept under the report folder, whose
//! `runs.json` lists them; the report is then built from those files alone.
//!
//! The flash scenario opens a new sale for every run: new products with the same small
//! stock, so every run sells out from a full stock and the per-user limit starts afresh.

pub mod environment;
pub mod study;

use crate::options::SuiteOptions;
use crate::report::manifest::{Manifest, RunKind, RunRecord, Settings, SuiteRecord};
use crate::rundata;
use crate::state::SuiteState;
use crate::suite::Suite;
use anyhow::Context;
use chrono::{DateTime, Utc};
use common::Mode;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Work younger than this is in flight, not stuck, when the invariants are checked.
const VERIFY_GRACE: Duration = Duration::from_secs(10);
/// Shortest drain of a fault run: what crashes left half-way takes a while to finish.
const FAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(90);
/// Products on sale in one run.
const PRODUCTS: usize = 5;
/// Stock of the sustained scenario: more than any run can sell.
pub const SUSTAINED_STOCK: i32 = 10_000_000;
/// Units of each product in the flash scenario unless told otherwise (`--flash-stock`).
pub const DEFAULT_FLASH_STOCK: i32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A small stock that sells out, one unit per shopper: fairness under a spike.
    Flash,
    /// Stock and limit so every journey can complete: the throughput of the full path.
    Sustained,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Flash => "flash",
            Scenario::Sustained => "sustained",
        }
    }

    /// The share of journeys traced unless told otherwise: the smallest that fills the
    /// report's hop breakdown with a few hundred checkout traces per mode over the study's
    /// three runs. Tracing on costs the same at 1 % as at 10 % (docs/tracing.md, "What it
    /// costs"): a sustained run confirms thousands of checkouts, 1 % is enough; a flash run
    /// sells a few hundred units, a fifth of them is needed.
    pub fn default_trace_sample(self) -> f64 {
        match self {
            Scenario::Flash => 0.2,
            Scenario::Sustained => 0.01,
        }
    }

    /// The stock of each product and the per-user limit (0 = none) this scenario is seeded
    /// with, the flash stock being `flash_stock`: what `compare` seeds and `seed --scenario`.
    pub fn stock_and_limit(self, flash_stock: i32) -> (i32, i32) {
        match self {
            Scenario::Flash => (flash_stock, 1),
            Scenario::Sustained => (SUSTAINED_STOCK, 0),
        }
    }
}

/// Everything `flashsale compare` runs with (the CLI resolves `--quick` into these).
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub modes: Vec<Mode>,
    pub scenarios: Vec<Scenario>,
    pub warmup_vus: usize,
    pub warmups: usize,
    /// Counted VU levels.
    pub vus: Vec<usize>,
    pub runs: usize,
    pub duration: Duration,
    /// Length of each warm-up run.
    pub warmup_duration: Duration,
    pub quick: bool,
    pub reports_dir: PathBuf,
    pub replicas: usize,
    /// Service binaries; default: beside this executable.
    pub bin_dir: Option<PathBuf>,
    pub port: u16,
    /// Each mode's suite runs in `<run_dir>/<mode>`.
    pub run_dir: PathBuf,
    pub db_prefix: String,
    pub redis_prefix: String,
    pub users: usize,
    pub flash_stock: i32,
    pub think_time_secs: f64,
    /// Journeys started per second (an open model); 0: a closed loop of the level's VUs.
    pub arrival_rate: u32,
    /// The wait a status poll asks for (`Prefer: wait=N`); 0 polls without waiting.
    pub poll_wait_secs: u64,
    pub login_every_iteration: bool,
    pub drain_timeout: Duration,
    /// Extra environment for every service.
    pub service_env: Vec<(String, String)>,
    /// Run this journey script instead of the compiled-in one.
    pub script: Option<PathBuf>,
    pub skip_setup: bool,
    /// Fault runs: the standard fault plan ([`crate::chaos::FaultPlan::standard`]) during
    /// every counted run, audited after it; the report gets a Faults section.
    pub faults: bool,
    /// Every run also writes k6's web dashboard report (`k6-dashboard.html`); off by
    /// default, since the dashboard's aggregation costs k6 CPU on the machine under test.
    pub k6_web_dashboard: bool,
    /// The RabbitMQ node a fault run restarts (async); default: rabbitmqctl's.
    pub rabbitmq_node: Option<String>,
    /// The suites' RabbitMQ; default: the machine's.
    pub amqp_url: Option<String>,
    /// The share of journeys traced (k6's `TRACE_SAMPLE_RATIO`, and the services' in a suite
    /// `compare` starts); 0: tracing off; unset: the scenario's
    /// ([`Scenario::default_trace_sample`]).
    pub trace_sample_ratio: Option<f64>,
}

/// The wait a journey's status polls ask for by default: long enough that a checkout's
/// stage is usually one poll, well under the services' `STATUS_WAIT_MAX_SECS` (10).
pub const DEFAULT_POLL_WAIT_SECS: u64 = 5;

impl CompareOptions {
    /// The share of `scenario`'s journeys traced: the one asked for, else the scenario's.
    pub fn trace_sample(&self, scenario: Scenario) -> f64 {
        self.trace_sample_ratio
            .unwrap_or_else(|| scenario.default_trace_sample())
    }

    /// The defaults of the study's protocol: 2 warm-ups at 250 VUs, then 3 runs at 500, 60 s
    /// each, both modes, both scenarios, 2 replicas per service.
    pub fn study() -> Self {
        Self {
            modes: vec![Mode::Sync, Mode::Async],
            scenarios: vec![Scenario::Flash, Scenario::Sustained],
            warmup_vus: 250,
            warmups: 2,
            vus: vec![500],
            runs: 3,
            duration: Duration::from_secs(60),
            warmup_duration: Duration::from_secs(60),
            quick: false,
            reports_dir: PathBuf::from("reports"),
            replicas: 2,
            bin_dir: None,
            port: 8080,
            run_dir: PathBuf::from("run/compare"),
            db_prefix: "flashsale".into(),
            redis_prefix: "flashsale".into(),
            users: 0,
            flash_stock: DEFAULT_FLASH_STOCK,
            think_time_secs: 0.0,
            arrival_rate: 0,
            poll_wait_secs: DEFAULT_POLL_WAIT_SECS,
            login_every_iteration: false,
            drain_timeout: Duration::from_secs(120),
            service_env: Vec::new(),
            script: None,
            skip_setup: false,
            faults: false,
            k6_web_dashboard: false,
            rabbitmq_node: None,
            amqp_url: None,
            trace_sample_ratio: None,
        }
    }

    /// The CI smoke profile: 1 warm-up of 5 s at 20 VUs, 1 counted run of 10 s at 50 VUs,
    /// one replica per service, 50 shoppers, 20 units per flash product.
    pub fn quick() -> Self {
        Self {
            warmup_vus: 20,
            warmups: 1,
            vus: vec![50],
            runs: 1,
            duration: Duration::from_secs(10),
            warmup_duration: Duration::from_secs(5),
            quick: true,
            replicas: 1,
            flash_stock: 20,
            drain_timeout: Duration::from_secs(30),
            ..Self::study()
        }
    }

    /// Shoppers to seed: the option, else one per virtual user of the largest level.
    fn shoppers(&self) -> usize {
        if self.users > 0 {
            self.users
        } else {
            self.vus
                .iter()
                .copied()
                .chain([self.warmup_vus])
                .max()
                .unwrap_or(1)
                .max(1)
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.modes.is_empty(), "no mode to compare");
        anyhow::ensure!(!self.scenarios.is_empty(), "no scenario to run");
        anyhow::ensure!(
            !self.vus.is_empty() && self.vus.iter().all(|v| *v > 0),
            "--vus needs at least one level above 0"
        );
        anyhow::ensure!(self.runs >= 1, "--runs must be at least 1");
        anyhow::ensure!(
            self.warmups == 0 || self.warmup_vus > 0,
            "--warmup-vus must be above 0"
        );
        anyhow::ensure!(
            self.duration >= Duration::from_secs(1)
                && (self.warmups == 0 || self.warmup_duration >= Duration::from_secs(1)),
            "--duration and --warmup-duration must be at least 1 s"
        );
        anyhow::ensure!(self.flash_stock > 0, "--flash-stock must be above 0");
        anyhow::ensure!(
            self.trace_sample_ratio
                .is_none_or(|r| (0.0..=1.0).contains(&r)),
            "--trace-sample must be between 0 and 1"
        );
        anyhow::ensure!(
            !self.faults || self.replicas >= 2,
            "--faults kills one replica of each service: with --replicas {} that is an outage of \
             the service, not a fault the suite can absorb; run at least 2 replicas",
            self.replicas
        );
        if self.faults && self.duration < FAULT_RUN_MIN {
            tracing::warn!(
                "--duration {:?} is shorter than {:?}: the faults come closer than their \
                 recovery takes, and the fault log's recovery column stays empty",
                self.duration,
                FAULT_RUN_MIN
            );
        }
        Ok(())
    }
}

/// The shortest counted run of a fault plan that leaves each fault the time to show its
/// recovery (about 7 s between faults, restart and [`crate::rundata::faults::RECOVERED_SECS`] included):
/// the default of `--faults` runs.
pub const FAULT_RUN_MIN: Duration = Duration::from_secs(60);

/// What one scenario produced.
struct ScenarioOutcome {
    /// Every run kept its invariants and every mode ran.
    ok: bool,
    dir: PathBuf,
    built: crate::report::Built,
}

/// Run the comparison and write one report per scenario. `Ok(false)` when any run's
/// invariants failed or a mode could not run.
pub async fn run(mut opts: CompareOptions) -> anyhow::Result<bool> {
    opts.validate()?;
    if opts.faults {
        // What a crash leaves half-way must finish within the drain: orders PENDING are
        // resumed after 5 s, reservations a cut-short step left PENDING expire after 60 s.
        // `--env` still wins (it comes after), and the report's settings show them.
        let mut env = vec![
            ("RECONCILE_AFTER_SECS".to_string(), "5".to_string()),
            ("RESERVATION_TTL_SECS".to_string(), "60".to_string()),
        ];
        env.append(&mut opts.service_env);
        opts.service_env = env;
        opts.drain_timeout = opts.drain_timeout.max(FAULT_DRAIN_TIMEOUT);
    }
    if !opts.skip_setup {
        crate::infra::setup().await?;
    }
    let k6 = crate::k6::binary()?;
    let bin_dir = match &opts.bin_dir {
        Some(dir) => dir.clone(),
        None => crate::suite::default_bin_dir()?,
    };
    let database_url = SuiteOptions::default().database_url;
    let environment = environment::collect(&database_url, &k6).await;
    let stamp = Utc::now();
    let mut all_ok = true;
    for scenario in &opts.scenarios {
        let ScenarioOutcome { ok, dir, built } =
            run_scenario(&opts, *scenario, stamp, &k6, &bin_dir, &environment).await?;
        all_ok &= ok;
        println!("## {} scenario: {}\n", scenario.as_str(), dir.display());
        println!("{}", built.tables);
        println!(
            "report: {}\n        {}\n",
            built.markdown.display(),
            built.html.display()
        );
    }
    Ok(all_ok)
}

/// A new folder `<reports>/<stamp>-<name>` (`-2`, `-3`… when it exists), created.
pub(crate) fn report_dir(
    reports: &Path,
    stamp: DateTime<Utc>,
    name: &str,
) -> anyhow::Result<PathBuf> {
    let base = format!("{}-{name}", stamp.format("%Y%m%d-%H%M%S"));
    let mut dir = reports.join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = reports.join(format!("{base}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn run_scenario(
    opts: &CompareOptions,
    scenario: Scenario,
    stamp: DateTime<Utc>,
    k6: &Path,
    bin_dir: &Path,
    environment: &crate::report::manifest::Environment,
) -> anyhow::Result<ScenarioOutcome> {
    let dir = report_dir(&opts.reports_dir, stamp, scenario.as_str())?;
    let script = match &opts.script {
        Some(path) => path.clone(),
        None => crate::k6::write_scripts(&dir.join("raw/k6"))?,
    };
    let mut manifest = new_manifest(opts, scenario, stamp, environment);
    manifest.save(&dir)?;

    let mut all_ok = true;
    for mode in &opts.modes {
        let ctx = ModeRun {
            opts,
            scenario,
            mode: *mode,
            dir: &dir,
            manifest_dir: &dir,
            first_product: 0,
            k6,
            script: &script,
            bin_dir,
            run_id: format!(
                "{}-{}-{}",
                stamp.format("%Y%m%dT%H%M%SZ"),
                scenario.as_str(),
                mode.as_str()
            ),
        };
        let tag = ctx.tag();
        match ctx.run(&mut manifest).await {
            Ok(ok) => all_ok &= ok,
            Err(e) => {
                tracing::error!("{tag} {e:#}");
                if let Some(s) = manifest.suites.iter_mut().find(|s| s.mode == mode.as_str()) {
                    s.error = Some(format!("{e:#}"));
                }
                all_ok = false;
            }
        }
        manifest.save(&dir)?;
    }
    tracing::info!(
        "[{}] writing the report in {}",
        scenario.as_str(),
        dir.display()
    );
    let built = crate::report::build(&dir)?;
    crate::report::index::refresh(&opts.reports_dir);
    Ok(ScenarioOutcome {
        ok: all_ok && built.invariants_ok,
        dir,
        built,
    })
}

/// The manifest of one scenario's comparison before its first run: what it will run with.
fn new_manifest(
    opts: &CompareOptions,
    scenario: Scenario,
    stamp: DateTime<Utc>,
    environment: &crate::report::manifest::Environment,
) -> Manifest {
    let (stock, per_user_limit) = scenario.stock_and_limit(opts.flash_stock);
    Manifest {
        version: crate::report::manifest::MANIFEST_VERSION,
        scenario: scenario.as_str().into(),
        created_at: stamp,
        settings: Settings {
            modes: opts.modes.iter().map(|m| m.as_str().to_string()).collect(),
            warmup_vus: opts.warmup_vus,
            warmups: opts.warmups,
            vus: opts.vus.clone(),
            runs: opts.runs,
            duration_secs: opts.duration.as_secs_f64(),
            warmup_duration_secs: opts.warmup_duration.as_secs_f64(),
            replicas: opts.replicas,
            users: opts.shoppers(),
            products: PRODUCTS,
            stock,
            per_user_limit,
            new_products_per_run: scenario == Scenario::Flash,
            think_time_secs: opts.think_time_secs,
            arrival_rate: opts.arrival_rate,
            poll_wait_secs: opts.poll_wait_secs,
            login_every_iteration: opts.login_every_iteration,
            quick: opts.quick,
            trace_sample_ratio: opts.trace_sample(scenario),
            service_env: opts.service_env.iter().cloned().collect(),
        },
        environment: environment.clone(),
        suites: Vec::new(),
        runs: Vec::new(),
    }
}

/// One mode of one scenario: its suite and its runs.
struct ModeRun<'a> {
    opts: &'a CompareOptions,
    scenario: Scenario,
    mode: Mode,
    /// The report folder: every run's `dir` is relative to it.
    dir: &'a Path,
    /// Where `runs.json` is saved after every run: `dir`, or a study's `raw/<mode>`.
    manifest_dir: &'a Path,
    /// Products already on sale before the first run (a study against a suite that sold
    /// before): the flash scenario's sales start after them.
    first_product: usize,
    k6: &'a Path,
    script: &'a Path,
    bin_dir: &'a Path,
    run_id: String,
}

/// One k6 run of the plan.
struct Step {
    kind: RunKind,
    index: usize,
    of: usize,
    vus: usize,
    duration: Duration,
}

impl ModeRun<'_> {
    /// The standard fault plan over a counted run of `duration`.
    fn fault_plan(&self, duration: Duration) -> anyhow::Result<crate::chaos::FaultPlan> {
        use crate::chaos::{FaultPlan, RabbitNode};
        let mut plan = FaultPlan::standard(self.mode, self.opts.replicas, duration);
        if self.mode == Mode::Async {
            plan.broker = Some(match &self.opts.rabbitmq_node {
                Some(node) => RabbitNode::named(node.clone())?,
                None => RabbitNode::machine()?,
            });
        }
        Ok(plan)
    }

    /// After a fault run drained and was verified: measure it against k6's time series,
    /// audit it, keep `faults.json` beside the run's k6 data. Answers whether it passed.
    async fn settle_faults(
        &self,
        suite: &Suite,
        log: &mut crate::chaos::FaultLog,
        out_dir: &Path,
        timeout: Duration,
        tag: &str,
    ) -> anyhow::Result<bool> {
        match rundata::k6::series_file(out_dir).map(|p| crate::chaos::Series::from_k6_csv(&p)) {
            Some(Ok(series)) => log.measure(&series),
            Some(Err(e)) => tracing::warn!("{tag}: k6's time series unreadable: {e:#}"),
            None => tracing::warn!("{tag}: no k6 time series to measure the faults with"),
        }
        log.settle(suite, &crate::chaos::Promises::default(), timeout)
            .await
            .context("auditing the fault run")?;
        std::fs::write(
            out_dir.join(rundata::faults::FAULTS_FILE),
            serde_json::to_string_pretty(&log)? + "\n",
        )?;
        let failed: u64 = log.faults.iter().filter_map(|f| f.failed).sum();
        tracing::info!(
            "{tag}: {} fault(s), {failed} request(s) failed in their windows; {}",
            log.faults.len(),
            if log.passed() {
                "nothing lost"
            } else {
                "FAULT RUN FAILED (see faults.json)"
            }
        );
        Ok(log.passed())
    }

    fn tag(&self) -> String {
        format!("[{}/{}]", self.mode.as_str(), self.scenario.as_str())
    }

    fn plan(&self) -> Vec<Step> {
        let o = self.opts;
        let mut steps: Vec<Step> = (1..=o.warmups)
            .map(|index| Step {
                kind: RunKind::Warmup,
                index,
                of: o.warmups,
                vus: o.warmup_vus,
                duration: o.warmup_duration,
            })
            .collect();
        for vus in &o.vus {
            steps.extend((1..=o.runs).map(|index| Step {
                kind: RunKind::Counted,
                index,
                of: o.runs,
                vus: *vus,
                duration: o.duration,
            }));
        }
        steps
    }

    async fn run(&self, manifest: &mut Manifest) -> anyhow::Result<bool> {
        let o = self.opts;
        let mode = self.mode.as_str();
        let suite_dir = o.run_dir.join(mode);
        // The metrics and spans of an earlier comparison must not be read as this one's: the
        // replicas append to `<run_dir>/metrics/<instance>.lp` and `traces/<instance>.jsonl`.
        let metrics_dir = emptied(&suite_dir.join("metrics"))?;
        let kept_metrics = format!("raw/{mode}/metrics");
        let traces_dir = emptied(&suite_dir.join(rundata::traces::TRACES_DIR))?;
        let kept_traces = format!("raw/{mode}/{}", rundata::traces::TRACES_DIR);
        manifest.suites.push(SuiteRecord {
            mode: mode.into(),
            run_id: self.run_id.clone(),
            metrics_dir: kept_metrics.clone(),
            traces_dir: Some(kept_traces.clone()),
            error: None,
        });

        // The suite points each replica's METRICS_FILE at `<run_dir>/metrics/<instance>.lp`
        // and its TRACE_FILE at `<run_dir>/traces/<instance>.jsonl`.
        let mut extra_env = vec![("RUN_ID".to_string(), self.run_id.clone())];
        extra_env.extend(o.service_env.iter().cloned());
        let settings = &manifest.settings;
        let suite_opts = SuiteOptions {
            mode: self.mode,
            replicas: o.replicas,
            users: settings.users,
            products: settings.products,
            stock: settings.stock,
            per_user_limit: settings.per_user_limit,
            port: o.port,
            run_dir: suite_dir.clone(),
            db_prefix: o.db_prefix.clone(),
            redis_prefix: o.redis_prefix.clone(),
            bin_dir: Some(self.bin_dir.to_path_buf()),
            extra_env,
            amqp_url: o
                .amqp_url
                .clone()
                .unwrap_or_else(|| SuiteOptions::default().amqp_url),
            trace_sample_ratio: o.trace_sample(self.scenario),
            ..SuiteOptions::default()
        };
        tracing::info!(
            "{} starting a fresh suite: {} replica(s) per service, {} shoppers, {} products × {} units",
            self.tag(),
            o.replicas,
            settings.users,
            settings.products,
            settings.stock
        );
        let mut suite = Suite::start(suite_opts)
            .await
            .context("starting the suite")?;
        let state = suite.state().clone();
        let result = self.run_steps(Some(&mut suite), &state, manifest).await;
        tracing::info!("{} stopping the suite", self.tag());
        // After the stop: a replica flushes its queued spans when it shuts down.
        let stopped = suite.stop().await;
        copy_kept(&metrics_dir, &self.dir.join(&kept_metrics), "lp", true)?;
        copy_kept(
            &traces_dir,
            &self.dir.join(&kept_traces),
            rundata::traces::TRACE_FILE_EXTENSION,
            false,
        )?;
        let ok = result?;
        stopped.context("stopping the suite")?;
        Ok(ok)
    }

    /// The plan's runs against the suite `state` describes; `suite` is the one the harness
    /// started, when it did (a fault run needs it to kill and restart replicas).
    async fn run_steps(
        &self,
        mut suite: Option<&mut Suite>,
        state: &SuiteState,
        manifest: &mut Manifest,
    ) -> anyhow::Result<bool> {
        let o = self.opts;
        let mode = self.mode.as_str();
        let mut products: Vec<String> = state.products.iter().map(|p| p.id.to_string()).collect();
        let watched: Vec<crate::k6::load::Watched> = state
            .processes
            .iter()
            .map(|p| crate::k6::load::Watched {
                pid: p.pid,
                service: p.service.clone(),
                instance: p.instance.clone(),
            })
            .collect();
        let mut all_ok = true;
        for (r, step) in self.plan().iter().enumerate() {
            if self.scenario == Scenario::Flash && (r > 0 || self.first_product > 0) {
                // A new sale: the next PRODUCTS products, at full stock.
                let first = self.first_product + r * PRODUCTS;
                let opts = SuiteOptions {
                    products: first + PRODUCTS,
                    ..state.options.clone()
                };
                let seeded = crate::seed::seed(&state.database_url, &opts)
                    .await
                    .context("seeding the next sale's products")?;
                products = seeded
                    .iter()
                    .skip(first)
                    .map(|p| p.id.to_string())
                    .collect();
            }
            let label = match step.kind {
                RunKind::Warmup => format!("warmup-{}", step.index),
                RunKind::Counted => format!("run-{}-{}", step.vus, step.index),
            };
            let rel = format!("raw/{mode}/{label}");
            let out_dir = self.dir.join(&rel);
            let tag = format!(
                "{} {} {}/{} at {} VUs",
                self.tag(),
                match step.kind {
                    RunKind::Warmup => "warm-up",
                    RunKind::Counted => "run",
                },
                step.index,
                step.of,
                step.vus
            );
            let duration = step.duration;
            tracing::info!("{tag} for {} s…", duration.as_secs());
            let mut env = crate::k6::Journey {
                base_url: &state.base_url,
                vus: step.vus,
                duration,
                users: state.users,
                password: &state.password,
                products: &products,
                scenario: self.scenario.as_str(),
                think_time_secs: o.think_time_secs,
                arrival_rate: o.arrival_rate,
                poll_wait_secs: o.poll_wait_secs,
                login_every_iteration: o.login_every_iteration,
                trace_sample_ratio: o.trace_sample(self.scenario),
            }
            .env();
            if o.k6_web_dashboard {
                env.extend(crate::k6::web_dashboard_env(&out_dir));
            }
            let plan = match (o.faults, step.kind) {
                (true, RunKind::Counted) => Some(self.fault_plan(duration)?),
                _ => None,
            };
            let (on_start, started) = tokio::sync::oneshot::channel();
            let load = crate::k6::load::run(crate::k6::load::LoadRun {
                k6: self.k6,
                script: self.script,
                out_dir: &out_dir,
                env,
                duration,
                tag: tag.clone(),
                services: watched
                    .iter()
                    .map(|w| crate::k6::load::Watched {
                        pid: w.pid,
                        service: w.service.clone(),
                        instance: w.instance.clone(),
                    })
                    .collect(),
                mode: mode.into(),
                run_id: self.run_id.clone(),
                report_every: if o.quick { 5 } else { 10 },
                on_start: plan.is_some().then_some(on_start),
            });
            // The faults start with the scenario (after setup's logins), while k6 runs.
            let (result, fault_log) = match &plan {
                Some(plan) => {
                    let suite = suite
                        .as_deref_mut()
                        .context("a fault run needs a suite the harness started")?;
                    let faults = async {
                        match started.await {
                            Ok(()) => Some(crate::chaos::run(suite, plan).await),
                            Err(_) => None,
                        }
                    };
                    let (result, log) = tokio::join!(load, faults);
                    (result?, log.transpose().context("running the fault plan")?)
                }
                None => (load.await?, None),
            };

            tracing::info!("{tag}: draining");
            let drain_started = Instant::now();
            let amqp = (self.mode == Mode::Async).then(|| state.amqp_url.clone());
            let drained = crate::verify::wait_drained(
                &state.database_url,
                &state.db_prefix,
                amqp.as_deref(),
                o.drain_timeout,
            )
            .await
            .context("waiting for the suite to drain")?;
            let drain_secs = drain_started.elapsed().as_secs_f64();
            let mut report = match &amqp {
                Some(url) => {
                    crate::verify::run_with_broker(
                        &state.database_url,
                        &state.db_prefix,
                        url,
                        VERIFY_GRACE,
                    )
                    .await
                }
                None => {
                    crate::verify::run(&state.database_url, &state.db_prefix, VERIFY_GRACE).await
                }
            }
            .context("checking the invariants")?;
            if !drained {
                report.violations.push(crate::verify::Violation {
                    invariant: 4,
                    message: format!(
                        "the suite did not drain within {} s of the run's end (work still PENDING, an outbox backlog or queued messages)",
                        o.drain_timeout.as_secs()
                    ),
                });
                report.ok = false;
            }
            std::fs::write(
                out_dir.join(rundata::VERIFY_FILE),
                serde_json::to_string_pretty(&report)? + "\n",
            )?;
            let k6_ok = matches!(result.exit_code, Some(0));
            let mut run_ok = report.ok() && k6_ok;
            if let (Some(mut log), Some(suite)) = (fault_log, suite.as_deref()) {
                run_ok &= self
                    .settle_faults(suite, &mut log, &out_dir, o.drain_timeout, &tag)
                    .await?;
            }
            all_ok &= run_ok;
            tracing::info!(
                "{tag}: {}; invariants {}{}",
                headline(
                    &out_dir,
                    (result.ended_at - result.started_at)
                        .to_std()
                        .unwrap_or_default()
                        .max(duration)
                ),
                if report.ok() { "hold" } else { "FAIL" },
                if k6_ok {
                    String::new()
                } else {
                    format!("; k6 exited with {:?}", result.exit_code)
                }
            );
            for v in &report.violations {
                tracing::warn!("{tag}: [{}] {}", v.invariant, v.message);
            }
            manifest.runs.push(RunRecord {
                mode: mode.into(),
                kind: step.kind,
                index: step.index,
                vus: step.vus,
                duration_secs: duration.as_secs_f64(),
                started_at: result.started_at,
                ended_at: result.ended_at,
                dir: rel,
                k6_exit_code: result.exit_code,
                drained,
                drain_secs,
                products: products.clone(),
            });
            manifest.save(self.manifest_dir)?;
        }
        Ok(all_ok)
    }
}

/// `812 req/s, p95 45 ms, checkout p95 120 ms, 340 confirmed` for the progress log, over
/// the time the scenario ran.
fn headline(out_dir: &Path, elapsed: Duration) -> String {
    match rundata::k6::read_summary(&out_dir.join(rundata::k6::SUMMARY_FILE)) {
        Ok(s) => format!(
            "{:.0} req/s, p95 {}, checkout p95 {}, {} confirmed, {} failed journeys",
            s.requests.unwrap_or(0.0) / elapsed.as_secs_f64(),
            s.p95_ms.map_or("n/a".into(), |v| format!("{v:.1} ms")),
            s.checkout_p95_ms
                .map_or("n/a".into(), |v| format!("{v:.1} ms")),
            s.confirmed(),
            s.outcomes.get("failed").copied().unwrap_or(0.0)
        ),
        Err(e) => format!("no k6 summary ({e:#})"),
    }
}

/// Copy the `*.<extension>` files of `from` into `to` (created first when `always`, else
/// only when there is a file to copy: a suite that traced nothing leaves no empty folder).
/// `dir`, emptied (created if missing), as an absolute path.
fn emptied(dir: &Path) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(std::fs::canonicalize(dir)?)
}

fn copy_kept(from: &Path, to: &Path, extension: &str, always: bool) -> anyhow::Result<()> {
    if always {
        std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    }
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == extension) {
            if let Some(name) = path.file_name() {
                std::fs::create_dir_all(to)
                    .with_context(|| format!("creating {}", to.display()))?;
                std::fs::copy(&path, to.join(name))
                    .with_context(|| format!("copying {}", path.display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_files_are_copied_by_extension_and_an_untraced_suite_leaves_no_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let from = dir.path().join("run/traces");
        std::fs::create_dir_all(&from).expect("mkdir");
        let (metrics, traces) = (
            dir.path().join("raw/metrics"),
            dir.path().join("raw/traces"),
        );

        copy_kept(&from, &traces, "jsonl", false).expect("copies nothing");
        copy_kept(&from, &metrics, "lp", true).expect("copies nothing");
        assert!(!traces.exists(), "no spans, no folder");
        assert!(metrics.is_dir(), "the metrics folder is always there");

        std::fs::write(from.join("order-0.jsonl"), "{}\n").expect("write");
        std::fs::write(from.join("order-0.log"), "no").expect("write");
        copy_kept(&from, &traces, "jsonl", false).expect("copies");
        let mut kept: Vec<String> = std::fs::read_dir(&traces)
            .expect("the folder")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(kept, ["order-0.jsonl"]);
    }

    #[test]
    fn an_unset_trace_sample_is_the_scenarios_own_and_0_is_off() {
        let unset = CompareOptions::study();
        assert_eq!(unset.trace_sample_ratio, None);
        assert_eq!(unset.trace_sample(Scenario::Sustained), 0.01);
        assert_eq!(unset.trace_sample(Scenario::Flash), 0.2);
        let off = CompareOptions {
            trace_sample_ratio: Some(0.0),
            ..CompareOptions::study()
        };
        assert_eq!(off.trace_sample(Scenario::Flash), 0.0);
        assert_eq!(off.trace_sample(Scenario::Sustained), 0.0);
    }

    #[test]
    fn the_manifest_records_the_trace_sample() {
        let opts = CompareOptions {
            trace_sample_ratio: Some(0.2),
            ..CompareOptions::quick()
        };
        let m = new_manifest(
            &opts,
            Scenario::Sustained,
            Utc::now(),
            &crate::report::manifest::Environment::default(),
        );
        assert_eq!(m.settings.trace_sample_ratio, 0.2);
        assert!(CompareOptions {
            trace_sample_ratio: Some(1.5),
            ..CompareOptions::quick()
        }
        .validate()
        .is_err());
    }
}
