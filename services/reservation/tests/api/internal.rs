use crate::helpers::{assert_error, json, spawn_app, spawn_app_with_inventory, Row};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn internal_routes_do_not_exist_without_the_internal_key() {
    let app = spawn_app().await;
    let id = app.insert(Row::default()).await;

    let resp = app
        .http
        .get(app.url(&format!("/internal/reservations/{id}")))
        .send()
        .await
        .expect("GET");

    assert_error(resp, 404, "not_found").await;
}

#[tokio::test]
async fn the_internal_record_is_the_full_reservation() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            ..Row::default()
        })
        .await;

    let found = app
        .internal_get(&format!("/internal/reservations/{id}"))
        .await;
    let unknown = app
        .internal_get(&format!("/internal/reservations/{}", Uuid::new_v4()))
        .await;

    assert_eq!(found.status().as_u16(), 200);
    let body = json(found).await;
    assert_eq!(body["id"], id.to_string());
    assert_eq!(body["user_id"], user.to_string());
    assert_eq!(body["status"], "RESERVED");
    assert_eq!(body["total_cents"], 500);
    assert!(body["cart_id"].is_string());
    assert!(body["expires_at"].is_string());
    assert!(body["order_id"].is_null());
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    assert_error(unknown, 404, "not_found").await;
}

#[tokio::test]
async fn begin_payment_binds_the_order_to_a_live_reservation_and_replays() {
    let app = spawn_app().await;
    let id = app.insert(Row::default()).await;
    let order = Uuid::new_v4();

    let first = app.begin_payment(id, order).await;
    let replay = app.begin_payment(id, order).await;

    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(json(first).await["order_id"], order.to_string());
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(json(replay).await["order_id"], order.to_string());
    assert_eq!(app.stored(id).await.order_id, Some(order));
}

#[tokio::test]
async fn begin_payment_by_another_order_is_a_conflict() {
    let app = spawn_app().await;
    let first = Uuid::new_v4();
    let id = app
        .insert(Row {
            order_id: Some(first),
            ..Row::default()
        })
        .await;

    let resp = app.begin_payment(id, Uuid::new_v4()).await;

    assert_error(resp, 409, "reservation_not_payable").await;
    assert_eq!(app.stored(id).await.order_id, Some(first));
}

#[tokio::test]
async fn begin_payment_of_an_expired_reservation_is_rejected_as_expired() {
    let app = spawn_app().await;
    let past_due = app
        .insert(Row {
            expires_in_secs: -5,
            ..Row::default()
        })
        .await;
    let swept = app
        .insert(Row {
            status: "EXPIRED",
            expires_in_secs: -5,
            ..Row::default()
        })
        .await;

    let past_due_resp = app.begin_payment(past_due, Uuid::new_v4()).await;
    let swept_resp = app.begin_payment(swept, Uuid::new_v4()).await;

    assert_error(past_due_resp, 409, "reservation_expired").await;
    assert_error(swept_resp, 409, "reservation_expired").await;
    assert_eq!(app.stored(past_due).await.order_id, None);
}

#[tokio::test]
async fn a_replayed_begin_payment_still_answers_once_the_reservation_is_past_due() {
    let app = spawn_app().await;
    let order = Uuid::new_v4();
    let id = app
        .insert(Row {
            order_id: Some(order),
            expires_in_secs: -5,
            ..Row::default()
        })
        .await;

    let resp = app.begin_payment(id, order).await;

    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json(resp).await["status"], "RESERVED");
}

#[tokio::test]
async fn begin_payment_of_a_rejected_reservation_is_not_payable() {
    let app = spawn_app().await;
    let id = app
        .insert(Row {
            status: "SOLD_OUT",
            ..Row::default()
        })
        .await;

    let resp = app.begin_payment(id, Uuid::new_v4()).await;
    let unknown = app.begin_payment(Uuid::new_v4(), Uuid::new_v4()).await;
    let malformed = app
        .internal_post(
            &format!("/internal/reservations/{id}/begin-payment"),
            &json!({ "order_id": "nope" }),
        )
        .await;

    assert_error(resp, 409, "reservation_not_payable").await;
    assert_error(unknown, 404, "not_found").await;
    assert_error(malformed, 422, "invalid_id").await;
}

