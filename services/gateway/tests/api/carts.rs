use crate::helpers::{assert_error, spawn_app, TestApp};
use common::domain::Quantity;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn creating_a_cart_answers_201_with_an_empty_cart_and_its_location() {
    let app = spawn_app().await;
    let token = app.token(app.alice());

    let resp = app.post_json("/api/carts", Some(&token), &json!({})).await;

    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_string();
    let body: Value = resp.json().await.expect("JSON");
    let id = body["id"].as_str().expect("id");
    assert!(Uuid::try_parse(id).is_ok());
    assert_eq!(body["items"], json!([]));
    assert_eq!(location, format!("/api/carts/{id}"));
    assert_eq!(app.cart(&token, id).await, body);
}

#[tokio::test]
async fn an_added_item_shows_in_the_cart() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let watch = app.product("Smartwatch").id;

    let resp = app.add_item(&token, &cart_id, watch, 2).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    let expected = json!({"id": cart_id, "items": [{"product_id": watch, "quantity": 2}]});
    assert_eq!(body, expected);
    assert_eq!(app.cart(&token, &cart_id).await, expected);
}

#[tokio::test]
async fn adding_the_same_product_twice_sums_the_quantities() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let watch = app.product("Smartwatch").id;

    app.add_item(&token, &cart_id, watch, 2).await;
    let resp = app.add_item(&token, &cart_id, watch, 3).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["items"], json!([{"product_id": watch, "quantity": 5}]));
}

#[tokio::test]
async fn cart_items_are_sorted_by_product_id() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let mut ids: Vec<Uuid> = app.products.iter().map(|p| p.id).collect();
    for id in ids.iter().rev() {
        app.add_item(&token, &cart_id, *id, 1).await;
    }

    let cart = app.cart(&token, &cart_id).await;

    ids.sort();
    let expected: Vec<Value> = ids
        .iter()
        .map(|id| json!({"product_id": id, "quantity": 1}))
        .collect();
    assert_eq!(cart["items"], Value::Array(expected));
}

#[tokio::test]
async fn concurrent_adds_to_one_line_lose_no_increment() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let watch = app.product("Smartwatch").id;

    let adds = (0..20).map(|_| app.add_item(&token, &cart_id, watch, 1));
    let answers = futures::future::join_all(adds).await;

    assert!(answers.iter().all(|r| r.status() == StatusCode::OK));
    let cart = app.cart(&token, &cart_id).await;
    assert_eq!(cart["items"][0]["quantity"], 20);
}

#[tokio::test]
async fn a_line_never_exceeds_the_maximum_quantity_even_under_concurrent_adds() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let watch = app.product("Smartwatch").id;
    let chunk = i64::from(Quantity::MAX / 10 + 1); // ten of these overshoot, nine do not

    let adds = (0..10).map(|_| app.add_item(&token, &cart_id, watch, chunk));
    let answers = futures::future::join_all(adds).await;

    let ok = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert_eq!(ok, 9);
    for resp in answers {
        if resp.status() != StatusCode::OK {
            assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity").await;
        }
    }
    let cart = app.cart(&token, &cart_id).await;
    assert_eq!(cart["items"][0]["quantity"], 9 * chunk);
}

#[tokio::test]
async fn an_add_that_would_push_a_line_over_the_maximum_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = app.create_cart(&token).await;
    let watch = app.product("Smartwatch").id;
    app.add_item(&token, &cart_id, watch, i64::from(Quantity::MAX))
        .await;
    let before = app.cart(&token, &cart_id).await;

    let resp = app.add_item(&token, &cart_id, watch, 1).await;

    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity").await;
    assert_eq!(app.cart(&token, &cart_id).await, before);
    assert_eq!(before["items"][0]["quantity"], Quantity::MAX);
}

/// A cart holding one watch, and the JSON of it.
async fn cart_with_one_watch(app: &TestApp, token: &str) -> (String, Value) {
    let cart_id = app.create_cart(token).await;
    let resp = app
        .add_item(token, &cart_id, app.product("Smartwatch").id, 1)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cart = app.cart(token, &cart_id).await;
    (cart_id, cart)
}

#[tokio::test]
async fn invalid_quantities_are_422_invalid_quantity_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let (cart_id, before) = cart_with_one_watch(&app, &token).await;
    let watch = app.product("Smartwatch").id;
    let path = format!("/api/carts/{cart_id}/items");

    for quantity in [
        json!(0),
        json!(-1),
        json!(4_294_967_296_i64),
        json!(Quantity::MAX + 1),
        json!(1.5),
        json!(1e30),
    ] {
        let body = json!({"product_id": watch, "quantity": quantity});
        let resp = app.post_json(&path, Some(&token), &body).await;

        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity").await;
    }
    assert_eq!(app.cart(&token, &cart_id).await, before);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_422_invalid_body_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let (cart_id, before) = cart_with_one_watch(&app, &token).await;
    let watch = app.product("Smartwatch").id;
    let path = format!("/api/carts/{cart_id}/items");

    for body in [
        json!({"product_id": watch, "quantity": "1"}),
        json!({"product_id": watch, "quantity": null}),
        json!({"product_id": 7, "quantity": 1}),
        json!({"product_id": watch}),
        json!({"quantity": 1}),
        json!([watch, 1]),
        json!("hello"),
    ] {
        let resp = app.post_json(&path, Some(&token), &body).await;

        assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    }
    assert_eq!(app.cart(&token, &cart_id).await, before);
}

