//! Async mode: the events the reservation consumes, published to its suite prefix's exchange
//! as their producers would, and what each one does to the row and emits.

use crate::helpers::{spawn_async_app, spawn_async_app_with, Row, TestApp};
use common::events::{
    Event, OrderPlaced, PaymentDeclined, PaymentSucceeded, ReservationBound, ReservationNotPayable,
    StockRejected, StockReserved,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use test_support::{Bus, PATIENCE};
use uuid::Uuid;

/// Wait until message `message_id` is in the inbox: the handler committed it.
async fn wait_processed(app: &TestApp, message_id: Uuid) {
    let deadline = Instant::now() + PATIENCE;
    while app
        .count("inbox", &format!("message_id = '{message_id}'"))
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "message never processed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pending() -> Row {
    Row {
        status: "PENDING",
        ..Row::default()
    }
}

#[tokio::test]
async fn stock_reserved_moves_a_pending_reservation_to_reserved() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let id = app.insert(pending()).await;

    bus.publish(&StockReserved { reservation_id: id }).await;

    let stored = app.wait_status(id, "RESERVED").await;
    assert!(stored.order_id.is_none());
}

#[tokio::test]
async fn a_late_stock_reserved_leaves_an_expired_reservation_alone() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let id = app
        .insert(Row {
            status: "EXPIRED",
            expires_in_secs: -5,
            ..Row::default()
        })
        .await;

    let message = bus.publish(&StockReserved { reservation_id: id }).await;

    wait_processed(&app, message).await;
    assert_eq!(app.stored(id).await.status, "EXPIRED");
}

#[tokio::test]
async fn stock_rejected_settles_a_pending_reservation_in_the_rejection_status() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let mut cases = Vec::new();
    for (reason, status) in [
        ("sold_out", "SOLD_OUT"),
        ("limit_reached", "LIMIT_REACHED"),
        ("unknown_product", "CANCELLED"),
        // Released before the hold: the sweeper's expiry already took care of it.
        ("hold_released", "PENDING"),
    ] {
        let id = app.insert(pending()).await;
        let message = bus
            .publish(&StockRejected {
                reservation_id: id,
                reason: common::events::Rejection::from_code(reason).expect("a rejection"),
            })
            .await;
        cases.push((id, message, status));
    }

    for (id, message, status) in cases {
        wait_processed(&app, message).await;
        let stored = app.stored(id).await;
        assert_eq!(stored.status, status);
        assert!(
            !stored.release_pending,
            "nothing is held: nothing to release"
        );
    }
}

#[tokio::test]
async fn an_order_placed_on_a_reserved_reservation_binds_it_and_emits_reservation_bound() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(
        app.amqp_prefix(),
        &[ReservationBound::NAME, ReservationNotPayable::NAME],
    )
    .await;
    let user = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            quantity: 3,
            ..Row::default()
        })
        .await;
    let order = Uuid::new_v4();

    bus.publish(&OrderPlaced {
        order_id: order,
        reservation_id: id,
        user_id: user,
    })
    .await;

    let bound: ReservationBound = bus.next_event().await;
    assert_eq!(
        bound,
        ReservationBound {
            order_id: order,
            reservation_id: id,
            user_id: user,
            total_cents: 1_500,
        }
    );
    let stored = app.stored(id).await;
    assert_eq!(stored.order_id, Some(order));
    assert_eq!(stored.status, "RESERVED");
}

#[tokio::test]
async fn an_order_placed_on_a_reservation_that_cannot_be_paid_emits_reservation_not_payable() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(
        app.amqp_prefix(),
        &[ReservationBound::NAME, ReservationNotPayable::NAME],
    )
    .await;
    let user = Uuid::new_v4();
    let expired = app
        .insert(Row {
            user_id: user,
            expires_in_secs: -5,
            ..Row::default()
        })
        .await;
    let swept = app
        .insert(Row {
            user_id: user,
            status: "EXPIRED",
            expires_in_secs: -5,
            ..Row::default()
        })
        .await;
    let sold_out = app
        .insert(Row {
            user_id: user,
            status: "SOLD_OUT",
            ..Row::default()
        })
        .await;
    let bound_elsewhere = app
        .insert(Row {
            user_id: user,
            order_id: Some(Uuid::new_v4()),
            ..Row::default()
        })
        .await;
    let someone_elses = app.insert(Row::default()).await;
    let unknown = Uuid::new_v4();
    let expected = HashMap::from([
        (expired, "reservation_expired"),
        (swept, "reservation_expired"),
        (sold_out, "reservation_not_payable"),
        (bound_elsewhere, "reservation_not_payable"),
        (someone_elses, "not_found"),
        (unknown, "not_found"),
    ]);
    let mut orders = HashMap::new();

    for &reservation_id in expected.keys() {
        let order_id = Uuid::new_v4();
        orders.insert(reservation_id, order_id);
        bus.publish(&OrderPlaced {
            order_id,
            reservation_id,
            user_id: user,
        })
        .await;
    }

    for _ in 0..expected.len() {
        let refused: ReservationNotPayable = bus.next_event().await;
        assert_eq!(
            refused.reason.code(),
            expected[&refused.reservation_id],
            "reason for {}",
            refused.reservation_id
        );
        assert_eq!(refused.order_id, orders[&refused.reservation_id]);
    }
    assert_eq!(app.stored(expired).await.order_id, None, "not bound");
    assert_eq!(app.stored(someone_elses).await.order_id, None, "not bound");
}

