//! A report folder's raw data, read from disk: per run of the manifest, k6's summary and
//! series, the load samples, the CPU and memory of the services, the invariants' verdict and
//! the fault log; per suite, the services' spans. What is missing or unreadable is kept as a
//! problem of the run, never an error of the report.

use super::lineproto::{self, Point};
use super::manifest::{Manifest, RunRecord};
use super::resources::{self, Usage};
use crate::rundata::faults::{FaultLog, FAULTS_FILE};
use crate::rundata::k6::{self, Second, Summary};
use crate::rundata::load::{read_load, Load, LOAD_FILE};
use crate::rundata::traces::{self, Spans};
use crate::rundata::{HARNESS_METRICS_FILE, VERIFY_FILE};
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

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

    pub fn throughput(&self) -> Option<f64> {
        let s = self.summary.as_ref()?;
        Some(s.requests? / self.elapsed_secs())
    }

    pub fn checkouts_per_sec(&self) -> Option<f64> {
        let s = self.summary.as_ref()?;
        Some(s.confirmed() / self.elapsed_secs())
    }

    /// Mean k6 CPU in cores and mean machine busy share, over the run.
    pub fn load_means(&self) -> Option<(f64, f64)> {
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
    pub fn cpu_per_checkout(&self) -> Option<BTreeMap<String, f64>> {
        let rate = self.checkouts_per_sec().filter(|r| *r > 0.0)?;
        let mut split = self.cpu_split()?;
        split.values_mut().for_each(|v| *v *= 1000.0 / rate);
        Some(split)
    }

    /// All of the machine's CPU per confirmed checkout, in ms.
    pub fn machine_cpu_per_checkout(&self) -> Option<f64> {
        Some(self.cpu_per_checkout()?.values().sum())
    }
}

/// Which of a run's larger files to read besides its summary, load samples, verdict and
/// fault log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// k6's per-second series (only the charts need it).
    pub series: bool,
    /// The services' CPU and memory (the services' metrics, the harness's samples of them).
    pub usage: bool,
}

impl Parts {
    /// Everything: the report.
    pub const ALL: Parts = Parts {
        series: true,
        usage: true,
    };
    /// Every figure of the tables, no charts: a diff of two reports.
    pub const TABLES: Parts = Parts {
        series: false,
        usage: true,
    };
    /// The figures of k6 and the machine, no services' CPU and memory: the reports' index.
    pub const HEADLINE: Parts = Parts {
        series: false,
        usage: false,
    };
}

/// Read every run's raw data.
pub fn load(dir: &Path, manifest: &Manifest) -> Vec<RunData> {
    load_parts(dir, manifest, Parts::ALL)
}

/// Every run's raw data, the larger files only as far as `parts` says (what is not read is
/// left empty, and is no problem of the run).
pub fn load_parts(dir: &Path, manifest: &Manifest, parts: Parts) -> Vec<RunData> {
    let service_points: BTreeMap<String, Result<Vec<Point>, String>> = manifest
        .suites
        .iter()
        .filter(|_| parts.usage)
        .map(|suite| {
            let points =
                lineproto::read_dir(&dir.join(&suite.metrics_dir)).map_err(|e| format!("{e:#}"));
            (suite.mode.clone(), points)
        })
        .collect();
    manifest
        .runs
        .iter()
        .map(|record| {
            let points = service_points.get(&record.mode);
            read_run(dir, manifest, record, points, parts)
        })
        .collect()
}

/// Each suite's spans (its `traces_dir`, docs/tracing.md), by mode, or why they could not be
/// read; a suite without a traces folder (a compose study, a report from before tracing)
/// has none and is left out.
pub fn load_traces(dir: &Path, manifest: &Manifest) -> Vec<(String, Result<Spans, String>)> {
    manifest
        .suites
        .iter()
        .filter_map(|suite| {
            let traces = suite.traces_dir.as_ref()?;
            let spans = traces::read_dir(&dir.join(traces)).map_err(|e| format!("{e:#}"));
            Some((suite.mode.clone(), spans))
        })
        .collect()
}

/// One run's raw data; `service_points`: what its mode's services wrote about themselves.
fn read_run(
    dir: &Path,
    manifest: &Manifest,
    record: &RunRecord,
    service_points: Option<&Result<Vec<Point>, String>>,
    parts: Parts,
) -> RunData {
    let run_dir = dir.join(&record.dir);
    let mut problems = Vec::new();
    let summary = kept(
        k6::read_summary(&run_dir.join(k6::SUMMARY_FILE)),
        &mut problems,
    );
    let series = match k6::series_file(&run_dir).filter(|_| parts.series) {
        Some(path) => kept(k6::read_series(&path), &mut problems).unwrap_or_default(),
        None => Vec::new(),
    };
    let load = read_if_present(&run_dir.join(LOAD_FILE), read_load, &mut problems);
    let usage = if parts.usage {
        usage(manifest, record, &run_dir, service_points, &mut problems)
    } else {
        None
    };
    let verify = kept(read_verify(&run_dir.join(VERIFY_FILE)), &mut problems);
    let faults = read_if_present(&run_dir.join(FAULTS_FILE), read_faults, &mut problems);
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
}

/// The value, or `None` with the error kept in `problems`.
fn kept<T>(read: anyhow::Result<T>, problems: &mut Vec<String>) -> Option<T> {
    read.map_err(|e| problems.push(format!("{e:#}"))).ok()
}

/// `read(path)` when the file exists; `None` when it does not, or (kept) when it is unreadable.
fn read_if_present<T>(
    path: &Path,
    read: fn(&Path) -> anyhow::Result<T>,
    problems: &mut Vec<String>,
) -> Option<T> {
    kept(path.is_file().then(|| read(path))?, problems)
}

/// The run's CPU and memory from its services' own points, else from the harness's samples.
fn usage(
    manifest: &Manifest,
    record: &RunRecord,
    run_dir: &Path,
    service_points: Option<&Result<Vec<Point>, String>>,
    problems: &mut Vec<String>,
) -> Option<(Usage, UsageSource)> {
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
    let from_services = match service_points {
        Some(Ok(points)) => resources::usage(points, &window),
        Some(Err(e)) => {
            problems.push(e.clone());
            None
        }
        None => None,
    };
    if let Some(u) = from_services {
        return Some((u, UsageSource::Services));
    }
    let path = run_dir.join(HARNESS_METRICS_FILE);
    let points = read_if_present(&path, lineproto::read_file, problems).unwrap_or_default();
    resources::usage(&points, &window).map(|u| (u, UsageSource::Harness))
}

fn read_faults(path: &Path) -> anyhow::Result<FaultLog> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
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
