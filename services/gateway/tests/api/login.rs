use crate::helpers::{assert_error, spawn_app, spawn_app_with, Setup};
use gateway::cache::logins::LoginLimits;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn login_with_the_right_password_returns_a_token_for_the_user() {
    let app = spawn_app().await;
    let alice = app.alice();

    let resp = app.login(&alice.username, &alice.password).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["user_id"], alice.id.to_string());
    let token = body["token"].as_str().expect("token");
    let claims = app.keys.verify(token).expect("a valid token");
    assert_eq!(claims.sub, alice.id);
    // The token opens the authenticated routes.
    let products = app.get("/api/products", Some(token)).await;
    assert_eq!(products.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_with_a_wrong_password_is_401_invalid_credentials() {
    let app = spawn_app().await;

    let resp = app.login(&app.alice().username, "not-her-password").await;

    assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn login_of_an_unknown_user_gets_the_same_answer_as_a_wrong_password() {
    let app = spawn_app().await;

    let unknown = app.login("mallory", "whatever").await;
    let wrong = app.login(&app.alice().username, "whatever").await;

    let unknown = assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let wrong = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn login_refuses_values_of_the_wrong_type_or_length_with_422() {
    let app = spawn_app().await;
    let cases = [
        (json!({"username": 42, "password": "x"}), "invalid_body"),
        (
            json!({"username": "alice", "password": null}),
            "invalid_body",
        ),
        (json!({"username": "alice"}), "invalid_body"),
        (json!({"password": "x"}), "invalid_body"),
        (json!(["alice", "x"]), "invalid_body"),
        (json!({"username": "", "password": "x"}), "invalid_username"),
        (
            json!({"username": "a".repeat(65), "password": "x"}),
            "invalid_username",
        ),
        (
            json!({"username": "alice", "password": ""}),
            "invalid_password",
        ),
        (
            json!({"username": "alice", "password": "p".repeat(257)}),
            "invalid_password",
        ),
    ];
    for (body, code) in cases {
        let resp = app.post_json("/api/auth/login", None, &body).await;

        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
}

#[tokio::test]
async fn login_with_a_malformed_or_non_json_body_is_refused() {
    let app = spawn_app().await;

    let malformed = app
        .post_raw(
            "/api/auth/login",
            None,
            "application/json",
            "{\"username\": ",
        )
        .await;
    let not_json = app
        .post_raw("/api/auth/login", None, "text/plain", "username=alice")
        .await;

    assert_error(malformed, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_error(
        not_json,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

fn tight(per_user: u64, per_client: u64) -> Setup {
    Setup {
        login_limits: Some(LoginLimits {
            per_user,
            per_client,
            window_secs: 60,
        }),
        ..Setup::default()
    }
}

async fn retry_after(resp: reqwest::Response, code: &str) -> u64 {
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a Retry-After in seconds");
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, code).await;
    retry
}

#[tokio::test]
async fn a_username_with_too_many_failures_is_refused_429_even_with_the_right_password() {
    let app = spawn_app_with(tight(3, 1_000)).await;
    let (alice, bob) = (app.alice(), &app.users[1]);
    for i in 0..3 {
        // Each from another address: the username's own count refuses the fourth.
        let resp = app
            .login_from(&format!("10.0.0.{i}"), &alice.username, "guess")
            .await;
        assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let refused = app
        .login_from("10.0.0.9", &alice.username, &alice.password)
        .await;
    let retry = retry_after(refused, "too_many_attempts").await;
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // The limit is the username's, whatever its case, and nobody else's.
    let upper = app
        .login_from("10.0.0.9", &alice.username.to_uppercase(), &alice.password)
        .await;
    retry_after(upper, "too_many_attempts").await;
    let resp = app
        .login_from("10.0.0.9", &bob.username, &bob.password)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_client_with_too_many_failures_is_refused_429_and_successes_never_count() {
    let app = spawn_app_with(tight(1_000, 3)).await;
    let alice = app.alice();
    // Successes from one address (a load generator, a proxy) are never refused.
    for _ in 0..5 {
        let resp = app
            .login_from("192.0.2.1", &alice.username, &alice.password)
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    for name in ["mallory", "trent", "eve"] {
        let resp = app.login_from("192.0.2.1", name, "guess").await;
        assert_error(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let refused = app
        .login_from("192.0.2.1", &alice.username, &alice.password)
        .await;
    retry_after(refused, "too_many_attempts").await;
    // Another address is another client.
    let resp = app
        .login_from("192.0.2.2", &alice.username, &alice.password)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}
