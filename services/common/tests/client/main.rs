//! `ServiceClient` over real HTTP: a front service with the budget middleware calls a back
//! service, the way one replica calls another through nginx.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common::client::ServiceClient;
use common::config::CommonConfig;
use common::deadline::BUDGET_HEADER;
use common::ApiError;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// The back service: `/internal/budget` answers the budget it was given, `/internal/slow`
/// answers after 3 s.
fn back() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/internal/budget",
                web::get().to(|req: HttpRequest| async move {
                    let budget = req
                        .headers()
                        .get(BUDGET_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    HttpResponse::Ok().json(serde_json::json!({ "budget_ms": budget }))
                }),
            )
            .route(
                "/internal/slow",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    HttpResponse::Ok().json(serde_json::json!({ "budget_ms": null }))
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    url
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Budget {
    budget_ms: Option<u64>,
}

/// The front service: `/front/{path}` calls the back service's `/internal/{path}` and answers
/// what it got, or the error the call ended with.
fn front(back_url: &str) -> String {
    let config = CommonConfig {
        upstream_url: back_url.into(),
        internal_key: format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ),
        ..CommonConfig::default()
    };
    let client = web::Data::new(ServiceClient::new(&config).expect("client"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                common::deadline::within_budget,
            ))
            .app_data(client.clone())
            .route(
                "/front/{path}",
                web::get().to(
                    |client: web::Data<ServiceClient>, path: web::Path<String>| async move {
                        let got: Budget = client.get(&format!("/internal/{path}")).await?;
                        Ok::<_, ApiError>(HttpResponse::Ok().json(got))
                    },
                ),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    url
}

async fn call(url: &str, budget: Option<u64>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(b) = budget {
        req = req.header(BUDGET_HEADER, b.to_string());
    }
    let resp = req.send().await.expect("front answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON"))
}

#[actix_web::test]
async fn a_callee_is_given_what_is_left_of_its_callers_budget() {
    let front = front(&back());

    let (status, body) = call(&format!("{front}/front/budget"), Some(1000)).await;

    assert_eq!(status, 200, "{body}");
    let passed_on = body["budget_ms"]
        .as_u64()
        .expect("a budget reached the back");
    assert!(
        passed_on < 1000 && passed_on > 0,
        "less than the caller had: {passed_on}"
    );
}

#[actix_web::test]
async fn a_call_outside_any_budget_gets_the_clients_own_timeout() {
    let front = front(&back());

    let (status, body) = call(&format!("{front}/front/budget"), None).await;

    assert_eq!(status, 200, "{body}");
    let passed_on = body["budget_ms"]
        .as_u64()
        .expect("a budget reached the back");
    let own = common::config::DEFAULT_UPSTREAM_TIMEOUT_MS;
    assert!(
        passed_on < own && passed_on > own / 2,
        "the client's own {own} ms, less the margin: {passed_on}"
    );
}

#[actix_web::test]
async fn a_call_stops_when_its_callers_budget_runs_out_not_at_its_own_timeout() {
    let front = front(&back());
    let started = Instant::now();

    let (status, body) = call(&format!("{front}/front/slow"), Some(400)).await;

    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the front waited for the slow back ({:?}) although its caller had 400 ms",
        started.elapsed()
    );
}
