//! The machine and the component versions a comparison ran on, for the report.

use crate::report::manifest::Environment;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Collect once, before the first run. A component that cannot be asked says "unknown".
pub async fn collect(database_url: &str, k6: &Path) -> Environment {
    let (cpu_model, cores, memory_bytes) = crate::procfs::machine();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mut versions = BTreeMap::new();
    versions.insert("postgresql".into(), postgres_version(database_url).await);
    versions.insert(
        "redis".into(),
        command_output("redis-server", &["--version"])
            .and_then(|t| {
                t.split_whitespace()
                    .find_map(|w| w.strip_prefix("v=").map(str::to_string))
            })
            .unwrap_or_else(unknown),
    );
    versions.insert(
        "rabbitmq".into(),
        command_output("dpkg-query", &["-W", "-f=${Version}", "rabbitmq-server"])
            .filter(|t| !t.is_empty())
            .unwrap_or_else(unknown),
    );
    versions.insert(
        "nginx".into(),
        crate::infra::nginx_binary()
            .ok()
            .and_then(|nginx| command_output(&nginx.to_string_lossy(), &["-v"]))
            .and_then(|t| t.split('/').nth(1).map(|v| v.trim().to_string()))
            .unwrap_or_else(unknown),
    );
    versions.insert(
        "k6".into(),
        crate::k6::version_of(k6).unwrap_or_else(unknown),
    );
    versions.insert(
        "rustc".into(),
        command_output("rustc", &["--version"])
            .and_then(|t| t.split_whitespace().nth(1).map(str::to_string))
            .unwrap_or_else(unknown),
    );
    Environment {
        cpu_model,
        cores,
        memory_bytes,
        kernel,
        versions,
    }
}

fn unknown() -> String {
    "unknown".into()
}

/// stdout and stderr of a command that succeeded (nginx -v prints to stderr).
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(text.trim().to_string())
}

async fn postgres_version(database_url: &str) -> String {
    match crate::store::connect(database_url, "postgres").await {
        Ok(client) => match client.query_one("SHOW server_version", &[]).await {
            Ok(row) => row
                .get::<_, String>(0)
                .split_whitespace()
                .next()
                .unwrap_or("unknown")
                .to_string(),
            Err(_) => unknown(),
        },
        Err(_) => unknown(),
    }
}
