//! Refunds: a successful charge given back once per order, whatever the number of calls.

use crate::helpers::{spawn_app, spawn_app_with};
use serde_json::{json, Value};
use uuid::Uuid;

fn charge_body(order_id: Uuid) -> Value {
    json!({
        "order_id": order_id.to_string(),
        "user_id": Uuid::new_v4().to_string(),
        "amount_cents": 1500,
    })
}

#[tokio::test]
async fn a_successful_charge_is_refunded_once_however_often_it_is_asked() {
    let app = spawn_app().await;
    let order_id = Uuid::new_v4();
    assert_eq!(app.charge(&charge_body(order_id)).await.status(), 200);

    let answers = futures::future::join_all((0..5).map(|_| async {
        let resp = app.refund(order_id).await;
        assert_eq!(resp.status(), 200);
        resp.json::<Value>().await.expect("json")
    }))
    .await;

    assert!(
        answers.iter().all(|a| a["status"] == "REFUNDED"),
        "{answers:?}"
    );
    assert_eq!(app.refunds_of(order_id).await, 1);
    assert_eq!(app.charges_of(order_id).await, (1, 1), "still one charge");
    let stored: Value = app
        .by_order(&order_id.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["status"], "REFUNDED");
}

#[tokio::test]
async fn a_charge_asked_again_after_its_refund_answers_refunded_and_charges_nothing() {
    let app = spawn_app().await;
    let order_id = Uuid::new_v4();
    let body = charge_body(order_id);
    assert_eq!(app.charge(&body).await.status(), 200);
    assert_eq!(app.refund(order_id).await.status(), 200);

    let again: Value = app.charge(&body).await.json().await.expect("json");

    assert_eq!(again["status"], "REFUNDED");
    assert_eq!(app.charges_of(order_id).await, (1, 1));
}

#[tokio::test]
async fn a_declined_charge_has_nothing_to_refund() {
    let app = spawn_app_with(|s| s.payment_decline_rate = 1.0).await;
    let order_id = Uuid::new_v4();
    assert_eq!(app.charge(&charge_body(order_id)).await.status(), 200);

    let resp = app.refund(order_id).await;

    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.expect("json");
    assert_eq!(answer["status"], "DECLINED");
    assert_eq!(app.refunds_of(order_id).await, 0);
}

#[tokio::test]
async fn refunding_an_order_without_a_payment_is_not_found() {
    let app = spawn_app().await;

    let resp = app.refund(Uuid::new_v4()).await;

    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "payment_not_found");
}

#[tokio::test]
async fn a_refund_without_the_internal_key_is_refused() {
    let app = spawn_app().await;

    let resp = app
        .http
        .post(format!("{}/internal/payments/refunds", app.address))
        .json(&json!({ "order_id": Uuid::new_v4() }))
        .send()
        .await
        .expect("sent");

    assert_eq!(
        resp.status(),
        404,
        "an internal route does not exist for outsiders"
    );
}
