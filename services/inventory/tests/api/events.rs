//! Async mode: the inventory consuming its queue on a prefix of its own, fed and observed
//! through `<prefix>.events` like the other services would.

use crate::helpers::{
    dlq, spawn_app_with_amqp, spawn_async_app, spawn_async_app_with_prefetch, wait_for_messages,
    TestApp,
};
use common::events::{
    Event, EventItem, PaymentDeclined, PaymentSucceeded, ReservationExpired, ReservationRequested,
    StockRejected, StockReserved,
};
use std::time::{Duration, Instant};
use test_support::Bus;
use uuid::Uuid;

fn request(product: Uuid, quantity: i32) -> ReservationRequested {
    ReservationRequested {
        reservation_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        items: vec![EventItem {
            product_id: product,
            quantity,
        }],
    }
}

/// Request a hold of `quantity` and wait until it is held.
async fn reserve(bus: &Bus, product: Uuid, quantity: i32) -> ReservationRequested {
    let req = request(product, quantity);
    bus.publish(&req).await;
    bus.wait_for_reservation(StockReserved::NAME, req.reservation_id, 1)
        .await;
    req
}

/// With prefetch 1 the queue is handled in order: once a later hold is answered, every
/// message published before it has been handled.
async fn barrier(app: &TestApp, bus: &Bus) {
    let product = app.product(1, 0).await;
    reserve(bus, product, 1).await;
}

