//! Fault runs: crash replicas and restart RabbitMQ while load runs, then prove nothing was
//! lost ("a `kill -9` of any replica mid-run loses nothing").
//!
//! A [`FaultPlan`] spreads its faults over the run; [`run`] injects them into a running
//! [`Suite`] while the caller drives load, and restarts what it stopped as an orchestrator
//! would (a replica after [`FaultPlan::restart_after`], on its old port, so nginx's upstream
//! finds it again). It probes every service through nginx meanwhile ([`probe`]). The
//! returned [`FaultLog`] records each fault (what, which instance, when relative to the run
//! start, when it was back); [`FaultLog::measure`] adds, from a per-second [`Series`] of the
//! load, the requests failed in each fault window and the time to recover to the pre-fault
//! req/s; [`FaultLog::settle`] drains the suite and audits it ([`audit`]): orders lost,
//! double charges, oversold units, sagas stuck — each must be 0.
//!
//! `flashsale chaos` runs the standard plan against a suite that is up while the user drives
//! load; `harness/tests/faults.rs` runs it in each mode with its own shoppers.

pub mod audit;
pub mod probe;
pub mod rabbit;
pub mod series;

pub use crate::rundata::faults::{FaultKind, FaultLog, FaultRecord, Outcome, Tally, FAULTS_FILE};
pub use audit::Promises;
pub use rabbit::RabbitNode;
pub use series::{Recorder, Series};

use crate::rundata::faults::{windows, BASELINE_SECS, RECOVERED_SECS, RECOVERED_SHARE};
use crate::suite::Suite;
use anyhow::{bail, Context};
use chrono::Utc;
use common::Mode;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::Instant;

/// Least quiet time between a fault's target being back and the next fault.
const MIN_GAP: Duration = Duration::from_secs(3);
/// Longest wait for every replica to consume its queue again after a broker restart.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(90);

/// A fault and when to inject it, from the run's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub at: Duration,
    pub kind: FaultKind,
}

/// What to do to a running suite, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The run's length: faults fall inside it, and [`run`] returns at its end (or once the
    /// last fault is over, when slow faults pushed the last ones past it).
    pub duration: Duration,
    /// In order of `at`.
    pub faults: Vec<Fault>,
    /// How long a stopped replica (or the broker) stays down before it is started again.
    pub restart_after: Duration,
    /// The RabbitMQ node to restart; required when the plan has a broker restart.
    pub broker: Option<RabbitNode>,
}

impl FaultPlan {
    /// The standard plan: `kill -9` replica 0 of each service (payment first: the study's
    /// OOM-killed payment service), one SIGTERM of the order service's last replica (the
    /// sync saga's orchestrator, mid-saga), and in async mode one RabbitMQ restart (second),
    /// spread evenly so that each fault has a quiet stretch before it (the pre-fault req/s)
    /// and the last one time to recover before the run ends.
    pub fn standard(mode: Mode, replicas: usize, duration: Duration) -> Self {
        let last = replicas.saturating_sub(1);
        let kill = |service: &str| FaultKind::Kill {
            service: service.into(),
            index: 0,
        };
        let mut kinds = vec![kill("payment")];
        // Early: the broker's restart is the longest fault, and a slow one pushes the rest.
        if mode == Mode::Async {
            kinds.push(FaultKind::BrokerRestart);
        }
        kinds.push(kill("inventory"));
        kinds.extend([
            kill("reservation"),
            kill("order"),
            FaultKind::Term {
                service: "order".into(),
                index: last,
            },
            kill("gateway"),
        ]);
        Self::spread(kinds, duration)
    }