#[tokio::test]
async fn stock_committed_confirms_the_reservation_bound_to_the_order() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let order = Uuid::new_v4();
    let id = app
        .insert(Row {
            order_id: Some(order),
            ..Row::default()
        })
        .await;
    let other = app
        .insert(Row {
            order_id: Some(Uuid::new_v4()),
            ..Row::default()
        })
        .await;

    bus.publish(&PaymentSucceeded {
        order_id: order,
        reservation_id: id,
        payment_id: Uuid::new_v4(),
    })
    .await;
    let mismatch = bus
        .publish(&PaymentSucceeded {
            order_id: order,
            reservation_id: other,
            payment_id: Uuid::new_v4(),
        })
        .await;

    app.wait_status(id, "CONFIRMED").await;
    wait_processed(&app, mismatch).await;
    assert_eq!(app.stored(other).await.status, "RESERVED");
}

#[tokio::test]
async fn payment_declined_cancels_the_bound_reservation_and_owes_no_release() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let order = Uuid::new_v4();
    let id = app
        .insert(Row {
            order_id: Some(order),
            ..Row::default()
        })
        .await;

    bus.publish(&PaymentDeclined {
        order_id: order,
        reservation_id: id,
        payment_id: Uuid::new_v4(),
    })
    .await;

    let stored = app.wait_status(id, "CANCELLED").await;
    // Inventory releases on its own copy of PaymentDeclined.
    assert!(!stored.release_pending);
    assert_eq!(stored.order_id, Some(order));
}

#[tokio::test]
async fn the_same_message_twice_has_no_second_effect() {
    // One message at a time, in queue order: once the message published after the
    // duplicate has been handled, so has the duplicate.
    let app = spawn_async_app_with(|s| s.common.amqp_prefetch = 1).await;
    let bus = Bus::connect(app.amqp_prefix(), &[ReservationBound::NAME]).await;
    let user = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            ..Row::default()
        })
        .await;
    let sentinel = app.insert(pending()).await;
    let placed = OrderPlaced {
        order_id: Uuid::new_v4(),
        reservation_id: id,
        user_id: user,
    };
    let payload = serde_json::to_vec(&placed).expect("json");
    let message = Uuid::new_v4();

    bus.publish_as(message, OrderPlaced::NAME, &payload).await;
    let _: ReservationBound = bus.next_event().await;
    bus.publish_as(message, OrderPlaced::NAME, &payload).await;
    bus.publish(&StockReserved {
        reservation_id: sentinel,
    })
    .await;

    app.wait_status(sentinel, "RESERVED").await;
    bus.assert_quiet(Duration::from_millis(300)).await;
    assert_eq!(
        app.count("outbox", "event_type = 'ReservationBound.v1'")
            .await,
        1
    );
    assert_eq!(
        app.count("inbox", &format!("message_id = '{message}'"))
            .await,
        1
    );
}

#[tokio::test]
async fn a_malformed_message_lands_in_the_dead_letter_queue() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let id = app.insert(pending()).await;

    bus.publish_as(Uuid::new_v4(), StockReserved::NAME, b"{not json")
        .await;
    bus.publish_as(
        Uuid::new_v4(),
        StockReserved::NAME,
        br#"{"reservation": "no id"}"#,
    )
    .await;

    bus.wait_dead_letters("reservation", 2).await;
    assert_eq!(
        app.count("inbox", "true").await,
        0,
        "poison leaves no trace"
    );
    assert_eq!(app.stored(id).await.status, "PENDING");
}
