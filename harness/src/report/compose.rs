//! `flashsale report --compose DIR`: a compose study's folder made a report folder. The
//! modes' manifests are merged ([`merge`](super::merge)); each suite's service points are
//! read back from InfluxDB into `raw/<mode>/metrics/influx.lp` (the file a native suite's
//! replicas would have written), and Telegraf's container CPU into
//! `raw/<mode>/metrics/containers.lp`, from which every load sample's CPU split is computed
//! again ([`containers`](super::containers)). Then the report is built as any other.

use super::containers::Split;
use super::flux::Influx;
use super::lineproto;
use super::manifest::Manifest;
use crate::rundata::load::{read_load, LOAD_FILE};
use anyhow::Context;
use common::metrics::schema;
use std::path::Path;

/// What the services' points and the containers' are read back into, in a suite's metrics
/// folder.
pub const SERVICES_FILE: &str = "influx.lp";
pub const CONTAINERS_FILE: &str = "containers.lp";

/// How far before a suite's first run and after its last its points are read.
const MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

/// What was read for one suite.
#[derive(Debug)]
pub struct SuiteRead {
    pub mode: String,
    pub service_points: usize,
    pub container_points: usize,
    /// Load samples given a split from the containers, out of how many.
    pub samples_split: usize,
    pub samples: usize,
}

/// Merge, read back, rewrite the splits; then [`super::build`] the report.
pub async fn prepare(dir: &Path, influx: &Influx) -> anyhow::Result<Vec<SuiteRead>> {
    let manifest = super::merge::merge(dir)?;
    manifest.save(dir)?;
    let mut read = Vec::new();
    for suite in &manifest.suites {
        read.push(read_suite(dir, &manifest, &suite.mode, influx).await?);
    }
    Ok(read)
}

async fn read_suite(
    dir: &Path,
    manifest: &Manifest,
    mode: &str,
    influx: &Influx,
) -> anyhow::Result<SuiteRead> {
    let suite = manifest
        .suites
        .iter()
        .find(|s| s.mode == mode)
        .context("a suite of the manifest")?;
    let runs: Vec<_> = manifest.runs.iter().filter(|r| r.mode == mode).collect();
    let mut read = SuiteRead {
        mode: mode.to_string(),
        service_points: 0,
        container_points: 0,
        samples_split: 0,
        samples: 0,
    };
    let (Some(start), Some(end)) = (
        runs.iter().map(|r| r.started_at).min(),
        runs.iter().map(|r| r.ended_at).max(),
    ) else {
        return Ok(read);
    };
    let (start, stop) = (start - MARGIN, end + MARGIN);
    let metrics_dir = dir.join(&suite.metrics_dir);
    std::fs::create_dir_all(&metrics_dir)
        .with_context(|| format!("creating {}", metrics_dir.display()))?;

    let services = influx
        .query(&influx.select(
            start,
            stop,
            &[schema::PROCESS, schema::HTTP, schema::QUEUE],
            &[
                (schema::TAG_MODE, mode),
                (schema::TAG_RUN_ID, &suite.run_id),
            ],
        ))
        .await?;
    lineproto::write_file(&metrics_dir.join(SERVICES_FILE), &services)?;
    read.service_points = services.len();

    let containers = influx
        .query(&format!(
            "{}\n  |> filter(fn: (r) => r._field == \"{}\")",
            influx.select(
                start,
                stop,
                &[schema::containers::CPU],
                &[(schema::containers::TAG_CPU, schema::containers::CPU_TOTAL)],
            ),
            schema::containers::USAGE_PERCENT
        ))
        .await?;
    lineproto::write_file(&metrics_dir.join(CONTAINERS_FILE), &containers)?;
    read.container_points = containers.len();

    let split = Split::new(&containers);
    for run in runs {
        let path = dir.join(&run.dir).join(LOAD_FILE);
        if !path.is_file() {
            continue;
        }
        let mut load = read_load(&path)?;
        read.samples += load.samples.len();
        read.samples_split += split.apply(&mut load.samples);
        std::fs::write(&path, serde_json::to_string_pretty(&load)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(read)
}
