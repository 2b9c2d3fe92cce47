//! One checkout is one trace (docs/tracing.md): a shopper whose every request carries the
//! same `traceparent`, as k6's journey sends it, yields spans in every service it crosses,
//! all of that trace, each hanging from the shopper's client span or from another of them,
//! through HTTP calls in sync mode and through the outbox and RabbitMQ in async mode.

use crate::helpers::{drained_report, spawn_suite_with, TestSuite};
use crate::shopper::{Api, Outcome};
use common::Mode;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// One span as read back from a replica's OTLP JSON lines.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    span_id: String,
    parent: String,
    start: u128,
    end: u128,
    /// `flashsale.held`: a status poll the service held.
    held: bool,
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn nanos(v: &Value) -> u128 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64().map(u128::from))
        .unwrap_or(0)
}

/// Every span of `trace_id` in the suite's trace files.
fn spans_of(t: &TestSuite, trace_id: &str) -> Vec<Span> {
    let dir = t.run_dir().join("traces");
    let mut spans = Vec::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            // A line being written may be cut: it is read again on the next pass.
            let Ok(request) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            for rs in request["resourceSpans"].as_array().into_iter().flatten() {
                let service = rs["resource"]["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|kv| kv["key"] == "service.name")
                    .map(|kv| string(&kv["value"]["stringValue"]))
                    .unwrap_or_default();
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for s in ss["spans"].as_array().into_iter().flatten() {
                        if s["traceId"] != trace_id {
                            continue;
                        }
                        spans.push(Span {
                            service: service.clone(),
                            name: string(&s["name"]),
                            span_id: string(&s["spanId"]),
                            parent: string(&s["parentSpanId"]),
                            start: nanos(&s["startTimeUnixNano"]),
                            end: nanos(&s["endTimeUnixNano"]),
                            held: s["attributes"].as_array().into_iter().flatten().any(|kv| {
                                kv["key"] == "flashsale.held" && kv["value"]["boolValue"] == true
                            }),
                        });
                    }
                }
            }
        }
    }
    spans
}

fn hops(spans: &[Span]) -> HashSet<(String, String)> {
    spans
        .iter()
        .map(|s| (s.service.clone(), s.name.clone()))
        .collect()
}

fn hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>() | 1))
        .collect()
}

/// A shopper whose every request carries `traceparent` (sampled).
fn traced_api(t: &TestSuite, trace_id: &str, client_span: &str) -> Api {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{trace_id}-{client_span}-01")
            .parse()
            .expect("header value"),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    Api {
        client,
        base: t.suite.base_url().trim_end_matches('/').to_string(),
    }
}

/// A suite tracing `ratio` of its traces, each replica to `<run_dir>/traces/<instance>.jsonl`.
async fn traced_suite(mode: Mode, ratio: f64) -> TestSuite {
    spawn_suite_with(|o| {
        o.mode = mode;
        o.trace_sample_ratio = ratio;
        // Export every 100 ms instead of every 5 s: the test reads the files live.
        o.extra_env
            .push(("OTEL_BSP_SCHEDULE_DELAY".to_string(), "100".to_string()));
    })
    .await
}

/// Every (service, span name) a confirmed checkout crosses in `mode`.
fn expected_hops(mode: Mode) -> Vec<(String, String)> {
    let mut hops: Vec<(&str, String)> = [
        ("gateway", "POST /api/auth/login"),
        ("gateway", "POST /api/carts"),
        ("gateway", "POST /api/carts/{id}/items"),
        ("reservation", "POST /api/reservations"),
        ("order", "POST /api/payments"),
        // A held status poll (below).
        ("order", "GET /api/orders/{id}"),
    ]
    .map(|(s, n)| (s, n.to_string()))
    .to_vec();
    match mode {
        Mode::Sync => hops.extend(
            [
                // The reservation reads the cart and asks inventory to hold it.
                ("reservation", "GET /internal/gateway/carts/{id}"),
                ("gateway", "GET /internal/gateway/carts/{cart_id}"),
                ("reservation", "POST /internal/inventory/holds"),
                ("inventory", "POST /internal/inventory/holds"),
                // The order service charges, then confirms.
                ("order", "POST /internal/payments/charges"),
                ("payment", "POST /internal/payments/charges"),
            ]
            .map(|(s, n)| (s, n.to_string())),
        ),
        Mode::Async => {
            for (from, event, to) in [
                ("reservation", "ReservationRequested", "inventory"),
                ("inventory", "StockReserved", "reservation"),
                ("order", "OrderPlaced", "reservation"),
                ("reservation", "ReservationBound", "payment"),
                ("payment", "PaymentSucceeded", "order"),
                ("payment", "PaymentSucceeded", "inventory"),
                ("payment", "PaymentSucceeded", "reservation"),
            ] {
                hops.extend([
                    (from, format!("outbox {event}.v1")),
                    (from, format!("publish {event}.v1")),
                    (to, format!("receive {event}.v1")),
                    (to, format!("process {event}.v1")),
                ]);
            }
        }
    }
    hops.into_iter().map(|(s, n)| (s.to_string(), n)).collect()
}

