//! Every replica of a suite writes its metrics to `<run_dir>/metrics/<instance>.lp`, and the
//! report's reader (harness::report::lineproto) reads them back with the schema's names.

use crate::helpers::{in_both_modes, spawn_suite_with};
use crate::shopper::Api;
use common::metrics::schema::{self, COMMON_TAGS};
use common::Mode;
use harness::report::lineproto;
use std::time::Duration;

async fn every_replica_writes_metrics_the_report_reads(mode: Mode) {
    // Arrange
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.extra_env.push(("RUN_ID".into(), "metrics-test".into()));
        o.extra_env
            .push(("METRICS_INTERVAL_MS".into(), "200".into()));
    })
    .await;
    let api = Api::new(t.suite.base_url());

    // Act: a login and a catalog read, then a few intervals, then a draining stop.
    let shopper = api.shopper(1).await;
    let (status, _, _) = shopper.get("/api/products").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut t = t;
    t.suite.stop().await.expect("stop the suite");

    // Assert
    let dir = t.run_dir().join("metrics");
    for p in &t.suite.state().processes {
        assert!(
            dir.join(format!("{}.lp", p.instance)).is_file(),
            "{} wrote no metrics file",
            p.instance
        );
    }
    let points = lineproto::read_dir(&dir).expect("the report's reader reads every file");
    assert!(!points.is_empty());
    for point in &points {
        let m = schema::measurement(&point.measurement)
            .unwrap_or_else(|| panic!("unknown measurement {point:?}"));
        for tag in COMMON_TAGS {
            assert!(point.tag(tag).is_some(), "{point:?} lacks {tag}");
        }
        assert_eq!(point.tag("mode"), Some(mode.as_str()));
        assert_eq!(point.tag("run_id"), Some("metrics-test"));
        for field in point.fields.keys() {
            assert!(
                m.fields.contains(&field.as_str()),
                "{point:?}: field {field}"
            );
        }
    }
    for service in harness::SERVICES {
        assert!(
            points.iter().any(|p| p.measurement == schema::PROCESS
                && p.tag("service") == Some(service)
                && p.number(schema::RSS_BYTES).is_some_and(|v| v > 0.0)),
            "no process point of {service}"
        );
    }
    let login = points
        .iter()
        .filter(|p| {
            p.measurement == schema::HTTP
                && p.tag("route") == Some("/api/auth/login")
                && p.tag("method") == Some("POST")
        })
        .filter_map(|p| p.number(schema::REQUESTS))
        .sum::<f64>();
    assert!(login >= 1.0, "the login is not counted");
    if mode == Mode::Async {
        let prefix = &t.suite.state().db_prefix;
        for service in ["inventory", "order"] {
            let queue = format!("{prefix}.{service}");
            assert!(
                points.iter().any(|p| p.measurement == schema::QUEUE
                    && p.tag("queue") == Some(queue.as_str())
                    && p.number(schema::READY).is_some()),
                "no depth of queue {queue}"
            );
        }
    }
    t.teardown().await;
}

in_both_modes!(every_replica_writes_metrics_the_report_reads);
