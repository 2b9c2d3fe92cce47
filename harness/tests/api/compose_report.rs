//! `flashsale report --compose DIR` on a compose study's folder (the fixture comparison cut
//! into one folder per mode, as `flashsale study` leaves them, without the services' metrics
//! files) against a fake InfluxDB: the manifests merged, the services' points and Telegraf's
//! container CPU read back, the load samples' split rewritten, the report of both modes.

use crate::helpers::{copy_dir, read, report_fixture as fixture};
use harness::report::manifest::Manifest;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The study folder: `raw/<mode>/runs.json` one mode each, the async study an hour after the
/// sync one, no services' `.lp` files, and sync run 1's load samples taken inside the study's
/// container (a split that sees only k6 and the harness).
fn study() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&fixture(), dir.path());
    let whole = Manifest::load(dir.path()).expect("fixture manifest");
    std::fs::remove_file(dir.path().join("runs.json")).expect("no top-level manifest");
    for mode in ["sync", "async"] {
        let mut one = whole.clone();
        one.settings.modes = vec![mode.to_string()];
        one.suites.retain(|s| s.mode == mode);
        one.runs.retain(|r| r.mode == mode);
        if mode == "async" {
            for run in &mut one.runs {
                run.started_at += chrono::TimeDelta::hours(1);
                run.ended_at += chrono::TimeDelta::hours(1);
            }
        }
        let folder = dir.path().join("raw").join(mode);
        one.save(&folder).expect("save the mode's manifest");
        std::fs::remove_dir_all(folder.join("metrics")).expect("no metrics files");
    }
    // 00:01:01..03, inside sync run 1 (00:01:00 to 00:02:00).
    let samples: Vec<_> = (1..=3)
        .map(|s| {
            serde_json::json!({"t": 1_767_225_660 + s, "k6_cores": 1.9, "machine_busy": 0.9,
                "requests_per_sec": 1000.0, "components": {"k6": 1.9, "harness": 0.1}})
        })
        .collect();
    std::fs::write(
        dir.path().join("raw/sync/run-500-1/load.json"),
        serde_json::json!({"cores": 2, "samples": samples}).to_string(),
    )
    .expect("write load.json");
    dir
}

const ANNOTATIONS: &str = "#group,false,false,true,true,false,false,true,true,true,true,true,true\n#default,_result,,,,,,,,,,,\n";

/// The `process` points of one suite's gateway-0 at HH:01:30 (run 1) and HH:03:30 (run 2),
/// as InfluxDB answers them: one table per field, a block per `_value` type.
fn services_csv(mode: &str, run_id: &str, hour: &str, cpu: [u32; 2], rss: [u64; 2]) -> String {
    let header = ",result,table,_start,_stop,_time,_value,_field,_measurement,instance,mode,run_id,service\n";
    let row = |table: u32, minute: u32, value: String, field: &str| {
        format!(",,{table},2025-12-31T23:00:00Z,2026-01-01T03:00:00Z,2026-01-01T{hour}:0{minute}:30Z,{value},{field},process,gateway-0,{mode},{run_id},gateway\n")
    };
    format!(
        "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339Nano,double,string,string,string,string,string,string\n{ANNOTATIONS}{header}{}{}\n#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339Nano,long,string,string,string,string,string,string\n{ANNOTATIONS}{header}{}{}\n",
        row(0, 1, cpu[0].to_string(), "cpu_percent"),
        row(0, 3, cpu[1].to_string(), "cpu_percent"),
        row(1, 1, rss[0].to_string(), "rss_bytes"),
        row(1, 3, rss[1].to_string(), "rss_bytes"),
    )
}

