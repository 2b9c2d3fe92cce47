//! The comparison report: `report.md` and a self-contained `report.html` (charts as inline
//! SVG, nothing fetched), built from a report folder's raw data alone ([`manifest`] lists
//! it), so `flashsale report DIR` rebuilds exactly what `flashsale compare` wrote.
//!
//! Per counted VU level, one table compares the modes: each metric is the mean of the counted
//! runs with its min–max spread; lower latency, CPU, memory and failure rate win, higher
//! throughput and confirmed checkouts/s win, and a difference inside the spread (the ranges
//! overlap) is a tie. Warm-up runs are listed, never counted.

pub mod charts;
pub mod faults;
pub mod lineproto;
pub mod manifest;
pub mod resources;
pub mod stats;
pub mod table;

use crate::rundata::faults::{FaultLog, FAULTS_FILE};
use crate::rundata::k6::{self, Second, Summary};
use crate::rundata::load::{read_load, Load, COMPONENTS, LOAD_FILE};
use crate::rundata::{HARNESS_METRICS_FILE, VERIFY_FILE};
use anyhow::Context;
use manifest::{Manifest, RunKind, RunRecord};
use resources::Usage;
use serde::Serialize;
use stats::{Better, Winner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use table::{cell, Figure, Unit};

pub const MARKDOWN_FILE: &str = "report.md";
pub const HTML_FILE: &str = "report.html";

/// The two modes, in the table's column order, with their column names.
pub const MODES: [(&str, &str); 2] = [
    ("sync", "Synchronous + Round Robin"),
    ("async", "Asynchronous + Least connections"),
];

/// Machine busier than this during a run: the load generator competed for CPU.
const BUSY_LIMIT: f64 = 0.95;
/// k6 using more than this share of the machine's cores: k6 was (close to) the bottleneck.
const K6_SHARE_LIMIT: f64 = 0.75;

/// What [`build`] wrote.
pub struct Built {
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// The comparison tables alone, in Markdown, for a terminal.
    pub tables: String,
    /// Every run's invariants held.
    pub invariants_ok: bool,
}

/// Where a run's CPU and memory numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UsageSource {
    /// The services' own `process` points (docs/metrics.md).
    Services,
    /// The harness's /proc sampling of the service processes (`harness.lp`).
    Harness,
}

/// One run with everything read from its raw data.
pub struct RunData {
    pub record: RunRecord,
    pub summary: Option<Summary>,
    pub series: Vec<Second>,
    pub load: Option<Load>,
    pub usage: Option<(Usage, UsageSource)>,
    pub verify: Option<VerifyResult>,
    /// The fault log of a counted run under `compare --faults` (`faults.json`).
    pub faults: Option<FaultLog>,
    /// Raw data that was missing or unreadable.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyResult {
    pub ok: bool,
    pub violations: Vec<String>,
}

impl RunData {
    /// How long the scenario ran: its set duration, or longer when journeys under way at the
    /// end finished during k6's graceful stop (their requests count, so their time does too).
    fn elapsed_secs(&self) -> f64 {
        let window =
            (self.record.ended_at - self.record.started_at).num_milliseconds() as f64 / 1e3;
        window.max(self.record.duration_secs)
    }

    fn throughput(&self) -> Option<f64> {
        let s = self.summary.as_ref()?;
        Some(s.requests? / self.elapsed_secs())
    }

    fn checkouts_per_sec(&self) -> Option<f64> {
        let s = self.summary.as_ref()?;
        Some(s.confirmed() / self.elapsed_secs())
    }

    /// Mean k6 CPU in cores and mean machine busy share, over the run.
    fn load_means(&self) -> Option<(f64, f64)> {
        let load = self.load.as_ref()?;
        if load.samples.is_empty() {
            return None;
        }
        let n = load.samples.len() as f64;
        Some((
            load.samples.iter().map(|s| s.k6_cores).sum::<f64>() / n,
            load.samples.iter().map(|s| s.machine_busy).sum::<f64>() / n,
        ))
    }

