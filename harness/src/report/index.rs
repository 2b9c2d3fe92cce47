//! The reports folder's index: `index.html` (self-contained) and `index.md` beside the report
//! folders, listing every one of them newest first with its headline figures, read from its
//! raw data as the report itself reads them ([`data`], [`view`]). `compare`, `report` and
//! `ceiling` write it again each time they wrote a folder. A folder that cannot be read is
//! listed with its error; it never keeps the others out of the index.

use super::data;
use super::manifest::{Manifest, MANIFEST_FILE};
use super::table::{cell, Unit};
use super::view::{self, MODES};
use crate::ceiling::{self, Ceiling, Figures};
use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const HTML_FILE: &str = "index.html";
pub const MARKDOWN_FILE: &str = "index.md";
const HTML_TEMPLATE: &str = include_str!("../../templates/index.html.j2");
const MARKDOWN_TEMPLATE: &str = include_str!("../../templates/index.md.j2");

/// The report's key figures, in the index's column order.
pub const HEADLINE: [&str; 4] = [
    view::CHECKOUTS_PER_SEC,
    view::CHECKOUT_P95,
    view::MACHINE_CPU_PER_CHECKOUT,
    view::FAILURE_RATE,
];

/// What a folder of the reports dir holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `flashsale compare`'s report (`runs.json`).
    Comparison,
    /// `flashsale ceiling`'s (`ceiling.json`).
    Ceiling,
    /// Neither could be read.
    Unreadable,
}

/// One line of a folder's headline: a mode at a VU level, or the winners at that level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadlineRow {
    pub vus: usize,
    /// `sync`, `async`, or `winner`.
    pub mode: String,
    /// The figures of [`HEADLINE`], formatted as in the report.
    pub figures: Vec<String>,
}

/// One folder of the reports dir.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The folder's name.
    pub name: String,
    pub kind: Kind,
    /// When it was made (`n/a` when nothing says).
    pub date: String,
    #[serde(skip)]
    sort_key: Option<DateTime<Utc>>,
    /// The page to open, relative to the index: `report.html` or `ceiling.md`.
    pub link: Option<String>,
    pub scenario: String,
    pub modes: String,
    /// The counted VU levels.
    pub vus: String,
    pub rows: Vec<HeadlineRow>,
    /// Whether every run's invariants held (a ceiling: every journey completed); `None`
    /// when there is nothing to hold.
    pub ok: Option<bool>,
    pub status: String,
    /// Why the folder could not be read.
    pub error: Option<String>,
    /// Something the reader should know besides (a report not built yet).
    pub note: Option<String>,
}

/// What [`write`] wrote.
pub struct Written {
    pub html: PathBuf,
    pub markdown: PathBuf,
    pub entries: usize,
}

/// Write the index of `reports_dir` again, logging rather than failing: an index that could
/// not be written must never fail the command that made a report.
pub fn refresh(reports_dir: &Path) {
    match write(reports_dir) {
        Ok(w) => tracing::info!(
            "index of {} report folder(s): {}",
            w.entries,
            w.html.display()
        ),
        Err(e) => tracing::warn!(
            "could not write the index of {}: {e:#}",
            reports_dir.display()
        ),
    }
}

/// The reports dir a report folder is in (`.` for a bare relative name).
pub fn parent(report_dir: &Path) -> PathBuf {
    match report_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `index.html` and `index.md` in `reports_dir`.
pub fn write(reports_dir: &Path) -> anyhow::Result<Written> {
    let entries = entries(reports_dir)?;
    let mut env = crate::templates::environment()?;
    env.add_filter("cell", super::render::markdown_cell);
    env.add_template("index.md", MARKDOWN_TEMPLATE)
        .context("parsing templates/index.md.j2")?;
    // The `.html` name turns on HTML escaping.
    env.add_template("index.html", HTML_TEMPLATE)
        .context("parsing templates/index.html.j2")?;
    let ctx = minijinja::context! {
        dir => reports_dir.display().to_string(),
        generated_at => Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        headline => HEADLINE,
        entries => minijinja::Value::from(minijinja::value::Serde(&entries)),
    };
    let html = reports_dir.join(HTML_FILE);
    let markdown = reports_dir.join(MARKDOWN_FILE);
    let rendered_md = env.get_template("index.md")?.render(&ctx)?;
    let rendered_html = env.get_template("index.html")?.render(&ctx)?;
    std::fs::write(&markdown, rendered_md)
        .with_context(|| format!("writing {}", markdown.display()))?;
    std::fs::write(&html, rendered_html).with_context(|| format!("writing {}", html.display()))?;
    Ok(Written {
        html,
        markdown,
        entries: entries.len(),
    })
}

/// Every folder of `reports_dir` (hidden ones aside), newest first.
pub fn entries(reports_dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let listing = std::fs::read_dir(reports_dir)
        .with_context(|| format!("reading {}", reports_dir.display()))?;
    let mut entries: Vec<Entry> = listing
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| entry(&e.path(), &e.file_name().to_string_lossy()))
        .collect();
    entries.sort_by(|a, b| {
        b.sort_key
            .cmp(&a.sort_key)
            .then_with(|| b.name.cmp(&a.name))
    });
    Ok(entries)
}

