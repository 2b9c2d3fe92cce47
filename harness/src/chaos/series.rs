//! Requests and failures per second of a run: what the fault log measures each fault window
//! against.
//!
//! Three sources give the same shape ([`Series`]):
//! - the load's own record ([`Recorder`]: the test shoppers, or any driver that counts what
//!   its clients saw);
//! - the services' `http` metrics points in `<run_dir>/metrics/*.lp` ([`Series::from_metrics_dir`],
//!   docs/metrics.md): public routes only, `errors` = 5xx the services answered. It cannot see
//!   the 503s nginx makes itself for a request in flight to a replica that died, so the fault
//!   log also runs a probe through nginx ([`super::probe`]);
//! - a load tool's own time series (k6's, once `compare` feeds it in), built with
//!   [`Series::from_seconds`].

use crate::rundata::faults::Tally;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Requests and failures per Unix second.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Series {
    /// Where the numbers come from, for the log's reader.
    pub source: String,
    /// Whether the source counts confirmed checkouts (the services' metrics cannot).
    #[serde(default)]
    pub counts_checkouts: bool,
    pub seconds: BTreeMap<i64, Tally>,
}

impl Series {
    pub fn from_seconds(
        source: impl Into<String>,
        counts_checkouts: bool,
        seconds: BTreeMap<i64, Tally>,
    ) -> Self {
        Self {
            source: source.into(),
            counts_checkouts,
            seconds,
        }
    }

    /// The public routes (`/api/...`) of every `http` point in the `.lp` files of `dir`
    /// (every replica's file, restarts included), summed over instances per second. A line
    /// torn by a killed replica is skipped.
    pub fn from_metrics_dir(dir: &Path) -> anyhow::Result<Self> {
        let mut seconds: BTreeMap<i64, Tally> = BTreeMap::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading the metrics folder {}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "lp") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            for line in text.lines() {
                if let Some((t, tally)) = public_http_point(line) {
                    seconds.entry(t).or_default().add(tally);
                }
            }
        }
        Ok(Self {
            source: format!(
                "services' http metrics ({}; public routes, 5xx answered by a service)",
                dir.display()
            ),
            counts_checkouts: false,
            seconds,
        })
    }

    /// k6's CSV time series (`--out csv=…`, gzipped or not): `http_reqs` per second, and
    /// `http_req_failed` samples that failed (k6's journey marks 409 and 402 as expected, so
    /// these are the failures a shopper saw). When any row is tagged `phase=journey`, only
    /// those rows count (setup's logins do not).
    pub fn from_k6_csv(path: &Path) -> anyhow::Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                file,
            )))
        } else {
            Box::new(std::io::BufReader::new(file))
        };
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers = csv.headers()?.clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{} has no {name:?} column", path.display()))
        };
        let (metric, time, value) = (
            column("metric_name")?,
            column("timestamp")?,
            column("metric_value")?,
        );
        let extra = headers.iter().position(|h| h == "extra_tags");
        let mut all: BTreeMap<i64, Tally> = BTreeMap::new();
        let mut journey: BTreeMap<i64, Tally> = BTreeMap::new();
        for record in csv.records() {
            // The last row of a file k6 is still writing may be torn.
            let Ok(record) = record else { continue };
            let name = record.get(metric).unwrap_or_default();
            let failed = match name {
                "http_reqs" | "checkout_confirmed" => false,
                "http_req_failed" => {
                    record
                        .get(value)
                        .unwrap_or_default()
                        .trim()
                        .parse::<f64>()
                        .unwrap_or(0.0)
                        > 0.0
                }
                _ => continue,
            };
            let Ok(t) = record.get(time).unwrap_or_default().trim().parse::<f64>() else {
                continue;
            };
            // Unix seconds, or milliseconds/microseconds when k6 was told so.
            let t = if t > 1e14 {
                t / 1e6
            } else if t > 1e11 {
                t / 1e3
            } else {
                t
            }
            .floor() as i64;
            let tagged = extra
                .and_then(|i| record.get(i))
                .is_some_and(|tags| tags.split('&').any(|tag| tag == "phase=journey"));
            for map in [Some(&mut all), tagged.then_some(&mut journey)]
                .into_iter()
                .flatten()
            {
                let tally = map.entry(t).or_default();
                match name {
                    "http_reqs" => tally.requests += 1,
                    "checkout_confirmed" => tally.confirmed += 1,
                    _ => tally.failures += u64::from(failed),
                }
            }
        }
        Ok(Self {
            source: format!(
                "k6's time series ({}; failed = http_req_failed)",
                path.display()
            ),
            counts_checkouts: true,
            seconds: if journey.is_empty() { all } else { journey },
        })
    }

    /// Sum over the seconds `from..to` (Unix seconds, `to` excluded); missing seconds are 0.
    pub fn sum(&self, from: i64, to: i64) -> Tally {
        let mut total = Tally::default();
        if from < to {
            for (_, t) in self.seconds.range(from..to) {
                total.add(*t);
            }
        }
        total
    }

    /// Mean requests per second over `from..to`; `None` for an empty range.
    pub fn mean_rps(&self, from: i64, to: i64) -> Option<f64> {
        (to > from).then(|| self.sum(from, to).requests as f64 / (to - from) as f64)
    }

    pub fn first_second(&self) -> Option<i64> {
        self.seconds.keys().next().copied()
    }

    pub fn last_second(&self) -> Option<i64> {
        self.seconds.keys().next_back().copied()
    }

    pub fn total(&self) -> Tally {
        let mut total = Tally::default();
        for t in self.seconds.values() {
            total.add(*t);
        }
        total
    }

    /// Only the seconds `from..to`.
    pub fn window(&self, from: i64, to: i64) -> Series {
        Series {
            source: self.source.clone(),
            counts_checkouts: self.counts_checkouts,
            seconds: self
                .seconds
                .range(from..to.max(from))
                .map(|(k, v)| (*k, *v))
                .collect(),
        }
    }
}

