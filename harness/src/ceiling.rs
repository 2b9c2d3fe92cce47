//! `flashsale ceiling`: the instrument's ceiling on this machine.
//!
//! k6 runs the comparison's own journey script, with the same options and outputs, against a
//! null backend: an nginx that answers every step of the checkout itself, with the public
//! contract's statuses, bodies and `Location` headers (`nginx/null-backend.conf.j2`), and
//! runs no service, database or broker. Whatever a suite behind the same nginx does, it cannot
//! beat these numbers on the same machine, at the same virtual users: they are what the load
//! generator and the entry proxy alone leave. In a closed loop without think time they bound
//! the latency too (latency ≈ virtual users ÷ throughput), which is what a latency target at a
//! fixed number of virtual users must be read against.
//!
//! Each mode's journey shape is measured: sync (201 / 200 at once, five requests per checkout)
//! and async (202 and a status URL that is final at its first poll, seven requests). A run in
//! which any journey failed is no ceiling of the journey: the command then exits with status 1.

use crate::k6::load;
use crate::report::table::{cell, Figure, Unit};
use crate::rundata::k6::{read_summary, Summary, SUMMARY_FILE};
use crate::rundata::load::{read_load, Load, LoadSample, LOAD_FILE};
use anyhow::Context;
use chrono::{DateTime, Utc};
use common::Mode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The null backend's nginx template, compiled in.
pub const TEMPLATE: &str = include_str!("../../nginx/null-backend.conf.j2");
/// The figures of every run and their medians, beside the Markdown report.
pub const CEILING_FILE: &str = "ceiling.json";
pub const MARKDOWN_FILE: &str = "ceiling.md";
const MARKDOWN_TEMPLATE: &str = include_str!("../templates/ceiling.md.j2");
/// The name the null backend's `/nginx-health` answers, so a start-up never takes another
/// nginx on the same port for it.
const SUITE_NAME: &str = "null-backend";
/// How long the null backend may take to answer its health check after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything `flashsale ceiling` runs with.
#[derive(Debug, Clone)]
pub struct CeilingOptions {
    pub modes: Vec<Mode>,
    pub vus: usize,
    pub runs: usize,
    pub duration: Duration,
    /// The report goes to `<reports_dir>/<timestamp>-ceiling/`.
    pub reports_dir: PathBuf,
    /// The null backend's port on 127.0.0.1.
    pub port: u16,
    /// The wait the journey's status polls ask for, as in `compare` (the null backend answers
    /// at once whatever they ask).
    pub poll_wait_secs: u64,
    /// Journeys started per second (an open model); 0: a closed loop of `vus`.
    pub arrival_rate: u32,
    /// Run this journey script instead of the compiled-in one.
    pub script: Option<PathBuf>,
    pub skip_setup: bool,
}

impl Default for CeilingOptions {
    /// The benchmark's load: 500 virtual users, 3 runs of 30 s per mode
    /// (`scripts/bench-sustained.sh`).
    fn default() -> Self {
        Self {
            modes: vec![Mode::Sync, Mode::Async],
            vus: 500,
            runs: 3,
            duration: Duration::from_secs(30),
            reports_dir: PathBuf::from("reports"),
            port: 8080,
            poll_wait_secs: crate::compare::DEFAULT_POLL_WAIT_SECS,
            arrival_rate: 0,
            script: None,
            skip_setup: false,
        }
    }
}

/// What one run reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub requests_per_sec: f64,
    pub avg_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// End-to-end checkout time of confirmed journeys, as `compare` measures it.
    pub checkout_p95_ms: Option<f64>,
    pub checkouts_per_sec: f64,
    pub failed_journeys: f64,
    /// Journeys an open-model run could not start (every virtual user busy).
    pub dropped_journeys: f64,
    pub failure_rate: Option<f64>,
    /// Mean cores while the scenario ran.
    pub k6_cores: Option<f64>,
    pub nginx_cores: Option<f64>,
    /// Mean share of the machine that was busy (0..1).
    pub machine_busy: Option<f64>,
    /// k6's CPU per request it sent, in microseconds.
    pub k6_us_per_request: Option<f64>,
}