/// Telegraf's `cpu-total` points during sync run 1, every 2 s: PostgreSQL, two gateway
/// replicas, the study's container and InfluxDB.
fn containers_csv() -> String {
    let mut csv = String::from(
        "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339Nano,double,string,string,string,string,string\n\
#group,false,false,true,true,false,false,true,true,true,true,true\n\
#default,_result,,,,,,,,,,\n\
,result,table,_start,_stop,_time,_value,_field,_measurement,com.docker.compose.service,container_name,cpu\n",
    );
    let containers = [
        ("postgres", "flashsale-postgres-1", [80, 100]),
        ("gateway", "flashsale-gateway-1", [30, 30]),
        ("gateway", "flashsale-gateway-2", [20, 20]),
        ("study", "flashsale-study-run-1", [50, 50]),
        ("influxdb", "flashsale-influxdb-1", [10, 10]),
    ];
    for (table, (service, name, values)) in containers.iter().enumerate() {
        for (second, value) in ["01.5", "03.5"].iter().zip(values) {
            csv.push_str(&format!(",,{table},2025-12-31T23:59:30Z,2026-01-01T00:04:30Z,2026-01-01T00:01:{second}Z,{value},usage_percent,docker_container_cpu,{service},{name},cpu-total\n"));
        }
    }
    csv + "\n"
}

/// A fake InfluxDB answering the study's queries; every Flux query it was sent.
async fn fake_influx() -> (String, Arc<Mutex<Vec<String>>>) {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let queries = Arc::new(Mutex::new(Vec::new()));
    let seen = queries.clone();
    let server = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().route(
            "/api/v2/query",
            web::post().to(
                move |req: HttpRequest, body: web::Json<serde_json::Value>| {
                    let seen = seen.clone();
                    async move {
                        let token = req.headers().get("authorization");
                        if token.and_then(|t| t.to_str().ok()) != Some("Token study-token")
                            || req.query_string() != "org=flashsale"
                        {
                            return HttpResponse::Unauthorized().body(
                                r#"{"code":"unauthorized","message":"unauthorized access"}"#,
                            );
                        }
                        let flux = body["query"].as_str().unwrap_or_default().to_string();
                        seen.lock().expect("queries").push(flux.clone());
                        let csv = if flux.contains("docker_container_cpu") {
                            if flux.contains("range(start: 2025-12-31T23:59:30Z") {
                                containers_csv()
                            } else {
                                "\r\n".to_string()
                            }
                        } else if flux.contains(r#"r["mode"] == "sync""#) {
                            services_csv(
                                "sync",
                                "r-sync",
                                "00",
                                [80, 90],
                                [200_000_000, 210_000_000],
                            )
                        } else {
                            services_csv(
                                "async",
                                "r-async",
                                "01",
                                [120, 130],
                                [150_000_000, 160_000_000],
                            )
                        };
                        HttpResponse::Ok()
                            .content_type("text/csv; charset=utf-8")
                            .body(csv)
                    }
                },
            ),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let url = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (url, queries)
}

async fn report_compose(dir: &Path, url: &str, token: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["report", "--compose"])
        .arg(dir)
        .args(["--influx-url", url])
        .env("INFLUX_TOKEN", token)
        .env_remove("INFLUX_ORG")
        .env_remove("INFLUX_BUCKET")
        .output()
        .await
        .expect("run flashsale report --compose")
}

