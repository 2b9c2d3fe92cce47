use crate::helpers::spawn_app;
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_a_json_error() {
    let app = spawn_app().await;

    let resp = app
        .http
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "not_found");

    let resp = app
        .http
        .get(format!("{}/api/payments", app.address))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "method_not_allowed");
}
