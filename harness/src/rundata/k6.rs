//! What k6 leaves in a run's folder: its summary (`--summary-export`) and its per-request time
//! series (`--out csv=...`).
//!
//! Only samples tagged `phase=journey` count: the journey script gives that tag to its
//! scenario and not to `setup()`, whose logins happen before the sale opens. Per-request
//! latency also leaves out the status polls the service held until the status changed
//! (`held=yes`): their time is the wait for the outcome, which the end-to-end checkout time
//! measures; they count as requests all the same.

use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const SUMMARY_FILE: &str = "summary.json";
pub const SERIES_FILE: &str = "k6.csv.gz";
/// k6's web dashboard report of the run, when it was asked for: one self-contained HTML page.
pub const WEB_DASHBOARD_FILE: &str = "k6-dashboard.html";

/// The outcomes a journey can end in, as the script counts them (`checkout_<outcome>`).
pub const OUTCOMES: [&str; 6] = [
    "confirmed",
    "sold_out",
    "limit_reached",
    "declined",
    "expired",
    "failed",
];

/// The numbers of one run, from its k6 summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub avg_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// End-to-end checkout time of confirmed journeys, polling included.
    pub checkout_p95_ms: Option<f64>,
    /// Share of requests with an unexpected answer (not 2xx, 402 or 409) or none at all.
    pub failure_rate: Option<f64>,
    pub requests: Option<f64>,
    /// Journeys by outcome.
    pub outcomes: BTreeMap<String, f64>,
    /// Journeys an open-model run could not start because every virtual user was busy
    /// (k6's `dropped_iterations`); `None` in a closed loop, where k6 drops none.
    pub dropped_journeys: Option<f64>,
}

impl Summary {
    pub fn confirmed(&self) -> f64 {
        self.outcomes.get("confirmed").copied().unwrap_or(0.0)
    }

    pub fn journeys(&self) -> f64 {
        self.outcomes.values().sum()
    }
}

/// Read a k6 `--summary-export` file.
pub fn read_summary(path: &Path) -> anyhow::Result<Summary> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let metrics = json
        .get("metrics")
        .and_then(|m| m.as_object())
        .with_context(|| format!("{} has no \"metrics\" object", path.display()))?;
    // The journey's own sub-metric when the script defined it, else the whole metric.
    let metric = |name: &str| {
        metrics
            .get(&format!("{name}{{phase:journey}}"))
            .or_else(|| metrics.get(name))
    };
    // Latency: the journey's requests but its held polls (older scripts held none).
    let latency = |key: &str| {
        metrics
            .get("http_req_duration{phase:journey,held:no}")
            .or_else(|| metric("http_req_duration"))
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_f64())
    };
    let stat = |name: &str, key: &str| {
        metric(name)
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_f64())
    };
    let mut outcomes = BTreeMap::new();
    for outcome in OUTCOMES {
        let count = metrics
            .get(&format!("checkout_{outcome}"))
            .and_then(|m| m.get("count"))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        outcomes.insert(outcome.to_string(), count);
    }
    let confirmed = outcomes.get("confirmed").copied().unwrap_or(0.0);
    let checkout_p95_ms = if confirmed > 0.0 {
        metrics
            .get("checkout_duration{outcome:confirmed}")
            .and_then(|m| m.get("p(95)"))
            .and_then(|v| v.as_f64())
    } else {
        None
    };
    Ok(Summary {
        avg_ms: latency("avg"),
        p90_ms: latency("p(90)"),
        p95_ms: latency("p(95)"),
        checkout_p95_ms,
        // A Rate's `value` is the share of non-zero samples: failed requests.
        failure_rate: stat("http_req_failed", "value"),
        requests: stat("http_reqs", "count"),
        outcomes,
        dropped_journeys: stat("dropped_iterations", "count"),
    })
}

/// One second of a run, from its time series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Second {
    /// Unix seconds.
    pub t: i64,
    pub requests: u64,
    pub p95_ms: Option<f64>,
}

/// The time series of a run folder: `k6.csv.gz`, else `k6.csv`; `None` when it has neither.
pub fn series_file(dir: &Path) -> Option<PathBuf> {
    [SERIES_FILE, "k6.csv"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// A series file's text: gunzipped when it ends in `.gz`.
pub fn open_series(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let buffered = std::io::BufReader::new(file);
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

/// Requests and p95 latency per second of the journey, from k6's CSV output.
pub fn read_series(path: &Path) -> anyhow::Result<Vec<Second>> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(open_series(path)?);
    let headers = csv
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no {name:?} column", path.display()))
    };
    let (metric, time, value, extra) = (
        column("metric_name")?,
        column("timestamp")?,
        column("metric_value")?,
        column("extra_tags")?,
    );
    let mut seconds: BTreeMap<i64, (u64, Vec<f64>)> = BTreeMap::new();
    for (i, record) in csv.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        let name = record.get(metric).unwrap_or_default();
        if name != "http_reqs" && name != "http_req_duration" {
            continue;
        }
        let tags = record.get(extra).unwrap_or_default();
        if !tags.split('&').any(|tag| tag == "phase=journey") {
            continue;
        }
        let held = tags.split('&').any(|tag| tag == "held=yes");
        let t: i64 = unix_seconds(record.get(time).unwrap_or_default())
            .with_context(|| format!("{}: row {}: bad timestamp", path.display(), i + 2))?;
        let entry = seconds.entry(t).or_default();
        if name == "http_reqs" {
            entry.0 += 1;
        } else if !held {
            let v: f64 = record
                .get(value)
                .unwrap_or_default()
                .parse()
                .with_context(|| format!("{}: row {}: bad value", path.display(), i + 2))?;
            entry.1.push(v);
        }
    }
    Ok(seconds
        .into_iter()
        .map(|(t, (requests, mut durations))| Second {
            t,
            requests,
            p95_ms: percentile(&mut durations, 95.0),
        })
        .collect())
}

