//! One run's files from several k6 runners: a distributed run (the k6 operator's TestRun with
//! `parallelism` N) leaves N folders, each with the summary and time series of its share of
//! the virtual users. Percentiles of several summaries cannot be combined, so the merged
//! `summary.json` is computed again from every runner's samples (`k6.csv.gz`), with the same
//! filters the journey's summary sub-metrics use, and the series are concatenated.
//!
//! The summary carries exactly what the report reads from one (`read_summary`): the journey's
//! per-request latency without held polls (avg, p(90), p(95)), its requests and failed share,
//! the journeys per outcome, the confirmed checkouts' p(95) and k6's dropped iterations.

use crate::rundata::k6::{
    open_series, percentile, series_file, unix_seconds, OUTCOMES, SERIES_FILE, SUMMARY_FILE,
};
use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the merged samples add up to.
#[derive(Debug, Default)]
struct Tally {
    /// Per-request latency of the journey's requests, held polls left out.
    latency: Vec<f64>,
    requests: u64,
    failed: u64,
    failed_samples: u64,
    outcomes: BTreeMap<String, f64>,
    confirmed_checkouts: Vec<f64>,
    dropped: f64,
    first: Option<i64>,
    last: Option<i64>,
}

/// The merged run: where its files are, and the window its samples span (Unix seconds).
#[derive(Debug, PartialEq)]
pub struct Merged {
    pub summary: PathBuf,
    pub series: PathBuf,
    pub runners: usize,
    pub samples: u64,
    pub window: Option<(i64, i64)>,
}

