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

/// Waits until some other session of the test database is blocked on a row or a tuple lock.
async fn until_a_session_waits_for_a_lock(app: &crate::helpers::TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting = app
            .count(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await;
        if waiting > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hold never waited for the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Hold one unit of `product` for `user` while a rival transaction that ran `rival_sql`
/// (with `$1` = the user, `$2` = the product) keeps its rows locked: the rival commits only
/// once the hold, past its checks, waits for it.
async fn hold_against_a_rival(
    app: &crate::helpers::TestApp,
    user: Uuid,
    product: Uuid,
    rival_sql: &str,
) -> (u16, serde_json::Value) {
    let mut rival = app.sql().await;
    let tx = rival.transaction().await.expect("begin");
    tx.execute(rival_sql, &[&user, &product])
        .await
        .expect("the rival's write");
    let hold = app.hold(Uuid::new_v4(), user, product, 1);
    let commit_rival = async {
        until_a_session_waits_for_a_lock(app).await;
        tx.commit().await.expect("commit");
    };
    let (answer, ()) = tokio::join!(hold, commit_rival);
    answer
}

// hold_stock checks the stock before it writes anything; a concurrent hold that takes the
// last units between that check and the guarded update must still win alone, and the loser's
// user count and hold row must roll back with it.
#[tokio::test]
async fn a_hold_that_loses_the_last_unit_after_its_checks_is_sold_out_and_leaves_nothing() {
    let app = spawn_app().await;
    let product = app.product(1, 0).await;
    // The rival takes the last unit: the hold still reads one available (the rival has not
    // committed), writes its rows, then waits on the stock row.
    let (status, body) = hold_against_a_rival(
        &app,
        Uuid::new_v4(),
        product,
        "UPDATE stock SET available = available - 1, reserved = reserved + 1
         WHERE product_id = $2 AND $1::uuid IS NOT NULL",
    )
    .await;

    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("sold_out")),
        "{body}"
    );
    assert_eq!(app.level(product).await, (0, 1, 0));
    let written = app
        .count(
            "SELECT (SELECT count(*) FROM holds) + (SELECT count(*) FROM user_units)",
            &[],
        )
        .await;
    assert_eq!(written, 0, "the losing hold's rows must roll back");
    app.cleanup().await;
}

// The same for the per-user limit: a hold of the same user for another reservation counts the
// last allowed unit between this hold's check and its guarded upsert.
#[tokio::test]
async fn a_hold_that_loses_the_users_last_unit_after_its_checks_is_limited_and_leaves_nothing() {
    let app = spawn_app().await;
    let product = app.product(10, 1).await;
    let user = Uuid::new_v4();
    let (status, body) = hold_against_a_rival(
        &app,
        user,
        product,
        "INSERT INTO user_units (user_id, product_id, units) VALUES ($1, $2, 1)",
    )
    .await;

    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("limit_reached")),
        "{body}"
    );
    assert_eq!(app.level(product).await, (10, 0, 0));
    assert_eq!(app.count("SELECT count(*) FROM holds", &[]).await, 0);
    let units = app
        .count(
            "SELECT units::bigint FROM user_units WHERE user_id = $1",
            &[&user],
        )
        .await;
    assert_eq!(units, 1, "only the rival's unit is counted");
    app.cleanup().await;
}

// All or nothing across products: the second product is short, so the first is not held.
#[tokio::test]
async fn a_hold_of_two_products_takes_neither_when_one_is_short() {
    let app = spawn_app().await;
    let plenty = app.product(10, 0).await;
    let short = app.product(1, 0).await;

    let (status, body) = app
        .post(
            "/internal/inventory/holds",
            json!({
                "reservation_id": Uuid::new_v4(),
                "user_id": Uuid::new_v4(),
                "items": [
                    {"product_id": plenty, "quantity": 2},
                    {"product_id": short, "quantity": 2},
                ],
            }),
        )
        .await;

    assert_eq!((status, body["code"].as_str()), (409, Some("sold_out")));
    assert_eq!(app.level(plenty).await, (10, 0, 0));
    assert_eq!(app.level(short).await, (1, 0, 0));
    app.cleanup().await;
}
