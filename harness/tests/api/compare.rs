//! `flashsale compare --quick`: the real binary, end to end, on a suite of its own (port,
//! run folder, database and Redis prefix), with the workspace's debug binaries.

use crate::helpers::{ensure_infra, free_port, unique_prefix};
use std::path::{Path, PathBuf};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_flashsale"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_quick_runs_both_scenarios_and_every_run_keeps_the_invariants() {
    ensure_infra();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = unique_prefix();
    let reports = dir.path().join("reports");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args([
            "compare",
            "--quick",
            "--modes",
            "sync,async",
            "--skip-setup",
        ])
        .arg("--reports-dir")
        .arg(&reports)
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .args(["--port", &free_port().to_string()])
        .args(["--db-prefix", &prefix, "--redis-prefix", &prefix])
        .arg("--bin-dir")
        .arg(bin_dir())
        .output()
        .await
        .expect("run flashsale compare");
    let _ = harness::store::drop_databases(harness::infra::DEFAULT_DATABASE_URL, &prefix).await;
    let _ = harness::store::clear_redis("redis://127.0.0.1:6379", &prefix).await;

    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flashsale compare failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    for mode in ["sync", "async"] {
        assert!(
            stderr.contains(&format!("[{mode}/flash] run 1/1 at 50 VUs")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains("req/s"),
        "live progress shows req/s:\n{stderr}"
    );
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&reports)
        .expect("reports dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    assert_eq!(folders.len(), 2, "one report per scenario: {folders:?}");
    // Beside them, the index of the reports dir, written after each report.
    let index = std::fs::read_to_string(reports.join("index.html")).expect("index.html");
    for folder in &folders {
        let name = folder.file_name().expect("name").to_string_lossy();
        assert!(index.contains(&format!(">{name}</a>")), "{index}");
    }
    for (folder, scenario) in folders.iter().zip(["flash", "sustained"]) {
        assert!(
            folder.to_string_lossy().ends_with(scenario),
            "{}",
            folder.display()
        );
        let md = std::fs::read_to_string(folder.join("report.md")).expect("report.md");
        assert!(md.contains(
            "| Metric | Synchronous + Round Robin | Asynchronous + Least connections | Winner |"
        ));
        assert!(md.contains("| Throughput (req/s) |"));
        assert!(folder.join("report.html").is_file());
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(folder.join("runs.json")).expect("runs.json"),
        )
        .expect("json");
        let runs = manifest["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 4, "a warm-up and a counted run per mode");
        for mode in ["sync", "async"] {
            assert_eq!(
                runs.iter().filter(|r| r["mode"] == mode).count(),
                2,
                "{scenario}: {mode} ran a warm-up and a counted run"
            );
        }
        for run in runs {
            let run_dir = folder.join(run["dir"].as_str().expect("dir"));
            let verify: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(run_dir.join("verify.json")).expect("verify.json"),
            )
            .expect("json");
            assert_eq!(verify["ok"], true, "{}: {verify}", run_dir.display());
            assert_eq!(run["drained"], true);
            for file in ["summary.json", "k6.csv.gz", "load.json"] {
                assert!(
                    run_dir.join(file).is_file(),
                    "{file} in {}",
                    run_dir.display()
                );
            }
            // The machine's CPU, split by component, saw the parts that did the work.
            let load: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(run_dir.join("load.json")).expect("load.json"),
            )
            .expect("json");
            let samples = load["samples"].as_array().expect("samples");
            let used = |part: &str| -> f64 {
                samples
                    .iter()
                    .filter_map(|s| s["components"][part].as_f64())
                    .sum()
            };
            for part in ["PostgreSQL", "service replicas", "k6", "nginx"] {
                assert!(
                    used(part) > 0.0,
                    "{part} used no CPU in {}: {samples:?}",
                    run_dir.display()
                );
            }
            if run["mode"] == "async" {
                assert!(used("RabbitMQ") > 0.0, "the broker worked in async mode");
            }
        }
        assert!(
            md.contains("| Machine CPU per confirmed checkout |"),
            "the comparison names what a checkout costs the machine:\n{md}"
        );
        assert!(md.contains("| Component | Synchronous + Round Robin |"));
        assert!(md.contains("\n| RabbitMQ | "));
        let confirmed: f64 = runs
            .iter()
            .map(|run| {
                let summary: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(
                        folder
                            .join(run["dir"].as_str().expect("dir"))
                            .join("summary.json"),
                    )
                    .expect("summary"),
                )
                .expect("json");
                summary["metrics"]["checkout_confirmed"]["count"]
                    .as_f64()
                    .unwrap_or(0.0)
            })
            .sum();
        assert!(confirmed > 0.0, "{scenario}: some checkouts were confirmed");
    }
}