#[tokio::test]
async fn a_compose_study_becomes_a_report_of_both_modes() {
    let (url, queries) = fake_influx().await;
    let dir = study();

    let out = report_compose(dir.path(), &url, "study-token").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The manifests merged: both suites, every run, the runs' folders as they were.
    let merged = Manifest::load(dir.path()).expect("runs.json written");
    assert_eq!(merged.settings.modes, ["sync", "async"]);
    assert_eq!(
        merged
            .suites
            .iter()
            .map(|s| s.mode.as_str())
            .collect::<Vec<_>>(),
        ["sync", "async"]
    );
    assert_eq!(merged.runs.len(), 6);
    assert_eq!(merged.runs[3].dir, "raw/async/warmup-1");

    // Each suite's queries: its services' points by mode and run id, over its runs ± 30 s.
    let queries = queries.lock().expect("queries").clone();
    assert_eq!(queries.len(), 4, "{queries:#?}");
    assert!(queries[0].starts_with(
        "from(bucket: \"flashsale\")\n  |> range(start: 2025-12-31T23:59:30Z, stop: 2026-01-01T00:04:30Z)"
    ), "{}", queries[0]);
    assert!(
        queries[0].contains(r#"r["mode"] == "sync""#)
            && queries[0].contains(r#"r["run_id"] == "r-sync""#)
            && queries[0].contains(r#"r._measurement == "process""#),
        "{}",
        queries[0]
    );
    assert!(
        queries[2].contains(r#"r["run_id"] == "r-async""#),
        "{}",
        queries[2]
    );
    assert!(
        queries[1].contains(r#"r._measurement == "docker_container_cpu""#)
            && queries[1].contains(r#"r["cpu"] == "cpu-total""#)
            && queries[1].contains(r#"r._field == "usage_percent""#),
        "{}",
        queries[1]
    );

    // The services' points as the replicas would have written them.
    let lp = read(&dir.path().join("raw/sync/metrics/influx.lp"));
    assert_eq!(
        lp,
        "process,instance=gateway-0,mode=sync,run_id=r-sync,service=gateway cpu_percent=80,rss_bytes=200000000i 1767225690000000000\n\
process,instance=gateway-0,mode=sync,run_id=r-sync,service=gateway cpu_percent=90,rss_bytes=210000000i 1767225810000000000\n"
    );
    let containers = read(&dir.path().join("raw/sync/metrics/containers.lp"));
    assert_eq!(containers.lines().count(), 10, "{containers}");
    assert!(read(&dir.path().join("raw/async/metrics/containers.lp")).is_empty());

    // Sync run 1's split is the containers' (100 % = one core); samples no container point is
    // near, and every async sample (no container points at all), have none.
    let load: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("raw/sync/run-500-1/load.json")))
            .expect("load.json");
    let split = |i: usize| load["samples"][i]["components"].clone();
    assert_eq!(
        split(0),
        serde_json::json!({"PostgreSQL": 0.8, "service replicas": 0.5, "k6": 0.5, "other": 0.1})
    );
    assert_eq!(split(1)["PostgreSQL"], 1.0);
    assert_eq!(
        load["samples"][1]["k6_cores"], 1.9,
        "only the split changes"
    );
    for run in ["raw/sync/run-500-2", "raw/async/run-500-1"] {
        let load: serde_json::Value =
            serde_json::from_str(&read(&dir.path().join(run).join("load.json"))).expect("load");
        let samples = load["samples"].as_array().expect("samples");
        assert!(!samples.is_empty(), "{run}");
        assert!(
            samples
                .iter()
                .all(|s| s["components"] == serde_json::json!({})),
            "{run}: {load}"
        );
    }
    assert!(
        stdout.contains("async: no container CPU from Telegraf in the runs' windows"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sync: 3 of 6 load samples had no container point near them"),
        "{stdout}"
    );

    // The report: both modes, their services' CPU and memory from InfluxDB.
    let md = read(&dir.path().join("report.md"));
    for row in [
        "| Metric | Synchronous + Round Robin | Asynchronous + Least connections | Winner |",
        "| CPU usage (services, % of one core) | 85.0 % (80.0–90.0) | 125 % (120–130) | Sync (-32 %) |",
        "| Memory usage (services, RSS) | 205 MB (200–210) | 155 MB (150–160) | Async (-24 %) |",
        "| PostgreSQL | 93.3 ms |",
    ] {
        assert!(md.contains(row), "no {row:?} in\n{md}");
    }
}

#[tokio::test]
async fn a_refused_token_stops_before_anything_is_rewritten() {
    let (url, _) = fake_influx().await;
    let dir = study();
    let before = read(&dir.path().join("raw/sync/run-500-1/load.json"));

    let out = report_compose(dir.path(), &url, "wrong-token").await;

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "InfluxDB at {url}/api/v2/query (org flashsale) answered 401"
        )) && stderr.contains("unauthorized access (unauthorized)"),
        "{stderr}"
    );
    assert_eq!(
        read(&dir.path().join("raw/sync/run-500-1/load.json")),
        before
    );
    assert!(!dir.path().join("report.md").exists());
}
