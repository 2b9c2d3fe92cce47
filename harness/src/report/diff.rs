//! `flashsale diff A B`: what changed from one report folder to another, per VU level, mode
//! and metric of the report's comparison table. A change is "better" or "worse" only when
//! the two reports' min–max spreads do not overlap, the rule the report's own winner follows
//! ([`stats::winner`]); otherwise it is within the run-to-run spread. The settings that
//! differ are named first: a diff across different settings compares different experiments.

use super::data;
use super::manifest::Manifest;
use super::stats::{self, Better, Winner};
use super::table::{cell, Figure, Unit};
use super::view::{self, LevelFigures, MODES};
use anyhow::Context;
use serde::Serialize;
use std::path::Path;

const TEMPLATE: &str = include_str!("../../templates/diff.md.j2");

/// What B's figure is against A's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Better beyond both spreads (lower for a cost, higher for a rate).
    #[serde(rename = "better")]
    Better,
    #[serde(rename = "worse")]
    Worse,
    /// The spreads overlap: no difference the runs can tell.
    #[serde(rename = "within spread")]
    WithinSpread,
    /// One side has no value.
    #[serde(rename = "n/a")]
    NotAvailable,
}

impl Verdict {
    /// B against A: A is the first of [`stats::winner`], B the second.
    fn of(a: Option<Figure>, b: Option<Figure>, better: Better) -> Verdict {
        match stats::winner(a, b, better) {
            Winner::First => Verdict::Worse,
            Winner::Second => Verdict::Better,
            Winner::Tie => Verdict::WithinSpread,
            Winner::NotAvailable => Verdict::NotAvailable,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::WithinSpread => "within spread",
            Verdict::NotAvailable => "n/a",
        }
    }
}

/// One report folder, as the diff names it.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub dir: String,
    pub scenario: String,
    pub created_at: String,
    /// Every run was checked and its invariants held.
    pub invariants_ok: bool,
}

/// A setting (or a fact of the machine) that is not the same in both reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    pub setting: String,
    pub a: String,
    pub b: String,
}

/// One metric of one mode at one VU level, in A and in B.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub vus: usize,
    pub mode: String,
    pub metric: String,
    /// The mean over A's counted runs, with its spread.
    pub a: Option<Figure>,
    pub b: Option<Figure>,
    /// B's mean against A's, in % of A's.
    pub change_percent: Option<f64>,
    pub verdict: Verdict,
    #[serde(skip)]
    unit: Unit,
}

/// What changed from report A to report B.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub a: Side,
    pub b: Side,
    /// The comparison's settings that differ (the report's Settings table).
    pub settings: Vec<SettingChange>,
    /// The machine and versions that differ (the report's Environment table).
    pub environment: Vec<SettingChange>,
    pub changes: Vec<Change>,
}

/// One report folder read for the diff.
struct Report {
    side: Side,
    levels: Vec<LevelFigures>,
    settings: Vec<(String, String)>,
    environment: Vec<(String, String)>,
}

impl Report {
    fn read(dir: &Path) -> anyhow::Result<Report> {
        let manifest = Manifest::load(dir)?;
        let runs = data::load_parts(dir, &manifest, data::Parts::TABLES);
        Ok(Report {
            side: Side {
                dir: dir.display().to_string(),
                scenario: manifest.scenario.clone(),
                created_at: manifest
                    .created_at
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string(),
                invariants_ok: view::invariants_held(&runs),
            },
            levels: view::figures(&manifest, &runs),
            settings: view::settings(&manifest),
            environment: view::environment(&manifest),
        })
    }
}

/// `100 → 110` is `+10 %`; from 0 only to 0 (no change), else no percentage.
fn change_percent(a: Option<Figure>, b: Option<Figure>) -> Option<f64> {
    let (a, b) = (a?.value, b?.value);
    if a == 0.0 {
        return (b == 0.0).then_some(0.0);
    }
    Some((b - a) / a.abs() * 100.0)
}

/// The rows of two settings tables whose values differ, in A's order then B's; a row only
/// one side has is `none` on the other.
fn changed(a: &[(String, String)], b: &[(String, String)]) -> Vec<SettingChange> {
    let value = |rows: &[(String, String)], key: &str| {
        rows.iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| "none".to_string(), |(_, v)| v.clone())
    };
    let mut keys: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in b {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| SettingChange {
            setting: k.to_string(),
            a: value(a, k),
            b: value(b, k),
        })
        .filter(|c| c.a != c.b)
        .collect()
}

