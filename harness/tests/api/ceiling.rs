//! `flashsale ceiling`: the real binary drives the real journey script with k6 against the
//! null backend's nginx, in both journey shapes.

use crate::helpers::{ensure_infra, free_port};
use harness::rundata::k6::read_summary;
use std::path::{Path, PathBuf};
use std::process::Output;

/// One run of 10 virtual users per journey shape, for `duration`.
async fn ceiling(reports: &Path, duration: &str, extra: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["ceiling", "--skip-setup", "--vus", "10", "--runs", "1"])
        .args(["--duration", duration])
        .arg("--reports-dir")
        .arg(reports)
        .args(["--port", &free_port().to_string()])
        .args(extra)
        .output()
        .await
        .expect("run flashsale ceiling")
}

fn the_report_folder(reports: &Path) -> PathBuf {
    let folders: Vec<PathBuf> = std::fs::read_dir(reports)
        .expect("reports dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].to_string_lossy().ends_with("-ceiling"));
    // Beside it, the index of the reports dir, written after the ceiling.
    assert!(reports.join("index.html").is_file());
    folders[0].clone()
}

/// `flashsale k6-merge` of one runner's folder (a real k6 run) computes the summary k6 wrote:
/// the same counts, and the same latency up to k6's own percentile rounding.
fn a_summary_from_the_samples_is_k6s_own(raw: &Path, out: &Path) {
    let merged = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["k6-merge", "--out"])
        .arg(out)
        .arg(raw)
        .output()
        .expect("run flashsale k6-merge");
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert!(String::from_utf8_lossy(&merged.stdout).contains("started_at 20"));
    let k6 = read_summary(&raw.join("summary.json")).expect("k6's summary");
    let ours = read_summary(&out.join("summary.json")).expect("the merged summary");
    assert_eq!(ours.requests, k6.requests);
    assert_eq!(ours.outcomes, k6.outcomes);
    assert_eq!(ours.failure_rate, k6.failure_rate);
    let close = |a: Option<f64>, b: Option<f64>, what: &str| {
        let (a, b) = (a.expect(what), b.expect(what));
        assert!(
            (a - b).abs() <= 0.01 * b.max(1.0),
            "{what}: {a} vs k6's {b}"
        );
    };
    close(ours.avg_ms, k6.avg_ms, "avg");
    close(ours.p90_ms, k6.p90_ms, "p90");
    close(ours.p95_ms, k6.p95_ms, "p95");
    close(ours.checkout_p95_ms, k6.checkout_p95_ms, "checkout p95");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journey_completes_against_the_null_backend_in_both_shapes() {
    ensure_infra();
    let dir = tempfile::tempdir().expect("temp dir");
    let reports = dir.path().join("reports");

    let out = ceiling(&reports, "2s", &["--modes", "sync,async"]).await;

    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flashsale ceiling failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    assert!(
        stdout.contains("| Figure | sync journey | async journey |"),
        "{stdout}"
    );
    let folder = the_report_folder(&reports);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder.join("ceiling.json")).expect("ceiling.json"),
    )
    .expect("json");
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{json}");
    for (run, mode) in runs.iter().zip(["sync", "async"]) {
        assert_eq!(run["mode"], mode);
        assert_eq!(run["k6_exit_code"], 0, "{run}");
        let f = &run["figures"];
        // Every journey ran to its confirmed end: the null backend answers what the
        // journey script expects at every step, in each mode's shape.
        assert_eq!(f["failed_journeys"], 0.0, "{run}");
        assert!(
            f["checkouts_per_sec"].as_f64().expect("rate") > 0.0,
            "{run}"
        );
        assert!(f["checkout_p95_ms"].as_f64().is_some(), "{run}");
        assert!(
            f["k6_us_per_request"].as_f64().expect("k6 cost") > 0.0,
            "{run}"
        );
        assert!(
            f["nginx_cores"].as_f64().expect("nginx cores") > 0.0,
            "{run}"
        );
        let raw = folder.join(run["dir"].as_str().expect("dir"));
        assert!(raw.join("summary.json").is_file(), "{}", raw.display());
        assert!(raw.join("k6.csv.gz").is_file(), "{}", raw.display());
        a_summary_from_the_samples_is_k6s_own(&raw, &dir.path().join(mode));
    }
    // Seven requests per async checkout (two status polls), five per sync checkout.
    let ratio = |run: &serde_json::Value| {
        run["figures"]["requests_per_sec"].as_f64().expect("req/s")
            / run["figures"]["checkouts_per_sec"].as_f64().expect("rate")
    };
    assert!((ratio(&runs[0]) - 5.0).abs() < 0.2, "{}", ratio(&runs[0]));
    assert!((ratio(&runs[1]) - 7.0).abs() < 0.2, "{}", ratio(&runs[1]));
    let md = std::fs::read_to_string(folder.join("ceiling.md")).expect("ceiling.md");
    assert!(md.contains("Every journey of every run completed."), "{md}");
    assert!(md.contains("| End-to-end checkout P95 |"), "{md}");
    assert!(
        folder.join("raw/async/nginx/nginx.conf").is_file(),
        "the rendered config is kept with the report"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journey_the_null_backend_cannot_answer_is_reported_as_no_ceiling() {
    ensure_infra();
    let dir = tempfile::tempdir().expect("temp dir");
    let reports = dir.path().join("reports");
    // A journey that asks for what the null backend does not serve: every one fails.
    let script = dir.path().join("lost.js");
    std::fs::write(
        &script,
        r#"import http from 'k6/http';
import { Counter } from 'k6/metrics';
const failed = new Counter('checkout_failed');
export const options = {
  scenarios: { lost: { executor: 'constant-vus', vus: 2, duration: '2s', tags: { phase: 'journey' } } },
};
export default function () {
  if (http.get(`${__ENV.BASE_URL}/api/nowhere`).status !== 200) failed.add(1);
}
"#,
    )
    .expect("write script");

    let out = ceiling(
        &reports,
        "2s",
        &["--modes", "sync", "--script", &script.to_string_lossy()],
    )
    .await;

    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(the_report_folder(&reports).join("ceiling.md"))
        .expect("ceiling.md");
    assert!(md.contains("Not a ceiling"), "{md}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_model_starts_journeys_at_the_set_rate() {
    ensure_infra();
    let dir = tempfile::tempdir().expect("temp dir");
    let reports = dir.path().join("reports");

    let out = ceiling(
        &reports,
        "3s",
        &["--modes", "async", "--arrival-rate", "20"],
    )
    .await;

    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = the_report_folder(&reports);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder.join("raw/async/run-10-1/summary.json"))
            .expect("summary.json"),
    )
    .expect("json");
    let count = |metric: &str| summary["metrics"][metric]["count"].as_f64().unwrap_or(0.0);
    // 20 journeys a second for 3 s: each one k6 scheduled either ran or was counted as not
    // started (k6 schedules one at each end of the window: 61). A closed loop of 10 virtual
    // users against the null backend runs thousands in the same time.
    let journeys = count("checkout_confirmed") + count("dropped_iterations");
    assert!((59.0..=61.0).contains(&journeys), "{journeys}: {summary}");
    let md = std::fs::read_to_string(folder.join("ceiling.md")).expect("ceiling.md");
    assert!(md.contains("starting 20 journeys"), "{md}");
}
