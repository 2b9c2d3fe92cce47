//! Async mode, outside the consumer: `POST /api/payments` against a real reservation service
//! (its HTTP read, then the order and `OrderPlaced`), the round trip through the reservation's
//! consumer, the reconciler that must not run, and the broker as a dependency of `/readyz`.

use crate::helpers::{
    spawn_app, spawn_app_with, spawn_async_app_with, spawn_async_app_with_reservation,
};
use crate::helpers::{ReservationRow, TestApp};
use common::events::{Event, OrderPlaced, PaymentSucceeded, ReservationBound};
use common::Mode;
use serde_json::{json, Value};
use std::time::Duration;
use test_support::Bus;
use uuid::Uuid;

fn pay_body(reservation_id: Uuid) -> Value {
    json!({"reservation_id": reservation_id.to_string()})
}

async fn error_code(resp: reqwest::Response) -> Value {
    resp.json::<Value>().await.expect("json")["code"].clone()
}

/// Pay and expect 202: answers (order id, status, Location).
async fn pay_accepted(app: &TestApp, user: Uuid, reservation: Uuid) -> (Uuid, Value, String) {
    let resp = app.pay(user, &pay_body(reservation)).await;
    assert_eq!(resp.status(), 202);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = resp.json().await.expect("json");
    let order_id = body["order_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an order id");
    (order_id, body["status"].clone(), location)
}

