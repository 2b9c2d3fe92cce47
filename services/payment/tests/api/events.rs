//! Async mode: payment consuming its queue on a prefix of its own, fed and observed through
//! `<prefix>.events` like the other services would.

use crate::helpers::{dlq, spawn_async_app_with, spawn_async_app_without_broker};
use common::events::{Event, PaymentDeclined, PaymentSucceeded, ReservationBound};
use std::time::{Duration, Instant};
use test_support::{message_count, Bus};
use uuid::Uuid;

fn bound(total_cents: i64) -> ReservationBound {
    ReservationBound {
        order_id: Uuid::new_v4(),
        reservation_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        total_cents,
    }
}

/// With prefetch 1 the queue is handled in order: once a later order has its outcome, every
/// message published before it has been handled.
async fn barrier(bus: &Bus) {
    let marker = bound(1);
    bus.publish(&marker).await;
    bus.wait_for_order(marker.order_id, 1).await;
}

#[tokio::test]
async fn a_bound_reservation_is_charged_once_and_emits_payment_succeeded() {
    let app = spawn_async_app_with(|_| {}).await;
    let bus = app.bus().await;
    let event = bound(1999);

    bus.publish(&event).await;

    let events = bus.wait_for_order(event.order_id, 1).await;
    let (name, body) = &events[0];
    assert_eq!(name, PaymentSucceeded::NAME);
    assert_eq!(body["reservation_id"], event.reservation_id.to_string());
    let stored = app
        .db()
        .await
        .query_one(
            "SELECT id, status, amount_cents FROM payments WHERE order_id = $1",
            &[&event.order_id],
        )
        .await
        .expect("payment");
    assert_eq!(body["payment_id"], stored.get::<_, Uuid>(0).to_string());
    assert_eq!(stored.get::<_, &str>(1), "SUCCEEDED");
    assert_eq!(stored.get::<_, i64>(2), 1999);
    assert_eq!(app.charges_of(event.order_id).await, (1, 1));
    bus.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_provider_that_always_declines_emits_payment_declined() {
    let app = spawn_async_app_with(|s| s.payment_decline_rate = 1.0).await;
    let bus = app.bus().await;
    let event = bound(500);

    bus.publish(&event).await;

    let events = bus.wait_for_order(event.order_id, 1).await;
    assert_eq!(events[0].0, PaymentDeclined::NAME);
    assert_eq!(
        events[0].1["reservation_id"],
        event.reservation_id.to_string()
    );
    let status: String = app
        .db()
        .await
        .query_one(
            "SELECT status FROM payments WHERE order_id = $1",
            &[&event.order_id],
        )
        .await
        .expect("payment")
        .get(0);
    assert_eq!(status, "DECLINED");
    bus.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_same_bound_reservation_delivered_again_charges_once() {
    // A provider that declines half the time, so a second decision would show.
    let app = spawn_async_app_with(|s| s.payment_decline_rate = 0.5).await;
    let bus = app.bus().await;
    let event = bound(700);

    let message_id = bus.publish(&event).await;
    bus.publish_with_id(message_id, &event).await;
    bus.publish(&event).await;
    barrier(&bus).await;

    assert_eq!(app.charges_of(event.order_id).await, (1, 1));
    let events = bus.about_order(event.order_id).await;
    assert_eq!(
        events.len(),
        2,
        "one outcome per message id, none for the duplicate: {events:?}"
    );
    assert_eq!(events[0], events[1], "the same outcome and payment");
    bus.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_redelivery_after_a_crash_between_charge_and_commit_emits_the_recorded_outcome() {
    // The provider would now approve, but it already declined this order before the crash.
    let app = spawn_async_app_with(|s| s.payment_decline_rate = 0.0).await;
    let bus = app.bus().await;
    let event = bound(900);
    app.db()
        .await
        .batch_execute(&format!(
            "INSERT INTO payments (id, order_id, user_id, amount_cents, status)
             VALUES ('{}', '{}', '{}', 900, 'PENDING');
             INSERT INTO provider_charges (idempotency_key, amount_cents, outcome)
             VALUES ('{}', 900, 'DECLINED');",
            Uuid::new_v4(),
            event.order_id,
            event.user_id,
            event.order_id
        ))
        .await
        .expect("a charge recorded before the crash");

    bus.publish(&event).await;

    let events = bus.wait_for_order(event.order_id, 1).await;
    assert_eq!(events[0].0, PaymentDeclined::NAME);
    assert_eq!(app.charges_of(event.order_id).await, (1, 1));
    bus.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_message_lands_in_the_dead_letter_queue() {
    let app = spawn_async_app_with(|_| {}).await;
    let bus = app.bus().await;
    let prefix = app.amqp_prefix.clone().expect("async");

    bus.publish_as(Uuid::new_v4(), ReservationBound::NAME, b"{not json")
        .await;
    barrier(&bus).await;

    let deadline = Instant::now() + Duration::from_secs(15);
    while message_count(&dlq(&prefix)).await != 1 {
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let payments: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(payments, 1, "only the barrier's");
    bus.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_service_starts_without_rabbitmq_and_answers_not_ready() {
    let app = spawn_async_app_without_broker().await;

    let (health, _) = app.get("/healthz").await;
    let (ready, body) = app.get("/readyz").await;

    assert_eq!(health, 200);
    assert_eq!(ready, 503, "{body}");
    assert_eq!(body["code"], "not_ready");
    assert!(body["failed"]["rabbitmq"].is_string(), "{body}");
    assert!(body["failed"].get("database").is_none(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn copies_and_repeats_handled_at_once_charge_once_and_agree() {
    let app = spawn_async_app_with(|s| {
        s.common.amqp_prefetch = 16;
        s.payment_decline_rate = 0.5;
        s.payment_latency_ms = 20;
        s.payment_latency_jitter_ms = 20;
    })
    .await;
    let bus = app.bus().await;
    let event = bound(300);

    let message_id = Uuid::new_v4();
    for _ in 0..5 {
        bus.publish_with_id(message_id, &event).await;
        bus.publish(&event).await;
    }

    let events = bus.wait_for_order(event.order_id, 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events_later = bus.about_order(event.order_id).await;
    assert_eq!(
        events_later.len(),
        6,
        "one per message id: {events_later:?}"
    );
    assert!(events.iter().all(|e| *e == events[0]), "{events:?}");
    assert_eq!(app.charges_of(event.order_id).await, (1, 1));
    bus.close().await;
    app.stop().await;
}
