//! The native default: points appended as line protocol to `METRICS_FILE`.

use crate::helpers::*;
use common::metrics::line::{self, FieldValue};
use common::metrics::schema::{self, COMMON_TAGS};
use common::metrics::{Metrics, MetricsConfig};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Every line parses, and names only what docs/metrics.md (through `schema`) lists.
pub fn assert_schema(text: &str) -> Vec<line::Line> {
    let mut out = Vec::new();
    for l in text.lines() {
        let parsed = line::parse(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"));
        let m = schema::measurement(&parsed.measurement)
            .unwrap_or_else(|| panic!("unknown measurement in {l:?}"));
        for tag in COMMON_TAGS {
            assert!(parsed.tag(tag).is_some(), "{l:?} lacks tag {tag}");
        }
        for (key, _) in &parsed.tags {
            assert!(
                COMMON_TAGS.contains(&key.as_str()) || m.tags.contains(&key.as_str()),
                "{l:?}: tag {key} is not in the schema"
            );
        }
        for tag in m.tags {
            assert!(parsed.tag(tag).is_some(), "{l:?} lacks tag {tag}");
        }
        for (key, _) in &parsed.fields {
            assert!(
                m.fields.contains(&key.as_str()),
                "{l:?}: field {key} is not in the schema"
            );
        }
        out.push(parsed);
    }
    out
}

#[tokio::test]
async fn the_file_sink_appends_parseable_line_protocol_with_the_schema_names() {
    // Arrange
    let dir = std::env::temp_dir().join(format!("metrics-file-{}", uuid::Uuid::new_v4()));
    let file = dir.join("metrics").join("inventory-0.lp");
    let config = MetricsConfig {
        metrics_interval_ms: 100,
        metrics_file: Some(file.to_string_lossy().into()),
        ..MetricsConfig::default()
    };
    let metrics = Metrics::new(config, labels("r-file")).expect("metrics");
    let cancel = CancellationToken::new();
    let task = metrics.spawn(cancel.clone());
    let base = spawn_app(&metrics);
    let http = reqwest::Client::new();

    // Act: requests over a few intervals; the last ones just before the stop.
    hammer(&http, &base, 20).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    hammer(&http, &base, 5).await;
    cancel.cancel();
    task.await.expect("the metrics task ends cleanly");

    // Assert: nothing lost at the stop, every line valid.
    let text = std::fs::read_to_string(&file).expect("the metrics file exists");
    let lines = assert_schema(&text);
    assert_eq!(requests_of(&lines, "/api/products/{id}"), 25);
    let processes = lines.iter().filter(|l| l.measurement == "process").count();
    assert!(
        processes >= 3,
        "{processes} process points in ~0.4 s at 100 ms"
    );
    let http_point = lines
        .iter()
        .find(|l| l.measurement == "http")
        .expect("an http point");
    assert_eq!(http_point.tag("method"), Some("GET"));
    assert_eq!(
        http_point.tag("wait"),
        Some("none"),
        "a plain request is not a held poll"
    );
    for field in ["p50_ms", "p95_ms", "max_ms"] {
        assert!(matches!(http_point.field(field), Some(FieldValue::Float(v)) if *v >= 0.0));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_restarted_replica_appends_to_its_file() {
    let dir = std::env::temp_dir().join(format!("metrics-append-{}", uuid::Uuid::new_v4()));
    let file = dir.join("inventory-0.lp");
    for run in ["first", "second"] {
        let config = MetricsConfig {
            metrics_interval_ms: 50,
            metrics_file: Some(file.to_string_lossy().into()),
            ..MetricsConfig::default()
        };
        let metrics = Metrics::new(config, labels(run)).expect("metrics");
        let cancel = CancellationToken::new();
        let task = metrics.spawn(cancel.clone());
        tokio::time::sleep(Duration::from_millis(120)).await;
        cancel.cancel();
        task.await.expect("ends");
    }
    let text = std::fs::read_to_string(&file).expect("file");
    let lines = assert_schema(&text);
    for run in ["first", "second"] {
        assert!(
            lines.iter().any(|l| l.tag("run_id") == Some(run)),
            "{run} missing"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