/// One folder: a comparison, a ceiling, or what made it unreadable.
fn entry(dir: &Path, name: &str) -> Entry {
    let mut e = Entry {
        name: name.to_string(),
        kind: Kind::Unreadable,
        date: "n/a".into(),
        sort_key: stamp_of(name),
        link: None,
        scenario: String::new(),
        modes: String::new(),
        vus: String::new(),
        rows: Vec::new(),
        ok: None,
        status: String::new(),
        error: None,
        note: None,
    };
    let read = if dir.join(MANIFEST_FILE).is_file() {
        comparison(dir, &mut e)
    } else if dir.join(ceiling::CEILING_FILE).is_file()
        || dir.join(ceiling::MARKDOWN_FILE).is_file()
    {
        ceiling_entry(dir, &mut e)
    } else {
        Err(anyhow::anyhow!(
            "neither {MANIFEST_FILE} nor {}: not a report folder, or one whose run never started",
            ceiling::CEILING_FILE
        ))
    };
    if let Err(err) = read {
        e.error = Some(format!("{err:#}"));
    }
    if let Some(date) = e.sort_key {
        e.date = date.format("%Y-%m-%d %H:%M UTC").to_string();
    }
    e
}

/// The time a folder's name starts with (`20260101-000000-flash`), for folders that say no
/// other.
fn stamp_of(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.get(..15)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%d-%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

fn page(dir: &Path, name: &str, file: &str) -> Option<String> {
    dir.join(file).is_file().then(|| format!("{name}/{file}"))
}

/// A comparison's headline: per VU level, each mode's key figures and the winners.
fn comparison(dir: &Path, e: &mut Entry) -> anyhow::Result<()> {
    e.link = page(dir, &e.name, super::HTML_FILE);
    let manifest = Manifest::load(dir)?;
    if e.link.is_none() {
        e.note = Some(format!(
            "no {} yet (flashsale report {} builds it)",
            super::HTML_FILE,
            dir.display()
        ));
    }
    e.kind = Kind::Comparison;
    e.sort_key = Some(manifest.created_at);
    e.scenario = manifest.scenario.clone();
    e.modes = manifest.settings.modes.join(", ");
    let runs = data::load_parts(dir, &manifest, data::Parts::HEADLINE);
    let levels = view::figures(&manifest, &runs);
    e.vus = levels
        .iter()
        .map(|l| l.vus.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let ran: Vec<(usize, &str)> = MODES
        .iter()
        .enumerate()
        .filter(|(_, (mode, _))| manifest.settings.modes.iter().any(|m| m == mode))
        .map(|(i, (mode, _))| (i, *mode))
        .collect();
    for level in &levels {
        let rows: Vec<_> = HEADLINE
            .iter()
            .filter_map(|label| level.metrics.iter().find(|m| m.label == *label))
            .map(|m| m.row())
            .collect();
        for (i, mode) in &ran {
            e.rows.push(HeadlineRow {
                vus: level.vus,
                mode: mode.to_string(),
                figures: rows.iter().map(|r| r.cells[*i].clone()).collect(),
            });
        }
        if ran.len() == MODES.len() {
            e.rows.push(HeadlineRow {
                vus: level.vus,
                mode: "winner".into(),
                figures: rows.iter().map(|r| r.winner.clone()).collect(),
            });
        }
    }
    let held = view::invariants_held(&runs);
    e.ok = Some(held);
    e.status = if held {
        "hold"
    } else {
        "FAILED or not checked"
    }
    .into();
    Ok(())
}

/// How a column of the index is read off a ceiling run, and its unit.
type CeilingColumn = (fn(&Figures) -> Option<f64>, Unit);

/// A ceiling's headline: per journey shape, the medians of what the null backend allowed.
fn ceiling_entry(dir: &Path, e: &mut Entry) -> anyhow::Result<()> {
    e.link = page(dir, &e.name, ceiling::MARKDOWN_FILE);
    e.kind = Kind::Ceiling;
    e.scenario = "ceiling (null backend)".into();
    let path = dir.join(ceiling::CEILING_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let c: Ceiling =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    e.sort_key = Some(c.created_at);
    e.vus = c.vus.to_string();
    let mut modes: Vec<&str> = Vec::new();
    for run in &c.runs {
        if !modes.contains(&run.mode.as_str()) {
            modes.push(&run.mode);
        }
    }
    e.modes = modes.join(", ");
    // The ceiling's own figures for the index's columns; it measures no machine CPU per
    // checkout (nothing is sold).
    let columns: [Option<CeilingColumn>; 4] = [
        Some((|f| Some(f.checkouts_per_sec), Unit::significant(""))),
        Some((|f| f.checkout_p95_ms, Unit::significant(" ms"))),
        None,
        Some((|f| f.failure_rate, Unit::fixed(2, " %").times(100.0))),
    ];
    for mode in &modes {
        e.rows.push(HeadlineRow {
            vus: c.vus,
            mode: format!("{mode} journey"),
            figures: columns
                .iter()
                .map(|col| match col {
                    Some((value, unit)) => cell(c.median(mode, *value), *unit),
                    None => "–".into(),
                })
                .collect(),
        });
    }
    e.ok = Some(c.ok());
    e.status = if c.ok() {
        "every journey completed"
    } else {
        "journeys failed: no ceiling"
    }
    .into();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{copy_to, set_json};
    use serde_json::json;

    /// A reports dir: the fixture as a flash comparison of 1 January; a copy as a sustained one
    /// of 2 January whose sync runs confirmed twice the checkouts and whose invariants all
    /// held; a folder of 3 January whose runs.json is broken; a ceiling of 4 January.
    fn reports_dir() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("temp dir");
        let flash = tmp.path().join("20260101-000000-flash");
        copy_to(&flash);
        crate::report::build(&flash).expect("build the flash report");
        let sustained = tmp.path().join("20260102-000000-sustained");
        copy_to(&sustained);
        let runs = sustained.join(MANIFEST_FILE);
        set_json(&runs, "/created_at", json!("2026-01-02T00:00:00Z"));
        set_json(&runs, "/scenario", json!("sustained"));
        for (run, confirmed) in [("run-500-1", 1200), ("run-500-2", 1320)] {
            let summary = sustained.join("raw/sync").join(run).join("summary.json");
            set_json(
                &summary,
                "/metrics/checkout_confirmed/count",
                json!(confirmed),
            );
        }
        let verify = sustained.join("raw/sync/warmup-1/verify.json");
        set_json(&verify, "/ok", json!(true));
        set_json(&verify, "/violations", json!([]));
        let broken = tmp.path().join("20260103-000000-flash");
        std::fs::create_dir_all(&broken).expect("mkdir");
        std::fs::write(broken.join(MANIFEST_FILE), "{ not json").expect("write");
        let ceiling = tmp.path().join("20260104-000000-ceiling");
        std::fs::create_dir_all(&ceiling).expect("mkdir");
        let run = |mode: &str, index: usize, checkouts: f64| {
            json!({
                "mode": mode, "index": index, "vus": 500, "duration_secs": 30.0,
                "started_at": "2026-01-04T00:00:00Z", "ended_at": "2026-01-04T00:00:30Z",
                "dir": format!("raw/{mode}/run-500-{index}"), "k6_exit_code": 0,
                "figures": {
                    "requests_per_sec": checkouts * 5.0, "avg_ms": 40.0, "p90_ms": 80.0,
                    "p95_ms": 100.0, "checkout_p95_ms": 350.0, "checkouts_per_sec": checkouts,
                    "failed_journeys": 0.0, "dropped_journeys": 0.0, "failure_rate": 0.0,
                    "k6_cores": 1.7, "nginx_cores": 0.2, "machine_busy": 0.99,
                    "k6_us_per_request": 200.0
                }
            })
        };
        let c = json!({
            "created_at": "2026-01-04T00:00:00Z", "vus": 500, "runs_per_mode": 1,
            "duration_secs": 30.0, "poll_wait_secs": 5, "arrival_rate": 0,
            "cpu_model": "Fixture CPU", "cores": 2, "k6_version": "1.1.0",
            "runs": [run("sync", 1, 1400.0), run("sync", 2, 1600.0), run("async", 1, 1000.0)]
        });
        std::fs::write(ceiling.join(ceiling::CEILING_FILE), c.to_string()).expect("write");
        std::fs::write(ceiling.join(ceiling::MARKDOWN_FILE), "# ceiling\n").expect("write");
        // Not a folder: left out.
        std::fs::write(tmp.path().join(".gitkeep"), "").expect("write");
        tmp
    }

    fn row<'a>(e: &'a Entry, mode: &str) -> &'a [String] {
        &e.rows
            .iter()
            .find(|r| r.mode == mode)
            .unwrap_or_else(|| panic!("no {mode} row in {e:?}"))
            .figures
    }

    #[test]
    fn the_index_lists_every_folder_newest_first_with_its_headline_and_a_broken_one_with_its_error()
    {
        let tmp = reports_dir();

        let entries = entries(tmp.path()).expect("entries");

        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "20260104-000000-ceiling",
                "20260103-000000-flash",
                "20260102-000000-sustained",
                "20260101-000000-flash"
            ]
        );
        let [ceiling, broken, sustained, flash] = &entries[..] else {
            panic!("four entries")
        };

        assert_eq!(flash.kind, Kind::Comparison);
        assert_eq!(flash.date, "2026-01-01 00:00 UTC");
        assert_eq!(
            (flash.scenario.as_str(), flash.vus.as_str()),
            ("flash", "500")
        );
        assert_eq!(flash.modes, "sync, async");
        assert_eq!(
            flash.link.as_deref(),
            Some("20260101-000000-flash/report.html")
        );
        assert_eq!(
            row(flash, "sync"),
            [
                "10.5 (10.0–11.0)",
                "310 ms (300–320)",
                "135 ms (110–160)",
                "1.50 % (1.00–2.00)"
            ]
        );
        assert_eq!(
            row(flash, "async"),
            [
                "5.25 (5.00–5.50)",
                "510 ms (500–520)",
                "170 ms",
                "0.00 % (0.00–0.00)"
            ]
        );
        assert_eq!(
            row(flash, "winner"),
            [
                "Sync (+100 %)",
                "Sync (-39 %)",
                "Sync (-21 %)",
                "Async (-100 %)"
            ]
        );
        // A sync warm-up of the fixture left an order stuck.
        assert_eq!(flash.ok, Some(false));

        assert_eq!(sustained.scenario, "sustained");
        assert_eq!(row(sustained, "sync")[0], "21.0 (20.0–22.0)");
        assert_eq!(row(sustained, "winner")[0], "Sync (+300 %)");
        assert_eq!(
            (sustained.ok, sustained.status.as_str()),
            (Some(true), "hold")
        );
        // Its report was never built: no link, and a note that says how to build it.
        assert_eq!(sustained.link, None);
        assert!(sustained
            .note
            .as_deref()
            .is_some_and(|n| n.contains("flashsale report")));

        assert_eq!(broken.kind, Kind::Unreadable);
        assert_eq!(
            broken.date, "2026-01-03 00:00 UTC",
            "from the folder's name"
        );
        let error = broken.error.as_deref().expect("an error");
        assert!(
            error.contains("parsing") && error.contains("runs.json"),
            "{error}"
        );
        assert!(broken.rows.is_empty() && broken.link.is_none());

        assert_eq!(ceiling.kind, Kind::Ceiling);
        assert_eq!(
            ceiling.link.as_deref(),
            Some("20260104-000000-ceiling/ceiling.md")
        );
        assert_eq!(ceiling.modes, "sync, async");
        assert_eq!(row(ceiling, "sync journey")[0], "1500 [1400–1600]");
        assert_eq!(row(ceiling, "async journey")[..2], ["1000", "350 ms"]);
        assert_eq!(ceiling.ok, Some(true));
    }

    #[test]
    fn the_index_files_are_self_contained_and_keep_the_order() {
        let tmp = reports_dir();

        let written = write(tmp.path()).expect("write the index");

        assert_eq!(written.entries, 4);
        let html = std::fs::read_to_string(&written.html).expect("index.html");
        let md = std::fs::read_to_string(&written.markdown).expect("index.md");
        for fetch in [" src=", "<link", "<script", "@import", "url("] {
            assert!(
                !html.contains(fetch),
                "index.html fetches something: {fetch}"
            );
        }
        // Its only links are to the folders' own pages.
        assert_eq!(html.matches(" href=").count(), 2, "{html}");
        assert!(html.contains("<a href=\"20260101-000000-flash&#x2f;report.html\">"));
        assert!(html.contains("<a href=\"20260104-000000-ceiling&#x2f;ceiling.md\">"));
        assert!(html.contains("unreadable: parsing"), "{html}");
        let at = |page: &str, name: &str| page.find(name).unwrap_or_else(|| panic!("{name}"));
        for page in [&html, &md] {
            assert!(at(page, "20260104-000000-ceiling") < at(page, "20260103-000000-flash"));
            assert!(at(page, "20260103-000000-flash") < at(page, "20260102-000000-sustained"));
            assert!(at(page, "20260102-000000-sustained") < at(page, "20260101-000000-flash"));
        }
        assert!(md.contains(
            "| | | | | 500 | winner | Sync (+100 %) | Sync (-39 %) | Sync (-21 %) | Async (-100 %) | |\n"
        ), "{md}");
    }
}