impl Figures {
    /// The figures of a run from its k6 summary and the harness's load samples, over the time
    /// the scenario ran (`elapsed_secs`).
    pub fn of(summary: &Summary, load: &Load, elapsed_secs: f64) -> Figures {
        let secs = elapsed_secs.max(f64::MIN_POSITIVE);
        let requests_per_sec = summary.requests.unwrap_or(0.0) / secs;
        let mean = |value: &dyn Fn(&LoadSample) -> Option<f64>| {
            let values: Vec<f64> = load.samples.iter().filter_map(value).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let k6_cores = mean(&|s| Some(s.k6_cores));
        Figures {
            requests_per_sec,
            avg_ms: summary.avg_ms,
            p90_ms: summary.p90_ms,
            p95_ms: summary.p95_ms,
            checkout_p95_ms: summary.checkout_p95_ms,
            checkouts_per_sec: summary.confirmed() / secs,
            failed_journeys: summary.outcomes.get("failed").copied().unwrap_or(0.0),
            dropped_journeys: summary.dropped_journeys.unwrap_or(0.0),
            failure_rate: summary.failure_rate,
            k6_cores,
            nginx_cores: mean(&|s| s.components.get("nginx").copied()),
            machine_busy: mean(&|s| Some(s.machine_busy)),
            k6_us_per_request: k6_cores
                .filter(|_| requests_per_sec > 0.0)
                .map(|cores| cores * 1e6 / requests_per_sec),
        }
    }
}

/// One run of the null backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CeilingRun {
    pub mode: String,
    pub index: usize,
    pub vus: usize,
    pub duration_secs: f64,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// The run's raw data (k6's summary and series, the load samples), under the report.
    pub dir: String,
    pub k6_exit_code: Option<i32>,
    pub figures: Figures,
}

/// The rows of the report: a figure's label, its unit, and how it is read off a run.
struct RowDef {
    label: &'static str,
    unit: Unit,
    value: fn(&Figures) -> Option<f64>,
}

/// The units of the table: counts and rates in whole numbers.
const COUNT: Unit = Unit::fixed(0, "");
const MS: Unit = Unit::fixed(1, " ms");
const US: Unit = Unit::fixed(0, " µs");
const CORES: Unit = Unit::fixed(2, "");
const PERCENT: Unit = Unit::fixed(0, " %");

const ROWS: [RowDef; 12] = [
    RowDef {
        label: "Throughput (req/s)",
        unit: COUNT,
        value: |f| Some(f.requests_per_sec),
    },
    RowDef {
        label: "Avg latency",
        unit: MS,
        value: |f| f.avg_ms,
    },
    RowDef {
        label: "P90 latency",
        unit: MS,
        value: |f| f.p90_ms,
    },
    RowDef {
        label: "P95 latency",
        unit: MS,
        value: |f| f.p95_ms,
    },
    RowDef {
        label: "End-to-end checkout P95",
        unit: MS,
        value: |f| f.checkout_p95_ms,
    },
    RowDef {
        label: "Checkouts/s",
        unit: COUNT,
        value: |f| Some(f.checkouts_per_sec),
    },
    RowDef {
        label: "k6 CPU per request",
        unit: US,
        value: |f| f.k6_us_per_request,
    },
    RowDef {
        label: "k6 CPU (cores)",
        unit: CORES,
        value: |f| f.k6_cores,
    },
    RowDef {
        label: "nginx CPU (cores)",
        unit: CORES,
        value: |f| f.nginx_cores,
    },
    RowDef {
        label: "Machine busy",
        unit: PERCENT,
        value: |f| f.machine_busy.map(|b| b * 100.0),
    },
    RowDef {
        label: "Failed journeys",
        unit: COUNT,
        value: |f| Some(f.failed_journeys),
    },
    RowDef {
        label: "Journeys not started (open model)",
        unit: COUNT,
        value: |f| Some(f.dropped_journeys),
    },
];

