//! One k6 run: started with the journey script, watched once a second through its REST API
//! (live req/s, when the scenario started and stopped), with k6's own CPU and the machine's
//! busy share sampled from /proc, so the report can tell when the load generator itself was
//! starved. The same loop samples the services' processes (`harness.lp`), a fallback for the
//! report when the services wrote no metrics of their own.

use crate::procfs::{self, ComponentMeter, CpuMeter};
use crate::rundata::k6::{SERIES_FILE, SUMMARY_FILE};
use crate::rundata::load::{Load, LoadSample, LOAD_FILE};
use crate::rundata::HARNESS_METRICS_FILE;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// k6's execution status while the scenario runs (lib.ExecutionStatus "Running").
const STATUS_RUNNING: i64 = 7;
/// How long setup (logging every shopper in) and teardown may take beyond the run itself.
const ALLOWANCE: Duration = Duration::from_secs(600);

/// A service process to sample.
pub struct Watched {
    pub pid: u32,
    pub service: String,
    pub instance: String,
}

pub struct LoadRun<'a> {
    pub k6: &'a Path,
    pub script: &'a Path,
    /// Where summary.json, k6.csv.gz, k6.log, load.json and harness.lp go.
    pub out_dir: &'a Path,
    pub env: Vec<(String, String)>,
    pub duration: Duration,
    /// Shown in progress lines, e.g. `[sync/flash] run 2/3 at 500 VUs`.
    pub tag: String,
    pub services: Vec<Watched>,
    pub mode: String,
    pub run_id: String,
    /// Seconds between progress lines when stderr is not a terminal.
    pub report_every: u64,
    /// Told once k6's scenario runs (setup's logins done): a fault run starts then.
    pub on_start: Option<tokio::sync::oneshot::Sender<()>>,
}

pub struct LoadResult {
    pub exit_code: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

pub async fn run(mut spec: LoadRun<'_>) -> anyhow::Result<LoadResult> {
    std::fs::create_dir_all(spec.out_dir)
        .with_context(|| format!("creating {}", spec.out_dir.display()))?;
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .context("finding a free port for k6's REST API")?;
    let log_path = spec.out_dir.join("k6.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut child = tokio::process::Command::new(spec.k6)
        .arg("run")
        .arg("--no-usage-report")
        .arg("--quiet")
        .arg("--address")
        .arg(format!("127.0.0.1:{api_port}"))
        .arg("--summary-export")
        .arg(spec.out_dir.join(SUMMARY_FILE))
        .arg("--out")
        .arg(format!("csv={}", spec.out_dir.join(SERIES_FILE).display()))
        .arg(spec.script)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", spec.k6.display()))?;
    let k6_pid = child.id().context("k6 exited at once")?;

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(800))
        .build()?;
    let api = format!("http://127.0.0.1:{api_port}/v1");
    let mut harness_lp = std::io::BufWriter::new(
        std::fs::File::create(spec.out_dir.join(HARNESS_METRICS_FILE))
            .context("creating harness.lp")?,
    );
    let progress = Progress::new(&spec);

    let spawned = Instant::now();
    let mut started: Option<(Instant, DateTime<Utc>)> = None;
    let mut ended: Option<DateTime<Utc>> = None;
    let mut k6_cpu = CpuMeter::default();
    let mut service_cpu = CpuMeter::default();
    let mut machine_split = ComponentMeter::default();
    let mut last_tick = Instant::now();
    let mut last_machine = procfs::machine_ticks();
    let mut last_requests: Option<f64> = None;
    let mut load = Load {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        samples: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.context("waiting for k6")?,
            _ = tick.tick() => {}
        }
        let secs = last_tick.elapsed().as_secs_f64();
        last_tick = Instant::now();
        let k6_cores = k6_cpu.cores(k6_pid, secs);
        let machine = procfs::machine_ticks();
        let busy = match (last_machine, machine) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                Some(b1.saturating_sub(b0) as f64 / (t1 - t0) as f64)
            }
            _ => None,
        };
        last_machine = machine;
        let components = machine_split.cores(secs);
        let mut service_samples = Vec::new();
        for s in &spec.services {
            if let Some(cores) = service_cpu.cores(s.pid, secs) {
                service_samples.push((s, cores, procfs::process_rss(s.pid).unwrap_or(0)));
            }
        }

        let running = k6_status(&http, &api).await == Some(STATUS_RUNNING);
        if running && started.is_none() {
            started = Some((Instant::now(), Utc::now()));
            progress.start();
            if let Some(tx) = spec.on_start.take() {
                let _ = tx.send(());
            }
        }
        if !running && started.is_some() && ended.is_none() {
            ended = Some(Utc::now());
        }
        if running {
            let requests = k6_requests(&http, &api).await;
            let rps = match (last_requests, requests) {
                (Some(a), Some(b)) if secs > 0.0 => (b - a).max(0.0) / secs,
                _ => 0.0,
            };
            last_requests = requests.or(last_requests);
            let now = Utc::now();
            load.samples.push(LoadSample {
                t: now.timestamp_millis() as f64 / 1000.0,
                k6_cores: k6_cores.unwrap_or(0.0),
                machine_busy: busy.unwrap_or(0.0),
                requests_per_sec: rps,
                components: components
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(part, cores)| (part.to_string(), cores))
                    .collect(),
            });
            let ns = now.timestamp_nanos_opt().unwrap_or(0);
            for (s, cores, rss) in &service_samples {
                writeln!(
                    harness_lp,
                    "process,service={},instance={},mode={},run_id={},source=harness cpu_percent={:.3},rss_bytes={}i {ns}",
                    escape_tag(&s.service),
                    escape_tag(&s.instance),
                    escape_tag(&spec.mode),
                    escape_tag(&spec.run_id),
                    cores * 100.0,
                    rss
                )?;
            }
            let elapsed = started.map_or(0, |(at, _)| at.elapsed().as_secs());
            progress.update(elapsed, rps, k6_cores.unwrap_or(0.0), busy.unwrap_or(0.0));
        }
        if spawned.elapsed() > spec.duration + ALLOWANCE {
            let _ = child.kill().await;
            progress.finish();
            bail!(
                "k6 still running {}s after it started: killed (see {})",
                spawned.elapsed().as_secs(),
                log_path.display()
            );
        }
    };
    progress.finish();
    harness_lp.flush()?;
    let now = Utc::now();
    std::fs::write(
        spec.out_dir.join(LOAD_FILE),
        serde_json::to_string_pretty(&load)? + "\n",
    )?;
    let Some((_, started_at)) = started else {
        bail!(
            "k6 exited ({status}) before its scenario ran; last lines of {}:\n{}",
            log_path.display(),
            crate::process::tail(&log_path, 30)
        );
    };
    Ok(LoadResult {
        exit_code: status.code(),
        started_at,
        ended_at: ended.unwrap_or(now),
    })
}

