//! The status URL with `Prefer: wait=N`: a PENDING reservation is answered when its
//! consumer settles it, or at the end of the wait as it is then.

use crate::helpers::{json, spawn_async_app, spawn_async_app_with, Row, TestApp};
use common::events::StockReserved;
use std::time::{Duration, Instant};
use test_support::Bus;
use uuid::Uuid;

/// Far longer than a settle takes: an answer before half of it was not the end of the wait.
const WAIT_SECS: u64 = 10;

async fn poll(app: &TestApp, user: Uuid, id: Uuid, prefer: Option<&str>) -> reqwest::Response {
    let mut req = app
        .http
        .get(app.url(&format!("/api/reservations/{id}")))
        .bearer_auth(app.token(user));
    if let Some(prefer) = prefer {
        req = req.header("Prefer", prefer);
    }
    req.send().await.expect("GET /api/reservations/{id}")
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn pending_of(app: &TestApp, user: Uuid) -> Uuid {
    app.insert(Row {
        user_id: user,
        status: "PENDING",
        ..Row::default()
    })
    .await
}

#[tokio::test]
async fn a_poll_that_prefers_a_wait_is_answered_when_the_reservation_settles() {
    let app = spawn_async_app().await;
    let bus = Bus::connect(app.amqp_prefix(), &[]).await;
    let user = Uuid::new_v4();
    let id = pending_of(&app, user).await;
    let started = Instant::now();

    let prefer = format!("wait={WAIT_SECS}");
    let (resp, _) = tokio::join!(poll(&app, user, id, Some(&prefer)), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        bus.publish(&StockReserved { reservation_id: id }).await;
    });

    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "preference-applied"), Some(prefer));
    assert_eq!(header(&resp, "vary").as_deref(), Some("Prefer"));
    assert_eq!(json(resp).await["status"], "RESERVED");
    assert!(
        started.elapsed() < Duration::from_secs(WAIT_SECS / 2),
        "answered only at the end of the wait ({:?})",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_wait_beyond_the_services_maximum_is_cut_to_it() {
    let app = spawn_async_app_with(|s| s.common.status_wait_max_secs = 1).await;
    let user = Uuid::new_v4();
    let id = pending_of(&app, user).await;
    let started = Instant::now();

    let resp = poll(&app, user, id, Some("wait=30")).await;

    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header(&resp, "preference-applied").as_deref(),
        Some("wait=1")
    );
    assert_eq!(json(resp).await["status"], "PENDING");
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(5)).contains(&waited),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_poll_without_a_wait_is_answered_at_once_and_applies_no_preference() {
    let app = spawn_async_app().await;
    let user = Uuid::new_v4();
    let id = pending_of(&app, user).await;

    for prefer in [
        None,
        Some("wait=0"),
        Some("wait=soon"),
        Some("return=minimal"),
    ] {
        let started = Instant::now();
        let resp = poll(&app, user, id, prefer).await;

        assert_eq!(resp.status().as_u16(), 200, "{prefer:?}");
        assert_eq!(header(&resp, "preference-applied"), None, "{prefer:?}");
        assert_eq!(json(resp).await["status"], "PENDING");
        assert!(
            started.elapsed() < Duration::from_secs(WAIT_SECS / 2),
            "{prefer:?}"
        );
    }
}

#[tokio::test]
async fn a_settled_reservation_or_someone_elses_is_answered_at_once_despite_a_wait() {
    let app = spawn_async_app().await;
    let user = Uuid::new_v4();
    let reserved = app
        .insert(Row {
            user_id: user,
            ..Row::default()
        })
        .await;
    let pending = pending_of(&app, user).await;
    let prefer = format!("wait={WAIT_SECS}");
    let started = Instant::now();

    let settled = poll(&app, user, reserved, Some(&prefer)).await;
    let not_mine = poll(&app, Uuid::new_v4(), pending, Some(&prefer)).await;

    assert_eq!(settled.status().as_u16(), 200);
    assert_eq!(json(settled).await["status"], "RESERVED");
    assert_eq!(not_mine.status().as_u16(), 404);
    assert!(started.elapsed() < Duration::from_secs(WAIT_SECS / 2));
}

#[tokio::test]
async fn a_poll_of_a_reservation_that_expires_while_pending_is_answered_when_it_expires() {
    let app = spawn_async_app_with(|s| s.sweep_interval_ms = 200).await;
    let user = Uuid::new_v4();
    // Inventory never answers this one; the sweeper expires it a second from now.
    let id = app
        .insert(Row {
            user_id: user,
            status: "PENDING",
            expires_in_secs: 1,
            ..Row::default()
        })
        .await;
    let started = Instant::now();

    let resp = poll(&app, user, id, Some(&format!("wait={WAIT_SECS}"))).await;

    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(json(resp).await["status"], "EXPIRED");
    assert!(
        started.elapsed() < Duration::from_secs(WAIT_SECS / 2),
        "answered only at the end of the wait ({:?})",
        started.elapsed()
    );
}