    /// Mean cores per component of the machine over the run (samples without a split, from
    /// runs recorded before it was sampled, are left out).
    fn cpu_split(&self) -> Option<BTreeMap<String, f64>> {
        let samples: Vec<_> = self
            .load
            .as_ref()?
            .samples
            .iter()
            .filter(|s| !s.components.is_empty())
            .collect();
        if samples.is_empty() {
            return None;
        }
        let mut split: BTreeMap<String, f64> = BTreeMap::new();
        for s in &samples {
            for (part, cores) in &s.components {
                *split.entry(part.clone()).or_default() += cores;
            }
        }
        let n = samples.len() as f64;
        split.values_mut().for_each(|v| *v /= n);
        Some(split)
    }

    /// Milliseconds of machine CPU per confirmed checkout, per component: the run's mean
    /// cores × 1000 ÷ its confirmed checkouts per second.
    fn cpu_per_checkout(&self) -> Option<BTreeMap<String, f64>> {
        let rate = self.checkouts_per_sec().filter(|r| *r > 0.0)?;
        let mut split = self.cpu_split()?;
        split.values_mut().for_each(|v| *v *= 1000.0 / rate);
        Some(split)
    }

    /// All of the machine's CPU per confirmed checkout, in ms.
    fn machine_cpu_per_checkout(&self) -> Option<f64> {
        Some(self.cpu_per_checkout()?.values().sum())
    }

    fn starved(&self, cores: usize) -> bool {
        self.load_means().is_some_and(|(k6, busy)| {
            busy >= BUSY_LIMIT || k6 > K6_SHARE_LIMIT * cores.max(1) as f64
        })
    }
}

/// Read every run's raw data.
pub fn load(dir: &Path, manifest: &Manifest) -> Vec<RunData> {
    let mut service_points: BTreeMap<String, Result<Vec<lineproto::Point>, String>> =
        BTreeMap::new();
    for suite in &manifest.suites {
        service_points.insert(
            suite.mode.clone(),
            lineproto::read_dir(&dir.join(&suite.metrics_dir)).map_err(|e| format!("{e:#}")),
        );
    }
    manifest
        .runs
        .iter()
        .map(|record| {
            let run_dir = dir.join(&record.dir);
            let mut problems = Vec::new();
            let summary = match k6::read_summary(&run_dir.join(k6::SUMMARY_FILE)) {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(format!("{e:#}"));
                    None
                }
            };
            let series = match k6::series_file(&run_dir) {
                Some(path) => k6::read_series(&path).unwrap_or_else(|e| {
                    problems.push(format!("{e:#}"));
                    Vec::new()
                }),
                None => Vec::new(),
            };
            let load_path = run_dir.join(LOAD_FILE);
            let load = load_path
                .is_file()
                .then(|| read_load(&load_path))
                .and_then(|r| r.map_err(|e| problems.push(format!("{e:#}"))).ok());
            let run_id = manifest
                .suites
                .iter()
                .find(|s| s.mode == record.mode)
                .map(|s| s.run_id.as_str());
            let window = resources::Window {
                mode: &record.mode,
                run_id,
                start_ns: record.started_at.timestamp_nanos_opt().unwrap_or(i64::MIN),
                end_ns: record.ended_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            };
            let from_services = match service_points.get(&record.mode) {
                Some(Ok(points)) => resources::usage(points, &window),
                Some(Err(e)) => {
                    problems.push(e.clone());
                    None
                }
                None => None,
            };
            let usage = match from_services {
                Some(u) => Some((u, UsageSource::Services)),
                None => {
                    let path = run_dir.join(HARNESS_METRICS_FILE);
                    let points = if path.is_file() {
                        lineproto::read_file(&path).unwrap_or_else(|e| {
                            problems.push(format!("{e:#}"));
                            Vec::new()
                        })
                    } else {
                        Vec::new()
                    };
                    resources::usage(&points, &window).map(|u| (u, UsageSource::Harness))
                }
            };
            let verify = match read_verify(&run_dir.join(VERIFY_FILE)) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(format!("{e:#}"));
                    None
                }
            };
            let faults_path = run_dir.join(FAULTS_FILE);
            let faults = faults_path
                .is_file()
                .then(|| -> anyhow::Result<FaultLog> {
                    let text = std::fs::read_to_string(&faults_path)?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("reading {}", faults_path.display()))
                })
                .and_then(|r| r.map_err(|e| problems.push(format!("{e:#}"))).ok());
            RunData {
                record: record.clone(),
                summary,
                series,
                load,
                usage,
                verify,
                faults,
                problems,
            }
        })
        .collect()
}

