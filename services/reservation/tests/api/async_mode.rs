//! Async mode, outside the consumer: the Reserve request, the sweeper's expiry, and the
//! broker as a dependency of `/readyz`.

use crate::helpers::{assert_error, json, spawn_app_with, spawn_async_app_with, Row, TestApp};
use actix_web::{web, App, HttpResponse, HttpServer};
use common::events::{Event, EventItem, ReservationExpired, ReservationRequested};
use common::Mode;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::time::{Duration, Instant};
use test_support::{Bus, PATIENCE};
use uuid::Uuid;

/// A stand-in for the gateway's cart route: answers `cart` for its id, 404 for any other.
fn fake_gateway(cart: Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let server = HttpServer::new(move || {
        let cart = cart.clone();
        App::new().route(
            "/internal/gateway/carts/{id}",
            web::get().to(move |path: web::Path<String>| {
                let cart = cart.clone();
                async move {
                    if cart["id"] == path.as_str() {
                        HttpResponse::Ok().json(cart)
                    } else {
                        HttpResponse::NotFound()
                            .json(json!({"code": "not_found", "message": "cart not found"}))
                    }
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    address
}

async fn reserving_app(cart: Value) -> TestApp {
    let gateway = fake_gateway(cart);
    spawn_async_app_with(|s| s.common.upstream_url = gateway).await
}

#[tokio::test]
async fn reserving_in_async_mode_records_the_reservation_pending_and_asks_inventory_for_stock() {
    let user = Uuid::new_v4();
    let (cart_id, product) = (Uuid::new_v4(), Uuid::new_v4());
    let app = reserving_app(json!({
        "id": cart_id,
        "user_id": user,
        "items": [{"product_id": product, "quantity": 2, "price_cents": 700}],
    }))
    .await;
    let bus = Bus::connect(app.amqp_prefix(), &[ReservationRequested::NAME]).await;

    let resp = app
        .reserve(Some(&app.token(user)), &json!({ "cart_id": cart_id }))
        .await;

    assert_eq!(resp.status().as_u16(), 202);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = json(resp).await;
    let id: Uuid = body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id");
    assert_eq!(body, json!({"id": id, "status": "PENDING"}));
    assert_eq!(location, Some(format!("/api/reservations/{id}")));
    let requested: ReservationRequested = bus.next_event().await;
    assert_eq!(
        requested,
        ReservationRequested {
            reservation_id: id,
            user_id: user,
            items: vec![EventItem {
                product_id: product,
                quantity: 2,
            }],
        }
    );
    let shown = json(app.get_reservation(&app.token(user), &id.to_string()).await).await;
    assert_eq!(shown["status"], "PENDING");
    assert_eq!(shown["total_cents"], 1_400);
}

#[tokio::test]
async fn reserving_in_async_mode_still_answers_an_unknown_or_empty_cart_at_once() {
    let user = Uuid::new_v4();
    let empty = Uuid::new_v4();
    let app = reserving_app(json!({ "id": empty, "user_id": user, "items": [] })).await;
    let bus = Bus::connect(app.amqp_prefix(), &[ReservationRequested::NAME]).await;
    let token = app.token(user);

    let unknown = app
        .reserve(Some(&token), &json!({ "cart_id": Uuid::new_v4() }))
        .await;
    let empty = app
        .reserve(Some(&token), &json!({ "cart_id": empty }))
        .await;

    assert_error(unknown, 404, "not_found").await;
    assert_error(empty, 422, "empty_cart").await;
    assert_eq!(app.count("reservations", "true").await, 0);
    assert_eq!(app.count("outbox", "true").await, 0);
    bus.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_sweeper_in_async_mode_emits_reservation_expired_and_owes_no_release() {
    let app = spawn_async_app_with(|s| s.sweep_interval_ms = 50).await;
    let bus = Bus::connect(app.amqp_prefix(), &[ReservationExpired::NAME]).await;
    let bound = app
        .insert(Row {
            expires_in_secs: -1,
            order_id: Some(Uuid::new_v4()),
            ..Row::default()
        })
        .await;

    let id = app
        .insert(Row {
            expires_in_secs: -1,
            ..Row::default()
        })
        .await;

    let expired: ReservationExpired = bus.next_event().await;
    assert_eq!(expired, ReservationExpired { reservation_id: id });
    let stored = app.stored(id).await;
    assert_eq!(stored.status, "EXPIRED");
    assert!(!stored.release_pending, "the event carries the release");
    assert_eq!(app.stored(bound).await.status, "RESERVED");
    bus.assert_quiet(Duration::from_millis(300)).await;
    let deadline = Instant::now() + PATIENCE;
    while app.count("outbox", "published_at IS NULL").await > 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox row is never marked sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_service_starts_without_rabbitmq_and_is_not_ready_until_it_is_there() {
    let app = spawn_app_with(|s| {
        s.common.mode = Mode::Async;
        s.common.amqp_prefix = s.common.database_prefix.clone();
        s.common.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    })
    .await;
    let user = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            ..Row::default()
        })
        .await;

    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    let read = app.get_reservation(&app.token(user), &id.to_string()).await;

    let body = assert_error(ready, 503, "not_ready").await;
    assert!(body["failed"]["rabbitmq"].is_string(), "{body}");
    assert!(body["failed"].get("database").is_none(), "{body}");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(read.status().as_u16(), 200);
}

#[tokio::test]
async fn in_sync_mode_the_service_does_not_need_rabbitmq() {
    let app = spawn_app_with(|s| {
        s.common.amqp_url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    })
    .await;

    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");

    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn a_reserve_sent_twice_is_one_reservation_and_a_new_key_is_another() {
    let user = Uuid::new_v4();
    let (cart_id, product) = (Uuid::new_v4(), Uuid::new_v4());
    let app = reserving_app(json!({
        "id": cart_id,
        "user_id": user,
        "items": [{"product_id": product, "quantity": 1, "price_cents": 700}],
    }))
    .await;
    let bus = Bus::connect(app.amqp_prefix(), &[ReservationRequested::NAME]).await;
    let token = app.token(user);
    let body = json!({ "cart_id": cart_id });

    let first = json(app.reserve(Some(&token), &body).await).await;
    let again = app.reserve(Some(&token), &body).await;
    assert_eq!(again.status().as_u16(), 202);
    assert_eq!(json(again).await["id"], first["id"], "the same reservation");
    let keyed = json(app.reserve_keyed(&token, &body, "second-try").await).await;
    assert_ne!(keyed["id"], first["id"], "a new key is a new reservation");
    let keyed_again = json(app.reserve_keyed(&token, &body, "second-try").await).await;
    assert_eq!(keyed_again["id"], keyed["id"]);

    // Inventory hears of each reservation once.
    let a: ReservationRequested = bus.next_event().await;
    let b: ReservationRequested = bus.next_event().await;
    let ids = [a.reservation_id.to_string(), b.reservation_id.to_string()];
    assert!(
        ids.contains(&first["id"].as_str().expect("an id").to_string()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&keyed["id"].as_str().expect("an id").to_string()),
        "{ids:?}"
    );
    bus.assert_quiet(Duration::from_millis(500)).await;
    let rows = app
        .count("reservations", &format!("cart_id = '{cart_id}'"))
        .await;
    assert_eq!(rows, 2);

    let bad = app.reserve_keyed(&token, &body, "with space").await;
    assert_error(bad, 400, "invalid_idempotency_key").await;
}
