//! A fake InfluxDB 2 that enforces the documented `/api/v2/write` contract, and a small actix
//! app wrapped in the metrics middleware.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::metrics::line::{self, Line};
use common::metrics::{Labels, Metrics, MetricsConfig};
use common::Mode;
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ORG: &str = "flashsale-org";
pub const BUCKET: &str = "flashsale";
pub const TOKEN: &str = "test-token-123";

/// What the fake InfluxDB saw.
#[derive(Default)]
pub struct Received {
    pub lines: Mutex<Vec<Line>>,
    /// Requests it refused (status, reason): a contract violation by the client.
    pub refused: Mutex<Vec<(u16, String)>>,
    /// Milliseconds to sleep before answering (an InfluxDB under pressure).
    pub delay_ms: AtomicU64,
    pub writes: AtomicU64,
}

pub struct FakeInflux {
    pub url: String,
    pub received: Arc<Received>,
}

/// `POST /api/v2/write?org=&bucket=&precision=ns` with `Authorization: Token <TOKEN>` and a
/// body of valid line protocol answers 204, as InfluxDB 2 documents; anything else 400/401/404.
async fn write(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    body: web::Bytes,
    received: web::Data<Received>,
) -> HttpResponse {
    let delay = received.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let refuse = |status: u16, reason: String| {
        received
            .refused
            .lock()
            .expect("lock")
            .push((status, reason.clone()));
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
            .json(serde_json::json!({"code": "invalid", "message": reason}))
    };
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Token {TOKEN}") {
        return refuse(401, format!("bad authorization {auth:?}"));
    }
    if query.get("org").map(String::as_str) != Some(ORG) {
        return refuse(400, format!("bad org {:?}", query.get("org")));
    }
    if query.get("bucket").map(String::as_str) != Some(BUCKET) {
        return refuse(400, format!("bad bucket {:?}", query.get("bucket")));
    }
    if query.get("precision").map(String::as_str) != Some("ns") {
        return refuse(400, format!("bad precision {:?}", query.get("precision")));
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(400, "body is not UTF-8".into());
    };
    let mut parsed = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        match line::parse(l) {
            Ok(p) => parsed.push(p),
            Err(e) => return refuse(400, format!("bad line {l:?}: {e}")),
        }
    }
    if parsed.is_empty() {
        return refuse(400, "empty body".into());
    }
    received.writes.fetch_add(1, Ordering::Relaxed);
    received.lines.lock().expect("lock").extend(parsed);
    HttpResponse::NoContent().finish()
}

pub fn spawn_influx() -> FakeInflux {
    let received = web::Data::new(Received::default());
    let data = received.clone();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(16 << 20))
            .route("/api/v2/write", web::post().to(write))
            .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    FakeInflux {
        url: format!("http://127.0.0.1:{port}"),
        received: received.into_inner(),
    }
}

/// A URL where nothing listens.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn labels(run_id: &str) -> Labels {
    Labels {
        service: "inventory".into(),
        instance: "inventory-0".into(),
        mode: Mode::Sync,
        run_id: run_id.into(),
    }
}

pub fn influx_config(url: &str) -> MetricsConfig {
    MetricsConfig {
        metrics_interval_ms: 100,
        influx_url: Some(url.into()),
        influx_org: Some(ORG.into()),
        influx_bucket: Some(BUCKET.into()),
        influx_token: Some(TOKEN.into()),
        ..MetricsConfig::default()
    }
}

/// An actix app with the middleware: `GET /api/products/{id}` answers 200, `POST /boom` 500.
pub fn spawn_app(metrics: &Metrics) -> String {
    let metrics = metrics.clone();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(metrics.middleware())
            .route(
                "/api/products/{id}",
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"ok": true})) }),
            )
            .route(
                "/boom",
                web::post().to(|| async { HttpResponse::InternalServerError().finish() }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// Send `n` GETs one after the other; returns the slowest answer's time. Every answer must
/// be a 200.
pub async fn hammer(http: &reqwest::Client, base: &str, n: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let start = Instant::now();
        let res = http
            .get(format!("{base}/api/products/{i}"))
            .send()
            .await
            .expect("the app answers");
        assert_eq!(res.status(), 200);
        slowest = slowest.max(start.elapsed());
    }
    slowest
}

/// Poll `check` every 50 ms until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// Sum of the `requests` field over the `http` points of `route`.
pub fn requests_of(lines: &[Line], route: &str) -> i64 {
    lines
        .iter()
        .filter(|l| l.measurement == "http" && l.tag("route") == Some(route))
        .filter_map(|l| match l.field("requests") {
            Some(line::FieldValue::Int(n)) => Some(*n),
            _ => None,
        })
        .sum()
}
