//! The harness's record of the load generator and the machine during a run (`load.json`):
//! k6's own CPU, the machine's busy share, and the machine's CPU split by component, once a
//! second. `k6::load` writes it, the report and `ceiling` read it.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const LOAD_FILE: &str = "load.json";

/// The parts of the machine a run's CPU is split into, by process name (`procfs::component`).
pub const COMPONENTS: [&str; 8] = [
    "PostgreSQL",
    "RabbitMQ",
    "service replicas",
    "k6",
    "nginx",
    "Redis",
    "harness",
    "other",
];

/// One second of load-generator accounting, sampled by the harness during the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadSample {
    /// Unix seconds.
    pub t: f64,
    /// k6's own CPU, in cores (1.0 = one core busy).
    pub k6_cores: f64,
    /// Share of the machine's CPU time that was not idle (0..1).
    pub machine_busy: f64,
    /// k6's requests per second (everything it sent, from its REST API).
    pub requests_per_sec: f64,
    /// The machine's CPU in cores per component ([`COMPONENTS`]); empty in
    /// runs recorded before the split was sampled.
    #[serde(default)]
    pub components: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Load {
    pub cores: usize,
    pub samples: Vec<LoadSample>,
}

pub fn read_load(path: &Path) -> anyhow::Result<Load> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