/// Merge the runners' folders (`k6.csv.gz` or `k6.csv` in each) into `out`: one
/// `k6.csv.gz` and one `summary.json`, as a single runner would have written them.
pub fn merge(runners: &[PathBuf], out: &Path) -> anyhow::Result<Merged> {
    if runners.is_empty() {
        bail!("no runner folders to merge");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let series_path = out.join(SERIES_FILE);
    let file = std::fs::File::create(&series_path)
        .with_context(|| format!("creating {}", series_path.display()))?;
    let mut writer = csv::Writer::from_writer(flate2::write::GzEncoder::new(
        std::io::BufWriter::new(file),
        flate2::Compression::default(),
    ));
    let mut header: Option<csv::StringRecord> = None;
    let mut tally = Tally::default();
    let mut samples = 0u64;
    for dir in runners {
        let path = series_file(dir)
            .with_context(|| format!("{} has no {SERIES_FILE} (nor k6.csv)", dir.display()))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(open_series(&path)?);
        let own = reader
            .headers()
            .with_context(|| format!("reading the header of {}", path.display()))?
            .clone();
        match &header {
            None => {
                writer.write_record(&own)?;
                header = Some(own.clone());
            }
            Some(first) if *first != own => bail!(
                "{} has other columns than the first runner's: runners of one run write one format",
                path.display()
            ),
            Some(_) => {}
        }
        let columns = Columns::of(&own, &path)?;
        for (i, record) in reader.records().enumerate() {
            let record = record.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
            columns
                .count(&record, &mut tally)
                .with_context(|| format!("{}: row {}", path.display(), i + 2))?;
            writer.write_record(&record)?;
            samples += 1;
        }
    }
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", series_path.display()))?
        .finish()?
        .flush()?;
    let window = tally.first.zip(tally.last.map(|t| t + 1));
    let summary_path = out.join(SUMMARY_FILE);
    let summary = serde_json::to_string_pretty(&tally.summary())?;
    std::fs::write(&summary_path, summary)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    Ok(Merged {
        summary: summary_path,
        series: series_path,
        runners: runners.len(),
        samples,
        window,
    })
}

/// Where the fields the summary needs are in a runner's CSV.
struct Columns {
    metric: usize,
    time: usize,
    value: usize,
    extra: usize,
}

impl Columns {
    fn of(headers: &csv::StringRecord, path: &Path) -> anyhow::Result<Self> {
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{} has no {name:?} column", path.display()))
        };
        Ok(Self {
            metric: column("metric_name")?,
            time: column("timestamp")?,
            value: column("metric_value")?,
            extra: column("extra_tags")?,
        })
    }

    /// Add one sample to `tally`, if it is the journey's (setup's logins are not).
    fn count(&self, record: &csv::StringRecord, tally: &mut Tally) -> anyhow::Result<()> {
        let name = record.get(self.metric).unwrap_or_default();
        let tags: Vec<&str> = record
            .get(self.extra)
            .unwrap_or_default()
            .split('&')
            .collect();
        let journey = tags.contains(&"phase=journey");
        // k6 counts dropped iterations per scenario; the journey's scenario is the only one.
        if name == "dropped_iterations" {
            tally.dropped += self.value(record)?;
            return Ok(());
        }
        if !journey {
            return Ok(());
        }
        let t = unix_seconds(record.get(self.time).unwrap_or_default()).context("bad timestamp")?;
        tally.first = Some(tally.first.map_or(t, |f| f.min(t)));
        tally.last = Some(tally.last.map_or(t, |l| l.max(t)));
        match name {
            "http_reqs" => tally.requests += 1,
            "http_req_duration" if !tags.contains(&"held=yes") => {
                tally.latency.push(self.value(record)?)
            }
            "http_req_failed" => {
                tally.failed_samples += 1;
                if self.value(record)? != 0.0 {
                    tally.failed += 1;
                }
            }
            "checkout_duration" if tags.contains(&"outcome=confirmed") => {
                tally.confirmed_checkouts.push(self.value(record)?)
            }
            other => {
                if let Some(outcome) = other.strip_prefix("checkout_") {
                    if OUTCOMES.contains(&outcome) {
                        *tally.outcomes.entry(outcome.to_string()).or_default() +=
                            self.value(record)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn value(&self, record: &csv::StringRecord) -> anyhow::Result<f64> {
        record
            .get(self.value)
            .unwrap_or_default()
            .trim()
            .parse()
            .context("bad metric_value")
    }
}

impl Tally {
    /// A summary in k6's `--summary-export` shape, with the sub-metrics the journey defines.
    fn summary(mut self) -> Value {
        let mut metrics = Map::new();
        if !self.latency.is_empty() {
            let avg = self.latency.iter().sum::<f64>() / self.latency.len() as f64;
            let p90 = percentile(&mut self.latency, 90.0);
            let p95 = percentile(&mut self.latency, 95.0);
            metrics.insert(
                "http_req_duration{phase:journey,held:no}".into(),
                json!({ "avg": avg, "p(90)": p90, "p(95)": p95 }),
            );
        }
        metrics.insert(
            "http_reqs{phase:journey}".into(),
            json!({ "count": self.requests }),
        );
        if self.failed_samples > 0 {
            let rate = self.failed as f64 / self.failed_samples as f64;
            metrics.insert(
                "http_req_failed{phase:journey}".into(),
                json!({ "value": rate, "passes": self.failed, "fails": self.failed_samples - self.failed }),
            );
        }
        for (outcome, count) in &self.outcomes {
            metrics.insert(format!("checkout_{outcome}"), json!({ "count": count }));
        }
        if let Some(p95) = percentile(&mut self.confirmed_checkouts, 95.0) {
            metrics.insert(
                "checkout_duration{outcome:confirmed}".into(),
                json!({ "p(95)": p95 }),
            );
        }
        if self.dropped > 0.0 {
            metrics.insert(
                "dropped_iterations".into(),
                json!({ "count": self.dropped }),
            );
        }
        json!({ "metrics": metrics })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundata::k6::{read_series, read_summary};

    const HEADER: &str =
        "metric_name,timestamp,metric_value,error_code,expected_response,method,name,scenario,status,extra_tags,metadata";

    fn runner(root: &Path, name: &str, rows: &[&str]) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("runner folder");
        let mut text = format!("{HEADER}\n");
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        let file = std::fs::File::create(dir.join(SERIES_FILE)).expect("create");
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(text.as_bytes()).expect("write");
        gz.finish().expect("finish");
        dir
    }

    fn req(t: i64, ms: f64, held: &str, failed: u8) -> [String; 3] {
        let tags = format!("held={held}&phase=journey");
        [
            format!("http_reqs,{t},1,,true,GET,x,s,200,{tags},"),
            format!("http_req_duration,{t},{ms},,true,GET,x,s,200,{tags},"),
            format!("http_req_failed,{t},{failed},,true,GET,x,s,200,{tags},"),
        ]
    }

    fn rows(parts: Vec<Vec<String>>) -> Vec<String> {
        parts.into_iter().flatten().collect()
    }

    #[test]
    fn two_runners_make_the_summary_one_runner_of_all_their_users_would_have_written() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = rows(vec![
            // setup()'s login: not the journey's.
            vec!["http_reqs,99,1,,true,POST,login,,200,,".into()],
            req(100, 10.0, "no", 0).to_vec(),
            req(100, 20.0, "no", 0).to_vec(),
            req(101, 30.0, "no", 1).to_vec(),
            // A held poll: a request, but not in the latency.
            req(101, 5000.0, "yes", 0).to_vec(),
            vec![
                "checkout_confirmed,101,1,,,,,s,,phase=journey,".into(),
                "checkout_duration,101,100,,,,,s,,outcome=confirmed&phase=journey,".into(),
            ],
        ]);
        let b = rows(vec![
            req(100, 40.0, "no", 0).to_vec(),
            req(102, 50.0, "no", 0).to_vec(),
            vec![
                "checkout_confirmed,102,1,,,,,s,,phase=journey,".into(),
                "checkout_duration,102,300,,,,,s,,outcome=confirmed&phase=journey,".into(),
                "checkout_sold_out,102,1,,,,,s,,phase=journey,".into(),
                "checkout_duration,102,7,,,,,s,,outcome=sold_out&phase=journey,".into(),
                "dropped_iterations,102,2,,,,,s,,phase=journey,".into(),
            ],
        ]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        let runners = [
            runner(root.path(), "journey-0", &a),
            runner(root.path(), "journey-1", &b),
        ];
        let out = root.path().join("run-500-1");

        let merged = merge(&runners, &out).expect("merge");

        assert_eq!(merged.runners, 2);
        assert_eq!(merged.window, Some((100, 103)));
        let summary = read_summary(&merged.summary).expect("the report reads it");
        assert_eq!(summary.avg_ms, Some(30.0), "10..50 without the held poll");
        assert_eq!(summary.p95_ms, Some(48.0));
        assert_eq!(summary.p90_ms, Some(46.0));
        assert_eq!(summary.requests, Some(6.0), "the held poll is a request");
        assert_eq!(summary.failure_rate, Some(1.0 / 6.0));
        assert_eq!(summary.confirmed(), 2.0);
        assert_eq!(summary.outcomes["sold_out"], 1.0);
        assert_eq!(summary.journeys(), 3.0);
        assert_eq!(summary.checkout_p95_ms, Some(290.0), "confirmed ones only");
        assert_eq!(summary.dropped_journeys, Some(2.0));
        let series = read_series(&merged.series).expect("the report reads it");
        let per_second: Vec<(i64, u64)> = series.iter().map(|s| (s.t, s.requests)).collect();
        assert_eq!(per_second, [(100, 3), (101, 2), (102, 1)]);
    }

    #[test]
    fn runners_that_wrote_other_columns_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = runner(root.path(), "a", &[]);
        let b = root.path().join("b");
        std::fs::create_dir_all(&b).expect("b");
        std::fs::write(
            b.join("k6.csv"),
            "metric_name,timestamp,metric_value,extra_tags\n",
        )
        .expect("write");

        let err = merge(&[a, b], &root.path().join("out")).expect_err("two formats");

        assert!(format!("{err:#}").contains("other columns"), "{err:#}");
    }

    #[test]
    fn a_runner_without_a_series_is_named() {
        let root = tempfile::tempdir().expect("tempdir");
        let empty = root.path().join("journey-3");
        std::fs::create_dir_all(&empty).expect("dir");

        let err = merge(&[empty], &root.path().join("out")).expect_err("nothing to read");

        assert!(format!("{err:#}").contains("journey-3"), "{err:#}");
    }
}
