use crate::helpers::{assert_error, connect, spawn_app, spawn_app_with, Setup};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn the_product_list_is_sorted_by_name_with_availability_from_the_inventory() {
    let app = spawn_app().await;
    let token = app.token(app.alice());

    let resp = app.get("/api/products", Some(&token)).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    let expected: Vec<Value> = ["Earbuds", "Phone", "Smartwatch"]
        .into_iter()
        .map(|name| {
            let p = app.product(name);
            json!({
                "id": p.id,
                "name": p.name,
                "price_cents": p.price_cents,
                // The phone is not stocked by the inventory: nothing is available.
                "available": p.stock.unwrap_or(0),
            })
        })
        .collect();
    assert_eq!(body, Value::Array(expected));
}

#[tokio::test]
async fn one_product_is_shown_with_its_price_and_availability() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let watch = app.product("Smartwatch");

    let resp = app
        .get(&format!("/api/products/{}", watch.id), Some(&token))
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"id": watch.id, "name": "Smartwatch", "price_cents": 19_900, "available": 5})
    );
}

#[tokio::test]
async fn a_product_the_inventory_does_not_stock_shows_nothing_available() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let phone = app.product("Phone");

    let resp = app
        .get(&format!("/api/products/{}", phone.id), Some(&token))
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["available"], 0);
}

#[tokio::test]
async fn an_unknown_product_is_404() {
    let app = spawn_app().await;
    let token = app.token(app.alice());

    let resp = app
        .get(&format!("/api/products/{}", Uuid::new_v4()), Some(&token))
        .await;

    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_malformed_product_id_is_400() {
    let app = spawn_app().await;
    let token = app.token(app.alice());

    let resp = app.get("/api/products/not-a-uuid", Some(&token)).await;

    assert_error(resp, StatusCode::BAD_REQUEST, "malformed_id").await;
}

async fn sell_two_watches(app: &crate::helpers::TestApp) {
    let db = connect(&format!("{}_inventory", app.prefix)).await;
    db.execute(
        "UPDATE stock SET available = available - 2, sold = sold + 2 WHERE product_id = $1",
        &[&app.product("Smartwatch").id],
    )
    .await
    .expect("update stock");
}

#[tokio::test]
async fn availability_is_served_from_the_cache_within_the_cache_period() {
    let app = spawn_app_with(Setup {
        catalog_cache_ms: 60_000,
        ..Setup::default()
    })
    .await;
    let token = app.token(app.alice());
    let path = format!("/api/products/{}", app.product("Smartwatch").id);
    let before: Value = app
        .get(&path, Some(&token))
        .await
        .json()
        .await
        .expect("JSON");

    sell_two_watches(&app).await;
    let after: Value = app
        .get(&path, Some(&token))
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(before["available"], 5);
    assert_eq!(after["available"], 5, "cached value served");
}

#[tokio::test]
async fn availability_follows_the_inventory_once_the_cache_period_is_over() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let path = format!("/api/products/{}", app.product("Smartwatch").id);
    let before: Value = app
        .get(&path, Some(&token))
        .await
        .json()
        .await
        .expect("JSON");
    let list_before: Value = app
        .get("/api/products", Some(&token))
        .await
        .json()
        .await
        .expect("JSON");

    sell_two_watches(&app).await;
    tokio::time::sleep(Duration::from_millis(app.catalog_cache_ms + 100)).await;
    let after: Value = app
        .get(&path, Some(&token))
        .await
        .json()
        .await
        .expect("JSON");
    let list_after: Value = app
        .get("/api/products", Some(&token))
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(before["available"], 5);
    assert_eq!(after["available"], 3);
    assert_eq!(list_before[2]["available"], 5);
    assert_eq!(list_after[2]["available"], 3);
}

#[tokio::test]
async fn a_product_added_after_the_list_was_read_appears_in_the_list() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let first: Value = app
        .get("/api/products", Some(&token))
        .await
        .json()
        .await
        .expect("JSON");
    let id = Uuid::new_v4();
    connect(&format!("{}_gateway", app.prefix))
        .await
        .execute(
            "INSERT INTO products (id, name, price_cents) VALUES ($1, 'Anklet', 100)",
            &[&id],
        )
        .await
        .expect("insert product");
    connect(&format!("{}_inventory", app.prefix))
        .await
        .execute(
            "INSERT INTO stock (product_id, initial, available, reserved, sold)
             VALUES ($1, 7, 7, 0, 0)",
            &[&id],
        )
        .await
        .expect("insert stock");

    tokio::time::sleep(Duration::from_millis(app.catalog_cache_ms + 100)).await;
    let second: Value = app
        .get("/api/products", Some(&token))
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(first.as_array().map(Vec::len), Some(3));
    assert_eq!(
        second[0],
        json!({"id": id, "name": "Anklet", "price_cents": 100, "available": 7})
    );
}

#[tokio::test]
async fn the_catalog_answers_503_when_the_inventory_is_unreachable() {
    let app = spawn_app_with(Setup {
        inventory: false,
        ..Setup::default()
    })
    .await;
    let token = app.token(app.alice());

    let list = app.get("/api/products", Some(&token)).await;
    let one = app
        .get(
            &format!("/api/products/{}", app.product("Smartwatch").id),
            Some(&token),
        )
        .await;

    assert_error(
        list,
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_unavailable",
    )
    .await;
    assert_error(one, StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable").await;
}
