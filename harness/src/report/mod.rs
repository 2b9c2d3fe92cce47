//! The comparison report: `report.md` and a self-contained `report.html` (charts as inline
//! SVG, nothing fetched), built from a report folder's raw data alone ([`manifest`] lists
//! it), so `flashsale report DIR` rebuilds exactly what `flashsale compare` wrote.
//!
//! Three steps, a module each: [`data`] reads the runs from disk, [`view`] computes the
//! tables, charts and notes from them (the hop breakdown of the services' spans in
//! [`traces`]), [`render`] lays the view out in the templates.
//! Beside them, [`index`] lists every report folder of the reports dir with its headline,
//! and [`diff`] compares two report folders.
//!
//! A compose study's folder is made a report folder first by [`compose`]: its modes'
//! manifests merged ([`merge`]), the services' points read back from InfluxDB ([`flux`]), the
//! CPU split computed from Telegraf's container points ([`containers`]).

pub mod charts;
pub mod compose;
pub mod containers;
pub mod data;
pub mod diff;
pub mod faults;
pub mod flux;
pub mod index;
pub mod lineproto;
pub mod manifest;
pub mod merge;
pub mod render;
pub mod resources;
pub mod stats;
pub mod table;
pub mod traces;
pub mod view;

use anyhow::Context;
use manifest::Manifest;
use std::path::{Path, PathBuf};

pub const MARKDOWN_FILE: &str = "report.md";
pub const HTML_FILE: &str = "report.html";

/// What [`build`] wrote.
pub struct Built {
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// The comparison tables alone, in Markdown, for a terminal.
    pub tables: String,
    /// Every run's invariants held.
    pub invariants_ok: bool,
}

/// Build `report.md`, `report.html` and `charts/*.svg` in `dir` from its raw data.
pub fn build(dir: &Path) -> anyhow::Result<Built> {
    let manifest = Manifest::load(dir)?;
    let runs = data::load(dir, &manifest);
    let spans = data::load_traces(dir, &manifest);
    let mut view = view::view(&manifest, &runs, &spans)?;
    // The view keeps only figures: the spans (all of a fully traced run) go before rendering.
    drop(spans);
    let rendered = render::render(&mut view)?;
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir)
        .with_context(|| format!("creating {}", charts_dir.display()))?;
    let trace_charts = view
        .traces
        .iter()
        .flat_map(|t| t.levels.iter().filter_map(|l| l.chart.as_ref()));
    for chart in view
        .levels
        .iter()
        .flat_map(|l| l.charts.iter())
        .chain(trace_charts)
    {
        std::fs::write(charts_dir.join(&chart.file), &chart.svg)
            .with_context(|| format!("writing chart {}", chart.file))?;
    }
    let markdown = dir.join(MARKDOWN_FILE);
    let html = dir.join(HTML_FILE);
    std::fs::write(&markdown, rendered.markdown)
        .with_context(|| format!("writing {}", markdown.display()))?;
    std::fs::write(&html, rendered.html).with_context(|| format!("writing {}", html.display()))?;
    Ok(Built {
        markdown,
        html,
        tables: rendered.tables,
        invariants_ok: view.invariants_ok,
    })
}

#[cfg(test)]
pub(crate) mod fixture {
    //! The report fixture (`tests/fixtures/report`) copied where a test may change it.

    use std::path::Path;

    /// A copy of the fixture report folder at `to`.
    pub fn copy_to(to: &Path) {
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report"),
            to,
        );
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create dir");
        for entry in std::fs::read_dir(from).expect("read fixture dir").flatten() {
            let (path, target) = (entry.path(), to.join(entry.file_name()));
            if path.is_dir() {
                copy_dir(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("copy fixture file");
            }
        }
    }

    /// Set the value at `pointer` (RFC 6901) in the JSON file `path`.
    pub fn set_json(path: &Path, pointer: &str, value: serde_json::Value) {
        let text = std::fs::read_to_string(path).expect("read JSON");
        let mut json: serde_json::Value = serde_json::from_str(&text).expect("parse JSON");
        *json
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer} in {}", path.display())) = value;
        std::fs::write(path, json.to_string()).expect("write JSON");
    }
}
