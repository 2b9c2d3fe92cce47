use crate::helpers::{spawn_app, spawn_app_with};
use serde_json::{json, Value};
use uuid::Uuid;

fn charge_body(order_id: Uuid, amount_cents: i64) -> Value {
    json!({
        "order_id": order_id.to_string(),
        "user_id": Uuid::new_v4().to_string(),
        "amount_cents": amount_cents,
    })
}

#[tokio::test]
async fn a_charge_succeeds_and_is_stored() {
    // Arrange
    let app = spawn_app().await;
    let order_id = Uuid::new_v4();
    let body = charge_body(order_id, 1999);

    // Act
    let resp = app.charge(&body).await;

    // Assert
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.expect("json");
    assert_eq!(answer["status"], "SUCCEEDED");
    assert_eq!(answer["order_id"], order_id.to_string());
    let stored: Value = app
        .by_order(&order_id.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["payment_id"], answer["payment_id"]);
    assert_eq!(stored["user_id"], body["user_id"]);
    assert_eq!(stored["amount_cents"], 1999);
    assert_eq!(stored["status"], "SUCCEEDED");
}

#[tokio::test]
async fn concurrent_charges_for_one_order_charge_once_and_agree() {
    // Arrange: a provider that declines half the time, so disagreeing answers would show.
    let app = spawn_app_with(|s| {
        s.payment_decline_rate = 0.5;
        s.payment_latency_ms = 20;
        s.payment_latency_jitter_ms = 20;
    })
    .await;
    let order_id = Uuid::new_v4();
    let body = charge_body(order_id, 500);

    // Act
    let answers = futures::future::join_all((0..20).map(|_| async {
        let resp = app.charge(&body).await;
        assert_eq!(resp.status(), 200);
        resp.json::<Value>().await.expect("json")
    }))
    .await;

    // Assert
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    let db = app.db().await;
    let payments: i64 = db
        .query_one(
            "SELECT count(*) FROM payments WHERE order_id = $1",
            &[&order_id],
        )
        .await
        .expect("count")
        .get(0);
    let charges: i64 = db
        .query_one(
            "SELECT count(*) FROM provider_charges WHERE idempotency_key = $1",
            &[&order_id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!((payments, charges), (1, 1));
    let outcome: String = db
        .query_one(
            "SELECT outcome FROM provider_charges WHERE idempotency_key = $1",
            &[&order_id],
        )
        .await
        .expect("outcome")
        .get(0);
    assert_eq!(answers[0]["status"], outcome);
}

#[tokio::test]
async fn a_retried_charge_answers_the_first_payment() {
    let app = spawn_app().await;
    let body = charge_body(Uuid::new_v4(), 100);

    let first: Value = app.charge(&body).await.json().await.expect("json");
    let second: Value = app.charge(&body).await.json().await.expect("json");

    assert_eq!(first, second);
}

#[tokio::test]
async fn a_provider_that_always_declines_declines() {
    let app = spawn_app_with(|s| s.payment_decline_rate = 1.0).await;
    let order_id = Uuid::new_v4();

    let resp = app.charge(&charge_body(order_id, 100)).await;

    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.expect("json");
    assert_eq!(answer["status"], "DECLINED");
    let stored: Value = app
        .by_order(&order_id.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["status"], "DECLINED");
}

#[tokio::test]
async fn a_call_without_the_internal_key_is_not_found() {
    let app = spawn_app().await;

    let resp = app
        .http
        .post(format!("{}/internal/payments/charges", app.address))
        .json(&charge_body(Uuid::new_v4(), 100))
        .send()
        .await
        .expect("request sent");

    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "not_found");
    let count: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_negative_amount_is_rejected() {
    let app = spawn_app().await;

    let resp = app.charge(&charge_body(Uuid::new_v4(), -1)).await;

    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "invalid_amount");
}

#[tokio::test]
async fn a_charge_for_another_amount_of_a_charged_order_is_refused() {
    let app = spawn_app().await;
    let order_id = Uuid::new_v4();
    let mut body = charge_body(order_id, 100);
    assert_eq!(app.charge(&body).await.status(), 200);

    body["amount_cents"] = json!(200);
    let resp = app.charge(&body).await;

    assert_eq!(resp.status(), 409);
}

#[tokio::test]
async fn an_unknown_order_has_no_payment() {
    let app = spawn_app().await;

    let resp = app.by_order(&Uuid::new_v4().to_string()).await;
    assert_eq!(resp.status(), 404);

    let resp = app.by_order("not-an-id").await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn health_and_readiness_answer_and_unknown_routes_are_json_404() {
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz"] {
        let resp = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), 200, "{path}");
    }
    let resp = app
        .http
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], "not_found");
}