/// Everything `ceiling.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ceiling {
    pub created_at: DateTime<Utc>,
    pub vus: usize,
    pub runs_per_mode: usize,
    pub duration_secs: f64,
    pub poll_wait_secs: u64,
    /// Journeys started per second; 0: a closed loop.
    #[serde(default)]
    pub arrival_rate: u32,
    pub cpu_model: String,
    pub cores: usize,
    pub k6_version: String,
    pub runs: Vec<CeilingRun>,
}

impl Ceiling {
    fn modes(&self) -> Vec<&str> {
        let mut modes: Vec<&str> = Vec::new();
        for run in &self.runs {
            if !modes.contains(&run.mode.as_str()) {
                modes.push(&run.mode);
            }
        }
        modes
    }

    /// A figure's median over one mode's runs.
    pub fn median(&self, mode: &str, value: fn(&Figures) -> Option<f64>) -> Option<Figure> {
        Figure::median(
            self.runs
                .iter()
                .filter(|r| r.mode == mode)
                .map(|r| value(&r.figures)),
        )
    }

    /// Every journey of every run completed, and k6 exited cleanly.
    pub fn ok(&self) -> bool {
        !self.runs.is_empty()
            && self
                .runs
                .iter()
                .all(|r| r.k6_exit_code == Some(0) && r.figures.failed_journeys == 0.0)
    }

    /// The report's table: a row per figure, a column per mode, medians with their range.
    pub fn table(&self) -> String {
        let modes = self.modes();
        let mut out = String::from("| Figure |");
        for mode in &modes {
            out.push_str(&format!(" {mode} journey |"));
        }
        out.push_str("\n| --- |");
        out.push_str(&" --- |".repeat(modes.len()));
        out.push('\n');
        for row in &ROWS {
            out.push_str(&format!("| {} |", row.label));
            for mode in &modes {
                out.push_str(&format!(
                    " {} |",
                    cell(self.median(mode, row.value), row.unit)
                ));
            }
            out.push('\n');
        }
        out
    }

    /// `ceiling.md`.
    pub fn markdown(&self) -> anyhow::Result<String> {
        let runs: Vec<_> = self
            .runs
            .iter()
            .map(|r| {
                minijinja::context! {
                    mode => &r.mode,
                    index => r.index,
                    dir => &r.dir,
                    line => format!(
                        "{} req/s, p95 {}, checkout p95 {}, {} checkouts/s, {} failed journeys, k6 exit {}",
                        COUNT.format(r.figures.requests_per_sec),
                        r.figures.p95_ms.map_or("n/a".into(), |v| MS.format(v)),
                        r.figures.checkout_p95_ms.map_or("n/a".into(), |v| MS.format(v)),
                        COUNT.format(r.figures.checkouts_per_sec),
                        COUNT.format(r.figures.failed_journeys),
                        r.k6_exit_code.map_or("none".into(), |c| c.to_string()),
                    ),
                }
            })
            .collect();
        crate::templates::render(
            "templates/ceiling.md.j2",
            MARKDOWN_TEMPLATE,
            &minijinja::context! {
                c => minijinja::Value::from(minijinja::value::Serde(self)),
                table => self.table(),
                runs => runs,
                ok => self.ok(),
            },
        )
    }
}

/// The null backend's nginx config for one mode's journey shape.
pub fn render(mode: Mode, port: u16, prefix: &Path) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Context<'a> {
        mode: &'static str,
        port: u16,
        suite: &'static str,
        prefix: &'a str,
        user: Option<&'static str>,
    }
    crate::templates::render(
        "nginx/null-backend.conf.j2",
        TEMPLATE,
        &Context {
            mode: mode.as_str(),
            port,
            suite: SUITE_NAME,
            prefix: &prefix.to_string_lossy(),
            user: crate::nginx::worker_user(),
        },
    )
}

