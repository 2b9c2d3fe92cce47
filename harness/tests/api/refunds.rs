//! Sync mode: a charge whose order cannot be completed is given back, and the order ends
//! FAILED where an operator sees it, never PENDING for ever.

use crate::helpers::{drained_report, spawn_suite_with, TestSuite};
use crate::shopper::Api;
use common::Mode;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `(status, attempts)` of the order of `reservation`, if it has one.
async fn order_of(t: &TestSuite, reservation: Uuid) -> Option<(Uuid, String, i32)> {
    t.db("order")
        .await
        .query_opt(
            "SELECT id, status, attempts FROM orders WHERE reservation_id = $1",
            &[&reservation],
        )
        .await
        .expect("read the order")
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

/// `(payment status, provider charges refunded)` of `order`.
async fn payment_of(t: &TestSuite, order: Uuid) -> (String, i64) {
    let row = t
        .db("payment")
        .await
        .query_one(
            "SELECT (SELECT status FROM payments WHERE order_id = $1),
                    (SELECT count(*) FROM provider_charges
                     WHERE idempotency_key = $1 AND refunded_at IS NOT NULL)",
            &[&order],
        )
        .await
        .expect("read the payment");
    (row.get(0), row.get(1))
}

async fn reserved(t: &TestSuite, api: &Api) -> (crate::shopper::Shopper, Uuid) {
    let product = t.suite.products()[0].id.to_string();
    let shopper = api.shopper(1).await;
    let cart = shopper.create_cart().await;
    shopper.add_item(&cart, &product, 1).await;
    let (status, body, _) = shopper.reserve(&cart).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").parse().expect("uuid");
    (shopper, id)
}

#[tokio::test]
async fn a_charge_whose_reservation_is_cancelled_under_it_is_refunded_and_the_order_fails() {
    let t = spawn_suite_with(|o| {
        o.mode = Mode::Sync;
        o.stock = 1;
        // Slow enough to cancel the reservation while the charge is being decided.
        o.extra_env
            .push(("PAYMENT_LATENCY_MS".into(), "1500".into()));
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let (shopper, reservation) = reserved(&t, &api).await;
    let internal = reqwest::Client::new();
    let key = t.suite.internal_key().to_string();
    let url = format!(
        "{}/internal/reservations/{reservation}",
        t.suite.internal_url()
    );

    let reservation_id = reservation.to_string();
    let ((status, body, _), ()) = tokio::join!(shopper.pay(&reservation_id, None), async {
        // Once the payment began (the reservation is bound to its order), cancel it the way
        // the order's own saga would.
        let deadline = Instant::now() + Duration::from_secs(10);
        let order_id = loop {
            let r: serde_json::Value = internal
                .get(&url)
                .header(common::auth::INTERNAL_KEY_HEADER, &key)
                .send()
                .await
                .expect("read the reservation")
                .json()
                .await
                .expect("json");
            if let Some(order) = r["order_id"].as_str() {
                break order.to_string();
            }
            assert!(Instant::now() < deadline, "the payment never began");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let cancelled = internal
            .post(format!("{url}/cancel"))
            .header(common::auth::INTERNAL_KEY_HEADER, &key)
            .json(&serde_json::json!({ "order_id": order_id }))
            .send()
            .await
            .expect("cancel");
        assert_eq!(cancelled.status(), 200);
    });

    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "order_failed");
    let (order, order_status, _) = order_of(&t, reservation).await.expect("an order");
    assert_eq!(order_status, "FAILED");
    assert_eq!(payment_of(&t, order).await, ("REFUNDED".to_string(), 1));
    let (again, body, _) = shopper.pay(&reservation.to_string(), None).await;
    assert_eq!((again, body["code"].as_str()), (409, Some("order_failed")));
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(report.products[0].available, 1, "the unit is back on sale");
    assert_eq!(report.products[0].sold, 0);
    t.teardown().await;
}

#[tokio::test]
async fn an_order_the_reconciler_cannot_finish_is_given_up_after_its_attempts() {
    let mut t = spawn_suite_with(|o| {
        o.mode = Mode::Sync;
        o.stock = 1;
        for (k, v) in [
            ("RECONCILE_AFTER_SECS", "0.2"),
            ("RECONCILE_INTERVAL_MS", "100"),
            ("RECONCILE_MAX_ATTEMPTS", "3"),
        ] {
            o.extra_env.push((k.into(), v.into()));
        }
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let (shopper, reservation) = reserved(&t, &api).await;
    // Inventory away: the charge succeeds, the stock can never be committed.
    let inventory = t.suite.replicas("inventory").len();
    for i in 0..inventory {
        t.suite
            .kill_replica("inventory", i, Signal::SIGKILL)
            .await
            .expect("kill inventory");
    }

    let (status, body, _) = shopper.pay(&reservation.to_string(), None).await;

    assert_eq!(status, 503, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (order, attempts) = loop {
        match order_of(&t, reservation).await {
            Some((id, status, attempts)) if status == "FAILED" => break (id, attempts),
            Some((_, status, _)) => assert_eq!(status, "PENDING"),
            None => panic!("no order"),
        }
        assert!(Instant::now() < deadline, "never given up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attempts, 4, "given up on the first pass past 3 attempts");
    assert_eq!(payment_of(&t, order).await, ("REFUNDED".to_string(), 1));
    let (again, body, _) = shopper.pay(&reservation.to_string(), None).await;
    assert_eq!((again, body["code"].as_str()), (409, Some("order_failed")));
    for i in 0..inventory {
        t.suite
            .restart_replica("inventory", i)
            .await
            .expect("restart inventory");
    }
    // The reservation was cancelled while inventory was away; the sweeper releases its hold.
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(
        report.products[0].available,
        1,
        "the unit is back on sale: {}",
        report.render_text()
    );
    t.teardown().await;
}
