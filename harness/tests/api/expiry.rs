//! A reservation past its TTL is released and can no longer be paid.

use crate::helpers::spawn_suite_with;
use crate::shopper::Api;
use common::Mode;
use harness::verify;
use std::time::{Duration, Instant};

async fn a_reservation_past_its_ttl_is_released_and_cannot_be_paid(mode: Mode) {
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.stock = 1;
        o.extra_env
            .push(("RESERVATION_TTL_SECS".into(), "1".into()));
        o.extra_env.push(("SWEEP_INTERVAL_MS".into(), "100".into()));
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let shopper = api.shopper(1).await;
    let cart = shopper.create_cart().await;
    shopper.add_item(&cart, &product, 1).await;
    let (status, reservation, _) = shopper.reserve(&cart).await;
    assert_eq!(status, 201);
    let reservation_id = reservation["id"].as_str().expect("id").to_string();

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let (_, body, _) = shopper
            .get(&format!("/api/reservations/{reservation_id}"))
            .await;
        if body["status"] != "RESERVED" || Instant::now() > deadline {
            break body["status"].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, "EXPIRED");
    let (status, body, _) = shopper.pay(&reservation_id, None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "reservation_expired");

    // The sweeper's release lands at inventory; the unit is on sale again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = verify::run(
            &t.suite.state().database_url,
            &t.suite.state().db_prefix,
            Duration::from_secs(5),
        )
        .await
        .expect("verify");
        if report.products[0].available == 1 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(
        (report.products[0].available, report.products[0].reserved),
        (1, 0)
    );
    t.teardown().await;
}

crate::helpers::in_both_modes!(a_reservation_past_its_ttl_is_released_and_cannot_be_paid);
