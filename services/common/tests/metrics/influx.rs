//! The InfluxDB 2 write path: the contract, InfluxDB away, InfluxDB slow.

use crate::helpers::*;
use common::metrics::line::FieldValue;
use common::metrics::{Metrics, MetricsConfig};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Far above a loopback request to a trivial handler (well under 10 ms in a debug build; the
/// bound leaves room for a machine running other test suites at once), and below the 3 s a
/// request would wait if it waited for the slow InfluxDB's write timeout.
const NOT_SLOWED: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn points_reach_influxdb_through_the_documented_write_api() {
    // Arrange
    let influx = spawn_influx();
    let metrics = Metrics::new(influx_config(&influx.url), labels("r-contract")).expect("metrics");
    let cancel = CancellationToken::new();
    let task = metrics.spawn(cancel.clone());
    let base = spawn_app(&metrics);
    let http = reqwest::Client::new();

    // Act
    hammer(&http, &base, 30).await;
    let res = http
        .post(format!("{base}/boom"))
        .send()
        .await
        .expect("answer");
    assert_eq!(res.status(), 500);
    let received = influx.received.clone();
    let arrived = eventually(Duration::from_secs(20), || {
        let lines = received.lines.lock().expect("lock");
        requests_of(&lines, "/api/products/{id}") >= 30 && requests_of(&lines, "/boom") >= 1
    })
    .await;
    cancel.cancel();
    task.await.expect("the metrics task ends cleanly");

    // Assert
    let refused = influx.received.refused.lock().expect("lock").clone();
    assert!(
        refused.is_empty(),
        "the fake InfluxDB refused writes: {refused:?}"
    );
    assert!(arrived, "the request points never arrived");
    let lines = influx.received.lines.lock().expect("lock").clone();
    assert_eq!(requests_of(&lines, "/api/products/{id}"), 30);
    for l in &lines {
        assert_eq!(l.tag("service"), Some("inventory"));
        assert_eq!(l.tag("instance"), Some("inventory-0"));
        assert_eq!(l.tag("mode"), Some("sync"));
        assert_eq!(l.tag("run_id"), Some("r-contract"));
        assert!(l
            .timestamp_ns
            .is_some_and(|t| t > 1_600_000_000_000_000_000));
    }
    let boom = lines
        .iter()
        .find(|l| l.measurement == "http" && l.tag("route") == Some("/boom"))
        .expect("a point for /boom");
    assert_eq!(boom.tag("method"), Some("POST"));
    assert_eq!(boom.field("errors"), Some(&FieldValue::Int(1)));
    let process = lines
        .iter()
        .find(|l| l.measurement == "process")
        .expect("a process point");
    assert!(matches!(process.field("rss_bytes"), Some(FieldValue::Int(n)) if *n > 1 << 20));
    assert!(matches!(
        process.field("cpu_percent"),
        Some(FieldValue::Float(_))
    ));
    assert_eq!(process.field("dropped_points"), Some(&FieldValue::Int(0)));
}

#[tokio::test]
async fn influxdb_down_neither_slows_requests_nor_stops_the_service() {
    // Arrange: nothing listens at INFLUX_URL, and the buffer holds 5 points.
    let config = MetricsConfig {
        metrics_interval_ms: 50,
        metrics_buffer: 5,
        ..influx_config(&dead_url())
    };
    let metrics = Metrics::new(config, labels("r-down")).expect("metrics");
    let cancel = CancellationToken::new();
    let task = metrics.spawn(cancel.clone());
    let base = spawn_app(&metrics);
    let http = reqwest::Client::new();

    // Act: serve requests for about two seconds while every write fails.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        slowest = slowest.max(hammer(&http, &base, 10).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert!(slowest < NOT_SLOWED, "a request took {slowest:?}");
    assert!(
        metrics.dropped_points() > 0,
        "nothing was counted as dropped"
    );
    assert!(!task.is_finished(), "the metrics task gave up");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the metrics task stops within its write timeout")
        .expect("and does not panic");
}

#[tokio::test]
async fn a_slow_influxdb_neither_slows_requests_nor_loses_more_than_the_buffer() {
    // Arrange: InfluxDB answers after 5 s; writes time out after 3 s.
    let influx = spawn_influx();
    influx.received.delay_ms.store(5_000, Ordering::Relaxed);
    let config = MetricsConfig {
        metrics_interval_ms: 50,
        metrics_buffer: 8,
        metrics_write_timeout_ms: 3_000,
        ..influx_config(&influx.url)
    };
    let metrics = Metrics::new(config, labels("r-slow")).expect("metrics");
    let cancel = CancellationToken::new();
    let task = metrics.spawn(cancel.clone());
    let base = spawn_app(&metrics);
    let http = reqwest::Client::new();

    // Act: load while InfluxDB is slow, then let it recover.
    let mut slowest = Duration::ZERO;
    for _ in 0..35 {
        slowest = slowest.max(hammer(&http, &base, 10).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dropped_while_slow = metrics.dropped_points();
    influx.received.delay_ms.store(0, Ordering::Relaxed);
    let received = influx.received.clone();
    let recovered = eventually(Duration::from_secs(20), || {
        let lines = received.lines.lock().expect("lock");
        lines.iter().any(|l| {
            l.measurement == "process"
                && matches!(l.field("dropped_points"), Some(FieldValue::Int(n)) if *n > 0)
        })
    })
    .await;
    cancel.cancel();
    task.await.expect("the metrics task ends cleanly");

    // Assert
    assert!(slowest < NOT_SLOWED, "a request took {slowest:?}");
    assert!(dropped_while_slow > 0, "nothing was counted as dropped");
    assert!(
        recovered,
        "after InfluxDB recovered, no point reported the dropped count"
    );
    let refused = influx.received.refused.lock().expect("lock").clone();
    assert!(refused.is_empty(), "refused: {refused:?}");
}

#[tokio::test]
async fn without_a_sink_metrics_are_off_and_requests_pass_through() {
    let metrics = Metrics::new(MetricsConfig::default(), labels("r-off")).expect("metrics");
    assert!(!metrics.is_on());
    let task = metrics.spawn(CancellationToken::new());
    let base = spawn_app(&metrics);
    hammer(&reqwest::Client::new(), &base, 3).await;
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("an off metrics task ends at once")
        .expect("no panic");
}

#[tokio::test]
async fn a_partial_influx_configuration_falls_back_to_the_file() {
    let dir = std::env::temp_dir().join(format!("metrics-partial-{}", uuid::Uuid::new_v4()));
    let file = dir.join("x.lp");
    let config = MetricsConfig {
        influx_token: None,
        metrics_file: Some(file.to_string_lossy().into()),
        ..influx_config("http://127.0.0.1:1")
    };
    let metrics = Metrics::new(config, labels("r-partial")).expect("metrics");
    let cancel = CancellationToken::new();
    let task = metrics.spawn(cancel.clone());
    tokio::time::sleep(Duration::from_millis(250)).await;
    cancel.cancel();
    task.await.expect("ends");
    let text = std::fs::read_to_string(&file).expect("the file sink wrote");
    assert!(text.lines().any(|l| l.starts_with("process,")));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_malformed_influx_url_fails_at_start_instead_of_panicking() {
    let result = Metrics::new(influx_config("not a url"), labels("r-bad"));
    assert!(result.is_err());
}
