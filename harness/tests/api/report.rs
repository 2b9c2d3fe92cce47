//! The comparison report, built from fixture raw data (tests/fixtures/report): a k6 summary
//! per run, the services' metrics line protocol, verify results and load samples.

use crate::helpers::{copy_dir, read, report_fixture as fixture};

/// A copy of the fixture report folder to build in.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&fixture(), dir.path());
    dir
}

#[test]
fn the_table_averages_the_counted_runs_and_names_the_winners() {
    let dir = fixture_copy();

    let built = harness::report::build(dir.path()).expect("build the report");

    let md = read(&built.markdown);
    let expected = "\
| Metric | Synchronous + Round Robin | Asynchronous + Least connections | Winner |
| --- | --- | --- | --- |
| Avg latency | 42.0 ms (40.0–44.0) | 21.0 ms (20.0–22.0) | Async (-50 %) |
| P90 latency | 85.0 ms (80.0–90.0) | 90.0 ms (85.0–95.0) | Tie (ranges overlap) |
| P95 latency | 105 ms (100–110) | 155 ms (150–160) | Sync (-32 %) |
| End-to-end checkout P95 | 310 ms (300–320) | 510 ms (500–520) | Sync (-39 %) |
| CPU usage (services, % of one core) | 85.0 % (80.0–90.0) | 125 % (120–130) | Sync (-32 %) |
| Machine CPU per confirmed checkout | 135 ms (110–160) | 170 ms | Sync (-21 %) |
| Memory usage (services, RSS) | 205 MB (200–210) | 155 MB (150–160) | Async (-24 %) |
| Failure rate | 1.50 % (1.00–2.00) | 0.00 % (0.00–0.00) | Async (-100 %) |
| Throughput (req/s) | 1050 (1000–1100) | 1550 (1500–1600) | Async (+48 %) |
| Confirmed checkouts/s | 10.5 (10.0–11.0) | 5.25 (5.00–5.50) | Sync (+100 %) |
";
    assert!(md.contains(expected), "the table is not as expected:\n{md}");
    assert!(built.tables.contains(expected));
    assert!(md.contains("### 500 virtual users"));
}

#[test]
fn the_machine_cpu_per_checkout_is_split_by_component() {
    // Fixture load samples: sync runs 1 and 2 (10 and 11 confirmed/s) sampled the split,
    // async run 1 (5/s) too, async run 2 did not (recorded before the split): it is left out.
    let dir = fixture_copy();

    let built = harness::report::build(dir.path()).expect("build the report");

    let md = read(&built.markdown);
    let expected = "\
Where the machine's CPU went at 500 virtual users, in ms of CPU per confirmed checkout:

| Component | Synchronous + Round Robin | Asynchronous + Least connections | Winner |
| --- | --- | --- | --- |
| PostgreSQL | 45.0 ms (40.0–50.0) | 60.0 ms | Sync (-25 %) |
| RabbitMQ | 0.00 ms (0.00–0.00) | 30.0 ms | Sync (-100 %) |
| service replicas | 35.0 ms (30.0–40.0) | 50.0 ms | Sync (-30 %) |
| k6 | 35.0 ms (30.0–40.0) | 20.0 ms | Async (-43 %) |
| nginx | 10.0 ms (10.0–10.0) | 8.00 ms | Async (-20 %) |
| Redis | 0.00 ms (0.00–0.00) | 2.00 ms | Sync (-100 %) |
| harness | 0.00 ms (0.00–0.00) | 0.00 ms | – |
| other | 10.0 ms (0.00–20.0) | 0.00 ms | – |
| all | 135 ms (110–160) | 170 ms | Sync (-21 %) |
";
    assert!(
        md.contains(expected),
        "the CPU split is not as expected:\n{md}"
    );
    let html = read(&built.html);
    assert!(html.contains("<tr><td>RabbitMQ</td><td class=\"num\">0.00 ms (0.00–0.00)</td><td class=\"num\">30.0 ms</td><td>Sync (-100 %)</td></tr>"), "{html}");
}

