//! A fault log (`faults.json`) laid out for a reader: [`FaultView`] holds every cell already
//! formatted, so `flashsale chaos` (Markdown, [`FaultLog::render_markdown`]) and the
//! comparison report's Faults section (its Markdown and HTML templates) show the same thing.

use crate::rundata::faults::{
    FaultLog, FaultRecord, BASELINE_SECS, RECOVERED_SECS, RECOVERED_SHARE, WINDOW_TAIL_SECS,
};
use serde::Serialize;
use std::fmt::Write as _;

/// One line of the outcome table.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeRow {
    pub what: String,
    pub value: String,
    pub ok: bool,
}

/// A fault log, every cell formatted.
#[derive(Debug, Clone, Serialize)]
pub struct FaultView {
    /// `Fault run, sync mode: 61 s from … (planned 60 s), 6 fault(s).`
    pub headline: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Per fault, how it went phase by phase; then warnings about the run.
    pub details: Vec<String>,
    /// What the load did and how the windows and recovery are defined.
    pub notes: Vec<String>,
    /// Empty until the log was settled.
    pub outcome: Vec<OutcomeRow>,
    /// Sizes of what was checked, stuck kinds, examples of findings, violations.
    pub findings: Vec<String>,
    pub settled: bool,
    pub passed: bool,
}

const HEADER: [&str; 10] = [
    "#",
    "fault",
    "target",
    "at",
    "back at",
    "requests failed / sent in window",
    "checkouts confirmed in window (at pre-fault pace)",
    "probes failed / sent",
    "pre-fault req/s",
    "recovered after",
];

fn row(i: usize, r: &FaultRecord) -> Vec<String> {
    let back = match (&r.back_secs, &r.error) {
        (_, Some(e)) => format!("failed: {}", e.replace('\n', " ")),
        (Some(b), None) => format!("{b:.1} s"),
        (None, None) => "—".into(),
    };
    let load = match (r.failed, r.requests) {
        (Some(f), Some(n)) => format!("{f} / {n}"),
        _ => "—".into(),
    };
    let confirmed = match (r.confirmed, r.confirmed_at_baseline) {
        (Some(n), Some(pace)) => format!("{n} ({pace:.0})"),
        (Some(n), None) => n.to_string(),
        _ => "—".into(),
    };
    let recovered = match (r.recovery_secs, r.baseline_rps) {
        (Some(s), _) => format!("{s:.0} s"),
        (None, Some(b)) if b > 0.0 && r.recovered_before_next => "not before the next fault".into(),
        (None, Some(b)) if b > 0.0 => "not within the run".into(),
        _ => "—".into(),
    };
    vec![
        (i + 1).to_string(),
        r.fault.label().to_string(),
        r.target.clone(),
        format!("{:.1} s", r.injected_secs),
        back,
        load,
        confirmed,
        format!("{} / {}", r.probes_failed, r.probes),
        r.baseline_rps.map_or("—".into(), |b| format!("{b:.1}")),
        recovered,
    ]
}

