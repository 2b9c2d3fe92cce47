use crate::helpers::{assert_error, spawn_app, TestApp};
use common::auth::{now_secs, TokenKeys};
use reqwest::StatusCode;
use serde_json::json;

/// Every authenticated route, called with `auth` as the Authorization header (or none).
async fn call_every_route(
    app: &TestApp,
    cart_id: &str,
    auth: Option<&str>,
) -> Vec<reqwest::Response> {
    let product = app.product("Smartwatch").id;
    let mut answers = Vec::new();
    let requests = [
        app.client.get(app.url("/api/products")),
        app.client.get(app.url(&format!("/api/products/{product}"))),
        app.client.post(app.url("/api/carts")).json(&json!({})),
        app.client.get(app.url(&format!("/api/carts/{cart_id}"))),
        app.client
            .post(app.url(&format!("/api/carts/{cart_id}/items")))
            .json(&json!({"product_id": product, "quantity": 1})),
    ];
    for mut req in requests {
        if let Some(auth) = auth {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        answers.push(req.send().await.expect("send"));
    }
    answers
}

async fn assert_every_route_refuses(app: &TestApp, auth: Option<&str>, code: &str) {
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;

    let answers = call_every_route(app, &cart_id, auth).await;

    for resp in answers {
        assert_error(resp, StatusCode::UNAUTHORIZED, code).await;
    }
    let cart = app.cart(&token, &cart_id).await;
    assert_eq!(cart["items"], json!([]), "the refused add changed nothing");
}

#[tokio::test]
async fn a_request_without_a_token_is_401_missing_token() {
    let app = spawn_app().await;
    assert_every_route_refuses(&app, None, "missing_token").await;
}

#[tokio::test]
async fn a_malformed_token_is_401_invalid_token() {
    let app = spawn_app().await;
    assert_every_route_refuses(&app, Some("Bearer not.a.jwt"), "invalid_token").await;
    assert_every_route_refuses(&app, Some("Basic YWxpY2U6cHc="), "invalid_token").await;
}

#[tokio::test]
async fn an_expired_token_is_401_token_expired() {
    let app = spawn_app().await;
    let expired = app
        .keys
        .issue_with_exp(app.alice().id, now_secs() - 10)
        .expect("issue");
    assert_every_route_refuses(&app, Some(&format!("Bearer {expired}")), "token_expired").await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401_invalid_token() {
    let app = spawn_app().await;
    let forged = TokenKeys::new("not-the-secret", 600)
        .issue(app.alice().id)
        .expect("issue");
    assert_every_route_refuses(&app, Some(&format!("Bearer {forged}")), "invalid_token").await;
}