/// A load driver's own count, shared by its clients: each records what it saw, as it saw it.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    seconds: Arc<Mutex<BTreeMap<i64, Tally>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// One request that ended now: failed or not.
    pub fn record(&self, failed: bool) {
        let t = chrono::Utc::now().timestamp();
        let mut seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        let tally = seconds.entry(t).or_default();
        tally.requests += 1;
        tally.failures += u64::from(failed);
    }

    /// A checkout that ended CONFIRMED now.
    pub fn record_confirmed(&self) {
        let t = chrono::Utc::now().timestamp();
        let mut seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        seconds.entry(t).or_default().confirmed += 1;
    }

    pub fn series(&self, source: impl Into<String>) -> Series {
        let seconds = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        Series::from_seconds(source, true, seconds.clone())
    }
}

/// `(second, requests/errors)` of one line-protocol line when it is an `http` point of a
/// public route; `None` for anything else (other measurements, internal routes, torn lines).
fn public_http_point(line: &str) -> Option<(i64, Tally)> {
    let rest = line.strip_prefix("http,")?;
    let (tags, rest) = split_unescaped(rest, ' ')?;
    let (fields, timestamp) = split_unescaped(rest, ' ')?;
    let route = split_all(tags, ',')
        .into_iter()
        .filter_map(|kv| split_unescaped(kv, '='))
        .find(|(k, _)| *k == "route")
        .map(|(_, v)| unescape(v))?;
    if !route.starts_with("/api/") {
        return None;
    }
    let mut tally = Tally::default();
    let mut seen = false;
    for kv in split_all(fields, ',') {
        let (k, v) = split_unescaped(kv, '=')?;
        let n = || v.trim_end_matches('i').parse::<u64>().ok();
        match k {
            "requests" => {
                tally.requests = n()?;
                seen = true;
            }
            "errors" => tally.failures = n()?,
            _ => {}
        }
    }
    let ns: i64 = timestamp.trim().parse().ok()?;
    seen.then_some((ns.div_euclid(1_000_000_000), tally))
}

/// Split at the first `sep` not escaped by a backslash.
fn split_unescaped(s: &str, sep: char) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == sep && !escaped => return Some((&s[..i], &s[i + c.len_utf8()..])),
            _ => escaped = false,
        }
    }
    None
}

