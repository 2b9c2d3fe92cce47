//! `<run_dir>/state.json`: everything a later `flashsale down`, `status` or `verify` needs to
//! find the suite that `up` started, down to the pid and binary of every process.
//!
//! The file holds the suite's secrets (token secret, internal key) so tests and tools can
//! mint tokens; it is written with mode 0600.

use crate::options::SuiteOptions;
use anyhow::Context;
use chrono::{DateTime, Utc};
use common::Mode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use uuid::Uuid;

pub const STATE_FILE: &str = "state.json";

/// One service replica the harness started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessRecord {
    pub service: String,
    /// `<service>-<index>`: the `INSTANCE` it runs as, and the name of its log, pid and port
    /// files.
    pub instance: String,
    pub index: usize,
    pub pid: u32,
    /// The port it listens on; 0 until it wrote its port file.
    pub port: u16,
    /// The binary it runs: a pid is only ever signalled while `/proc/<pid>/exe` is this file.
    pub exe: PathBuf,
}

/// The suite's nginx master process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NginxRecord {
    pub pid: u32,
    pub port: u16,
    pub exe: PathBuf,
    pub conf: PathBuf,
}

/// A product the harness seeded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeededProduct {
    pub id: Uuid,
    pub name: String,
    pub price_cents: i64,
    pub stock: i32,
    pub per_user_limit: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteState {
    pub mode: Mode,
    pub port: u16,
    pub base_url: String,
    /// nginx's internal listener (`/internal/...`), what the services' `UPSTREAM_URL` names.
    pub internal_url: String,
    /// Absolute.
    pub run_dir: PathBuf,
    pub db_prefix: String,
    pub redis_prefix: String,
    /// PostgreSQL server URL without a database name.
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    pub token_secret: String,
    pub internal_key: String,
    pub started_at: DateTime<Utc>,
    pub processes: Vec<ProcessRecord>,
    pub nginx: Option<NginxRecord>,
    /// Users `user1..userN`, all with `password`.
    pub users: usize,
    pub password: String,
    pub products: Vec<SeededProduct>,
    pub options: SuiteOptions,
}

impl SuiteState {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(STATE_FILE)
    }

    pub fn load(run_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(run_dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Write atomically (temp file + rename) so a reader never sees half a file.
    pub fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = Self::path(&self.run_dir);
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Pids of this suite's processes that are still alive and still run the recorded binary.
    pub fn live_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .processes
            .iter()
            .filter(|p| crate::process::is_ours(p.pid, &p.exe))
            .map(|p| p.pid)
            .collect();
        if let Some(n) = &self.nginx {
            if crate::process::is_ours(n.pid, &n.exe) {
                pids.push(n.pid);
            }
        }
        pids
    }

    pub fn replica(&self, service: &str, index: usize) -> anyhow::Result<&ProcessRecord> {
        self.processes
            .iter()
            .find(|p| p.service == service && p.index == index)
            .with_context(|| format!("the suite has no replica {service}-{index}"))
    }
}
