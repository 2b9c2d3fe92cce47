use crate::helpers::{ensure_infra, http, json_body, spawn_suite_with, unique_prefix};
use deadpool_redis::redis;

#[tokio::test]
async fn seeded_users_log_in_and_seeded_products_have_their_stock() {
    // Arrange: a key left over from an earlier run under the suite's Redis prefix
    ensure_infra();
    let prefix = unique_prefix();
    let redis_client = redis::Client::open("redis://127.0.0.1:6379").expect("redis url");
    let mut conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let leftover = format!("{prefix}:leftover");
    let _: () = redis::cmd("SET")
        .arg(&leftover)
        .arg("1")
        .query_async(&mut conn)
        .await
        .expect("SET");

    // Act
    let t = spawn_suite_with(|o| {
        o.db_prefix = prefix.clone();
        o.redis_prefix = prefix.clone();
        o.users = 50;
        o.products = 4;
        o.stock = 7;
        o.per_user_limit = 2;
    })
    .await;

    // Assert: fresh Redis state
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&leftover)
        .query_async(&mut conn)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "the suite kept a stale Redis key");

    // ... users user1..user50, one hash for all
    let gateway = t.db("gateway").await;
    let row = gateway
        .query_one(
            "SELECT count(*), count(DISTINCT password_hash), min(username), max(username) FROM users",
            &[],
        )
        .await
        .expect("users");
    assert_eq!(row.get::<_, i64>(0), 50);
    assert_eq!(row.get::<_, i64>(1), 1);
    let r = http()
        .post(t.url("/api/auth/login"))
        .json(&serde_json::json!({"username": "user50", "password": "flashsale"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    assert!(json_body(r).await["token"].is_string());

    // ... products in the catalog and in stock
    assert_eq!(t.suite.products().len(), 4);
    let inventory = t.db("inventory").await;
    for p in t.suite.products() {
        let row = gateway
            .query_one(
                "SELECT name, price_cents FROM products WHERE id = $1",
                &[&p.id],
            )
            .await
            .expect("catalog row");
        assert_eq!(row.get::<_, String>(0), p.name);
        let row = inventory
            .query_one(
                "SELECT initial, available, reserved, sold, per_user_limit FROM stock WHERE product_id = $1",
                &[&p.id],
            )
            .await
            .expect("stock row");
        let values: Vec<i32> = (0..5).map(|i| row.get(i)).collect();
        assert_eq!(values, vec![7, 7, 0, 0, 2], "{}", p.name);
    }
    assert_eq!(t.suite.products()[0].id, harness::seed::product_id(1));

    t.teardown().await;
}