    /// `kinds` at evenly spaced moments: the i-th of n at `duration * (i + 1) / (n + 3)`,
    /// so the stretch after the last fault is three gaps between two. Faults that run long
    /// (a broker restart, a drain) push the ones after them; the last one, pushed, still
    /// has time to be back and show its recovery before the run ends.
    pub fn spread(kinds: Vec<FaultKind>, duration: Duration) -> Self {
        let n = kinds.len() as u32;
        let faults = kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Fault {
                at: duration * (i as u32 + 1) / (n + 3),
                kind,
            })
            .collect();
        Self {
            duration,
            faults,
            restart_after: Duration::from_secs(1),
            broker: None,
        }
    }

    /// The planned time between two faults (the first one's time from the start).
    fn planned_gap(&self) -> Duration {
        self.faults.first().map_or(self.duration, |f| f.at)
    }

    fn validate(&self, suite: &Suite) -> anyhow::Result<()> {
        for fault in &self.faults {
            match &fault.kind {
                FaultKind::Kill { service, index } | FaultKind::Term { service, index } => {
                    suite.replica(service, *index)?;
                }
                FaultKind::BrokerRestart => {
                    anyhow::ensure!(
                        suite.mode() == Mode::Async,
                        "a broker restart is a fault of async mode; this suite is sync"
                    );
                    anyhow::ensure!(
                        self.broker.is_some(),
                        "the plan restarts RabbitMQ but names no node to restart"
                    );
                }
            }
        }
        anyhow::ensure!(
            self.faults.windows(2).all(|w| w[0].at <= w[1].at),
            "faults must be in order of their time"
        );
        Ok(())
    }
}

/// Inject `plan` into `suite` while the caller drives load; return at the end of
/// `plan.duration` with the record of every fault. A fault that cannot be injected or whose
/// target does not come back is recorded with its error and the plan goes on.
pub async fn run(suite: &mut Suite, plan: &FaultPlan) -> anyhow::Result<FaultLog> {
    plan.validate(suite)?;
    let probe = probe::Probe::start(suite.internal_url(), suite.internal_key())?;
    let t0 = Instant::now();
    let started_at = Utc::now();
    let mut records = Vec::new();
    let mut previous_back: Option<Instant> = None;
    for (i, fault) in plan.faults.iter().enumerate() {
        // A fault that took longer than planned (a slow drain, a slow broker) must not pile
        // the next ones onto it: each gets a quiet stretch after the one before, shared
        // fairly among those left in the rest of the run.
        let at = match previous_back {
            Some(back) => {
                let left = plan.faults.len() - i;
                let rest = (t0 + plan.duration).saturating_duration_since(back);
                // At least MIN_GAP, even past the planned end: a window of its own for each.
                let gap = plan
                    .planned_gap()
                    .min(rest / (left as u32 + 1))
                    .max(MIN_GAP.min(plan.planned_gap()));
                (t0 + fault.at).max(back + gap)
            }
            None => t0 + fault.at,
        };
        tokio::time::sleep_until(at).await;
        let record = inject(suite, plan, fault, t0).await;
        previous_back = Some(Instant::now());
        match &record.error {
            None => tracing::info!(
                "{} {} at {:.1}s, back at {:.1}s",
                record.fault.label(),
                record.target,
                record.injected_secs,
                record.back_secs.unwrap_or(f64::NAN)
            ),
            Some(e) => tracing::error!(
                "{} {} at {:.1}s failed: {e}",
                record.fault.label(),
                record.target,
                record.injected_secs
            ),
        }
        records.push(record);
    }
    tokio::time::sleep_until(t0 + plan.duration).await;
    let ended_at = Utc::now();
    let counts = probe.stop().await;
    let spans = windows(&records, ended_at);
    for (r, (from, to)) in records.iter_mut().zip(spans) {
        (r.probes, r.probes_failed) = probe::sum(&counts, r.fault.service(), from, to);
    }
    let (probes, probes_failed) = probe::sum(
        &counts,
        None,
        started_at.timestamp(),
        ended_at.timestamp() + 1,
    );
    Ok(FaultLog {
        mode: suite.mode(),
        started_at,
        ended_at,
        planned_secs: plan.duration.as_secs_f64(),
        duration_secs: t0.elapsed().as_secs_f64(),
        faults: records,
        probes,
        probes_failed,
        load_source: None,
        load: None,
        failed_outside_windows: None,
        outcome: None,
    })
}