#[test]
fn every_run_is_listed_with_its_invariants_and_warm_ups_are_not_counted() {
    let dir = fixture_copy();

    let built = harness::report::build(dir.path()).expect("build the report");

    let md = read(&built.markdown);
    assert!(
        !built.invariants_ok,
        "the sync warm-up failed its invariants"
    );
    assert!(md.contains(
        "| sync | warm-up 1 (not counted) | 250 | 33.3 | 1000 ms | 3000 ms | 1 / 1000 / 50 / 0 / 0 / 2 | n/a | n/a | yes (2 s) | FAIL: [4] 1 order(s) still PENDING \\| stuck |"
    ), "{md}");
    assert!(
        md.contains("| async | run 2 | 500 | 1600 | 160 ms | 520 ms |"),
        "{md}"
    );
    assert!(md.contains("Invariants failed (or were not checked) after sync warm-up 1 at 250 VUs"));
    assert!(
        md.contains("CPU-starved in 1 of 6 runs (sync run 2 at 500 VUs)"),
        "the starved run is named:\n{md}"
    );
    for (key, value) in [("PostgreSQL", "15.0"), ("k6", "1.1.0"), ("Cores", "2")] {
        assert!(md.contains(&format!("| {key} | {value} |")), "{key}:\n{md}");
    }
}

