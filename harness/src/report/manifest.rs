//! `runs.json`: what `flashsale compare` ran, in which order, with which settings, on which
//! machine, and where each run's raw data is. `flashsale report DIR` needs nothing else
//! besides the files it names.
//!
//! Layout of a report folder:
//!
//! ```text
//! runs.json                        this manifest
//! report.md, report.html           generated from the rest
//! raw/<mode>/metrics/*.lp          the services' metrics (docs/metrics.md), whole suite life
//! raw/<mode>/traces/*.jsonl        the services' spans (docs/tracing.md), when traced
//! raw/<mode>/<label>/summary.json  k6 --summary-export      (label: warmup-1, run-500-2, ...)
//! raw/<mode>/<label>/k6.csv.gz     k6's per-request time series (or k6.csv)
//! raw/<mode>/<label>/load.json     k6's own CPU and the machine's busy share, per second
//! raw/<mode>/<label>/verify.json   the invariant check after the run drained
//! raw/<mode>/<label>/k6.log        k6's output
//! ```

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "runs.json";
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub version: u32,
    /// `flash` or `sustained`.
    pub scenario: String,
    pub created_at: DateTime<Utc>,
    pub settings: Settings,
    pub environment: Environment,
    /// One suite per mode, started fresh.
    pub suites: Vec<SuiteRecord>,
    /// Every k6 run, in the order they ran.
    pub runs: Vec<RunRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub modes: Vec<String>,
    pub warmup_vus: usize,
    pub warmups: usize,
    /// The counted VU levels.
    pub vus: Vec<usize>,
    pub runs: usize,
    pub duration_secs: f64,
    pub warmup_duration_secs: f64,
    pub replicas: usize,
    pub users: usize,
    /// Products on sale in one run.
    pub products: usize,
    pub stock: i32,
    /// 0 = no limit.
    pub per_user_limit: i32,
    /// Whether every run sells new products (the flash scenario: a new sale per run).
    pub new_products_per_run: bool,
    pub think_time_secs: f64,
    /// Journeys started per second in an open model (k6's constant-arrival-rate, at most the
    /// level's virtual users under way); 0, and in runs made before it existed, a closed loop.
    #[serde(default)]
    pub arrival_rate: u32,
    /// The wait a status poll asked for (`Prefer: wait=N`); 0, and in runs made before
    /// long polls existed, polls that do not wait.
    #[serde(default)]
    pub poll_wait_secs: u64,
    pub login_every_iteration: bool,
    pub quick: bool,
    /// The share of journeys traced (`--trace-sample`, docs/tracing.md); 0, and in runs made
    /// before tracing existed, none.
    #[serde(default)]
    pub trace_sample_ratio: f64,
    /// Extra environment given to every service (`--env`).
    pub service_env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    /// Component → version text (postgresql, redis, rabbitmq, nginx, k6, rustc).
    pub versions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SuiteRecord {
    pub mode: String,
    /// The `RUN_ID` its services tag their metrics with.
    pub run_id: String,
    /// Its metrics folder, relative to the report folder.
    pub metrics_dir: String,
    /// Its span files' folder (`TRACE_FILE`, docs/tracing.md), relative to the report
    /// folder; none for a suite whose spans went elsewhere (compose's, to Jaeger) and in runs
    /// made before tracing existed.
    #[serde(default)]
    pub traces_dir: Option<String>,
    /// Why the suite or one of its runs could not run, when that happened.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Warms the suite up; shown, never counted.
    Warmup,
    Counted,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub mode: String,
    pub kind: RunKind,
    /// 1-based, within its kind and VU level.
    pub index: usize,
    pub vus: usize,
    pub duration_secs: f64,
    /// When k6's scenario started and stopped (after setup's logins, before teardown).
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Its raw data folder, relative to the report folder.
    pub dir: String,
    pub k6_exit_code: Option<i32>,
    /// Whether nothing was left PENDING within the drain timeout.
    pub drained: bool,
    pub drain_secs: f64,
    /// The products this run sold.
    pub products: Vec<String>,
}

impl RunRecord {
    pub fn label(&self) -> String {
        match self.kind {
            RunKind::Warmup => format!("warm-up {}", self.index),
            RunKind::Counted => format!("run {}", self.index),
        }
    }

    /// `sync run 2 at 500 VUs`: the run as warnings name it.
    pub fn name(&self) -> String {
        format!("{} {} at {} VUs", self.mode, self.label(), self.vus)
    }
}

impl Manifest {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is this a report folder?)", path.display()))?;
        let manifest: Manifest =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        anyhow::ensure!(
            manifest.version == MANIFEST_VERSION,
            "{} is version {}, this flashsale reads version {MANIFEST_VERSION}",
            path.display(),
            manifest.version
        );
        Ok(manifest)
    }

    /// Write atomically, so an interrupted compare leaves a readable manifest of what ran.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = Self::path(dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }
}
