//! The status URL with `Prefer: wait=N`: a PENDING order is answered when its consumer
//! finishes it.

use crate::helpers::spawn_async_app;
use common::events::PaymentSucceeded;
use std::time::{Duration, Instant};
use test_support::Bus;
use uuid::Uuid;

/// Far longer than finishing an order takes.
const WAIT_SECS: u64 = 10;

#[tokio::test]
async fn a_poll_that_prefers_a_wait_is_answered_when_the_order_is_confirmed() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let (user, reservation) = (Uuid::new_v4(), Uuid::new_v4());
    let order = app.insert_order(reservation, user, "PENDING").await;
    let prefer = format!("wait={WAIT_SECS}");
    let started = Instant::now();

    let poll = app
        .http
        .get(format!("{}/api/orders/{order}", app.address))
        .bearer_auth(app.token_for(user))
        .header("Prefer", &prefer)
        .send();
    let (resp, _) = tokio::join!(poll, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        bus.publish(&PaymentSucceeded {
            order_id: order,
            reservation_id: reservation,
            payment_id: Uuid::new_v4(),
        })
        .await;
    });
    let resp = resp.expect("GET /api/orders/{id}");

    assert_eq!(resp.status().as_u16(), 200);
    let applied = resp
        .headers()
        .get("preference-applied")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(applied, Some(prefer));
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(body["status"], "CONFIRMED");
    assert!(
        started.elapsed() < Duration::from_secs(WAIT_SECS / 2),
        "answered only at the end of the wait ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_poll_without_a_wait_answers_a_pending_order_at_once() {
    let app = spawn_async_app().await;
    let user = Uuid::new_v4();
    let order = app.insert_order(Uuid::new_v4(), user, "PENDING").await;
    let started = Instant::now();

    let resp = app.get_order(user, &order.to_string()).await;

    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("preference-applied").is_none());
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(body["status"], "PENDING");
    assert!(started.elapsed() < Duration::from_secs(WAIT_SECS / 2));
}

#[tokio::test]
async fn sync_mode_applies_no_wait_since_nothing_there_publishes_changes() {
    let app = crate::helpers::spawn_app().await;
    let user = Uuid::new_v4();
    let order = app.insert_order(Uuid::new_v4(), user, "PENDING").await;
    let started = Instant::now();

    let resp = app
        .http
        .get(format!("{}/api/orders/{order}", app.address))
        .bearer_auth(app.token_for(user))
        .header("Prefer", format!("wait={WAIT_SECS}"))
        .send()
        .await
        .expect("GET /api/orders/{id}");

    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("preference-applied").is_none());
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(body["status"], "PENDING");
    assert!(started.elapsed() < Duration::from_secs(WAIT_SECS / 2));
}
