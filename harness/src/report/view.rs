//! The report's view model: every table, chart and note computed from the runs' data, every
//! number already formatted, so both templates only lay it out.
//!
//! Per counted VU level, one table compares the modes: each metric is the mean of the counted
//! runs with its min–max spread; lower latency, CPU, memory and failure rate win, higher
//! throughput and confirmed checkouts/s win, and a difference inside the spread (the ranges
//! overlap) is a tie. Warm-up runs are listed, never counted.

use super::charts;
use super::data::{RunData, UsageSource};
use super::faults::FaultView;
use super::manifest::{Manifest, RunKind};
use super::resources;
use super::stats::{self, Better, Winner};
use super::table::{cell, Figure, Unit};
use super::traces::TraceSection;
use crate::rundata::k6::Second;
use crate::rundata::load::COMPONENTS;
use crate::rundata::traces::Spans;
use serde::Serialize;
use std::collections::BTreeMap;

/// The two modes, in the table's column order, with their column names.
pub const MODES: [(&str, &str); 2] = [
    ("sync", "Synchronous + Round Robin"),
    ("async", "Asynchronous + Least connections"),
];

/// k6's exit status when a threshold failed (its `ThresholdsHaveFailed`).
const K6_THRESHOLDS_FAILED: i32 = 99;
/// Machine busier than this during a run: the load generator competed for CPU.
const BUSY_LIMIT: f64 = 0.95;
/// k6 using more than this share of the machine's cores: k6 was (close to) the bottleneck.
const K6_SHARE_LIMIT: f64 = 0.75;

/// The units of the comparison tables.
const MS: Unit = Unit::significant(" ms");
/// A share 0..1 shown in %.
const SHARE: Unit = Unit::fixed(2, " %").times(100.0);
/// CPU in % of one core.
const CPU: Unit = Unit::significant(" %");
const MEGABYTES: Unit = Unit::significant(" MB");
const RATE: Unit = Unit::significant("");

/// The labels of the table's key figures, as other views of a report (the reports' index)
/// pick them.
pub const CHECKOUTS_PER_SEC: &str = "Confirmed checkouts/s";
pub const CHECKOUT_P95: &str = "End-to-end checkout P95";
pub const MACHINE_CPU_PER_CHECKOUT: &str = "Machine CPU per confirmed checkout";
pub const FAILURE_RATE: &str = "Failure rate";

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
        label: CHECKOUT_P95,
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
        label: MACHINE_CPU_PER_CHECKOUT,
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
        label: FAILURE_RATE,
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
        label: CHECKOUTS_PER_SEC,
        unit: RATE,
        better: Better::Higher,
        value: RunData::checkouts_per_sec,
    },
];

#[derive(Serialize)]
pub struct Row {
    pub metric: String,
    pub cells: Vec<String>,
    pub winner: String,
}

#[derive(Serialize)]
pub struct Chart {
    pub title: String,
    /// File name under `charts/`, for the Markdown report.
    pub file: String,
    pub svg: String,
}

#[derive(Serialize)]
pub struct Level {
    pub vus: usize,
    /// Counted runs per mode, e.g. "3 runs (sync), 3 runs (async)".
    pub runs_note: String,
    pub rows: Vec<Row>,
    /// Machine CPU per confirmed checkout by component (empty without a sampled split).
    pub cpu_rows: Vec<Row>,
    pub charts: Vec<Chart>,
}

#[derive(Serialize)]
pub struct RunRow {
    pub mode: String,
    pub run: String,
    pub counted: bool,
    pub vus: usize,
    pub rps: String,
    pub p95: String,
    pub checkout_p95: String,
    pub outcomes: String,
    pub k6_cpu: String,
    pub machine_busy: String,
    pub drained: String,
    pub invariants: String,
    pub invariants_ok: bool,
}

/// A counted run's fault log, for the Faults section.
#[derive(Serialize)]
pub struct FaultSection {
    pub mode: String,
    pub mode_name: String,
    pub run: String,
    pub log: FaultView,
}