#[tokio::test]
async fn paying_in_async_mode_records_the_order_pending_and_places_it_once() {
    let app = spawn_async_app_with_reservation(Mode::Sync).await;
    let bus = Bus::connect(app.amqp_prefix(), &[OrderPlaced::NAME]).await;
    let user = Uuid::new_v4();
    let reservation = app
        .reservation()
        .insert(ReservationRow {
            user_id: user,
            ..ReservationRow::default()
        })
        .await;

    let (order_id, status, location) = pay_accepted(&app, user, reservation).await;
    let (again, _, _) = pay_accepted(&app, user, reservation).await;

    assert_eq!(status, "PENDING");
    assert_eq!(location, format!("/api/orders/{order_id}"));
    assert_eq!(again, order_id, "paying again is the same order");
    let placed: OrderPlaced = bus.next_event().await;
    assert_eq!(
        placed,
        OrderPlaced {
            order_id,
            reservation_id: reservation,
            user_id: user,
        }
    );
    bus.assert_quiet(Duration::from_millis(300)).await;
    assert_eq!(app.order_status(order_id).await, "PENDING");
    let shown: Value = app
        .get_order(user, &order_id.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(shown["status"], "PENDING");
    assert_eq!(shown["total_cents"], 1_000);
}

#[tokio::test]
async fn paying_in_async_mode_answers_what_can_be_known_at_once() {
    let app = spawn_async_app_with_reservation(Mode::Sync).await;
    let user = Uuid::new_v4();
    let reservations = app.reservation();
    let past_due = reservations
        .insert(ReservationRow {
            user_id: user,
            expires_in_secs: -5,
            ..ReservationRow::default()
        })
        .await;
    let expired = reservations
        .insert(ReservationRow {
            user_id: user,
            status: "EXPIRED",
            expires_in_secs: -5,
            ..ReservationRow::default()
        })
        .await;
    let sold_out = reservations
        .insert(ReservationRow {
            user_id: user,
            status: "SOLD_OUT",
            ..ReservationRow::default()
        })
        .await;
    let someone_elses = reservations.insert(ReservationRow::default()).await;
    let paid_by_someone_else = Uuid::new_v4();
    app.insert_order(paid_by_someone_else, Uuid::new_v4(), "PENDING")
        .await;

    for (reservation, status, code) in [
        (past_due, 409, "reservation_expired"),
        (expired, 409, "reservation_expired"),
        (sold_out, 409, "reservation_not_payable"),
        (someone_elses, 404, "not_found"),
        (Uuid::new_v4(), 404, "not_found"),
        (paid_by_someone_else, 404, "not_found"),
    ] {
        let resp = app.pay(user, &pay_body(reservation)).await;
        assert_eq!(resp.status(), status, "{code}");
        assert_eq!(error_code(resp).await, code);
    }
    assert_eq!(app.count("orders", "true").await, 1, "no order recorded");
    assert_eq!(app.count("outbox", "true").await, 0, "nothing placed");
}

#[tokio::test]
async fn paying_a_finished_order_again_answers_202_with_its_final_status() {
    let app = spawn_async_app_with(|_| {}).await;
    let user = Uuid::new_v4();
    let reservation = Uuid::new_v4();
    let id = app.insert_order(reservation, user, "DECLINED").await;

    let (order_id, status, location) = pay_accepted(&app, user, reservation).await;

    assert_eq!(order_id, id);
    assert_eq!(status, "DECLINED");
    assert_eq!(location, format!("/api/orders/{id}"));
}

#[tokio::test]
async fn an_order_placed_in_async_mode_binds_the_reservation_and_is_confirmed_by_stock_committed() {
    let app = spawn_async_app_with_reservation(Mode::Async).await;
    let bus = Bus::connect(app.amqp_prefix(), &[ReservationBound::NAME]).await;
    let user = Uuid::new_v4();
    let reservation = app
        .reservation()
        .insert(ReservationRow {
            user_id: user,
            ..ReservationRow::default()
        })
        .await;

    let (order_id, _, _) = pay_accepted(&app, user, reservation).await;

    let bound: ReservationBound = bus.next_event().await;
    assert_eq!(
        bound,
        ReservationBound {
            order_id,
            reservation_id: reservation,
            user_id: user,
            total_cents: 1_000,
        }
    );
    assert_eq!(
        app.reservation().stored(reservation).await,
        ("RESERVED".to_string(), Some(order_id))
    );

    // Payment, played by the test.
    bus.publish(&PaymentSucceeded {
        order_id,
        reservation_id: reservation,
        payment_id: Uuid::new_v4(),
    })
    .await;

    app.wait_order_status(order_id, "CONFIRMED").await;
    app.reservation()
        .wait_status(reservation, "CONFIRMED")
        .await;
}

#[tokio::test]
async fn the_reconciler_does_not_run_in_async_mode() {
    let app = spawn_async_app_with(|s| {
        s.order.reconcile_after_secs = 0.0;
        s.order.reconcile_interval_ms = 20;
    })
    .await;
    let order = app
        .insert_order(Uuid::new_v4(), Uuid::new_v4(), "PENDING")
        .await;
    let db = app.db().await;
    db.execute(
        "UPDATE orders SET updated_at = '2000-01-01T00:00:00Z' WHERE id = $1",
        &[&order],
    )
    .await
    .expect("age the order");

    tokio::time::sleep(Duration::from_millis(400)).await;

    assert_eq!(app.order_status(order).await, "PENDING");
    assert_eq!(
        app.count("orders", "updated_at = '2000-01-01T00:00:00Z'")
            .await,
        1,
        "nobody claimed the order"
    );
}

#[tokio::test]
async fn the_reconciler_claims_stale_pending_orders_in_sync_mode() {
    let app = spawn_app_with(|s| {
        s.order.reconcile_after_secs = 0.0;
        s.order.reconcile_interval_ms = 20;
    })
    .await;
    let order = app
        .insert_order(Uuid::new_v4(), Uuid::new_v4(), "PENDING")
        .await;
    let db = app.db().await;
    db.execute(
        "UPDATE orders SET updated_at = '2000-01-01T00:00:00Z' WHERE id = $1",
        &[&order],
    )
    .await
    .expect("age the order");

    tokio::time::sleep(Duration::from_millis(400)).await;

    // The peers are away: still pending, but the reconciler claimed it (touched updated_at).
    assert_eq!(app.order_status(order).await, "PENDING");
    assert_eq!(
        app.count("orders", "updated_at = '2000-01-01T00:00:00Z'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_reconciler_counts_its_attempts_and_keeps_an_order_it_cannot_give_up_pending() {
    let app = spawn_app_with(|s| {
        s.order.reconcile_after_secs = 0.0;
        s.order.reconcile_interval_ms = 20;
        s.order.reconcile_max_attempts = 2;
    })
    .await;
    let order = app
        .insert_order(Uuid::new_v4(), Uuid::new_v4(), "PENDING")
        .await;

    // Each pass waits for the peers' refused calls with their retries: give it a few.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.count("orders", "attempts > 3").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "attempts are not counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Past two attempts it tries to give the order up, but with the peers away it can
    // neither cancel the reservation nor refund: the order stays PENDING, never FAILED with
    // money or stock still held.
    assert_eq!(app.order_status(order).await, "PENDING");
}

#[tokio::test]
async fn the_reconciler_reads_only_pending_orders_through_their_index() {
    let app = spawn_app().await;
    let db = app.db().await;
    // Whatever the table's size, the plan may not scan every order ever placed.
    db.batch_execute("SET enable_seqscan = off")
        .await
        .expect("no sequential scans");
    let plan: Vec<String> = db
        .query(
            &format!("EXPLAIN {}", order::domain::reconcile::CLAIM_STALE_SQL),
            &[&30.0f64],
        )
        .await
        .expect("explain")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("orders_pending_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

#[tokio::test]
async fn the_service_starts_without_rabbitmq_and_is_not_ready_until_it_is_there() {
    let app = spawn_app_with(|s| {
        s.common.mode = Mode::Async;
        s.common.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    })
    .await;

    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");
    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("healthz");

    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["code"], "not_ready");
    assert!(body["failed"]["rabbitmq"].is_string(), "{body}");
    assert!(body["failed"].get("database").is_none(), "{body}");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn in_sync_mode_the_service_does_not_need_rabbitmq() {
    let app = spawn_app_with(|s| {
        s.common.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    })
    .await;

    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");

    assert_eq!(ready.status(), 200);
}