/// The outcome of `flashsale verify --json`, as far as the report needs it.
fn read_verify(path: &Path) -> anyhow::Result<VerifyResult> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let violations: Vec<String> = json
        .get("violations")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .map(|v| {
                    format!(
                        "[{}] {}",
                        v.get("invariant").and_then(|n| n.as_u64()).unwrap_or(0),
                        v.get("message").and_then(|m| m.as_str()).unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ok = json.get("ok").and_then(|v| v.as_bool()).unwrap_or(false) && violations.is_empty();
    Ok(VerifyResult { ok, violations })
}

// ------------------------------------------------------------------------------------------
// The view: every number already formatted, so both templates only lay it out.

/// The units of the comparison tables.
const MS: Unit = Unit::significant(" ms");
/// A share 0..1 shown in %.
const SHARE: Unit = Unit::fixed(2, " %").times(100.0);
/// CPU in % of one core.
const CPU: Unit = Unit::significant(" %");
const MEGABYTES: Unit = Unit::significant(" MB");
const RATE: Unit = Unit::significant("");

struct MetricDef {
    label: &'static str,
    unit: Unit,
    better: Better,
    value: fn(&RunData) -> Option<f64>,
}

const METRICS: [MetricDef; 10] = [
    MetricDef {
        label: "Avg latency",
        unit: MS,
        better: Better::Lower,
        value: |r| r.summary.as_ref()?.avg_ms,
    },
    MetricDef {
        label: "P90 latency",
        unit: MS,
        better: Better::Lower,
        value: |r| r.summary.as_ref()?.p90_ms,
    },
    MetricDef {
        label: "P95 latency",
        unit: MS,
        better: Better::Lower,
        value: |r| r.summary.as_ref()?.p95_ms,
    },
    MetricDef {
        label: "End-to-end checkout P95",
        unit: MS,
        better: Better::Lower,
        value: |r| r.summary.as_ref()?.checkout_p95_ms,
    },
    MetricDef {
        label: "CPU usage (services, % of one core)",
        unit: CPU,
        better: Better::Lower,
        value: |r| Some(r.usage.as_ref()?.0.cpu_percent),
    },
    MetricDef {
        label: "Machine CPU per confirmed checkout",
        unit: MS,
        better: Better::Lower,
        value: RunData::machine_cpu_per_checkout,
    },
    MetricDef {
        label: "Memory usage (services, RSS)",
        unit: MEGABYTES,
        better: Better::Lower,
        value: |r| Some(r.usage.as_ref()?.0.rss_bytes / 1e6),
    },
    MetricDef {
        label: "Failure rate",
        unit: SHARE,
        better: Better::Lower,
        value: |r| r.summary.as_ref()?.failure_rate,
    },
    MetricDef {
        label: "Throughput (req/s)",
        unit: RATE,
        better: Better::Higher,
        value: RunData::throughput,
    },
    MetricDef {
        label: "Confirmed checkouts/s",
        unit: RATE,
        better: Better::Higher,
        value: RunData::checkouts_per_sec,
    },
];

#[derive(Serialize)]
struct Row {
    metric: String,
    cells: Vec<String>,
    winner: String,
}

#[derive(Serialize)]
struct Chart {
    title: String,
    /// File name under `charts/`, for the Markdown report.
    file: String,
    svg: String,
}

#[derive(Serialize)]
struct Level {
    vus: usize,
    /// Counted runs per mode, e.g. "3 runs (sync), 3 runs (async)".
    runs_note: String,
    rows: Vec<Row>,
    /// Machine CPU per confirmed checkout by component (empty without a sampled split).
    cpu_rows: Vec<Row>,
    charts: Vec<Chart>,
}

#[derive(Serialize)]
struct RunRow {
    mode: String,
    run: String,
    counted: bool,
    vus: usize,
    rps: String,
    p95: String,
    checkout_p95: String,
    outcomes: String,
    k6_cpu: String,
    machine_busy: String,
    drained: String,
    invariants: String,
    invariants_ok: bool,
}

/// A counted run's fault log, for the Faults section.
#[derive(Serialize)]
struct FaultSection {
    mode: String,
    mode_name: String,
    run: String,
    log: faults::FaultView,
}

#[derive(Serialize)]
struct View {
    title: String,
    scenario: String,
    scenario_text: String,
    created_at: String,
    mode_names: Vec<String>,
    levels: Vec<Level>,
    runs: Vec<RunRow>,
    warnings: Vec<String>,
    notes: Vec<String>,
    settings: Vec<(String, String)>,
    environment: Vec<(String, String)>,
    invariants_ok: bool,
    /// Fault runs (`compare --faults`), per mode and counted run.
    faults: Vec<FaultSection>,
    /// The comparison tables, rendered first and placed into the Markdown report.
    tables: String,
}

fn winner_text(first: Option<Figure>, second: Option<Figure>, better: Better) -> String {
    let (Some(a), Some(b)) = (first, second) else {
        return "n/a".into();
    };
    let diff = |win: f64, lose: f64| {
        if lose.abs() < f64::EPSILON {
            String::new()
        } else {
            format!(" ({:+.0} %)", (win - lose) / lose.abs() * 100.0)
        }
    };
    match stats::winner(first, second, better) {
        Winner::First => format!("Sync{}", diff(a.value, b.value)),
        Winner::Second => format!("Async{}", diff(b.value, a.value)),
        Winner::Tie => "Tie (ranges overlap)".into(),
        Winner::NotAvailable => "n/a".into(),
    }
}

/// `10000000` → `10,000,000`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn scenario_text(m: &Manifest) -> String {
    let s = &m.settings;
    match m.scenario.as_str() {
        "flash" => format!(
            "A flash sale: {} products × {} units, at most {} unit(s) of each per shopper, {} \
             shoppers. Every run opens a new sale on new products, so each run sells out: \
             correctness and fairness under a spike.",
            s.products, s.stock, s.per_user_limit, s.users
        ),
        "sustained" => format!(
            "Sustained load: {} products × {} units{}, {} shoppers, so every journey can \
             complete: the throughput of the whole checkout path.",
            s.products,
            grouped(s.stock.into()),
            if s.per_user_limit == 0 {
                ", no per-user limit".to_string()
            } else {
                format!(", at most {} per shopper", s.per_user_limit)
            },
            grouped(s.users as i64)
        ),
        other => format!("Scenario {other}."),
    }
}

/// Per second since the start of each run, the mean over `runs` of `value`.
fn mean_series(runs: &[&RunData], value: fn(&Second) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut sums: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for run in runs {
        let Some(first) = run.series.first().map(|s| s.t) else {
            continue;
        };
        for s in &run.series {
            if let Some(v) = value(s) {
                let e = sums.entry(s.t - first).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
    }
    sums.into_iter()
        .map(|(t, (sum, n))| (t as f64, sum / n as f64))
        .collect()
}

fn level_charts(vus: usize, by_mode: &[(&str, &str, Vec<&RunData>)]) -> anyhow::Result<Vec<Chart>> {
    let mut out = Vec::new();
    let label = |mode: &str| if mode == "sync" { "Sync" } else { "Async" };
    for (key, title, y, value) in [
        (
            "rps",
            "Requests per second",
            "req/s",
            (|s: &Second| Some(s.requests as f64)) as fn(&Second) -> Option<f64>,
        ),
        ("p95", "P95 latency per second", "ms", |s: &Second| s.p95_ms),
    ] {
        let lines: Vec<charts::Line> = by_mode
            .iter()
            .filter(|(_, _, runs)| !runs.is_empty())
            .map(|(mode, _, runs)| charts::Line {
                name: label(mode).to_string(),
                color: charts::mode_color(mode),
                points: mean_series(runs, value),
            })
            .filter(|l| !l.points.is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        let title = format!("{title} at {vus} VUs (mean of the counted runs)");
        out.push(Chart {
            svg: charts::lines(&title, y, &lines)?,
            file: format!("{key}-{vus}.svg"),
            title,
        });
    }
    let services: Vec<String> = crate::nginx::SERVICES
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (key, title, y, pick) in [
        (
            "cpu",
            "CPU per service",
            "% of one core",
            (|u: &resources::ServiceUsage| u.cpu_percent) as fn(&resources::ServiceUsage) -> f64,
        ),
        (
            "memory",
            "Memory (RSS) per service",
            "MB",
            |u: &resources::ServiceUsage| u.rss_bytes / 1e6,
        ),
    ] {
        let bars: Vec<charts::Bars> = by_mode
            .iter()
            .filter_map(|(mode, _, runs)| {
                let values: Vec<Option<f64>> = services
                    .iter()
                    .map(|service| {
                        let v: Vec<f64> = runs
                            .iter()
                            .filter_map(|r| r.usage.as_ref()?.0.per_service.get(service))
                            .map(pick)
                            .collect();
                        Figure::mean(v).map(|f| f.value)
                    })
                    .collect();
                values.iter().any(Option::is_some).then(|| charts::Bars {
                    name: label(mode).to_string(),
                    color: charts::mode_color(mode),
                    values,
                })
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        let title = format!("{title} at {vus} VUs (mean of the counted runs)");
        out.push(Chart {
            svg: charts::grouped_bars(&title, y, &services, &bars)?,
            file: format!("{key}-{vus}.svg"),
            title,
        });
    }
    Ok(out)
}

/// One row per component of the machine (and one for all of it): ms of CPU per confirmed
/// checkout in each mode, lower wins.
fn cpu_rows(by_mode: &[(&str, &str, Vec<&RunData>)]) -> Vec<Row> {
    let per_run: Vec<Vec<BTreeMap<String, f64>>> = by_mode
        .iter()
        .map(|(_, _, rs)| rs.iter().filter_map(|r| r.cpu_per_checkout()).collect())
        .collect();
    if per_run.iter().all(Vec::is_empty) {
        return Vec::new();
    }
    let spread = |runs: &Vec<BTreeMap<String, f64>>, part: Option<&str>| {
        let values: Vec<f64> = runs
            .iter()
            .map(|split| match part {
                Some(p) => split.get(p).copied().unwrap_or(0.0),
                None => split.values().sum(),
            })
            .collect();
        Figure::mean(values)
    };
    COMPONENTS
        .iter()
        .map(|p| (*p, Some(*p)))
        .chain([("all", None)])
        .map(|(label, part)| {
            let spreads: Vec<Option<Figure>> =
                per_run.iter().map(|runs| spread(runs, part)).collect();
            // The measuring harness and the rest of the machine belong to neither mode.
            let winner = if matches!(label, "harness" | "other") {
                "–".to_string()
            } else {
                winner_text(spreads[0], spreads[1], Better::Lower)
            };
            Row {
                metric: label.to_string(),
                cells: spreads.iter().map(|s| cell(*s, MS)).collect(),
                winner,
            }
        })
        .collect()
}

fn view(manifest: &Manifest, runs: &[RunData]) -> anyhow::Result<View> {
    let cores = manifest.environment.cores;
    let mut levels_vus: Vec<usize> = manifest.settings.vus.clone();
    for r in runs.iter().filter(|r| r.record.kind == RunKind::Counted) {
        if !levels_vus.contains(&r.record.vus) {
            levels_vus.push(r.record.vus);
        }
    }
    let mut levels = Vec::new();
    for vus in levels_vus {
        let by_mode: Vec<(&str, &str, Vec<&RunData>)> = MODES
            .iter()
            .map(|(mode, name)| {
                (
                    *mode,
                    *name,
                    runs.iter()
                        .filter(|r| {
                            r.record.mode == *mode
                                && r.record.kind == RunKind::Counted
                                && r.record.vus == vus
                        })
                        .collect(),
                )
            })
            .collect();
        let rows = METRICS
            .iter()
            .map(|m| {
                let spreads: Vec<Option<Figure>> = by_mode
                    .iter()
                    .map(|(_, _, rs)| Figure::mean(rs.iter().map(|r| (m.value)(r))))
                    .collect();
                Row {
                    metric: m.label.to_string(),
                    cells: spreads.iter().map(|s| cell(*s, m.unit)).collect(),
                    winner: winner_text(spreads[0], spreads[1], m.better),
                }
            })
            .collect();
        let runs_note = by_mode
            .iter()
            .filter(|(mode, _, _)| manifest.settings.modes.iter().any(|m| m == mode))
            .map(|(mode, _, rs)| format!("{} counted run(s) of {mode}", rs.len()))
            .collect::<Vec<_>>()
            .join(", ");
        levels.push(Level {
            vus,
            runs_note,
            rows,
            cpu_rows: cpu_rows(&by_mode),
            charts: level_charts(vus, &by_mode)?,
        });
    }

    let mut run_rows = Vec::new();
    for r in runs {
        let s = r.summary.as_ref();
        let outcomes = s.map_or_else(
            || "n/a".to_string(),
            |s| {
                let get = |k: &str| s.outcomes.get(k).copied().unwrap_or(0.0);
                format!(
                    "{} / {} / {} / {} / {} / {}",
                    get("confirmed"),
                    get("sold_out"),
                    get("limit_reached"),
                    get("declined"),
                    get("expired"),
                    get("failed")
                )
            },
        );
        let (k6_cpu, busy) = r.load_means().map_or_else(
            || ("n/a".to_string(), "n/a".to_string()),
            |(k6, busy)| (format!("{k6:.2}"), format!("{:.0} %", busy * 100.0)),
        );
        let (mut invariants, mut invariants_ok) = match &r.verify {
            Some(v) if v.ok => ("hold".to_string(), true),
            Some(v) => (format!("FAIL: {}", v.violations.join("; ")), false),
            None => ("not checked".to_string(), false),
        };
        if let Some(log) = &r.faults {
            if log.passed() {
                invariants.push_str(" (fault run: nothing lost)");
            } else {
                invariants =
                    format!("{invariants}; FAIL: the fault run lost something (see Faults)");
                invariants_ok = false;
            }
        }
        run_rows.push(RunRow {
            mode: r.record.mode.clone(),
            run: r.record.label(),
            counted: r.record.kind == RunKind::Counted,
            vus: r.record.vus,
            rps: r.throughput().map_or("n/a".into(), |v| RATE.format(v)),
            p95: s
                .and_then(|s| s.p95_ms)
                .map_or("n/a".into(), |v| MS.format(v)),
            checkout_p95: s
                .and_then(|s| s.checkout_p95_ms)
                .map_or("n/a".into(), |v| MS.format(v)),
            outcomes,
            k6_cpu,
            machine_busy: busy,
            drained: if r.record.drained {
                format!("yes ({:.0} s)", r.record.drain_secs)
            } else {
                "NO".into()
            },
            invariants,
            invariants_ok,
        });
    }

    let mut warnings = Vec::new();
    for (mode, name) in MODES {
        if !manifest.settings.modes.iter().any(|m| m == mode) {
            continue;
        }
        if let Some(err) = manifest
            .suites
            .iter()
            .find(|s| s.mode == mode)
            .and_then(|s| s.error.as_ref())
        {
            warnings.push(format!("{name}: the comparison could not finish: {err}"));
        } else if !runs.iter().any(|r| r.record.mode == mode) {
            warnings.push(format!("{name}: no runs were recorded."));
        }
    }
    let starved: Vec<String> = runs
        .iter()
        .filter(|r| r.starved(cores))
        .map(|r| r.record.name())
        .collect();
    if !starved.is_empty() {
        let which = if starved.len() == runs.len() {
            format!("in all {} runs", runs.len())
        } else {
            format!(
                "in {} of {} runs ({})",
                starved.len(),
                runs.len(),
                starved.join(", ")
            )
        };
        warnings.push(format!(
            "The load generator was CPU-starved {which}: the machine was at least \
             {:.0} % busy or k6 alone used more than {:.0} % of its {} cores. k6 shares the \
             machine with the suite, so in those runs the load generator, not the system under \
             test, may have been the limit: the numbers measure the machine as much as the \
             architecture.",
            BUSY_LIMIT * 100.0,
            K6_SHARE_LIMIT * 100.0,
            cores
        ));
    }
    let dropped: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let n = r.summary.as_ref()?.dropped_journeys.filter(|n| *n > 0.0)?;
            Some(format!("{}: {n:.0}", r.record.name()))
        })
        .collect();
    if !dropped.is_empty() {
        warnings.push(format!(
            "The suite did not keep up with the offered {} journeys per second: k6 could not \
             start some journeys because every virtual user was still busy ({}). In those runs \
             the throughput is what the suite managed, not the offered rate.",
            manifest.settings.arrival_rate,
            dropped.join("; ")
        ));
    }
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.verify.as_ref().is_some_and(|v| v.ok))
        .map(|r| r.record.name())
        .collect();
    if !failed.is_empty() {
        warnings.push(format!(
            "Invariants failed (or were not checked) after {}: see the runs table.",
            failed.join(", ")
        ));
    }
    for r in runs {
        if let Some(code) = r.record.k6_exit_code.filter(|c| *c != 0) {
            warnings.push(format!(
                "k6 exited with status {code} in {} {} at {} VUs (see {}/k6.log).",
                r.record.mode,
                r.record.label(),
                r.record.vus,
                r.record.dir
            ));
        }
        for p in &r.problems {
            warnings.push(format!("{} {}: {p}", r.record.mode, r.record.label()));
        }
    }

    let mut notes = Vec::new();
    for (mode, name) in MODES {
        let sources: Vec<UsageSource> = runs
            .iter()
            .filter(|r| r.record.mode == mode)
            .filter_map(|r| r.usage.as_ref().map(|u| u.1))
            .collect();
        if sources.contains(&UsageSource::Harness) {
            notes.push(format!(
                "{name}: CPU and memory come from the harness's /proc samples of the service \
                 processes, once a second (the services wrote no `process` metrics for {} of \
                 its runs).",
                sources
                    .iter()
                    .filter(|s| **s == UsageSource::Harness)
                    .count()
            ));
        }
    }

    let s = &manifest.settings;
    let mut settings = vec![
        ("Scenario".to_string(), manifest.scenario.clone()),
        ("Modes".to_string(), s.modes.join(", ")),
        (
            "Protocol".to_string(),
            format!(
                "{} warm-up run(s) of {} s at {} VUs (not counted), then {} counted run(s) of {} s at each of {} VUs{}",
                s.warmups,
                s.warmup_duration_secs,
                s.warmup_vus,
                s.runs,
                s.duration_secs,
                s.vus.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                if s.quick { " (quick smoke profile)" } else { "" }
            ),
        ),
        ("Replicas per service".to_string(), s.replicas.to_string()),
        ("Shoppers (seeded users)".to_string(), s.users.to_string()),
        (
            "Stock".to_string(),
            format!(
                "{} products × {} units; per-user limit {}{}",
                s.products,
                grouped(s.stock.into()),
                if s.per_user_limit == 0 {
                    "none".to_string()
                } else {
                    s.per_user_limit.to_string()
                },
                if s.new_products_per_run {
                    "; new products every run"
                } else {
                    ""
                }
            ),
        ),
        ("Think time".to_string(), format!("{} s", s.think_time_secs)),
        (
            "Load model".to_string(),
            if s.arrival_rate > 0 {
                format!(
                    "open: {} journeys started per second, at most the level's virtual users under way (k6 constant-arrival-rate)",
                    s.arrival_rate
                )
            } else {
                "closed loop: each virtual user starts its next journey when the last one ended (k6 constant-vus)".to_string()
            },
        ),
        (
            "Status polls (async)".to_string(),
            if s.poll_wait_secs > 0 {
                format!("long polls: `Prefer: wait={}`, answered when the status changes", s.poll_wait_secs)
            } else {
                "short polls: 10 ms doubling to 200 ms between polls".to_string()
            },
        ),
        (
            "Log in".to_string(),
            if s.login_every_iteration {
                "every iteration (the study's exact journey)".to_string()
            } else {
                "once per virtual user, before the sale opens; again on 401".to_string()
            },
        ),
    ];
    if !s.service_env.is_empty() {
        settings.push((
            "Service environment".to_string(),
            s.service_env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    let e = &manifest.environment;
    let mut environment = vec![
        ("CPU".to_string(), e.cpu_model.clone()),
        ("Cores".to_string(), e.cores.to_string()),
        (
            "Memory".to_string(),
            format!("{:.1} GiB", e.memory_bytes as f64 / (1u64 << 30) as f64),
        ),
        ("Kernel".to_string(), e.kernel.clone()),
    ];
    let names = [
        ("postgresql", "PostgreSQL"),
        ("redis", "Redis"),
        ("rabbitmq", "RabbitMQ"),
        ("nginx", "nginx"),
        ("k6", "k6"),
        ("rustc", "rustc"),
    ];
    for (key, label) in names {
        if let Some(v) = e.versions.get(key) {
            environment.push((label.to_string(), v.clone()));
        }
    }
    for (key, v) in &e.versions {
        if !names.iter().any(|(k, _)| k == key) {
            environment.push((key.clone(), v.clone()));
        }
    }

    let invariants_ok = !runs.is_empty() && run_rows.iter().all(|r| r.invariants_ok);
    let faults = runs
        .iter()
        .filter_map(|r| {
            let log = r.faults.as_ref()?;
            Some(FaultSection {
                mode: r.record.mode.clone(),
                mode_name: MODES
                    .iter()
                    .find(|(m, _)| *m == r.record.mode)
                    .map_or(r.record.mode.clone(), |(_, n)| n.to_string()),
                run: r.record.label(),
                log: log.view(),
            })
        })
        .collect();
    Ok(View {
        title: format!("Flash sale: sync vs async, {} scenario", manifest.scenario),
        scenario: manifest.scenario.clone(),
        scenario_text: scenario_text(manifest),
        created_at: manifest
            .created_at
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        mode_names: MODES.iter().map(|(_, n)| n.to_string()).collect(),
        levels,
        runs: run_rows,
        warnings,
        notes,
        settings,
        environment,
        invariants_ok,
        faults,
        tables: String::new(),
    })
}

const MARKDOWN_TEMPLATE: &str = include_str!("../../templates/report.md.j2");
const HTML_TEMPLATE: &str = include_str!("../../templates/report.html.j2");
const TABLES_TEMPLATE: &str = include_str!("../../templates/tables.md.j2");

fn render(view: &mut View) -> anyhow::Result<(String, String, String)> {
    let mut env = crate::templates::environment()?;
    // Markdown table cells may not hold a `|`.
    env.add_filter("cell", |s: String| s.replace('|', "\\|"));
    env.add_template("tables.md", TABLES_TEMPLATE)
        .context("parsing templates/tables.md.j2")?;
    env.add_template("report.md", MARKDOWN_TEMPLATE)
        .context("parsing templates/report.md.j2")?;
    // The `.html` name turns on HTML escaping; the SVGs are marked safe in the template.
    env.add_template("report.html", HTML_TEMPLATE)
        .context("parsing templates/report.html.j2")?;
    let ctx = |view: &View| minijinja::Value::from(minijinja::value::Serde(view));
    view.tables = env.get_template("tables.md")?.render(ctx(view))?;
    let md = env.get_template("report.md")?.render(ctx(view))?;
    let html = env.get_template("report.html")?.render(ctx(view))?;
    Ok((md, html, view.tables.clone()))
}

/// Build `report.md`, `report.html` and `charts/*.svg` in `dir` from its raw data.
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    let manifest = Manifest::load(dir)?;
    let runs = load(dir, &manifest);
    let mut view = view(&manifest, &runs)?;
    let (md, html, tables) = render(&mut view)?;
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir)
        .with_context(|| format!("creating {}", charts_dir.display()))?;
    for level in &view.levels {
        for chart in &level.charts {
            std::fs::write(charts_dir.join(&chart.file), &chart.svg)
                .with_context(|| format!("writing chart {}", chart.file))?;
        }
    }
    let markdown = dir.join(MARKDOWN_FILE);
    let html_path = dir.join(HTML_FILE);
    std::fs::write(&markdown, md).with_context(|| format!("writing {}", markdown.display()))?;
    std::fs::write(&html_path, html).with_context(|| format!("writing {}", html_path.display()))?;
    Ok(Built {
        markdown,
        html: html_path,
        tables,
        invariants_ok: view.invariants_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_cells_show_their_spread() {
        assert_eq!(grouped(10_000_000), "10,000,000");
        assert_eq!(grouped(100), "100");
        assert_eq!(grouped(-1234), "-1,234");
        assert_eq!(cell(Figure::mean([1.0, 3.0]), MS), "2.00 ms (1.00–3.00)");
        assert_eq!(cell(Figure::mean([0.015]), SHARE), "1.50 %");
        assert_eq!(cell(None, RATE), "n/a");
    }
}