#[derive(Serialize)]
pub struct View {
    pub title: String,
    pub scenario: String,
    pub scenario_text: String,
    pub created_at: String,
    pub mode_names: Vec<String>,
    pub levels: Vec<Level>,
    pub runs: Vec<RunRow>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    pub settings: Vec<(String, String)>,
    pub environment: Vec<(String, String)>,
    pub invariants_ok: bool,
    /// Fault runs (`compare --faults`), per mode and counted run.
    pub faults: Vec<FaultSection>,
    /// Where a checkout's time goes, from the services' spans; `None` when nothing was
    /// traced.
    pub traces: Option<TraceSection>,
    /// The comparison tables, rendered first and placed into the Markdown report.
    pub tables: String,
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

/// The whole report, every number formatted; `spans`: each mode's spans
/// ([`super::data::load_traces`]).
pub fn view(
    manifest: &Manifest,
    runs: &[RunData],
    spans: &[(String, Result<Spans, String>)],
) -> anyhow::Result<View> {
    let vus = level_vus(manifest, runs);
    let traces = super::traces::section(manifest, &vus, spans)?;
    let levels = vus
        .into_iter()
        .map(|vus| level(manifest, runs, vus))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run_rows: Vec<RunRow> = runs.iter().map(run_row).collect();
    let invariants_ok = invariants_held(runs);
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
        warnings: warnings(manifest, runs),
        notes: notes(runs),
        settings: settings(manifest),
        environment: environment(manifest),
        invariants_ok,
        faults: fault_sections(runs),
        traces,
        tables: String::new(),
    })
}

/// The VU levels to compare: the manifest's, then any other a counted run was at.
fn level_vus(manifest: &Manifest, runs: &[RunData]) -> Vec<usize> {
    let mut levels_vus: Vec<usize> = manifest.settings.vus.clone();
    for r in runs.iter().filter(|r| r.record.kind == RunKind::Counted) {
        if !levels_vus.contains(&r.record.vus) {
            levels_vus.push(r.record.vus);
        }
    }
    levels_vus
}

/// Per mode of [`MODES`], its counted runs at `vus`.
fn counted_by_mode(
    runs: &[RunData],
    vus: usize,
) -> Vec<(&'static str, &'static str, Vec<&RunData>)> {
    MODES
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
        .collect()
}

/// One VU level: the metrics table, the CPU split, the charts.
fn level(manifest: &Manifest, runs: &[RunData], vus: usize) -> anyhow::Result<Level> {
    let by_mode = counted_by_mode(runs, vus);
    let runs_note = by_mode
        .iter()
        .filter(|(mode, _, _)| manifest.settings.modes.iter().any(|m| m == mode))
        .map(|(mode, _, rs)| format!("{} counted run(s) of {mode}", rs.len()))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Level {
        vus,
        runs_note,
        rows: metric_rows(&by_mode),
        cpu_rows: cpu_rows(&by_mode),
        charts: level_charts(vus, &by_mode)?,
    })
}

/// One metric of the comparison table at one VU level, in numbers: each mode's mean over its
/// counted runs, with their spread.
#[derive(Debug, Clone)]
pub struct MetricFigures {
    pub label: &'static str,
    pub unit: Unit,
    pub better: Better,
    /// Per mode, in the order of [`MODES`].
    pub figures: Vec<Option<Figure>>,
}

impl MetricFigures {
    /// The table's row: each mode's cell, and the winner.
    pub fn row(&self) -> Row {
        Row {
            metric: self.label.to_string(),
            cells: self.figures.iter().map(|f| cell(*f, self.unit)).collect(),
            winner: winner_text(self.figures[0], self.figures[1], self.better),
        }
    }
}

/// The comparison table of one VU level, in numbers.
#[derive(Debug, Clone)]
pub struct LevelFigures {
    pub vus: usize,
    pub metrics: Vec<MetricFigures>,
}