async fn wait_level(app: &TestApp, product: Uuid, want: (i32, i32, i32)) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let level = app.level(product).await;
        if level == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stock is {level:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn paid(req: &ReservationRequested, order_id: Uuid) -> PaymentSucceeded {
    PaymentSucceeded {
        order_id,
        reservation_id: req.reservation_id,
        payment_id: Uuid::new_v4(),
    }
}

#[tokio::test]
async fn a_reservation_request_holds_the_stock_and_emits_stock_reserved() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let product = app.product(10, 0).await;
    let req = request(product, 3);

    bus.publish(&req).await;

    let events = bus
        .wait_for_reservation(StockReserved::NAME, req.reservation_id, 1)
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(app.level(product).await, (7, 3, 0));
    let held = app
        .count(
            "SELECT count(*) FROM holds WHERE reservation_id = $1 AND state = 'HELD'",
            &[&req.reservation_id],
        )
        .await;
    assert_eq!(held, 1);
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_reservation_request_beyond_the_stock_is_rejected_as_sold_out_and_takes_nothing() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let product = app.product(2, 0).await;
    let req = request(product, 3);

    let message_id = bus.publish(&req).await;

    let events = bus
        .wait_for_reservation(StockRejected::NAME, req.reservation_id, 1)
        .await;
    assert_eq!(events[0]["reason"], "sold_out");
    assert_eq!(app.level(product).await, (2, 0, 0));
    let taken = app
        .count(
            "SELECT (SELECT count(*) FROM holds) + (SELECT count(*) FROM user_units WHERE units > 0)",
            &[],
        )
        .await;
    assert_eq!(taken, 0, "the rejected hold's writes are rolled back");
    let inbox = app
        .count(
            "SELECT count(*) FROM inbox WHERE message_id = $1",
            &[&message_id],
        )
        .await;
    assert_eq!(inbox, 1, "the message is recorded as handled");
    // The StockReserved appended before the hold went with its savepoint: never published.
    barrier(&app, &bus).await;
    let reserved = bus
        .received()
        .await
        .into_iter()
        .filter(|(kind, event)| {
            kind == StockReserved::NAME && event["reservation_id"] == req.reservation_id.to_string()
        })
        .count();
    assert_eq!(reserved, 0, "only the rejection is published");
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn rejections_carry_their_reason() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let limited = app.product(10, 1).await;
    let over_limit = request(limited, 2);
    let unknown = request(Uuid::new_v4(), 1);
    let released_first = request(app.product(10, 0).await, 1);

    bus.publish(&over_limit).await;
    bus.publish(&unknown).await;
    bus.publish(&ReservationExpired {
        reservation_id: released_first.reservation_id,
    })
    .await;
    bus.publish(&released_first).await;

    for (req, reason) in [
        (&over_limit, "limit_reached"),
        (&unknown, "unknown_product"),
        (&released_first, "hold_released"),
    ] {
        let events = bus
            .wait_for_reservation(StockRejected::NAME, req.reservation_id, 1)
            .await;
        assert_eq!(events[0]["reason"], reason);
    }
    assert_eq!(app.level(limited).await, (10, 0, 0));
    assert_eq!(
        app.level(released_first.items[0].product_id).await,
        (10, 0, 0)
    );
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_same_message_delivered_twice_holds_once() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let product = app.product(10, 0).await;
    let req = request(product, 2);

    let message_id = bus.publish(&req).await;
    bus.publish_with_id(message_id, &req).await;
    barrier(&app, &bus).await;

    assert_eq!(app.level(product).await, (8, 2, 0));
    let events = bus
        .wait_for_reservation(StockReserved::NAME, req.reservation_id, 1)
        .await;
    assert_eq!(events.len(), 1, "the duplicate emitted nothing");
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_expired_reservation_releases_its_hold_and_emits_nothing() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let product = app.product(10, 2).await;
    let req = reserve(&bus, product, 2).await;

    bus.publish(&ReservationExpired {
        reservation_id: req.reservation_id,
    })
    .await;
    barrier(&app, &bus).await;

    assert_eq!(app.level(product).await, (10, 0, 0));
    let units = app
        .count(
            "SELECT COALESCE(sum(units), 0) FROM user_units WHERE user_id = $1",
            &[&req.user_id],
        )
        .await;
    assert_eq!(units, 0, "the user's units are given back");
    let about_it = bus
        .received()
        .await
        .into_iter()
        .filter(|(_, body)| body["reservation_id"] == req.reservation_id.to_string())
        .count();
    assert_eq!(about_it, 1, "only the StockReserved");
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_succeeded_payment_commits_the_holds_and_emits_nothing() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let product = app.product(10, 0).await;
    let req = reserve(&bus, product, 3).await;
    let about_it = || async {
        bus.received()
            .await
            .into_iter()
            .filter(|(_, body)| body["reservation_id"] == req.reservation_id.to_string())
            .count()
    };
    let before = about_it().await;

    bus.publish(&paid(&req, Uuid::new_v4())).await;

    wait_level(&app, product, (7, 0, 3)).await;
    barrier(&app, &bus).await;
    // The order and the reservation confirm on their own copies of PaymentSucceeded.
    assert_eq!(about_it().await, before, "the commit emits no event");
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_declined_payment_releases_the_holds() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let product = app.product(10, 0).await;
    let req = reserve(&bus, product, 3).await;

    bus.publish(&PaymentDeclined {
        order_id: Uuid::new_v4(),
        reservation_id: req.reservation_id,
        payment_id: Uuid::new_v4(),
    })
    .await;

    wait_level(&app, product, (10, 0, 0)).await;
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_succeeded_payment_never_commits_released_holds() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let product = app.product(10, 0).await;
    let req = reserve(&bus, product, 3).await;
    bus.publish(&ReservationExpired {
        reservation_id: req.reservation_id,
    })
    .await;

    bus.publish(&paid(&req, Uuid::new_v4())).await;
    barrier(&app, &bus).await;

    assert_eq!(app.level(product).await, (10, 0, 0));
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_malformed_message_lands_in_the_dead_letter_queue() {
    let app = spawn_async_app().await;
    let bus = app.bus().await;
    let prefix = app.amqp_prefix.clone().expect("async");

    bus.publish_raw(
        ReservationRequested::NAME,
        ReservationRequested::NAME,
        Uuid::new_v4(),
        b"{not json",
    )
    .await;
    // A bound routing key but a type the inventory does not handle.
    bus.publish_raw(
        ReservationRequested::NAME,
        "Bogus.v1",
        Uuid::new_v4(),
        b"{}",
    )
    .await;

    wait_for_messages(&dlq(&prefix), 2).await;
    barrier(&app, &bus).await;
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn sync_mode_never_connects_to_rabbitmq() {
    let app = spawn_app_with_amqp("amqp://guest:guest@127.0.0.1:1/%2f").await;

    let (status, body) = app.get("/readyz").await;

    assert_eq!(status, 200, "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn copies_of_one_message_handled_at_once_hold_once() {
    let app = spawn_async_app_with_prefetch(16).await;
    let bus = app.bus().await;
    let product = app.product(10, 0).await;
    let req = request(product, 2);

    let message_id = Uuid::new_v4();
    for _ in 0..5 {
        bus.publish_with_id(message_id, &req).await;
    }

    bus.wait_for_reservation(StockReserved::NAME, req.reservation_id, 1)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.level(product).await, (8, 2, 0));
    let events = bus
        .wait_for_reservation(StockReserved::NAME, req.reservation_id, 1)
        .await;
    assert_eq!(events.len(), 1, "the copies emitted nothing");
    bus.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_reservation_requests_never_take_more_than_the_stock() {
    let app = spawn_async_app_with_prefetch(16).await;
    let bus = app.bus().await;
    let product = app.product(5, 0).await;
    let requests: Vec<ReservationRequested> = (0..20).map(|_| request(product, 1)).collect();

    for req in &requests {
        bus.publish(req).await;
    }

    let mut reserved = 0;
    for req in &requests {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answers: Vec<String> = bus
                .received()
                .await
                .into_iter()
                .filter(|(_, body)| body["reservation_id"] == req.reservation_id.to_string())
                .map(|(kind, body)| format!("{kind}:{}", body["reason"]))
                .collect();
            if let Some(answer) = answers.first() {
                assert_eq!(answers.len(), 1, "{answers:?}");
                if answer.starts_with(StockReserved::NAME) {
                    reserved += 1;
                } else {
                    assert_eq!(answer, &format!("{}:\"sold_out\"", StockRejected::NAME));
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no answer for {}",
                req.reservation_id
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(reserved, 5);
    assert_eq!(app.level(product).await, (0, 5, 0));
    bus.close().await;
    app.cleanup().await;
}
