//! Async mode: the events the order consumes, published to its suite prefix's exchange as
//! their producers would, and the status each one leaves the order in.

use crate::helpers::{spawn_async_app, spawn_async_app_with};
use common::events::{Event, PaymentDeclined, PaymentSucceeded, ReservationNotPayable};
use test_support::Bus;
use uuid::Uuid;

#[tokio::test]
async fn each_final_event_finishes_a_pending_order() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let user = Uuid::new_v4();
    let (paid, declined, expired) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let paid_order = app.insert_order(paid, user, "PENDING").await;
    let declined_order = app.insert_order(declined, user, "PENDING").await;
    let expired_order = app.insert_order(expired, user, "PENDING").await;

    bus.publish(&PaymentSucceeded {
        order_id: paid_order,
        reservation_id: paid,
        payment_id: Uuid::new_v4(),
    })
    .await;
    bus.publish(&PaymentDeclined {
        order_id: declined_order,
        reservation_id: declined,
        payment_id: Uuid::new_v4(),
    })
    .await;
    bus.publish(&ReservationNotPayable {
        order_id: expired_order,
        reservation_id: expired,
        reason: common::events::NotPayable::ReservationExpired,
    })
    .await;

    app.wait_order_status(paid_order, "CONFIRMED").await;
    app.wait_order_status(declined_order, "DECLINED").await;
    app.wait_order_status(expired_order, "CANCELLED").await;
}

#[tokio::test]
async fn a_late_event_leaves_a_final_order_as_it_is() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let reservation = Uuid::new_v4();
    let order = app
        .insert_order(reservation, Uuid::new_v4(), "CONFIRMED")
        .await;

    let late = bus
        .publish(&PaymentDeclined {
            order_id: order,
            reservation_id: reservation,
            payment_id: Uuid::new_v4(),
        })
        .await;

    app.wait_processed(late).await;
    assert_eq!(app.order_status(order).await, "CONFIRMED");
}

#[tokio::test]
async fn the_same_message_twice_has_no_second_effect() {
    // One message at a time, in queue order: once the message published after the
    // duplicate has been handled, so has the duplicate.
    let app = spawn_async_app_with(|s| s.common.amqp_prefetch = 1).await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let user = Uuid::new_v4();
    let reservation = Uuid::new_v4();
    let order = app.insert_order(reservation, user, "PENDING").await;
    let sentinel_reservation = Uuid::new_v4();
    let sentinel = app
        .insert_order(sentinel_reservation, user, "PENDING")
        .await;
    let declined = serde_json::to_vec(&PaymentDeclined {
        order_id: order,
        reservation_id: reservation,
        payment_id: Uuid::new_v4(),
    })
    .expect("json");
    let message = Uuid::new_v4();
    bus.publish_as(message, PaymentDeclined::NAME, &declined)
        .await;
    app.wait_order_status(order, "DECLINED").await;
    // Were the copy applied again, it would show: put the order back to PENDING.
    app.db()
        .await
        .execute(
            "UPDATE orders SET status = 'PENDING' WHERE id = $1",
            &[&order],
        )
        .await
        .expect("reset");

    bus.publish_as(message, PaymentDeclined::NAME, &declined)
        .await;
    bus.publish(&PaymentSucceeded {
        order_id: sentinel,
        reservation_id: sentinel_reservation,
        payment_id: Uuid::new_v4(),
    })
    .await;

    app.wait_order_status(sentinel, "CONFIRMED").await;
    assert_eq!(app.order_status(order).await, "PENDING");
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

    bus.publish_as(Uuid::new_v4(), PaymentSucceeded::NAME, b"{not json")
        .await;
    bus.publish_as(
        Uuid::new_v4(),
        ReservationNotPayable::NAME,
        br#"{"order_id": "not an id"}"#,
    )
    .await;

    bus.wait_dead_letters("order", 2).await;
    assert_eq!(
        app.count("inbox", "true").await,
        0,
        "poison leaves no trace"
    );
}