async fn one_checkout_is_one_connected_trace(mode: Mode) {
    let t = traced_suite(mode, 1.0).await;
    let trace_id = hex(16);
    let client_span = hex(8);
    let api = traced_api(&t, &trace_id, &client_span);
    let shopper = api.shopper(1).await;
    let product = t.suite.products()[0].id.to_string();
    let outcome = shopper.checkout(&product).await;
    let Outcome::Confirmed { order_id } = &outcome else {
        panic!("{outcome:?}");
    };
    // A poll that asks to be held (`Prefer: wait`), as k6's journey does: its span says so
    // (the async status URLs honour the preference).
    let held = api
        .client
        .get(format!("{}/api/orders/{order_id}", api.base))
        .bearer_auth(&shopper.token)
        .header("Prefer", "wait=1")
        .send()
        .await
        .expect("poll");
    let applied = held.headers().contains_key("preference-applied");
    assert_eq!(applied, mode == Mode::Async, "Preference-Applied in {mode}");

    let expected = expected_hops(mode);
    // Every event handled first (a loaded machine may still be consuming the sale's last
    // events when the shopper sees CONFIRMED), then the spans of all of them.
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = spans_of(&t, &trace_id);
        let seen = hops(&spans);
        if expected.iter().all(|h| seen.contains(h)) {
            break spans;
        }
        if Instant::now() > deadline {
            let mut seen: Vec<_> = seen.into_iter().collect();
            seen.sort();
            let missing: Vec<_> = expected.iter().filter(|h| !seen.contains(h)).collect();
            panic!("{mode}: hops missing from the trace: {missing:?}\nseen: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Connected: every span hangs from the shopper's client span or from another span of
    // the trace, and no span id is used twice.
    let ids: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    assert_eq!(ids.len(), spans.len(), "a span id appears twice");
    for s in &spans {
        assert!(
            s.parent == client_span || ids.contains_key(s.parent.as_str()),
            "{} {} hangs from {:?}, which is neither the shopper's span nor one of the trace's",
            s.service,
            s.name,
            s.parent
        );
        assert!(s.end >= s.start && s.start > 0, "{s:?}");
    }
    let polls: Vec<bool> = spans
        .iter()
        .filter(|s| s.name == "GET /api/orders/{id}")
        .map(|s| s.held)
        .collect();
    assert_eq!(
        polls.contains(&true),
        mode == Mode::Async,
        "held polls marked in {mode}: {polls:?}"
    );
    assert!(
        spans
            .iter()
            .filter(|s| s.held)
            .all(|s| s.name.starts_with("GET /api/")),
        "only status polls are held"
    );
    let parent_of = |s: &Span| ids.get(s.parent.as_str()).copied();
    match mode {
        Mode::Sync => {
            // A call's server span hangs from the client span that made it, in another service.
            let served = spans
                .iter()
                .find(|s| s.service == "inventory" && s.name == "POST /internal/inventory/holds")
                .expect("inventory's hold");
            let caller = parent_of(served).expect("the hold has a parent span");
            assert_eq!(
                (caller.service.as_str(), caller.name.as_str()),
                ("reservation", "POST /internal/inventory/holds")
            );
            let request = parent_of(caller).expect("the call has a parent span");
            assert_eq!(request.name, "POST /api/reservations");
            assert!(caller.start >= request.start && caller.end <= request.end);
        }
        Mode::Async => {
            // request → outbox/publish → receive → process → outbox/publish → …
            let process = spans
                .iter()
                .find(|s| s.service == "inventory" && s.name == "process ReservationRequested.v1")
                .expect("inventory's process span");
            let receive = parent_of(process).expect("process has a parent");
            assert_eq!(receive.name, "receive ReservationRequested.v1");
            assert_eq!(receive.service, "inventory");
            let publish = parent_of(receive).expect("receive has a parent");
            assert_eq!(
                (publish.service.as_str(), publish.name.as_str()),
                ("reservation", "publish ReservationRequested.v1")
            );
            let request = parent_of(publish).expect("publish has a parent");
            assert_eq!(request.name, "POST /api/reservations");
            assert!(request.end <= receive.end, "the event outlives the request");
            let reserved = spans
                .iter()
                .find(|s| s.name == "outbox StockReserved.v1")
                .expect("inventory's answer in its outbox");
            assert_eq!(
                parent_of(reserved).map(|p| p.span_id.as_str()),
                Some(process.span_id.as_str()),
                "the answer is appended under the process span"
            );
        }
    }
    t.teardown().await;
}

crate::helpers::in_both_modes!(one_checkout_is_one_connected_trace);

/// With the share at 0 a sampled `traceparent` changes nothing: no span is written and no
/// event carries a trace.
#[tokio::test]
async fn with_tracing_off_nothing_is_recorded() {
    let t = traced_suite(Mode::Async, 0.0).await;
    let api = traced_api(&t, &hex(16), &hex(8));
    let shopper = api.shopper(1).await;
    let product = t.suite.products()[0].id.to_string();
    let outcome = shopper.checkout(&product).await;
    assert!(matches!(outcome, Outcome::Confirmed { .. }), "{outcome:?}");
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    let traces = t.run_dir().join("traces");
    let written: Vec<_> = std::fs::read_dir(&traces)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        written.is_empty(),
        "trace files with tracing off: {written:?}"
    );
    let db = t.db("reservation").await;
    let row = db
        .query_one("SELECT count(*), count(traceparent) FROM outbox", &[])
        .await
        .expect("outbox");
    let (events, traced): (i64, i64) = (row.get(0), row.get(1));
    assert!(events > 0, "the checkout appended events");
    assert_eq!(traced, 0, "events stored a trace with tracing off");
    t.teardown().await;
}
