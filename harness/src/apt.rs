//! The bottom floor of the harness's set-up: running a command and installing a Debian
//! package, for [`crate::infra`] (the servers) and [`crate::k6`] (the load generator).

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;

/// Run `cmd` to completion; a failure carries its output.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// apt-get, updated at most once per setup. Installs never start the packaged services (a
/// `policy-rc.d` answering 101 is in place while apt runs): the harness starts what it needs
/// itself, and never the system nginx.
#[derive(Default)]
pub(crate) struct Apt {
    updated: bool,
}

impl Apt {
    pub(crate) fn install(&mut self, package: &str) -> anyhow::Result<()> {
        if !self.updated {
            tracing::info!("apt: apt-get update");
            run(Command::new("apt-get").arg("update"))?;
            self.updated = true;
        }
        tracing::info!("apt: installing {package}");
        let policy = Path::new("/usr/sbin/policy-rc.d");
        let placed = if policy.exists() {
            false
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(policy, "#!/bin/sh\n# placed by flashsale setup\nexit 101\n")
                .context("writing /usr/sbin/policy-rc.d")?;
            std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
            true
        };
        let result = run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"));
        if placed {
            let _ = std::fs::remove_file(policy);
        }
        result.with_context(|| format!("installing {package}"))
    }
}
