use crate::helpers::spawn_app;
use serde_json::{json, Value};
use uuid::Uuid;

fn pay_body(reservation_id: Uuid) -> Value {
    json!({"reservation_id": reservation_id.to_string()})
}

async fn error_code(resp: reqwest::Response) -> Value {
    resp.json::<Value>().await.expect("json")["code"].clone()
}

#[tokio::test]
async fn a_malformed_body_is_a_bad_request() {
    let app = spawn_app().await;

    let resp = app
        .http
        .post(format!("{}/api/payments", app.address))
        .bearer_auth(app.token_for(Uuid::new_v4()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request sent");

    assert_eq!(resp.status(), 400);
    assert_eq!(error_code(resp).await, "malformed_json");
}

#[tokio::test]
async fn a_body_without_a_reservation_id_is_unprocessable() {
    let app = spawn_app().await;

    let resp = app.pay(Uuid::new_v4(), &json!({})).await;

    assert_eq!(resp.status(), 422);
    assert_eq!(error_code(resp).await, "invalid_body");
}

#[tokio::test]
async fn a_malformed_reservation_id_is_unprocessable() {
    let app = spawn_app().await;

    let resp = app
        .pay(Uuid::new_v4(), &json!({"reservation_id": "nope"}))
        .await;

    assert_eq!(resp.status(), 422);
    assert_eq!(error_code(resp).await, "invalid_id");
}

#[tokio::test]
async fn an_idempotency_key_longer_than_200_characters_is_a_bad_request() {
    let app = spawn_app().await;

    let resp = app
        .http
        .post(format!("{}/api/payments", app.address))
        .bearer_auth(app.token_for(Uuid::new_v4()))
        .header("Idempotency-Key", "k".repeat(201))
        .json(&pay_body(Uuid::new_v4()))
        .send()
        .await
        .expect("request sent");

    assert_eq!(resp.status(), 400);
    assert_eq!(error_code(resp).await, "invalid_idempotency_key");
}

#[tokio::test]
async fn paying_while_the_peers_are_away_is_unavailable_and_confirms_nothing() {
    let app = spawn_app().await;

    let resp = app.pay(Uuid::new_v4(), &pay_body(Uuid::new_v4())).await;

    assert_eq!(resp.status(), 503);
    assert_eq!(error_code(resp).await, "upstream_unavailable");
    let confirmed: i64 = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM orders WHERE status = 'CONFIRMED'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(confirmed, 0);
}

#[tokio::test]
async fn a_pending_order_stays_pending_while_the_peers_are_away() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let reservation_id = Uuid::new_v4();
    let id = app.insert_order(reservation_id, user, "PENDING").await;

    let resp = app.pay(user, &pay_body(reservation_id)).await;

    assert_eq!(resp.status(), 503);
    assert_eq!(app.order_status(id).await, "PENDING");
}

#[tokio::test]
async fn paying_for_another_users_order_is_not_found() {
    let app = spawn_app().await;
    let reservation_id = Uuid::new_v4();
    app.insert_order(reservation_id, Uuid::new_v4(), "PENDING")
        .await;

    let resp = app.pay(Uuid::new_v4(), &pay_body(reservation_id)).await;

    assert_eq!(resp.status(), 404);
    assert_eq!(error_code(resp).await, "not_found");
}

#[tokio::test]
async fn paying_a_confirmed_order_again_answers_the_same_order() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let reservation_id = Uuid::new_v4();
    let id = app.insert_order(reservation_id, user, "CONFIRMED").await;

    let resp = app.pay(user, &pay_body(reservation_id)).await;

    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"order_id": id.to_string(), "status": "CONFIRMED"})
    );
}

#[tokio::test]
async fn paying_a_declined_order_again_is_declined_with_its_order_id() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let reservation_id = Uuid::new_v4();
    let id = app.insert_order(reservation_id, user, "DECLINED").await;

    let resp = app.pay(user, &pay_body(reservation_id)).await;

    assert_eq!(resp.status(), 402);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "payment_declined");
    assert_eq!(body["order_id"], id.to_string());
}

#[tokio::test]
async fn paying_a_cancelled_order_again_is_a_conflict() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let reservation_id = Uuid::new_v4();
    app.insert_order(reservation_id, user, "CANCELLED").await;

    let resp = app.pay(user, &pay_body(reservation_id)).await;

    assert_eq!(resp.status(), 409);
    assert_eq!(error_code(resp).await, "reservation_expired");
}

#[tokio::test]
async fn paying_a_failed_order_again_says_it_failed_and_was_refunded() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let reservation_id = Uuid::new_v4();
    let order = app.insert_order(reservation_id, user, "FAILED").await;

    let resp = app.pay(user, &pay_body(reservation_id)).await;

    assert_eq!(resp.status(), 409);
    assert_eq!(error_code(resp).await, "order_failed");
    let (status, body) = {
        let resp = app.get_order(user, &order.to_string()).await;
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.expect("json"),
        )
    };
    assert_eq!((status, body["status"].as_str()), (200, Some("FAILED")));
}
