use crate::helpers::spawn_app;
use common::auth::{now_secs, TokenKeys};
use serde_json::{json, Value};
use uuid::Uuid;

async fn assert_401(resp: reqwest::Response, code: &str) {
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], code);
}

#[tokio::test]
async fn paying_without_a_token_is_unauthorized() {
    let app = spawn_app().await;

    let resp = app
        .http
        .post(format!("{}/api/payments", app.address))
        .json(&json!({"reservation_id": Uuid::new_v4().to_string()}))
        .send()
        .await
        .expect("request sent");

    assert_401(resp, "missing_token").await;
}

#[tokio::test]
async fn a_forged_token_is_unauthorized() {
    let app = spawn_app().await;
    let forged = TokenKeys::new("not-the-suite-secret", 60)
        .issue(Uuid::new_v4())
        .expect("token");

    for req in [
        app.http.post(format!("{}/api/payments", app.address)),
        app.http
            .get(format!("{}/api/orders/{}", app.address, Uuid::new_v4())),
    ] {
        let resp = req
            .bearer_auth(&forged)
            .json(&json!({"reservation_id": Uuid::new_v4().to_string()}))
            .send()
            .await
            .expect("request sent");
        assert_401(resp, "invalid_token").await;
    }
}

#[tokio::test]
async fn an_expired_token_is_unauthorized() {
    let app = spawn_app().await;
    let expired = app
        .keys
        .issue_with_exp(Uuid::new_v4(), now_secs() - 5)
        .expect("token");

    let resp = app
        .http
        .get(format!("{}/api/orders/{}", app.address, Uuid::new_v4()))
        .bearer_auth(&expired)
        .send()
        .await
        .expect("request sent");

    assert_401(resp, "token_expired").await;
}

#[tokio::test]
async fn reading_an_order_without_a_token_is_unauthorized() {
    let app = spawn_app().await;

    let resp = app
        .http
        .get(format!("{}/api/orders/{}", app.address, Uuid::new_v4()))
        .send()
        .await
        .expect("request sent");

    assert_401(resp, "missing_token").await;
}