/// Wait (at most `timeout`) until the load has stopped: no public request in the services'
/// metrics (`metrics_dir`) for `quiet`. A user's load tool may run a little past the fault
/// run; the drain must not start under it. Answers whether the load stopped.
pub async fn wait_idle(metrics_dir: &std::path::Path, quiet: Duration, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let last = Series::from_metrics_dir(metrics_dir).ok().and_then(|s| {
            s.seconds
                .iter()
                .rev()
                .find(|(_, t)| t.requests > 0)
                .map(|(t, _)| *t)
        });
        let idle_for = last.map_or(i64::MAX, |t| Utc::now().timestamp() - t);
        // Points are written about once a second: one more second of slack.
        if idle_for > quiet.as_secs() as i64 + 1 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// After an interrupted [`run`]: start again every replica of the suite that is not running,
/// and RabbitMQ's application when the plan restarts it, so an interruption never leaves the
/// suite short of what it had.
pub async fn repair(suite: &mut Suite, plan: &FaultPlan) -> anyhow::Result<()> {
    if let Some(node) = &plan.broker {
        node.start_app().await.context("starting RabbitMQ again")?;
    }
    let down: Vec<(String, usize)> = suite
        .status()
        .await
        .into_iter()
        .filter(|p| !p.alive && p.instance != "nginx")
        .filter_map(|p| {
            let (service, index) = p.instance.rsplit_once('-')?;
            Some((service.to_string(), index.parse().ok()?))
        })
        .collect();
    for (service, index) in down {
        tracing::info!("starting {service}-{index} again");
        suite.restart_replica(&service, index).await?;
    }
    Ok(())
}

async fn inject(suite: &mut Suite, plan: &FaultPlan, fault: &Fault, t0: Instant) -> FaultRecord {
    let injected = Instant::now();
    let mut record = FaultRecord {
        fault: fault.kind.clone(),
        target: String::new(),
        planned_secs: fault.at.as_secs_f64(),
        injected_secs: (injected - t0).as_secs_f64(),
        injected_at: Utc::now(),
        back_secs: None,
        back_at: None,
        detail: String::new(),
        error: None,
        probes: 0,
        probes_failed: 0,
        requests: None,
        failed: None,
        confirmed: None,
        confirmed_at_baseline: None,
        baseline_rps: None,
        recovery_secs: None,
        recovered_before_next: false,
    };
    let result = match &fault.kind {
        FaultKind::Kill { service, index } | FaultKind::Term { service, index } => {
            record.target = format!("{service}-{index}");
            let signal = match fault.kind {
                FaultKind::Kill { .. } => Signal::SIGKILL,
                _ => Signal::SIGTERM,
            };
            restart_replica(suite, service, *index, signal, plan.restart_after).await
        }
        FaultKind::BrokerRestart => match &plan.broker {
            Some(node) => {
                record.target = node.describe();
                restart_broker(suite, node, plan.restart_after).await
            }
            None => Err(anyhow::anyhow!("no RabbitMQ node to restart")),
        },
    };
    match result {
        Ok(detail) => {
            record.back_secs = Some((Instant::now() - t0).as_secs_f64());
            record.back_at = Some(Utc::now());
            record.detail = detail;
        }
        Err(e) => record.error = Some(format!("{e:#}")),
    }
    record
}

async fn restart_replica(
    suite: &mut Suite,
    service: &str,
    index: usize,
    signal: Signal,
    after: Duration,
) -> anyhow::Result<String> {
    // SIGTERM returns once the replica drained and exited; SIGKILL at once.
    let start = Instant::now();
    suite.kill_replica(service, index, signal).await?;
    let exited = start.elapsed();
    tokio::time::sleep(after).await;
    let restart = Instant::now();
    suite.restart_replica(service, index).await?;
    Ok(format!(
        "exited in {:.1} s, restarted {:.1} s later, ready {:.1} s after that",
        exited.as_secs_f64(),
        after.as_secs_f64(),
        restart.elapsed().as_secs_f64()
    ))
}

async fn restart_broker(
    suite: &Suite,
    node: &RabbitNode,
    after: Duration,
) -> anyhow::Result<String> {
    let start = Instant::now();
    node.stop_app().await.context("stopping RabbitMQ")?;
    let stopped = start.elapsed();
    tokio::time::sleep(after).await;
    let boot = Instant::now();
    node.start_app().await.context("starting RabbitMQ again")?;
    let booted = boot.elapsed();
    let reconnect = Instant::now();
    wait_consumers(suite, RECONNECT_TIMEOUT).await?;
    Ok(format!(
        "stop_app took {:.1} s, start_app {:.1} s later took {:.1} s, every replica consumed again {:.1} s after that",
        stopped.as_secs_f64(),
        after.as_secs_f64(),
        booted.as_secs_f64(),
        reconnect.elapsed().as_secs_f64()
    ))
}

/// Wait until every service queue has a consumer per replica again.
async fn wait_consumers(suite: &Suite, timeout: Duration) -> anyhow::Result<()> {
    let state = suite.state();
    let replicas = state.options.replicas as u32;
    let deadline = Instant::now() + timeout;
    loop {
        let last = match crate::broker::queue_depths(&state.amqp_url, &state.db_prefix).await {
            Ok(queues) => {
                let short: Vec<String> = queues
                    .iter()
                    .filter(|q| !q.dead_letter && q.consumers < replicas)
                    .map(|q| format!("{} has {} consumer(s)", q.queue, q.consumers))
                    .collect();
                if short.is_empty() && !queues.is_empty() {
                    return Ok(());
                }
                short.join(", ")
            }
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "the services did not all consume again within {}s of the broker restart: {last}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl FaultLog {
    /// Fill each fault's load numbers from `series`: requests and failures in its window,
    /// the mean req/s in the seconds before it, and how long until the load was back at that
    /// level without failures.
    pub fn measure(&mut self, series: &Series) {
        let end = self.ended_at;
        let last = series.last_second().unwrap_or(end.timestamp());
        let mut in_windows = std::collections::BTreeSet::new();
        let spans = windows(&self.faults, end);
        let nexts: Vec<Option<i64>> = (0..self.faults.len())
            .map(|i| self.faults.get(i + 1).map(|n| n.injected_at.timestamp()))
            .collect();
        let run_start = self.started_at.timestamp();
        for ((r, (from, to)), next) in self.faults.iter_mut().zip(spans).zip(nexts) {
            in_windows.extend(from..to);
            let tally = series.sum(from, to);
            r.requests = Some(tally.requests);
            r.failed = Some(tally.failures);
            let start = from.max(run_start);
            let before = ((start - BASELINE_SECS).max(run_start), start);
            r.baseline_rps = series.mean_rps(before.0, before.1);
            if series.counts_checkouts {
                r.confirmed = Some(tally.confirmed);
                r.confirmed_at_baseline = (before.1 > before.0).then(|| {
                    series.sum(before.0, before.1).confirmed as f64 / (before.1 - before.0) as f64
                        * (to - from) as f64
                });
            }
            // Recovered within the stretch this fault has to itself: up to the next fault,
            // or the end of the series.
            let limit = next.unwrap_or(last + 1);
            r.recovery_secs = r.baseline_rps.filter(|b| *b > 0.0).and_then(|baseline| {
                (from..=limit - RECOVERED_SECS)
                    .find(|&s| {
                        let t = series.sum(s, s + RECOVERED_SECS);
                        t.failures == 0
                            && t.requests as f64 / RECOVERED_SECS as f64
                                >= RECOVERED_SHARE * baseline
                    })
                    .map(|s| (s - r.injected_at.timestamp()).max(0) as f64)
            });
            r.recovered_before_next = next.is_some();
        }
        let run = series.window(self.started_at.timestamp(), end.timestamp() + 1);
        self.failed_outside_windows = Some(
            run.seconds
                .iter()
                .filter(|(t, _)| !in_windows.contains(*t))
                .map(|(_, tally)| tally.failures)
                .sum(),
        );
        self.load = Some(run.total());
        self.load_source = Some(series.source.clone());
    }

    /// Drain the suite (at most `timeout`) and audit it; the outcome is kept in the log.
    pub async fn settle(
        &mut self,
        suite: &Suite,
        promises: &Promises,
        timeout: Duration,
    ) -> anyhow::Result<&Outcome> {
        let outcome = audit::settle(suite, promises, timeout).await?;
        Ok(self.outcome.insert(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn the_standard_plan_hits_every_service_once_and_leaves_time_after_the_last_fault() {
        let sync = FaultPlan::standard(Mode::Sync, 2, Duration::from_secs(90));
        let kills: Vec<&str> = sync
            .faults
            .iter()
            .filter(|f| matches!(f.kind, FaultKind::Kill { .. }))
            .filter_map(|f| f.kind.service())
            .collect();
        assert_eq!(
            kills,
            ["payment", "inventory", "reservation", "order", "gateway"]
        );
        assert!(sync.faults.iter().any(|f| f.kind
            == FaultKind::Term {
                service: "order".into(),
                index: 1
            }));
        assert_eq!(sync.faults[0].at, Duration::from_secs(10));
        assert_eq!(
            sync.faults.last().map(|f| f.at),
            Some(Duration::from_secs(60)),
            "three gaps of quiet after the last fault"
        );

        let async_plan = FaultPlan::standard(Mode::Async, 1, Duration::from_secs(90));
        assert_eq!(async_plan.faults.len(), 7);
        assert_eq!(async_plan.faults[1].kind, FaultKind::BrokerRestart);
        assert!(async_plan.faults.windows(2).all(|w| w[0].at < w[1].at));
    }

    fn record(kind: FaultKind, at: DateTime<Utc>, back_secs: i64) -> FaultRecord {
        FaultRecord {
            fault: kind,
            target: "x-0".into(),
            planned_secs: 0.0,
            injected_secs: 0.0,
            injected_at: at,
            back_secs: Some(back_secs as f64),
            back_at: Some(at + chrono::Duration::seconds(back_secs)),
            detail: String::new(),
            error: None,
            probes: 0,
            probes_failed: 0,
            requests: None,
            failed: None,
            confirmed: None,
            confirmed_at_baseline: None,
            baseline_rps: None,
            recovery_secs: None,
            recovered_before_next: false,
        }
    }

    #[test]
    fn windows_count_the_failures_and_recovery_is_the_first_clean_stretch_at_the_old_pace() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        let s0 = t0.timestamp();
        // 100 req/s; a kill at 10 s: 2 s of 40 req/s with failures, back to 100 at 14 s.
        let mut seconds = std::collections::BTreeMap::new();
        for t in 0..40 {
            let (requests, failures) = match t {
                10 | 11 => (40, 6),
                12 | 13 => (80, 0),
                _ => (100, 0),
            };
            seconds.insert(
                s0 + t,
                Tally {
                    requests,
                    failures,
                    confirmed: requests / 10,
                },
            );
        }
        let series = Series::from_seconds("test", true, seconds);
        let kill = FaultKind::Kill {
            service: "payment".into(),
            index: 0,
        };
        let mut log = FaultLog {
            mode: Mode::Sync,
            started_at: t0,
            ended_at: t0 + chrono::Duration::seconds(40),
            planned_secs: 40.0,
            duration_secs: 40.0,
            faults: vec![
                record(kill.clone(), t0 + chrono::Duration::seconds(10), 2),
                record(kill, t0 + chrono::Duration::seconds(14), 1),
            ],
            probes: 0,
            probes_failed: 0,
            load_source: None,
            load: None,
            failed_outside_windows: None,
            outcome: None,
        };
        log.measure(&series);
        let first = &log.faults[0];
        // Window 10..14: back at 12, +1 +2 = 15, cut at the next fault (14).
        assert_eq!((first.failed, first.requests), (Some(12), Some(240)));
        assert_eq!(first.baseline_rps, Some(100.0));
        assert_eq!(first.confirmed_at_baseline, Some(40.0));
        // 12..15 is 80+80+100 (below 90 %); the first clean 3 s at ≥ 90 req/s start at 14,
        // which the next fault bounds: not before the next fault.
        assert_eq!(first.recovery_secs, None);
        assert!(first.recovered_before_next);
        let second = &log.faults[1];
        assert_eq!((second.failed, second.requests), (Some(0), Some(400)));
        assert_eq!(second.recovery_secs, Some(0.0));
        assert_eq!(log.failed_outside_windows, Some(0));
        assert_eq!(log.load.map(|l| l.failures), Some(12));
        let md = log.render_markdown();
        assert!(md.contains("| 1 | kill -9 | x-0 | 0.0 s | 2.0 s | 12 / 240 | 24 (40) | 0 / 0 | 100.0 | not before the next fault |"), "{md}");
        assert!(md.contains("Not drained and audited yet."));
    }
}
