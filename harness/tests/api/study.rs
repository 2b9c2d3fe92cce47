//! `flashsale study`: the comparison's protocol against a suite flashsale did not start (as
//! docker-compose runs it), here a native suite started by the test, reached only through
//! its URL, database server and prefix, as a compose suite would be.

use crate::helpers::spawn_suite_with;
use std::collections::BTreeSet;
use std::path::Path;

async fn study(dir: &Path, base_url: &str, prefix: &str, scenario: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["study", "--quick", "--mode", "sync", "--scenario", scenario])
        .arg("--dir")
        .arg(dir)
        .args(["--base-url", base_url, "--db-prefix", prefix])
        .args([
            "--run-id",
            "study-test",
            "--replicas",
            "1",
            "--web-dashboard",
        ])
        .args(["--users", "20", "--vus", "10", "--warmup-vus", "5"])
        .args(["--duration", "3s", "--warmup-duration", "2s"])
        .env_remove("INFLUX_URL")
        .env_remove("RUN_ID")
        .output()
        .await
        .expect("run flashsale study")
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_study_runs_the_protocol_on_a_running_suite_into_its_modes_folder() {
    // Arrange: a running suite that already sold three products (stock 10, limit 1)
    let t = spawn_suite_with(|o| {
        o.users = 20;
        o.products = 3;
        o.stock = 10;
    })
    .await;
    let state = t.suite.state().clone();
    let already: BTreeSet<String> = state.products.iter().map(|p| p.id.to_string()).collect();
    let dir = tempfile::tempdir().expect("temp dir");

    // Act
    let out = study(dir.path(), &state.base_url, &state.db_prefix, "flash").await;
    let refused = study(dir.path(), &state.base_url, &state.db_prefix, "sustained").await;
    t.teardown().await;

    // Assert: the flash study ran a warm-up and a counted run, each a new sale
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "flashsale study failed:\n{stderr}");
    let manifest = json(&dir.path().join("raw/sync/runs.json"));
    assert_eq!(manifest["scenario"], "flash");
    assert_eq!(manifest["settings"]["modes"], serde_json::json!(["sync"]));
    assert_eq!(manifest["settings"]["stock"], 20, "the quick flash stock");
    assert_eq!(manifest["settings"]["per_user_limit"], 1);
    assert_eq!(manifest["settings"]["replicas"], 1);
    assert_eq!(manifest["suites"][0]["run_id"], "study-test");
    assert_eq!(manifest["suites"][0]["metrics_dir"], "raw/sync/metrics");
    let runs = manifest["runs"].as_array().expect("runs");
    let dirs: Vec<&str> = runs
        .iter()
        .map(|r| r["dir"].as_str().expect("dir"))
        .collect();
    assert_eq!(dirs, ["raw/sync/warmup-1", "raw/sync/run-10-1"]);
    let mut sold: Vec<BTreeSet<String>> = Vec::new();
    for run in runs {
        let run_dir = dir.path().join(run["dir"].as_str().expect("dir"));
        for file in [
            "summary.json",
            "k6.csv.gz",
            "load.json",
            "k6-dashboard.html",
        ] {
            assert!(
                run_dir.join(file).is_file(),
                "{} lacks {file}",
                run_dir.display()
            );
        }
        let verify = json(&run_dir.join("verify.json"));
        assert_eq!(verify["ok"], true, "{verify}");
        assert_eq!(run["k6_exit_code"], 0);
        assert_eq!(run["drained"], true);
        let products: BTreeSet<String> = run["products"]
            .as_array()
            .expect("products")
            .iter()
            .map(|p| p.as_str().expect("an id").to_string())
            .collect();
        assert_eq!(products.len(), 5, "a sale of five products");
        assert!(
            products.is_disjoint(&already),
            "a new sale, not the suite's"
        );
        assert!(
            sold.iter().all(|s| s.is_disjoint(&products)),
            "a new sale per run"
        );
        sold.push(products);
    }
    let summary = json(&dir.path().join("raw/sync/run-10-1/summary.json"));
    let confirmed = summary["metrics"]["checkout_confirmed"]["count"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(confirmed > 0.0, "the counted run sold something: {summary}");

    // Assert: a suite seeded for the flash scenario is not measured as the sustained one
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("seeded for another scenario"),
        "the refusal says why:\n{stderr}"
    );
}
