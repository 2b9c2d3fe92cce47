//! What a run leaves in its folder, as the harness's writers (`k6::load`, `compare`, `chaos`)
//! and its reader (`report`) both know it: the file names and formats, and nothing that
//! produces or lays them out. The floor the report stands on: it reads these and nothing of
//! the code that wrote them.

pub mod faults;
pub mod k6;
pub mod load;
pub mod traces;

/// The outcome of `flashsale verify --json` after the run.
pub const VERIFY_FILE: &str = "verify.json";
/// The harness's /proc samples of the service processes, in line protocol: the report's
/// fallback when the services wrote no `process` metrics of their own.
pub const HARNESS_METRICS_FILE: &str = "harness.lp";