/// k6 writes Unix seconds by default, or milliseconds/microseconds when told to.
pub fn unix_seconds(text: &str) -> anyhow::Result<i64> {
    let v: f64 = text.trim().parse()?;
    let secs = if v > 1e14 {
        v / 1e6
    } else if v > 1e11 {
        v / 1e3
    } else {
        v
    };
    Ok(secs.floor() as i64)
}

/// The `p`th percentile with linear interpolation between the closest ranks (as k6 does).
pub fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(values[lo] + (values[hi] - values[lo]) * (rank - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(percentile(&mut v, 50.0), Some(3.0));
        assert_eq!(percentile(&mut v, 95.0), Some(4.8));
        assert_eq!(percentile(&mut v, 100.0), Some(5.0));
        assert_eq!(percentile(&mut [], 95.0), None);
    }

    #[test]
    fn latency_leaves_out_held_polls_and_requests_count_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(SUMMARY_FILE);
        let trend =
            |avg: f64| serde_json::json!({"avg": avg, "p(90)": avg * 2.0, "p(95)": avg * 3.0});
        let summary = serde_json::json!({"metrics": {
            "http_req_duration": trend(900.0),
            "http_req_duration{phase:journey}": trend(500.0),
            "http_req_duration{phase:journey,held:no}": trend(20.0),
            "http_reqs{phase:journey}": {"count": 1000.0},
            "http_req_failed{phase:journey}": {"value": 0.0},
        }});
        std::fs::write(&path, summary.to_string()).expect("write");

        let read = read_summary(&path).expect("reads");

        assert_eq!(
            (read.avg_ms, read.p90_ms, read.p95_ms),
            (Some(20.0), Some(40.0), Some(60.0))
        );
        assert_eq!(read.requests, Some(1000.0));
    }

    #[test]
    fn a_summary_without_held_polls_takes_latency_from_the_journey() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(SUMMARY_FILE);
        let summary = serde_json::json!({"metrics": {
            "http_req_duration": {"avg": 900.0},
            "http_req_duration{phase:journey}": {"avg": 500.0},
        }});
        std::fs::write(&path, summary.to_string()).expect("write");

        assert_eq!(read_summary(&path).expect("reads").avg_ms, Some(500.0));
    }

    #[test]
    fn the_series_counts_journey_requests_per_second_and_skips_setup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k6.csv");
        std::fs::write(
            &path,
            "metric_name,timestamp,metric_value,error_code,expected_response,method,name,scenario,status,extra_tags,metadata\n\
http_reqs,100,1,,true,POST,POST /api/auth/login,,200,,\n\
http_req_duration,100,90,,true,POST,POST /api/auth/login,,200,,\n\
http_reqs,101,1,,true,POST,POST /api/carts,flash,201,phase=journey,\n\
http_req_duration,101,10,,true,POST,POST /api/carts,flash,201,phase=journey,\n\
http_reqs,101,1,,true,GET,GET /api/products/{id},flash,200,phase=journey,\n\
http_req_duration,101,20,,true,GET,GET /api/products/{id},flash,200,phase=journey,\n\
checkout_duration,101,30,,,,,flash,,phase=journey&outcome=confirmed,\n\
http_reqs,102,1,,true,POST,POST /api/carts,flash,201,phase=journey&held=no,\n\
http_req_duration,102,5,,true,POST,POST /api/carts,flash,201,phase=journey&held=no,\n\
http_reqs,102,1,,true,GET,GET /api/orders/{id},flash,200,phase=journey&held=yes,\n\
http_req_duration,102,2000,,true,GET,GET /api/orders/{id},flash,200,phase=journey&held=yes,\n",
        )
        .expect("write");
        let series = read_series(&path).expect("reads");
        assert_eq!(
            series,
            vec![
                Second {
                    t: 101,
                    requests: 2,
                    p95_ms: Some(19.5)
                },
                // The held poll counts as a request, and its 2 s are not latency.
                Second {
                    t: 102,
                    requests: 2,
                    p95_ms: Some(5.0)
                },
            ]
        );
    }
}
