use crate::helpers::{assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn the_internal_cart_read_gives_lines_with_unit_prices() {
    let app = spawn_app().await;
    let alice = app.alice();
    let token = app.token(alice);
    let cart_id = app.create_cart(&token).await;
    let watch = app.product("Smartwatch");
    let buds = app.product("Earbuds");
    app.add_item(&token, &cart_id, watch.id, 1).await;
    app.add_item(&token, &cart_id, buds.id, 2).await;

    let resp = app
        .internal_get(
            &format!("/internal/gateway/carts/{cart_id}?user_id={}", alice.id),
            Some(&app.internal_key),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    let mut lines = vec![
        json!({"product_id": watch.id, "quantity": 1, "price_cents": watch.price_cents}),
        json!({"product_id": buds.id, "quantity": 2, "price_cents": buds.price_cents}),
    ];
    lines.sort_by_key(|l| l["product_id"].as_str().map(str::to_string));
    assert_eq!(
        body,
        json!({"id": cart_id, "user_id": alice.id, "items": lines})
    );
}

#[tokio::test]
async fn the_internal_cart_read_is_404_without_the_internal_key() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let path = format!(
        "/internal/gateway/carts/{cart_id}?user_id={}",
        app.alice().id
    );

    let none = app.internal_get(&path, None).await;
    let wrong = app.internal_get(&path, Some("not-the-key")).await;
    // A user's bearer token is no substitute for the internal key.
    let bearer = app.get(&path, Some(&token)).await;

    assert_error(none, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(wrong, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(bearer, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_internal_cart_read_is_404_for_another_users_or_a_missing_cart() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;

    let foreign = app
        .internal_get(
            &format!("/internal/gateway/carts/{cart_id}?user_id={}", app.bob().id),
            Some(&app.internal_key),
        )
        .await;
    let missing = app
        .internal_get(
            &format!(
                "/internal/gateway/carts/{}?user_id={}",
                Uuid::new_v4(),
                app.alice().id
            ),
            Some(&app.internal_key),
        )
        .await;

    assert_error(foreign, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_internal_cart_read_refuses_malformed_ids_with_400() {
    let app = spawn_app().await;
    let key = Some(app.internal_key.as_str());
    let alice = app.alice().id;

    let bad_cart = app
        .internal_get(
            &format!("/internal/gateway/carts/nope?user_id={alice}"),
            key,
        )
        .await;
    let bad_user = app
        .internal_get(
            &format!("/internal/gateway/carts/{}?user_id=nope", Uuid::new_v4()),
            key,
        )
        .await;
    let no_user = app
        .internal_get(&format!("/internal/gateway/carts/{}", Uuid::new_v4()), key)
        .await;

    assert_error(bad_cart, StatusCode::BAD_REQUEST, "malformed_id").await;
    assert_error(bad_user, StatusCode::BAD_REQUEST, "malformed_id").await;
    assert_error(no_user, StatusCode::BAD_REQUEST, "malformed_query").await;
}