#[test]
fn an_open_model_run_that_could_not_start_every_journey_is_named() {
    let dir = fixture_copy();
    let manifest_path = dir.path().join("runs.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&read(&manifest_path)).expect("manifest");
    manifest["settings"]["arrival_rate"] = 150.into();
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");
    let summary_path = dir.path().join("raw/async/run-500-2/summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_str(&read(&summary_path)).expect("summary");
    summary["metrics"]["dropped_iterations"] = serde_json::json!({"count": 42.0, "rate": 0.7});
    std::fs::write(&summary_path, summary.to_string()).expect("write summary");

    let md = read(&harness::report::build(dir.path()).expect("build").markdown);

    assert!(
        md.contains("| Load model | open: 150 journeys started per second,"),
        "{md}"
    );
    assert!(
        md.contains("The suite did not keep up with the offered 150 journeys per second"),
        "{md}"
    );
    assert!(md.contains("(async run 2 at 500 VUs: 42)"), "{md}");
}

#[test]
fn the_sampled_checkout_traces_are_broken_down_by_hop_per_mode() {
    // The fixture's span files (raw/<mode>/traces): three checkout traces per mode in the
    // counted runs, the second and third at twice and three times the first one's times.
    let dir = fixture_copy();

    let built = harness::report::build(dir.path()).expect("build the report");

    let md = read(&built.markdown);
    let sync = "\
**Synchronous + Round Robin**: 3 checkout trace(s) from 2 counted run(s). End to end, first span to last: median 200 ms, p95 290 ms; the hops' medians add up to 170 ms (held polls aside).

| Hop | Median | P95 | In traces |
| --- | --- | --- | --- |
| gateway POST /api/carts | 4.00 ms | 5.80 ms | 100 % |
| gateway GET /api/products/{id} | 2.00 ms | 2.90 ms | 100 % |
| gateway POST /api/carts/{id}/items | 4.00 ms | 5.80 ms | 100 % |
| reservation POST /api/reservations | 8.00 ms | 11.6 ms | 100 % |
| reservation GET /internal/gateway/carts/{id} | 4.00 ms | 5.80 ms | 100 % |
| gateway GET /internal/gateway/carts/{cart_id} | 4.00 ms | 5.80 ms | 100 % |
| reservation POST /internal/inventory/holds | 4.00 ms | 5.80 ms | 100 % |
| inventory POST /internal/inventory/holds | 20.0 ms | 29.0 ms | 100 % |
| order POST /api/payments | 8.00 ms | 11.6 ms | 100 % |
| order POST /internal/reservations/{id}/begin-payment | 4.00 ms | 5.80 ms | 100 % |
| reservation POST /internal/reservations/{id}/begin-payment | 4.00 ms | 5.80 ms | 100 % |
| order POST /internal/payments/charges | 4.00 ms | 5.80 ms | 100 % |
| payment POST /internal/payments/charges | 64.0 ms | 92.8 ms | 100 % |
| order POST /internal/reservations/{id}/confirm | 4.00 ms | 5.80 ms | 100 % |
| reservation POST /internal/reservations/{id}/confirm | 4.00 ms | 5.80 ms | 100 % |
| reservation POST /internal/inventory/holds/{id}/commit | 4.00 ms | 5.80 ms | 100 % |
| inventory POST /internal/inventory/holds/{reservation_id}/commit | 24.0 ms | 34.8 ms | 100 % |
";
    assert!(
        md.contains("## Where a checkout's time goes (traces)"),
        "{md}"
    );
    assert!(
        md.contains(sync),
        "the sync breakdown is not as expected:\n{md}"
    );
    for row in [
        "| inventory receive ReservationRequested.v1 | 14.0 ms | 20.3 ms | 100 % |",
        "| payment publish PaymentSucceeded.v1 | 2.00 ms | 2.90 ms | 100 % |",
        "| inventory receive PaymentSucceeded.v1 | 12.0 ms | 12.0 ms | 33 % |",
        // A status poll the service held: marked, and kept out of the bar and the sum.
        "| reservation GET /api/reservations/{id} (held) | 68.0 ms | 98.6 ms | 100 % |",
    ] {
        assert!(md.contains(row), "{row}:\n{md}");
    }
    assert!(
        md.contains("median 302 ms, p95 438 ms"),
        "the async end to end:\n{md}"
    );
    assert!(md.contains(
        "![Where a checkout's time goes at 500 VUs (median per hop)](charts/traces-500.svg)"
    ));
    assert!(md.contains("async: 1 line(s) of its span files could not be read and were skipped"));
    assert!(md.contains("| Tracing | each journey traced with probability 0.1"));
    let chart = read(&dir.path().join("charts/traces-500.svg"));
    assert!(chart.contains("order POST /api/payments") && chart.contains("Async"));
    let html = read(&built.html);
    assert!(
        html.contains("<h2>Where a checkout's time goes (traces)</h2>"),
        "{html}"
    );
    assert!(html.contains("<tr><td>payment POST &#x2f;internal&#x2f;payments&#x2f;charges</td><td class=\"num\">64.0 ms</td><td class=\"num\">92.8 ms</td><td class=\"num\">100 %</td></tr>"), "{html}");
}

#[test]
fn a_report_without_span_files_says_nothing_about_traces() {
    // As a report made before tracing existed: no traces folder, no sample ratio.
    let dir = fixture_copy();
    let manifest_path = dir.path().join("runs.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&read(&manifest_path)).expect("manifest");
    manifest["settings"]
        .as_object_mut()
        .expect("settings")
        .remove("trace_sample_ratio");
    for suite in manifest["suites"].as_array_mut().expect("suites") {
        suite.as_object_mut().expect("suite").remove("traces_dir");
    }
    std::fs::write(&manifest_path, manifest.to_string()).expect("write manifest");

    let built = harness::report::build(dir.path()).expect("build the report");

    let md = read(&built.markdown);
    assert!(!md.contains("traces"), "{md}");
    assert!(!dir.path().join("charts/traces-500.svg").exists());
}

#[test]
fn a_closed_loop_says_so_and_names_no_dropped_journeys() {
    let dir = fixture_copy();

    let md = read(&harness::report::build(dir.path()).expect("build").markdown);

    assert!(md.contains("| Load model | closed loop:"), "{md}");
    assert!(!md.contains("did not keep up"), "{md}");
}

#[test]
fn a_mode_that_did_not_run_is_not_available() {
    let dir = fixture_copy();
    let path = dir.path().join("runs.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&read(&path)).expect("json");
    manifest["runs"]
        .as_array_mut()
        .expect("runs")
        .retain(|r| r["mode"] == "sync");
    manifest["suites"][1]["error"] = "starting the suite: async mode is not built".into();
    std::fs::write(&path, manifest.to_string()).expect("write manifest");

    let built = harness::report::build(dir.path()).expect("build the report");

    let md = read(&built.markdown);
    assert!(
        md.contains("| Avg latency | 42.0 ms (40.0–44.0) | n/a | n/a |"),
        "{md}"
    );
    assert!(md.contains("| Confirmed checkouts/s | 10.5 (10.0–11.0) | n/a | n/a |"));
    assert!(
        md.contains("the comparison could not finish: starting the suite: async mode is not built")
    );
}

#[test]
fn flashsale_report_rebuilds_the_same_self_contained_files_from_the_raw_data() {
    // In a reports dir of its own: `flashsale report` writes the index of the folder's parent.
    let reports = tempfile::tempdir().expect("temp dir");
    let dir = reports.path().join("20260101-000000-flash");
    copy_dir(&fixture(), &dir);
    let built = harness::report::build(&dir).expect("build the report");
    let (md, html) = (read(&built.markdown), read(&built.html));
    let chart = read(&dir.join("charts/rps-500.svg"));
    std::fs::remove_file(&built.markdown).expect("remove report.md");
    std::fs::remove_file(&built.html).expect("remove report.html");
    std::fs::remove_dir_all(dir.join("charts")).expect("remove charts");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .arg("report")
        .arg(&dir)
        .output()
        .expect("run flashsale report");

    assert!(
        out.status.success(),
        "flashsale report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read(&dir.join("report.md")), md);
    assert_eq!(read(&dir.join("report.html")), html);
    assert_eq!(read(&dir.join("charts/rps-500.svg")), chart);
    assert!(String::from_utf8_lossy(&out.stdout).contains("| Throughput (req/s) |"));
    let index = read(&reports.path().join("index.html"));
    assert!(
        index.contains("<a href=\"20260101-000000-flash&#x2f;report.html\">"),
        "{index}"
    );
    // Self-contained: the charts are inline and nothing is loaded from anywhere.
    assert_eq!(
        html.matches("<svg").count(),
        5,
        "four charts and the traces' bar inline"
    );
    for fetch in [" src=", " href=", "<link", "<script", "@import", "url("] {
        assert!(
            !html.contains(fetch),
            "report.html fetches something: {fetch}"
        );
    }
    assert!(html.contains("Requests per second at 500 VUs"));
}

#[test]
fn a_folder_without_a_manifest_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .arg("report")
        .arg(dir.path())
        .output()
        .expect("run flashsale report");

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("runs.json") && stderr.contains("is this a report folder?"),
        "{stderr}"
    );
}

#[test]
fn flashsale_diff_prints_the_table_or_its_json_and_exits_with_status_0() {
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
            .arg("diff")
            .args([fixture(), fixture()])
            .args(extra)
            .output()
            .expect("run flashsale diff");
        assert!(
            out.status.success(),
            "flashsale diff failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };

    let md = run(&[]);
    assert!(md.contains("Same settings."), "{md}");
    assert!(
        md.contains("| 500 | async | Confirmed checkouts/s | 5.25 (5.00–5.50) | 5.25 (5.00–5.50) | +0.0 % | within spread |"),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).expect("JSON");
    assert_eq!(json["changes"][0]["metric"], "Avg latency");
    assert_eq!(json["changes"][0]["a"]["value"], 42.0);
    assert_eq!(json["changes"][0]["verdict"], "within spread");
}
