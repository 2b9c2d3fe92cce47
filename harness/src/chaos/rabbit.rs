//! Restarting RabbitMQ as an operator would: `rabbitmqctl stop_app`, then `start_app`.
//!
//! Stopping the application (not the Erlang node) is the fastest restart that still goes
//! through RabbitMQ's whole shutdown and boot: every connection is closed, unacked deliveries
//! go back to their queues, and quorum queues recover from their on-disk log (they survive
//! either way; a `stop` + `rabbitmq-server -detached` also restarts the Erlang VM, which costs
//! tens of seconds on a loaded 2-core machine and proves nothing more to the clients).

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Longest a `rabbitmqctl` call may take (stopping waits for queues to flush).
const CTL_TIMEOUT: Duration = Duration::from_secs(120);

/// The RabbitMQ node the suite's services use, and how to reach it with `rabbitmqctl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RabbitNode {
    /// The `rabbitmqctl` to run (Debian's wrapper runs it as the `rabbitmq` user, whose
    /// Erlang cookie the machine's node uses).
    pub ctl: PathBuf,
    /// `-n <node>`; `None` is rabbitmqctl's default: the machine's node.
    pub node: Option<String>,
    /// Extra environment for rabbitmqctl, e.g. the `HOME` holding a private node's cookie.
    pub env: Vec<(String, String)>,
}

impl RabbitNode {
    /// The machine's node, through the `rabbitmqctl` on the PATH (or in /usr/sbin).
    pub fn machine() -> anyhow::Result<Self> {
        let ctl = crate::infra::find_binary("rabbitmqctl")
            .context("rabbitmqctl is not installed: run `flashsale setup`")?;
        Ok(Self {
            ctl,
            node: None,
            env: Vec::new(),
        })
    }

    /// A node by name, with the machine's `rabbitmqctl`.
    pub fn named(node: impl Into<String>) -> anyhow::Result<Self> {
        Ok(Self {
            node: Some(node.into()),
            ..Self::machine()?
        })
    }

    /// What the fault log calls it.
    pub fn describe(&self) -> String {
        match &self.node {
            Some(node) => format!("rabbitmq ({node})"),
            None => "rabbitmq".to_string(),
        }
    }

    /// Stop the RabbitMQ application: every client connection is closed.
    pub async fn stop_app(&self) -> anyhow::Result<()> {
        self.ctl(&["stop_app"]).await
    }

    /// Start it again; returns once it has booted (queues recovered, listeners open).
    pub async fn start_app(&self) -> anyhow::Result<()> {
        self.ctl(&["start_app"]).await?;
        self.ctl(&["await_startup"]).await
    }

    async fn ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut cmd = tokio::process::Command::new(&self.ctl);
        if let Some(node) = &self.node {
            cmd.args(["-n", node]);
        }
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let shown = format!("{} {}", self.ctl.display(), args.join(" "));
        let out = tokio::time::timeout(CTL_TIMEOUT, cmd.output())
            .await
            .with_context(|| format!("{shown} took more than {}s", CTL_TIMEOUT.as_secs()))?
            .with_context(|| format!("running {shown}"))?;
        if !out.status.success() {
            bail!(
                "{shown} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}