#[tokio::test]
async fn confirm_commits_the_holds_and_is_idempotent() {
    let app = spawn_app_with_inventory().await;
    let product = app.seed_stock(10).await;
    let user = Uuid::new_v4();
    let order = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            product_id: product,
            quantity: 2,
            ..Row::default()
        })
        .await;
    app.hold_at_inventory(id, user, product, 2).await;
    assert_eq!(app.begin_payment(id, order).await.status().as_u16(), 200);
    let path = format!("/internal/reservations/{id}/confirm");

    let first = app
        .internal_post(&path, &json!({ "order_id": order }))
        .await;
    let replay = app
        .internal_post(&path, &json!({ "order_id": order }))
        .await;
    let other = app
        .internal_post(&path, &json!({ "order_id": Uuid::new_v4() }))
        .await;
    let cancel = app
        .internal_post(
            &format!("/internal/reservations/{id}/cancel"),
            &json!({ "order_id": order }),
        )
        .await;

    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(json(first).await["status"], "CONFIRMED");
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(json(replay).await["status"], "CONFIRMED");
    assert_error(other, 409, "order_mismatch").await;
    assert_error(cancel, 409, "reservation_confirmed").await;
    assert_eq!(app.stock(product).await, (8, 0, 2));
}

#[tokio::test]
async fn confirm_without_a_bound_order_is_a_conflict() {
    let app = spawn_app().await;
    let id = app.insert(Row::default()).await;

    let resp = app
        .internal_post(
            &format!("/internal/reservations/{id}/confirm"),
            &json!({ "order_id": Uuid::new_v4() }),
        )
        .await;

    assert_error(resp, 409, "reservation_not_payable").await;
    assert_eq!(app.stored(id).await.status, "RESERVED");
}

#[tokio::test]
async fn cancel_gives_the_stock_back_and_is_idempotent() {
    let app = spawn_app_with_inventory().await;
    let product = app.seed_stock(10).await;
    let user = Uuid::new_v4();
    let order = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            product_id: product,
            quantity: 3,
            ..Row::default()
        })
        .await;
    app.hold_at_inventory(id, user, product, 3).await;
    assert_eq!(app.begin_payment(id, order).await.status().as_u16(), 200);
    assert_eq!(app.stock(product).await, (7, 3, 0));
    let path = format!("/internal/reservations/{id}/cancel");

    let first = app
        .internal_post(&path, &json!({ "order_id": order }))
        .await;
    let replay = app
        .internal_post(&path, &json!({ "order_id": order }))
        .await;

    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(json(first).await["status"], "CANCELLED");
    assert_eq!(replay.status().as_u16(), 200);
    assert_eq!(json(replay).await["status"], "CANCELLED");
    assert_eq!(app.stock(product).await, (10, 0, 0));
    let stored = app.stored(id).await;
    assert_eq!(stored.status, "CANCELLED");
    assert!(!stored.release_pending);
}

#[tokio::test]
async fn a_cancel_whose_release_fails_leaves_it_to_the_sweeper() {
    let app = spawn_app().await;
    let order = Uuid::new_v4();
    let id = app
        .insert(Row {
            order_id: Some(order),
            ..Row::default()
        })
        .await;

    let resp = app
        .internal_post(
            &format!("/internal/reservations/{id}/cancel"),
            &json!({ "order_id": order }),
        )
        .await;
    let other = app
        .internal_post(
            &format!("/internal/reservations/{id}/cancel"),
            &json!({ "order_id": Uuid::new_v4() }),
        )
        .await;

    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json(resp).await["status"], "CANCELLED");
    let stored = app.stored(id).await;
    assert_eq!(stored.status, "CANCELLED");
    assert!(stored.release_pending, "the release is still owed");
    assert_error(other, 409, "order_mismatch").await;
}