fn escape_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        if matches!(ch, ',' | '=' | ' ' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

async fn k6_json(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

async fn k6_status(http: &reqwest::Client, api: &str) -> Option<i64> {
    k6_json(http, &format!("{api}/status"))
        .await?
        .pointer("/data/attributes/status")?
        .as_i64()
}

async fn k6_requests(http: &reqwest::Client, api: &str) -> Option<f64> {
    k6_json(http, &format!("{api}/metrics/http_reqs"))
        .await?
        .pointer("/data/attributes/sample/count")?
        .as_f64()
}

/// Live progress: a bar on a terminal, else a line every few seconds.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    tag: String,
    total: u64,
    every: u64,
    last_line: std::cell::Cell<u64>,
}

impl Progress {
    fn new(spec: &LoadRun<'_>) -> Progress {
        let total = spec.duration.as_secs().max(1);
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30.cyan/blue}] {pos:>3}/{len}s {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(spec.tag.clone());
            bar.set_message("setup: logging the shoppers in");
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            tag: spec.tag.clone(),
            total,
            every: spec.report_every.max(1),
            last_line: std::cell::Cell::new(0),
        }
    }

    fn start(&self) {
        if self.bar.is_none() {
            tracing::info!("{}: the sale is open", self.tag);
        }
    }

    fn update(&self, elapsed: u64, rps: f64, k6_cores: f64, busy: f64) {
        let msg = format!(
            "{rps:>6.0} req/s · k6 {k6_cores:.2} cores · machine {:.0}% busy",
            busy * 100.0
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(elapsed.min(self.total));
                bar.set_message(msg);
            }
            None => {
                if elapsed >= self.last_line.get() + self.every {
                    self.last_line.set(elapsed);
                    tracing::info!("{}: {elapsed:>3}/{}s {msg}", self.tag, self.total);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
