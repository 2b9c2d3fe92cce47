//! A fault run's record (`faults.json`, beside a counted run's k6 data under
//! `flashsale compare --faults`): each fault as it happened, what the load did in its window,
//! and the audit after the drain. `chaos` writes it, the report reads it.

use chrono::{DateTime, Utc};
use common::Mode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fault log of a counted run under `flashsale compare --faults`, beside its k6 data.
pub const FAULTS_FILE: &str = "faults.json";
/// Seconds before a fault whose mean req/s is the level to recover to.
pub const BASELINE_SECS: i64 = 5;
/// Seconds in a row that must reach the baseline (and fail nothing) to call it recovered.
pub const RECOVERED_SECS: i64 = 3;
/// Share of the baseline req/s that counts as recovered.
pub const RECOVERED_SHARE: f64 = 0.9;
/// Seconds after a fault's end still counted in its window: the requests that were queued
/// while it lasted finish then.
pub const WINDOW_TAIL_SECS: i64 = 2;

/// One fault to inject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9` replica `index` of `service`, then start it again.
    Kill { service: String, index: usize },
    /// SIGTERM (a graceful drain) replica `index` of `service`, then start it again.
    Term { service: String, index: usize },
    /// Stop the RabbitMQ application and start it again (async mode).
    BrokerRestart,
}

impl FaultKind {
    pub fn label(&self) -> &'static str {
        match self {
            FaultKind::Kill { .. } => "kill -9",
            FaultKind::Term { .. } => "SIGTERM",
            FaultKind::BrokerRestart => "broker restart",
        }
    }

    /// The service a replica fault hits.
    pub fn service(&self) -> Option<&str> {
        match self {
            FaultKind::Kill { service, .. } | FaultKind::Term { service, .. } => Some(service),
            FaultKind::BrokerRestart => None,
        }
    }
}

/// One fault as it happened, and what the run measured while it lasted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    pub fault: FaultKind,
    /// The instance (`payment-0`) or the broker it hit.
    pub target: String,
    /// Seconds from the run's start: planned, and when it really went in (a slow restart of
    /// the fault before delays the next).
    pub planned_secs: f64,
    pub injected_secs: f64,
    pub injected_at: DateTime<Utc>,
    /// Seconds from the run's start at which the target was back: the replica ready again,
    /// or every replica consuming its queue again after a broker restart.
    pub back_secs: Option<f64>,
    pub back_at: Option<DateTime<Utc>>,
    /// How the fault went, phase by phase (e.g. `exited in 0.0 s, ready 1.4 s after its
    /// restart`).
    pub detail: String,
    /// Why injecting or restarting failed, if it did.
    pub error: Option<String>,
    /// Probes through nginx in the fault window: to the faulted service (every service for a
    /// broker restart), sent and failed.
    pub probes: u64,
    pub probes_failed: u64,
    /// From [`FaultLog::measure`]: the load's requests and failed requests in the window.
    pub requests: Option<u64>,
    pub failed: Option<u64>,
    /// Checkouts confirmed in the window, and how many the pace of the seconds before the
    /// fault would have confirmed in it (when the load's source counts checkouts).
    #[serde(default)]
    pub confirmed: Option<u64>,
    #[serde(default)]
    pub confirmed_at_baseline: Option<f64>,
    /// Mean req/s of the load in the seconds before the fault.
    pub baseline_rps: Option<f64>,
    /// Seconds from the injection until the load was back at the baseline req/s with no
    /// failure; `None` when it was not before the next fault (or the end of the series).
    pub recovery_secs: Option<f64>,
    /// Whether a next fault bounded the search for the recovery.
    #[serde(default)]
    pub recovered_before_next: bool,
}

impl FaultRecord {
    /// The fault window in Unix seconds, `from..to`: from the injection to a little after
    /// the target was back (to the end of the run when it never was), and never into the
    /// next fault's window (`next`: when that one went in).
    pub fn window(&self, run_end: DateTime<Utc>, next: Option<DateTime<Utc>>) -> (i64, i64) {
        let from = self.injected_at.timestamp();
        let back = self.back_at.unwrap_or(run_end);
        let to = back.timestamp() + 1 + WINDOW_TAIL_SECS;
        let to = next.map_or(to, |n| to.min(n.timestamp())).max(from + 1);
        (from, to)
    }
}

/// Each record's window, in order.
pub fn windows(records: &[FaultRecord], run_end: DateTime<Utc>) -> Vec<(i64, i64)> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| r.window(run_end, records.get(i + 1).map(|n| n.injected_at)))
        .collect()
}

/// The record of one fault run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultLog {
    pub mode: Mode,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// The plan's length, and how long the run really took (longer when faults overran).
    #[serde(default)]
    pub planned_secs: f64,
    pub duration_secs: f64,
    pub faults: Vec<FaultRecord>,
    /// Probes through nginx over the whole run, sent and failed.
    pub probes: u64,
    pub probes_failed: u64,
    /// Where the per-fault load numbers come from ([`FaultLog::measure`]).
    pub load_source: Option<String>,
    /// The load over the whole run, and its failures outside every fault window.
    pub load: Option<Tally>,
    pub failed_outside_windows: Option<u64>,
    /// From [`FaultLog::settle`].
    pub outcome: Option<Outcome>,
}

impl FaultLog {
    /// Every fault went in and came back, and the outcome (when settled) passed.
    pub fn passed(&self) -> bool {
        self.faults
            .iter()
            .all(|f| f.error.is_none() && f.back_at.is_some())
            && self.outcome.as_ref().is_none_or(Outcome::passed)
    }
}

/// The outcome of a fault run after the drain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The suite drained (no outbox backlog, no message waiting, nothing PENDING) in time.
    pub drained: bool,
    /// Seconds from the end of the run until the checks passed (or gave up).
    pub settle_secs: f64,
    pub orders_lost: u64,
    pub double_charges: u64,
    pub oversold_units: u64,
    /// Everything not final after the drain, by kind; `stuck` is their sum.
    pub stuck_by_kind: BTreeMap<String, u64>,
    pub stuck: u64,
    /// Examples of each finding, for the reader who has to look.
    pub findings: Vec<String>,
    /// Orders by status, charges by outcome: the size of what was checked.
    pub orders: BTreeMap<String, i64>,
    pub charges: BTreeMap<String, i64>,
    /// `flashsale verify`'s verdict and its violations.
    pub verify_ok: bool,
    pub violations: Vec<String>,
}

impl Outcome {
    /// Every count is 0, the suite drained and the invariants hold.
    pub fn passed(&self) -> bool {
        self.drained
            && self.verify_ok
            && self.orders_lost == 0
            && self.double_charges == 0
            && self.oversold_units == 0
            && self.stuck == 0
    }
}

/// One second's requests and failed requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub requests: u64,
    pub failures: u64,
    /// Checkouts that ended CONFIRMED this second (when the source counts them).
    #[serde(default)]
    pub confirmed: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.confirmed += other.confirmed;
    }
}