/// Per VU level (A's, then B's others), mode and metric, where either report has a value.
fn changes(a: &[LevelFigures], b: &[LevelFigures]) -> Vec<Change> {
    let mut levels: Vec<usize> = a.iter().map(|l| l.vus).collect();
    for l in b {
        if !levels.contains(&l.vus) {
            levels.push(l.vus);
        }
    }
    let find = |side: &[LevelFigures], vus: usize| side.iter().find(|l| l.vus == vus).cloned();
    let mut out = Vec::new();
    for vus in levels {
        let (la, lb) = (find(a, vus), find(b, vus));
        // Both sides list the same metrics; the one that has the level names them.
        let Some(metrics) = la.as_ref().or(lb.as_ref()).map(|l| l.metrics.clone()) else {
            continue;
        };
        for (m, (mode, _)) in MODES.iter().enumerate() {
            for (i, metric) in metrics.iter().enumerate() {
                let figure = |l: &Option<LevelFigures>| {
                    l.as_ref()
                        .and_then(|l| l.metrics.get(i))
                        .and_then(|x| x.figures.get(m).copied().flatten())
                };
                let (fa, fb) = (figure(&la), figure(&lb));
                if fa.is_none() && fb.is_none() {
                    continue;
                }
                out.push(Change {
                    vus,
                    mode: mode.to_string(),
                    metric: metric.label.to_string(),
                    a: fa,
                    b: fb,
                    change_percent: change_percent(fa, fb),
                    verdict: Verdict::of(fa, fb, metric.better),
                    unit: metric.unit,
                });
            }
        }
    }
    out
}

/// Compare report folder `a` (before) with `b` (after).
pub fn diff(a: &Path, b: &Path) -> anyhow::Result<Diff> {
    let ra = Report::read(a).with_context(|| format!("reading report {}", a.display()))?;
    let rb = Report::read(b).with_context(|| format!("reading report {}", b.display()))?;
    Ok(Diff {
        settings: changed(&ra.settings, &rb.settings),
        environment: changed(&ra.environment, &rb.environment),
        changes: changes(&ra.levels, &rb.levels),
        a: ra.side,
        b: rb.side,
    })
}

impl Diff {
    /// The diff in Markdown: the two reports, what differs in their settings, the table.
    pub fn markdown(&self) -> anyhow::Result<String> {
        let rows: Vec<_> = self
            .changes
            .iter()
            .map(|c| {
                minijinja::context! {
                    vus => c.vus,
                    mode => &c.mode,
                    metric => &c.metric,
                    a => cell(c.a, c.unit),
                    b => cell(c.b, c.unit),
                    change => c.change_percent.map_or("n/a".to_string(), |p| format!("{p:+.1} %")),
                    verdict => c.verdict.text(),
                }
            })
            .collect();
        let mut env = crate::templates::environment()?;
        env.add_filter("cell", super::render::markdown_cell);
        env.add_template("diff.md", TEMPLATE)
            .context("parsing templates/diff.md.j2")?;
        env.get_template("diff.md")?
            .render(minijinja::context! {
                a => minijinja::Value::from(minijinja::value::Serde(&self.a)),
                b => minijinja::Value::from(minijinja::value::Serde(&self.b)),
                settings => minijinja::Value::from(minijinja::value::Serde(&self.settings)),
                environment => minijinja::Value::from(minijinja::value::Serde(&self.environment)),
                rows => rows,
            })
            .context("rendering templates/diff.md.j2")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{copy_to, set_json};
    use serde_json::json;

    /// Report folders A (the fixture) and B (a copy), under one temp dir.
    fn two_reports() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        copy_to(&a);
        copy_to(&b);
        (tmp, a, b)
    }