impl FaultLog {
    pub fn view(&self) -> FaultView {
        let headline = format!(
            "Fault run, {} mode: {:.0} s from {} (planned {:.0} s), {} fault(s).",
            self.mode,
            self.duration_secs,
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.planned_secs,
            self.faults.len()
        );
        let rows = self
            .faults
            .iter()
            .enumerate()
            .map(|(i, r)| row(i, r))
            .collect();
        let mut details: Vec<String> = self
            .faults
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.detail.is_empty())
            .map(|(i, r)| format!("{}. {} {}: {}.", i + 1, r.fault.label(), r.target, r.detail))
            .collect();
        let late = self
            .faults
            .iter()
            .filter(|r| r.injected_secs > self.planned_secs)
            .count();
        if late > 0 {
            details.push(format!(
                "{late} fault(s) went in after the planned end of the run, behind a slow one: \
                 their windows may hold no load. Plan a longer run (and load)."
            ));
        }
        let mut notes = vec![match (&self.load_source, &self.load) {
            (Some(source), Some(load)) => format!(
                "Load: {} request(s), {} failed ({} outside the fault windows); source: {source}.",
                load.requests,
                load.failures,
                self.failed_outside_windows.unwrap_or(0)
            ),
            _ => "Load: not measured.".to_string(),
        }];
        notes.push(format!(
            "Probes through nginx (a few cheap reads per second to each service): {} sent, {} failed. \
             A fault window runs from the injection to {} s after the target was back (never into the next \
             fault's); the pre-fault pace is that of the {BASELINE_SECS} s before the fault; recovery is \
             the first {RECOVERED_SECS} s with no failure at ≥ {:.0} % of the pre-fault req/s.",
            self.probes,
            self.probes_failed,
            WINDOW_TAIL_SECS + 1,
            RECOVERED_SHARE * 100.0,
        ));
        let mut outcome = Vec::new();
        let mut findings = Vec::new();
        if let Some(o) = &self.outcome {
            let count = |what: &str, n: u64| OutcomeRow {
                what: what.into(),
                value: n.to_string(),
                ok: n == 0,
            };
            outcome = vec![
                count("orders lost", o.orders_lost),
                count("double charges", o.double_charges),
                count("oversold units", o.oversold_units),
                count("sagas stuck after the drain", o.stuck),
                OutcomeRow {
                    what: "drained".into(),
                    value: if o.drained { "yes" } else { "no" }.into(),
                    ok: o.drained,
                },
                OutcomeRow {
                    what: "invariants (`verify`)".into(),
                    value: if o.verify_ok {
                        "hold".into()
                    } else {
                        format!("{} violation(s)", o.violations.len())
                    },
                    ok: o.verify_ok,
                },
            ];
            let counts = |m: &std::collections::BTreeMap<String, i64>| {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
                if parts.is_empty() {
                    "none".to_string()
                } else {
                    parts.join(", ")
                }
            };
            findings.push(format!(
                "Orders: {}. Provider charges: {}. Drained and checked in {:.1} s.",
                counts(&o.orders),
                counts(&o.charges),
                o.settle_secs
            ));
            let stuck: Vec<String> = o
                .stuck_by_kind
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            if !stuck.is_empty() {
                findings.push(format!("Stuck: {}.", stuck.join(", ")));
            }
            findings.extend(o.findings.iter().cloned());
            findings.extend(o.violations.iter().cloned());
        }
        FaultView {
            headline,
            header: HEADER.iter().map(|h| h.to_string()).collect(),
            rows,
            details,
            notes,
            outcome,
            findings,
            settled: self.outcome.is_some(),
            passed: self.passed(),
        }
    }

    /// The log as Markdown: the faults table, how each went, the load, then the outcome
    /// table and the verdict (what `flashsale chaos` prints).
    pub fn render_markdown(&self) -> String {
        let v = self.view();
        let cell = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        let _ = writeln!(out, "{}\n", v.headline);
        let _ = writeln!(out, "| {} |", v.header.join(" | "));
        let _ = writeln!(out, "|{}", " --- |".repeat(v.header.len()));
        for r in &v.rows {
            let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(out);
        for d in &v.details {
            let _ = writeln!(out, "{d}");
        }
        let _ = writeln!(out);
        for n in &v.notes {
            let _ = writeln!(out, "{n}\n");
        }
        if !v.settled {
            let _ = writeln!(out, "Not drained and audited yet.");
            return out;
        }
        let _ = writeln!(out, "| after the drain | |");
        let _ = writeln!(out, "| --- | --- |");
        for o in &v.outcome {
            let value = if o.ok {
                format!("{} ✓", o.value)
            } else {
                format!("**{}** ✗", o.value)
            };
            let _ = writeln!(out, "| {} | {} |", o.what, value);
        }
        let _ = writeln!(out);
        for f in &v.findings {
            let _ = writeln!(out, "- {f}");
        }
        let _ = writeln!(
            out,
            "\nVerdict: {}",
            if v.passed {
                "**nothing lost** ✓"
            } else {
                "**FAILED** ✗"
            }
        );
        out
    }
}