#[tokio::test]
async fn a_malformed_product_id_in_the_body_is_422_invalid_id() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let (cart_id, before) = cart_with_one_watch(&app, &token).await;

    let resp = app
        .post_json(
            &format!("/api/carts/{cart_id}/items"),
            Some(&token),
            &json!({"product_id": "watch", "quantity": 1}),
        )
        .await;

    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_id").await;
    assert_eq!(app.cart(&token, &cart_id).await, before);
}

#[tokio::test]
async fn an_unknown_product_is_422_unknown_product() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let (cart_id, before) = cart_with_one_watch(&app, &token).await;

    let resp = app.add_item(&token, &cart_id, Uuid::new_v4(), 1).await;

    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "unknown_product").await;
    assert_eq!(app.cart(&token, &cart_id).await, before);
}

#[tokio::test]
async fn malformed_json_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let (cart_id, before) = cart_with_one_watch(&app, &token).await;
    let path = format!("/api/carts/{cart_id}/items");

    for raw in ["{\"product_id\": ", "not json", ""] {
        let resp = app
            .post_raw(&path, Some(&token), "application/json", raw)
            .await;

        assert_error(resp, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    assert_eq!(app.cart(&token, &cart_id).await, before);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let (cart_id, before) = cart_with_one_watch(&app, &token).await;
    let body = json!({"product_id": app.product("Smartwatch").id, "quantity": 1}).to_string();

    let resp = app
        .post_raw(
            &format!("/api/carts/{cart_id}/items"),
            Some(&token),
            "text/plain",
            body,
        )
        .await;

    assert_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(app.cart(&token, &cart_id).await, before);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let (cart_id, before) = cart_with_one_watch(&app, &token).await;
    let body = json!({
        "product_id": app.product("Smartwatch").id,
        "quantity": 1,
        "padding": "x".repeat(20 * 1024),
    });

    let resp = app
        .post_json(&format!("/api/carts/{cart_id}/items"), Some(&token), &body)
        .await;

    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.cart(&token, &cart_id).await, before);
}

#[tokio::test]
async fn a_cart_must_be_created_with_a_json_object() {
    let app = spawn_app().await;
    let token = app.token(app.alice());

    let array = app.post_json("/api/carts", Some(&token), &json!([])).await;
    let text = app
        .post_raw("/api/carts", Some(&token), "text/plain", "{}")
        .await;

    assert_error(array, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert_error(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_cart_id_in_the_path_is_400() {
    let app = spawn_app().await;
    let token = app.token(app.alice());

    let get = app.get("/api/carts/not-a-cart", Some(&token)).await;
    let add = app
        .add_item(&token, "not-a-cart", app.product("Smartwatch").id, 1)
        .await;

    assert_error(get, StatusCode::BAD_REQUEST, "malformed_id").await;
    assert_error(add, StatusCode::BAD_REQUEST, "malformed_id").await;
}

#[tokio::test]
async fn an_unknown_cart_is_404() {
    let app = spawn_app().await;
    let token = app.token(app.alice());
    let cart_id = Uuid::new_v4().to_string();

    let get = app
        .get(&format!("/api/carts/{cart_id}"), Some(&token))
        .await;
    let add = app
        .add_item(&token, &cart_id, app.product("Smartwatch").id, 1)
        .await;

    assert_error(get, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(add, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn another_users_cart_is_404_as_if_it_did_not_exist_and_stays_unchanged() {
    let app = spawn_app().await;
    let alice = app.token(app.alice());
    let bob = app.token(app.bob());
    let (cart_id, before) = cart_with_one_watch(&app, &alice).await;

    let get = app.get(&format!("/api/carts/{cart_id}"), Some(&bob)).await;
    let add = app
        .add_item(&bob, &cart_id, app.product("Earbuds").id, 1)
        .await;
    let unknown = app
        .get(&format!("/api/carts/{}", Uuid::new_v4()), Some(&bob))
        .await;

    let get = assert_error(get, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(add, StatusCode::NOT_FOUND, "not_found").await;
    let unknown = assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        get, unknown,
        "a foreign cart looks exactly like a missing one"
    );
    assert_eq!(app.cart(&alice, &cart_id).await, before);
}
