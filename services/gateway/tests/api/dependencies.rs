//! A dependency going away is a 503 with the JSON error body, answered promptly; when it
//! returns, the gateway works again without a restart.

use crate::helpers::{assert_error, connect, spawn_app, spawn_app_with, PrivateRedis, Setup};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn carts_answer_503_while_redis_is_away_and_work_again_when_it_returns() {
    let mut redis = PrivateRedis::start().await;
    let app = spawn_app_with(Setup {
        inventory: false,
        redis_url: redis.url(),
        ..Setup::default()
    })
    .await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let watch = app.product("Smartwatch").id;

    redis.stop();
    let started = Instant::now();
    let create = app.post_json("/api/carts", Some(&token), &json!({})).await;
    let get = app
        .get(&format!("/api/carts/{cart_id}"), Some(&token))
        .await;
    let add = app.add_item(&token, &cart_id, watch, 1).await;
    let ready = app.get("/readyz", None).await;
    let elapsed = started.elapsed();

    assert_error(create, StatusCode::SERVICE_UNAVAILABLE, "cache_unavailable").await;
    assert_error(get, StatusCode::SERVICE_UNAVAILABLE, "cache_unavailable").await;
    assert_error(add, StatusCode::SERVICE_UNAVAILABLE, "cache_unavailable").await;
    assert_error(ready, StatusCode::SERVICE_UNAVAILABLE, "not_ready").await;
    assert!(elapsed < Duration::from_secs(8), "answers took {elapsed:?}");

    // Redis comes back empty (no persistence): a new cart works, without restarting the app.
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        let resp = app.post_json("/api/carts", Some(&token), &json!({})).await;
        if resp.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break resp;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(resp.status(), StatusCode::CREATED);
    let cart: serde_json::Value = resp.json().await.expect("JSON");
    let new_id = cart["id"].as_str().expect("id");
    let added = app.add_item(&token, new_id, watch, 1).await;
    assert_eq!(added.status(), StatusCode::OK);
    assert_eq!(
        app.cart(&token, new_id).await["items"],
        json!([{"product_id": watch, "quantity": 1}])
    );
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_answers_503_while_the_database_refuses_connections_and_recovers() {
    let app = spawn_app().await;
    let alice = app.alice();
    let database = format!("{}_gateway", app.prefix);
    let admin = connect("postgres").await;
    // Warm the pool so the test also covers connections that break under the gateway.
    assert_eq!(
        app.login(&alice.username, &alice.password).await.status(),
        StatusCode::OK
    );

    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}';"
        ))
        .await
        .expect("close the database");
    let started = Instant::now();
    let resp = app.login(&alice.username, &alice.password).await;
    let elapsed = started.elapsed();

    assert_error(
        resp,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    assert!(elapsed < Duration::from_secs(8), "answer took {elapsed:?}");

    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS true"
        ))
        .await
        .expect("reopen the database");
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        let resp = app.login(&alice.username, &alice.password).await;
        if resp.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break resp;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_catalog_keeps_working_while_redis_is_away() {
    let mut redis = PrivateRedis::start().await;
    let app = spawn_app_with(Setup {
        redis_url: redis.url(),
        ..Setup::default()
    })
    .await;
    let token = app.token(app.alice());

    redis.stop();
    let resp = app.get("/api/products", Some(&token)).await;

    // The availability cache is an optimisation: without it the inventory is asked directly.
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(body[2]["available"], 5);
}
