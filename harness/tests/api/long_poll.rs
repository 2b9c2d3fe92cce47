//! Long-polled status URLs through nginx, two replicas per service: a poll held with
//! `Prefer: wait` is answered when the row settles, whichever replica handled the event.

use crate::helpers::{drained_report, spawn_suite_with};
use crate::shopper::{Api, Shopper};
use common::Mode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Far longer than a settle takes on an idle suite.
const WAIT_SECS: u64 = 10;

/// GET `path` holding for a change: status, body, `Preference-Applied`, and how long it took.
async fn held_get(shopper: &Shopper, path: &str) -> (u16, Value, Option<String>, Duration) {
    let started = Instant::now();
    let resp = shopper
        .api
        .client
        .get(format!("{}{path}", shopper.api.base))
        .bearer_auth(&shopper.token)
        .header("Prefer", format!("wait={WAIT_SECS}"))
        .send()
        .await
        .expect("request reaches nginx");
    let status = resp.status().as_u16();
    let applied = resp
        .headers()
        .get("preference-applied")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, applied, started.elapsed())
}

#[tokio::test]
async fn held_polls_through_nginx_answer_each_stage_of_the_checkout_when_it_settles() {
    let t = spawn_suite_with(|o| {
        o.mode = Mode::Async;
        o.replicas = 2;
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let applied = Some(format!("wait={WAIT_SECS}"));

    // Several shoppers, so that held polls land on both replicas of each service.
    for shopper in api.shoppers(4).await {
        let cart = shopper.create_cart().await;
        let (status, body, _) = shopper.add_item(&cart, &product, 1).await;
        assert_eq!(status, 200, "{body}");
        let (status, accepted, _) = shopper
            .post("/api/reservations", json!({"cart_id": cart}))
            .await;
        assert_eq!(status, 202, "{accepted}");
        let reservation = accepted["id"].as_str().expect("id").to_string();

        let (status, body, header, took) =
            held_get(&shopper, &format!("/api/reservations/{reservation}")).await;
        assert_eq!((status, header.clone()), (200, applied.clone()), "{body}");
        assert_eq!(body["status"], "RESERVED", "{body}");
        assert!(took < Duration::from_secs(WAIT_SECS / 2), "{took:?}");

        let (status, paying, _) = shopper
            .post("/api/payments", json!({"reservation_id": reservation}))
            .await;
        assert_eq!(status, 202, "{paying}");
        let order = paying["order_id"].as_str().expect("order id").to_string();
        let (status, body, header, took) =
            held_get(&shopper, &format!("/api/orders/{order}")).await;
        assert_eq!((status, header), (200, applied.clone()), "{body}");
        assert_eq!(body["status"], "CONFIRMED", "{body}");
        assert!(took < Duration::from_secs(WAIT_SECS / 2), "{took:?}");
    }

    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
}
