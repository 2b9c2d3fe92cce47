use crate::helpers::{assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn healthz_and_readyz_answer_ok_when_database_and_redis_are_up() {
    let app = spawn_app().await;

    let health = app.get("/healthz", None).await;
    let ready = app.get("/readyz", None).await;

    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;

    let resp = app.get("/api/nothing-here", None).await;

    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_known_path_with_another_method_is_a_json_405() {
    let app = spawn_app().await;

    let resp = app.get("/api/auth/login", None).await;

    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}