/// The null backend's nginx, stopped (SIGQUIT, then SIGKILL) when dropped.
struct NullBackend {
    child: std::process::Child,
    exe: PathBuf,
}

impl NullBackend {
    async fn start(nginx: &Path, mode: Mode, port: u16, prefix: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(prefix)
            .with_context(|| format!("creating {}", prefix.display()))?;
        let conf = crate::nginx::write_and_check(prefix, &render(mode, port, prefix)?, nginx)?;
        let child = crate::nginx::spawn(prefix, nginx, &conf)?;
        let mut backend = NullBackend {
            child,
            exe: nginx.to_path_buf(),
        };
        let url = format!("http://127.0.0.1:{port}/nginx-health");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()?;
        let started = Instant::now();
        loop {
            if let Some(status) = backend.child.try_wait()? {
                anyhow::bail!(
                    "the null backend's nginx exited at start ({status}); last lines of its log:\n{}",
                    crate::process::tail(&prefix.join("error.log"), 20)
                );
            }
            let body = match http.get(&url).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if body.contains(&format!("\"suite\":\"{SUITE_NAME}\"")) {
                return Ok(backend);
            }
            if started.elapsed() > START_TIMEOUT {
                anyhow::bail!(
                    "the null backend does not answer on port {port} after {} s{}",
                    START_TIMEOUT.as_secs(),
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(" (another server answers: {body})")
                    }
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for NullBackend {
    fn drop(&mut self) {
        let pid = self.child.id();
        crate::process::signal_group_ours(pid, &self.exe, nix::sys::signal::Signal::SIGQUIT);
        let left = crate::process::wait_exit(
            &[pid],
            std::slice::from_mut(&mut self.child),
            Duration::from_secs(5),
        );
        if !left.is_empty() {
            crate::process::signal_group_ours(pid, &self.exe, nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Run the null backend for each mode and write `ceiling.md` and `ceiling.json` under a new
/// report folder. `Ok((false, _))` when a journey failed or k6 did not exit cleanly.
pub async fn run(opts: &CeilingOptions) -> anyhow::Result<(bool, PathBuf, Ceiling)> {
    anyhow::ensure!(!opts.modes.is_empty(), "no mode to measure");
    anyhow::ensure!(opts.vus > 0, "--vus must be above 0");
    anyhow::ensure!(opts.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        opts.duration >= Duration::from_secs(1),
        "--duration must be at least 1 s"
    );
    if !opts.skip_setup {
        crate::infra::setup().await?;
    }
    let k6 = crate::k6::binary()?;
    let nginx = std::fs::canonicalize(crate::infra::nginx_binary()?)?;
    let created_at = Utc::now();
    let dir = std::fs::canonicalize(crate::compare::report_dir(
        &opts.reports_dir,
        created_at,
        "ceiling",
    )?)?;
    let script = match &opts.script {
        Some(path) => path.clone(),
        None => crate::k6::write_scripts(&dir.join("raw/k6"))?,
    };
    let (cpu_model, cores, _) = crate::procfs::machine();
    let mut ceiling = Ceiling {
        created_at,
        vus: opts.vus,
        runs_per_mode: opts.runs,
        duration_secs: opts.duration.as_secs_f64(),
        poll_wait_secs: opts.poll_wait_secs,
        arrival_rate: opts.arrival_rate,
        cpu_model,
        cores,
        k6_version: crate::k6::K6_VERSION.into(),
        runs: Vec::new(),
    };
    let base_url = format!("http://127.0.0.1:{}", opts.port);
    for mode in &opts.modes {
        let mode_name = mode.as_str();
        tracing::info!(
            "[{mode_name}/ceiling] starting the null backend on 127.0.0.1:{}",
            opts.port
        );
        let backend = NullBackend::start(
            &nginx,
            *mode,
            opts.port,
            &dir.join("raw").join(mode_name).join("nginx"),
        )
        .await?;
        for index in 1..=opts.runs {
            let rel = format!("raw/{mode_name}/run-{}-{index}", opts.vus);
            let out_dir = dir.join(&rel);
            let tag = format!(
                "[{mode_name}/ceiling] run {index}/{} at {} VUs",
                opts.runs, opts.vus
            );
            tracing::info!("{tag} for {} s…", opts.duration.as_secs());
            let result = load::run(load::LoadRun {
                k6: &k6,
                script: &script,
                out_dir: &out_dir,
                env: crate::k6::Journey {
                    base_url: &base_url,
                    vus: opts.vus,
                    duration: opts.duration,
                    users: opts.vus,
                    // The null backend lets anyone in and sells one product.
                    password: "flashsale",
                    products: &["1".to_string()],
                    scenario: "sustained",
                    think_time_secs: 0.0,
                    arrival_rate: opts.arrival_rate,
                    poll_wait_secs: opts.poll_wait_secs,
                    login_every_iteration: false,
                    // Nothing behind the null backend records a span.
                    trace_sample_ratio: 0.0,
                }
                .env(),
                duration: opts.duration,
                tag: tag.clone(),
                // nginx's CPU comes from the machine's split (every nginx process, workers
                // included); sampling its master pid alone would record nearly nothing.
                services: Vec::new(),
                mode: mode_name.into(),
                run_id: format!(
                    "{}-ceiling-{mode_name}",
                    created_at.format("%Y%m%dT%H%M%SZ")
                ),
                report_every: 10,
                on_start: None,
            })
            .await?;
            let summary = read_summary(&out_dir.join(SUMMARY_FILE))?;
            let samples = read_load(&out_dir.join(LOAD_FILE))?;
            let window = (result.ended_at - result.started_at).num_milliseconds() as f64 / 1e3;
            let figures = Figures::of(&summary, &samples, window.max(opts.duration.as_secs_f64()));
            tracing::info!(
                "{tag}: {:.0} req/s, p95 {}, checkout p95 {}, {:.0} checkouts/s, {} failed journeys",
                figures.requests_per_sec,
                figures.p95_ms.map_or("n/a".into(), |v| format!("{v:.1} ms")),
                figures.checkout_p95_ms.map_or("n/a".into(), |v| format!("{v:.0} ms")),
                figures.checkouts_per_sec,
                figures.failed_journeys
            );
            ceiling.runs.push(CeilingRun {
                mode: mode_name.into(),
                index,
                vus: opts.vus,
                duration_secs: opts.duration.as_secs_f64(),
                started_at: result.started_at,
                ended_at: result.ended_at,
                dir: rel,
                k6_exit_code: result.exit_code,
                figures,
            });
        }
        drop(backend);
    }
    std::fs::write(
        dir.join(CEILING_FILE),
        serde_json::to_string_pretty(&ceiling)? + "\n",
    )?;
    std::fs::write(dir.join(MARKDOWN_FILE), ceiling.markdown()?)?;
    crate::report::index::refresh(&opts.reports_dir);
    Ok((ceiling.ok(), dir, ceiling))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn summary(requests: f64, confirmed: f64, failed: f64) -> Summary {
        Summary {
            avg_ms: Some(40.0),
            p90_ms: Some(80.0),
            p95_ms: Some(100.0),
            checkout_p95_ms: Some(300.0),
            failure_rate: Some(0.0),
            requests: Some(requests),
            outcomes: BTreeMap::from([
                ("confirmed".to_string(), confirmed),
                ("failed".to_string(), failed),
            ]),
            dropped_journeys: None,
        }
    }

    fn sample(k6: f64, nginx: Option<f64>, busy: f64) -> LoadSample {
        LoadSample {
            t: 0.0,
            k6_cores: k6,
            machine_busy: busy,
            requests_per_sec: 0.0,
            components: nginx
                .map(|n| BTreeMap::from([("nginx".to_string(), n)]))
                .unwrap_or_default(),
        }
    }

    fn run(mode: &str, index: usize, figures: Figures, exit: Option<i32>) -> CeilingRun {
        CeilingRun {
            mode: mode.into(),
            index,
            vus: 500,
            duration_secs: 30.0,
            started_at: Utc::now(),
            ended_at: Utc::now(),
            dir: format!("raw/{mode}/run-500-{index}"),
            k6_exit_code: exit,
            figures,
        }
    }

    fn ceiling(runs: Vec<CeilingRun>) -> Ceiling {
        Ceiling {
            created_at: Utc::now(),
            vus: 500,
            runs_per_mode: 3,
            duration_secs: 30.0,
            poll_wait_secs: 5,
            arrival_rate: 0,
            cpu_model: "test".into(),
            cores: 2,
            k6_version: "1.1.0".into(),
            runs,
        }
    }

    #[test]
    fn figures_divide_by_the_time_the_scenario_ran_and_k6_cpu_by_its_requests() {
        let load = Load {
            cores: 2,
            samples: vec![
                sample(1.6, Some(0.2), 0.98),
                sample(1.8, Some(0.4), 1.0),
                // A sample without a split leaves nginx's mean alone.
                sample(1.7, None, 0.99),
            ],
        };

        let f = Figures::of(&summary(300_000.0, 60_000.0, 0.0), &load, 30.0);

        assert_eq!(f.requests_per_sec, 10_000.0);
        assert_eq!(f.checkouts_per_sec, 2_000.0);
        assert_eq!(f.failed_journeys, 0.0);
        let k6 = f.k6_cores.expect("k6 cores");
        assert!((k6 - 1.7).abs() < 1e-9, "{k6}");
        let nginx = f.nginx_cores.expect("nginx cores");
        assert!((nginx - 0.3).abs() < 1e-9, "{nginx}");
        // 1.7 cores for 10,000 requests a second: 170 µs of CPU each.
        let per_request = f.k6_us_per_request.expect("per request");
        assert!((per_request - 170.0).abs() < 1e-6, "{per_request}");
        assert_eq!(f.checkout_p95_ms, Some(300.0));
    }

    #[test]
    fn figures_without_load_samples_have_no_cpu() {
        let f = Figures::of(&summary(0.0, 0.0, 0.0), &Load::default(), 30.0);
        assert_eq!((f.k6_cores, f.k6_us_per_request), (None, None));
    }

    #[test]
    fn the_table_gives_each_modes_median_and_range() {
        let load = |k6: f64| Load {
            cores: 2,
            samples: vec![sample(k6, Some(0.25), 1.0)],
        };
        let c = ceiling(vec![
            run(
                "sync",
                1,
                Figures::of(&summary(300_000.0, 60_000.0, 0.0), &load(1.7), 30.0),
                Some(0),
            ),
            run(
                "sync",
                2,
                Figures::of(&summary(270_000.0, 54_000.0, 0.0), &load(1.7), 30.0),
                Some(0),
            ),
            run(
                "sync",
                3,
                Figures::of(&summary(330_000.0, 66_000.0, 0.0), &load(1.7), 30.0),
                Some(0),
            ),
            run(
                "async",
                1,
                Figures::of(&summary(280_000.0, 40_000.0, 0.0), &load(1.6), 30.0),
                Some(0),
            ),
        ]);

        let table = c.table();

        assert!(
            table.starts_with("| Figure | sync journey | async journey |\n| --- | --- | --- |\n"),
            "{table}"
        );
        assert!(
            table.contains("| Throughput (req/s) | 10000 [9000–11000] | 9333 |"),
            "{table}"
        );
        assert!(
            table.contains("| Checkouts/s | 2000 [1800–2200] | 1333 |"),
            "{table}"
        );
        assert!(
            table.contains("| P95 latency | 100.0 ms [100.0 ms–100.0 ms] | 100.0 ms |"),
            "{table}"
        );
        assert!(
            table.contains("| nginx CPU (cores) | 0.25 [0.25–0.25] | 0.25 |"),
            "{table}"
        );
        assert!(c.ok());
        let md = c.markdown().expect("markdown");
        assert!(md.contains(&table), "{md}");
        assert!(md.contains("Every journey of every run completed."), "{md}");
    }

    #[test]
    fn a_failed_journey_or_a_k6_error_is_no_ceiling() {
        let load = Load::default();
        let clean = || Figures::of(&summary(1000.0, 200.0, 0.0), &load, 10.0);
        assert!(ceiling(vec![run("sync", 1, clean(), Some(0))]).ok());

        let failed = ceiling(vec![
            run("sync", 1, clean(), Some(0)),
            run(
                "async",
                1,
                Figures::of(&summary(1000.0, 199.0, 1.0), &load, 10.0),
                Some(0),
            ),
        ]);
        assert!(!failed.ok());
        assert!(failed
            .markdown()
            .expect("markdown")
            .contains("Not a ceiling"));

        assert!(!ceiling(vec![run("sync", 1, clean(), Some(99))]).ok());
        assert!(!ceiling(vec![run("sync", 1, clean(), None)]).ok());
        assert!(!ceiling(Vec::new()).ok());
    }

    /// The location block of `path` (`location = /x` or `location /x/`) in a rendered config.
    fn block<'a>(conf: &'a str, location: &str) -> &'a str {
        let start = conf
            .find(&format!("location {location} {{"))
            .unwrap_or_else(|| panic!("no location {location} in:\n{conf}"));
        // The block ends at a line of its own that closes it (the bodies hold braces too).
        let end = start + conf[start..].find("\n        }").expect("block end");
        &conf[start..end]
    }

    #[test]
    fn the_sync_shape_confirms_at_once() {
        let conf = render(Mode::Sync, 18095, Path::new("/tmp/ceiling/nginx")).expect("render");

        assert!(conf.contains("listen 127.0.0.1:18095 backlog=4096;"));
        assert!(conf.contains("pid /tmp/ceiling/nginx/nginx.pid;"));
        assert!(block(&conf, "= /nginx-health").contains(r#""suite":"null-backend""#));
        assert!(block(&conf, "= /api/auth/login").contains(r#"return 200 '{"token":"#));
        assert!(block(&conf, "= /api/carts").contains("return 201 "));
        assert!(block(&conf, "/api/carts/").contains("return 200 "));
        assert!(block(&conf, "/api/products/").contains("return 200 "));
        assert!(block(&conf, "= /api/reservations")
            .contains(r#"return 201 '{"id":"null-reservation","status":"RESERVED""#));
        assert!(block(&conf, "= /api/payments")
            .contains(r#"return 200 '{"order_id":"null-order","status":"CONFIRMED"}'"#));
        assert!(!conf.contains("return 202"), "{conf}");
        assert!(!conf.contains("proxy_pass"), "{conf}");
    }

    #[test]
    fn the_async_shape_answers_202_with_a_status_url_that_is_final() {
        let conf = render(Mode::Async, 18095, Path::new("/tmp/ceiling/nginx")).expect("render");

        let reserve = block(&conf, "= /api/reservations");
        assert!(reserve.contains("return 202 "), "{reserve}");
        assert!(reserve.contains("add_header Location /api/reservations/null-reservation always;"));
        assert!(block(&conf, "/api/reservations/").contains(r#""status":"RESERVED""#));
        let pay = block(&conf, "= /api/payments");
        assert!(pay.contains("return 202 "), "{pay}");
        assert!(pay.contains("add_header Location /api/orders/null-order always;"));
        assert!(block(&conf, "/api/orders/").contains(r#""status":"CONFIRMED""#));
        assert!(!conf.contains("proxy_pass"), "{conf}");
    }
}