    fn change<'a>(diff: &'a Diff, mode: &str, metric: &str) -> &'a Change {
        diff.changes
            .iter()
            .find(|c| c.vus == 500 && c.mode == mode && c.metric == metric)
            .unwrap_or_else(|| panic!("no {mode} {metric} in {:?}", diff.changes))
    }

    #[test]
    fn a_change_beyond_both_spreads_is_better_and_one_inside_them_is_within_spread() {
        let (_tmp, a, b) = two_reports();
        // B's sync runs confirmed twice as many checkouts (A: 10 and 11 per second), and its
        // first run's P95 is 104 ms instead of 100 (A's runs: 100 and 110 ms).
        let summary = |run: &str| b.join("raw/sync").join(run).join("summary.json");
        set_json(
            &summary("run-500-1"),
            "/metrics/checkout_confirmed/count",
            json!(1200),
        );
        set_json(
            &summary("run-500-2"),
            "/metrics/checkout_confirmed/count",
            json!(1320),
        );
        set_json(
            &summary("run-500-1"),
            "/metrics/http_req_duration{phase:journey}/p(95)",
            json!(104),
        );

        let diff = diff(&a, &b).expect("diff");

        let checkouts = change(&diff, "sync", "Confirmed checkouts/s");
        let (ca, cb) = (checkouts.a.expect("A"), checkouts.b.expect("B"));
        assert_eq!((ca.value, ca.min, ca.max), (10.5, 10.0, 11.0));
        assert_eq!((cb.value, cb.min, cb.max), (21.0, 20.0, 22.0));
        assert_eq!(checkouts.change_percent, Some(100.0));
        assert_eq!(checkouts.verdict, Verdict::Better);

        let p95 = change(&diff, "sync", "P95 latency");
        assert_eq!(p95.a.map(|f| f.value), Some(105.0));
        assert_eq!(
            p95.b.map(|f| (f.value, f.min, f.max)),
            Some((107.0, 104.0, 110.0))
        );
        let pct = p95.change_percent.expect("a change");
        assert!((pct - 2.0 / 105.0 * 100.0).abs() < 1e-9, "{pct}");
        assert_eq!(p95.verdict, Verdict::WithinSpread);

        // Twice the checkouts on the same CPU: each costs half, beyond the spread.
        let cpu = change(&diff, "sync", "Machine CPU per confirmed checkout");
        assert_eq!(cpu.verdict, Verdict::Better);
        assert!(cpu.change_percent.expect("a change") < -40.0);
        // Async did not change.
        let same = change(&diff, "async", "Confirmed checkouts/s");
        assert_eq!(
            (same.change_percent, same.verdict),
            (Some(0.0), Verdict::WithinSpread)
        );

        let md = diff.markdown().expect("markdown");
        assert!(md.contains(
            "| 500 | sync | Confirmed checkouts/s | 10.5 (10.0–11.0) | 21.0 (20.0–22.0) | +100.0 % | better |\n"
        ), "{md}");
        assert!(md.contains(
            "| 500 | sync | P95 latency | 105 ms (100–110) | 107 ms (104–110) | +1.9 % | within spread |\n"
        ), "{md}");
        assert!(md.contains("Same settings."), "{md}");
        let json = serde_json::to_value(&diff).expect("json");
        let verdicts: Vec<&str> = json["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .filter_map(|c| c["verdict"].as_str())
            .collect();
        assert_eq!(verdicts.len(), 20, "10 metrics × 2 modes: {verdicts:?}");
        assert!(verdicts.contains(&"better") && verdicts.contains(&"within spread"));
    }

    #[test]
    fn a_worse_figure_is_worse_and_a_missing_one_not_available() {
        let lower = |v: &[f64]| Figure::mean(v.iter().copied());
        assert_eq!(
            Verdict::of(lower(&[10.0, 11.0]), lower(&[20.0, 21.0]), Better::Lower),
            Verdict::Worse
        );
        assert_eq!(
            Verdict::of(lower(&[10.0, 11.0]), lower(&[20.0, 21.0]), Better::Higher),
            Verdict::Better
        );
        assert_eq!(
            Verdict::of(lower(&[10.0]), None, Better::Lower),
            Verdict::NotAvailable
        );
        assert_eq!(change_percent(lower(&[0.0]), lower(&[0.0])), Some(0.0));
        assert_eq!(change_percent(lower(&[0.0]), lower(&[1.0])), None);
    }

    #[test]
    fn the_settings_that_differ_are_listed_above_the_table() {
        let (_tmp, a, b) = two_reports();
        let runs = b.join(crate::report::manifest::MANIFEST_FILE);
        set_json(&runs, "/settings/replicas", json!(3));
        set_json(&runs, "/settings/service_env", json!({"DB_POOL_SIZE": "8"}));
        set_json(&runs, "/environment/cores", json!(4));

        let diff = diff(&a, &b).expect("diff");

        let change = |setting: &str, a: &str, b: &str| SettingChange {
            setting: setting.into(),
            a: a.into(),
            b: b.into(),
        };
        assert_eq!(
            diff.settings,
            vec![
                change("Replicas per service", "2", "3"),
                change("Service environment", "none", "DB_POOL_SIZE=8"),
            ]
        );
        assert_eq!(diff.environment, vec![change("Cores", "2", "4")]);
        let md = diff.markdown().expect("markdown");
        let settings = md.find("| Replicas per service | 2 | 3 |").expect(&md);
        assert!(
            md.contains("| Service environment | none | DB_POOL_SIZE=8 |"),
            "{md}"
        );
        assert!(md.contains("| Cores | 2 | 4 |"), "{md}");
        let table = md.find("| VUs | Mode | Metric |").expect(&md);
        assert!(
            settings < table && md.contains("**The settings differ**"),
            "{md}"
        );
        assert!(!md.contains("Same settings."), "{md}");
    }
}