/// Every VU level's comparison table in numbers, before they are formatted: what the
/// report's tables show, for views that compare or summarise reports.
pub fn figures(manifest: &Manifest, runs: &[RunData]) -> Vec<LevelFigures> {
    level_vus(manifest, runs)
        .into_iter()
        .map(|vus| LevelFigures {
            vus,
            metrics: metric_figures(&counted_by_mode(runs, vus)),
        })
        .collect()
}

/// Per metric, each mode's mean over its counted runs.
fn metric_figures(by_mode: &[(&str, &str, Vec<&RunData>)]) -> Vec<MetricFigures> {
    METRICS
        .iter()
        .map(|m| MetricFigures {
            label: m.label,
            unit: m.unit,
            better: m.better,
            figures: by_mode
                .iter()
                .map(|(_, _, rs)| Figure::mean(rs.iter().map(|r| (m.value)(r))))
                .collect(),
        })
        .collect()
}

/// One row per metric: each mode's mean over its counted runs, and the winner.
fn metric_rows(by_mode: &[(&str, &str, Vec<&RunData>)]) -> Vec<Row> {
    metric_figures(by_mode)
        .iter()
        .map(MetricFigures::row)
        .collect()
}

/// Every run was checked and its invariants held (and no fault run lost anything).
pub fn invariants_held(runs: &[RunData]) -> bool {
    !runs.is_empty() && runs.iter().all(|r| invariants(r).1)
}

/// A run's line in the runs table.
fn run_row(r: &RunData) -> RunRow {
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
    let (invariants, invariants_ok) = invariants(r);
    RunRow {
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
    }
}

/// Whether a run's invariants held (and, in a fault run, nothing was lost), and the words.
fn invariants(r: &RunData) -> (String, bool) {
    let (mut invariants, mut invariants_ok) = match &r.verify {
        Some(v) if v.ok => ("hold".to_string(), true),
        Some(v) => (format!("FAIL: {}", v.violations.join("; ")), false),
        None => ("not checked".to_string(), false),
    };
    if let Some(log) = &r.faults {
        if log.passed() {
            invariants.push_str(" (fault run: nothing lost)");
        } else {
            invariants = format!("{invariants}; FAIL: the fault run lost something (see Faults)");
            invariants_ok = false;
        }
    }
    (invariants, invariants_ok)
}

/// The load generator competed for the CPU in this run.
fn starved(r: &RunData, cores: usize) -> bool {
    r.load_means()
        .is_some_and(|(k6, busy)| busy >= BUSY_LIMIT || k6 > K6_SHARE_LIMIT * cores.max(1) as f64)
}

/// What the reader must know before trusting the numbers, in this order: modes that did not
/// finish, starved load, journeys k6 could not start, invariants, k6's exits, missing data.
fn warnings(manifest: &Manifest, runs: &[RunData]) -> Vec<String> {
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
    let cores = manifest.environment.cores;
    let starved: Vec<String> = runs
        .iter()
        .filter(|r| starved(r, cores))
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
                "k6 exited with status {code}{} in {} {} at {} VUs (see {}/k6.log).",
                if code == K6_THRESHOLDS_FAILED {
                    " (a THRESHOLD_* limit was crossed)"
                } else {
                    ""
                },
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
    warnings
}

/// Where the CPU and memory numbers came from, when not from the services themselves.
fn notes(runs: &[RunData]) -> Vec<String> {
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
    notes
}

/// The comparison's settings, as the manifest recorded them.
pub fn settings(manifest: &Manifest) -> Vec<(String, String)> {
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
    if s.trace_sample_ratio > 0.0 {
        settings.push((
            "Tracing".to_string(),
            format!(
                "each journey traced with probability {} (`--trace-sample`, docs/tracing.md)",
                s.trace_sample_ratio
            ),
        ));
    }
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
    settings
}

/// The machine and the versions of what ran on it.
pub fn environment(manifest: &Manifest) -> Vec<(String, String)> {
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
    environment
}

/// The fault log of each fault run, per mode and counted run.
fn fault_sections(runs: &[RunData]) -> Vec<FaultSection> {
    runs.iter()
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
        .collect()
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
