use crate::helpers::spawn_app;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_hold_moves_stock_from_available_to_reserved() {
    let app = spawn_app().await;
    let product = app.product(10, 0).await;

    let (status, body) = app.hold(Uuid::new_v4(), Uuid::new_v4(), product, 3).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "HELD");
    assert_eq!(app.level(product).await, (7, 3, 0));
    app.cleanup().await;
}

#[tokio::test]
async fn a_replayed_hold_takes_stock_once() {
    let app = spawn_app().await;
    let product = app.product(10, 0).await;
    let (reservation, user) = (Uuid::new_v4(), Uuid::new_v4());

    for _ in 0..3 {
        let (status, _) = app.hold(reservation, user, product, 2).await;
        assert_eq!(status, 200);
    }

    assert_eq!(app.level(product).await, (8, 2, 0));
    app.cleanup().await;
}

#[tokio::test]
async fn hold_is_rejected_as_sold_out_when_stock_is_short_and_changes_nothing() {
    let app = spawn_app().await;
    let product = app.product(2, 0).await;

    let (status, body) = app.hold(Uuid::new_v4(), Uuid::new_v4(), product, 3).await;

    assert_eq!(status, 409);
    assert_eq!(body["code"], "sold_out");
    assert_eq!(app.level(product).await, (2, 0, 0));
    let units: i64 = app
        .sql()
        .await
        .query_one("SELECT count(*) FROM user_units WHERE units > 0", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(units, 0, "a rejected hold must not count against the user");
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_holds_never_take_more_than_the_stock() {
    let app = spawn_app().await;
    let product = app.product(50, 0).await;

    let attempts = (0..200).map(|_| app.hold(Uuid::new_v4(), Uuid::new_v4(), product, 1));
    let results = futures::future::join_all(attempts).await;

    let held = results.iter().filter(|(s, _)| *s == 200).count();
    let sold_out = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "sold_out")
        .count();
    assert_eq!((held, sold_out), (50, 150));
    assert_eq!(app.level(product).await, (0, 50, 0));
    app.cleanup().await;
}

#[tokio::test]
async fn one_user_racing_itself_never_exceeds_the_per_user_limit() {
    let app = spawn_app().await;
    let product = app.product(100, 2).await;
    let user = Uuid::new_v4();

    let attempts = (0..20).map(|_| app.hold(Uuid::new_v4(), user, product, 1));
    let results = futures::future::join_all(attempts).await;

    let held = results.iter().filter(|(s, _)| *s == 200).count();
    let limited = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "limit_reached")
        .count();
    assert_eq!((held, limited), (2, 18));
    assert_eq!(app.level(product).await, (98, 2, 0));
    app.cleanup().await;
}

#[tokio::test]
async fn commit_sells_held_stock_once_and_release_after_commit_is_refused() {
    let app = spawn_app().await;
    let product = app.product(5, 0).await;
    let reservation = Uuid::new_v4();
    app.hold(reservation, Uuid::new_v4(), product, 2).await;

    let path = format!("/internal/inventory/holds/{reservation}");
    let (first, _) = app.post(&format!("{path}/commit"), json!({})).await;
    let (again, _) = app.post(&format!("{path}/commit"), json!({})).await;
    let (release, body) = app.post(&format!("{path}/release"), json!({})).await;

    assert_eq!((first, again), (200, 200));
    assert_eq!((release, body["code"].as_str()), (409, Some("hold_sold")));
    assert_eq!(app.level(product).await, (3, 0, 2));
    app.cleanup().await;
}

#[tokio::test]
async fn release_returns_stock_and_the_users_units_once() {
    let app = spawn_app().await;
    let product = app.product(5, 1).await;
    let (reservation, user) = (Uuid::new_v4(), Uuid::new_v4());
    app.hold(reservation, user, product, 1).await;

    let path = format!("/internal/inventory/holds/{reservation}/release");
    for _ in 0..2 {
        let (status, body) = app.post(&path, json!({})).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("RELEASED")));
    }

    assert_eq!(app.level(product).await, (5, 0, 0));
    let (status, _) = app.hold(Uuid::new_v4(), user, product, 1).await;
    assert_eq!(
        status, 200,
        "the released unit no longer counts against the limit"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_hold_arriving_after_its_release_takes_nothing() {
    let app = spawn_app().await;
    let product = app.product(5, 0).await;
    let reservation = Uuid::new_v4();

    let (released, _) = app
        .post(
            &format!("/internal/inventory/holds/{reservation}/release"),
            json!({}),
        )
        .await;
    let (status, body) = app.hold(reservation, Uuid::new_v4(), product, 1).await;

    assert_eq!(released, 200);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("hold_released"))
    );
    assert_eq!(app.level(product).await, (5, 0, 0));
    app.cleanup().await;
}

#[tokio::test]
async fn unknown_products_and_bad_input_are_refused_with_json_errors() {
    let app = spawn_app().await;
    let product = app.product(5, 0).await;

    let (unknown, body) = app
        .hold(Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), 1)
        .await;
    assert_eq!(
        (unknown, body["code"].as_str()),
        (422, Some("unknown_product"))
    );
    for qty in [0, -1, 1 << 32] {
        let (status, body) = app.hold(Uuid::new_v4(), Uuid::new_v4(), product, qty).await;
        assert_eq!(status, 422, "quantity {qty}: {body}");
        assert_eq!(body["code"], "invalid_body");
    }
    let (status, body) = app
        .post(
            "/internal/inventory/holds",
            json!({"reservation_id": "nope", "user_id": Uuid::new_v4(), "items": []}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_body")));
    assert_eq!(app.level(product).await, (5, 0, 0));
    app.cleanup().await;
}

#[tokio::test]
async fn internal_routes_do_not_exist_without_the_internal_key() {
    let app = spawn_app().await;

    let resp = app
        .http
        .get(format!("{}/internal/inventory/stock", app.base))
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status().as_u16(), 404);
    let body: serde_json::Value = resp.json().await.expect("json body");
    assert_eq!(body["code"], "not_found");
    app.cleanup().await;
}

#[tokio::test]
async fn another_method_on_a_known_path_is_a_json_405() {
    let app = spawn_app().await;

    let resp = app
        .http
        .get(format!("{}/internal/inventory/holds", app.base))
        .header(common::auth::INTERNAL_KEY_HEADER, &app.internal_key)
        .send()
        .await
        .expect("request");

    assert_eq!(resp.status().as_u16(), 405);
    let body: serde_json::Value = resp.json().await.expect("json body");
    assert_eq!(body["code"], "method_not_allowed");
    app.cleanup().await;
}