fn split_all(mut s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    while let Some((head, tail)) = split_unescaped(s, sep) {
        out.push(head);
        s = tail;
    }
    out.push(s);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_http_points_are_summed_per_second_and_the_rest_ignored() {
        let lines = [
            "http,service=gateway,instance=gateway-0,mode=sync,run_id=r1,route=/api/carts,method=POST requests=10i,errors=2i,p50_ms=1.2,p95_ms=4.8,max_ms=11.0 1763900000100000000",
            "http,service=order,instance=order-1,mode=sync,run_id=r1,route=/api/payments,method=POST requests=5i,errors=0i,p50_ms=1.2,p95_ms=4.8,max_ms=11.0 1763900000900000000",
            "http,service=inventory,instance=inventory-0,mode=sync,run_id=r1,route=/internal/inventory/holds,method=POST requests=7i,errors=7i,p50_ms=1,p95_ms=1,max_ms=1 1763900000500000000",
            "process,service=gateway,instance=gateway-0,mode=sync,run_id=r1 cpu_percent=37.5,rss_bytes=1i 1763900000000000000",
            "http,service=gateway,instance=gateway-0,mode=sync,run_id=r1,route=/api/carts/{id}/items,method=POST requests=3i,errors=1i,p50_ms=1 1763900001000000000",
            "http,service=gateway,instance=gateway-0,mode=sync,run_id=r1,route=/api/carts,method=POST requests=3",
        ];
        let dir = tempfile_dir();
        std::fs::write(dir.join("gateway-0.lp"), lines.join("\n")).expect("write");
        std::fs::write(dir.join("notes.txt"), "http,route=/api/x requests=99i 1").expect("write");
        let series = Series::from_metrics_dir(&dir).expect("read");
        assert_eq!(
            series.seconds.get(&1_763_900_000),
            Some(&Tally {
                requests: 15,
                failures: 2,
                confirmed: 0
            })
        );
        assert_eq!(
            series.seconds.get(&1_763_900_001),
            Some(&Tally {
                requests: 3,
                failures: 1,
                confirmed: 0
            })
        );
        assert_eq!(series.seconds.len(), 2);
        assert_eq!(series.mean_rps(1_763_900_000, 1_763_900_002), Some(9.0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn escaped_separators_stay_inside_their_value() {
        let line =
            r"http,service=gateway,route=/api/a\ b\,c,method=GET requests=1i,errors=0i 2000000000";
        assert_eq!(
            public_http_point(line),
            Some((
                2,
                Tally {
                    requests: 1,
                    failures: 0,
                    confirmed: 0
                }
            ))
        );
    }

    #[test]
    fn k6_requests_and_failed_requests_are_counted_per_second_for_the_journey_only() {
        let csv = "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata
http_reqs,1700000000,1.000000,,,,true,,POST,,,,,200,,,,phase=journey,
http_req_failed,1700000000,0.000000,,,,true,,POST,,,,,200,,,,phase=journey,
http_reqs,1700000000,1.000000,,,,false,,POST,,,,,503,,,,phase=journey,
http_req_failed,1700000000,1.000000,,,,false,,POST,,,,,503,,,,phase=journey,
http_reqs,1700000001,1.000000,,,,true,,POST,,,,,409,,,,phase=journey,
http_req_failed,1700000001,0.000000,,,,true,,POST,,,,,409,,,,phase=journey,
http_reqs,1700000001,1.000000,,,,true,,POST,,,,,200,,,,,
checkout_confirmed,1700000000,1.000000,,,,,,,,,,,,,,,phase=journey,
http_req_duration,1700000001,12.5,,,,true,,POST,,,,,200,,,,phase=journey,
http_reqs,17000";
        let dir = tempfile_dir();
        let path = dir.join("k6.csv");
        std::fs::write(&path, csv).expect("write");
        let series = Series::from_k6_csv(&path).expect("read");
        assert_eq!(
            series.seconds.get(&1_700_000_000),
            Some(&Tally {
                requests: 2,
                failures: 1,
                confirmed: 1
            })
        );
        assert_eq!(
            series.seconds.get(&1_700_000_001),
            Some(&Tally {
                requests: 1,
                failures: 0,
                confirmed: 0
            })
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("chaos-series-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
