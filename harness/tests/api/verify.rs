use crate::helpers::{spawn_suite, TestSuite};
use std::process::Command;
use std::time::Duration;

async fn verify(t: &TestSuite) -> harness::Report {
    let state = t.suite.state();
    harness::verify::run(
        &state.database_url,
        &state.db_prefix,
        Duration::from_secs(10),
    )
    .await
    .expect("verify")
}

/// `flashsale verify --json` against the suite's run folder: exit code and parsed report.
fn verify_cli(t: &TestSuite) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["verify", "--json", "--run-dir"])
        .arg(t.run_dir())
        .output()
        .expect("run flashsale verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// Break the table's own conservation CHECK so the corruption can be written at all.
async fn drop_stock_checks(inventory: &tokio_postgres::Client) {
    let rows = inventory
        .query(
            "SELECT conname FROM pg_constraint
             WHERE conrelid = 'stock'::regclass AND contype = 'c'",
            &[],
        )
        .await
        .expect("constraints");
    for row in rows {
        let name: String = row.get(0);
        inventory
            .batch_execute(&format!("ALTER TABLE stock DROP CONSTRAINT \"{name}\""))
            .await
            .expect("drop constraint");
    }
}

#[tokio::test]
async fn verify_passes_on_a_fresh_suite_and_flags_broken_conservation() {
    // Arrange
    let t = spawn_suite().await;

    // Act / Assert: a fresh suite holds every invariant, in the library and the CLI
    let report = verify(&t).await;
    assert!(report.ok(), "{:?}", report.violations);
    assert_eq!(report.products.len(), 3);
    for p in &report.products {
        assert!(p.ok);
        assert_eq!((p.initial, p.available, p.reserved, p.sold), (10, 10, 0, 0));
        assert!(p
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("Flash product")));
    }
    let (code, json) = verify_cli(&t);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["products"].as_array().map(Vec::len), Some(3));

    // Arrange: one unit sold out of thin air
    let inventory = t.db("inventory").await;
    drop_stock_checks(&inventory).await;
    let product = t.suite.products()[0].id;
    inventory
        .execute(
            "UPDATE stock SET sold = sold + 1 WHERE product_id = $1",
            &[&product],
        )
        .await
        .expect("corrupt");

    // Act
    let report = verify(&t).await;

    // Assert: conservation (1) and sold = confirmed units (2) are violated for that product
    assert!(!report.ok());
    assert!(
        !report.violations_of(1).is_empty(),
        "{:?}",
        report.violations
    );
    assert!(
        !report.violations_of(2).is_empty(),
        "{:?}",
        report.violations
    );
    let row = report
        .products
        .iter()
        .find(|p| p.product_id == product)
        .expect("row");
    assert!(!row.ok);
    assert!(report.products.iter().filter(|p| p.ok).count() == 2);
    let (code, json) = verify_cli(&t);
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["ok"], false);
    assert!(!json["violations"]
        .as_array()
        .expect("violations")
        .is_empty());

    t.teardown().await;
}

#[tokio::test]
async fn verify_flags_a_user_over_the_per_user_limit() {
    // Arrange: one user holds two SOLD units of a product limited to one per user
    let t = spawn_suite().await;
    let inventory = t.db("inventory").await;
    let product = t.suite.products()[1].id;
    let user = harness::seed::user_id(3);
    for _ in 0..2 {
        inventory
            .execute(
                "INSERT INTO holds (reservation_id, product_id, user_id, quantity, state)
                 VALUES (gen_random_uuid(), $1, $2, 1, 'SOLD')",
                &[&product, &user],
            )
            .await
            .expect("insert hold");
    }

    // Act
    let report = verify(&t).await;

    // Assert
    let fairness = report.violations_of(5);
    assert_eq!(fairness.len(), 1, "{:?}", report.violations);
    assert!(
        fairness[0].message.contains(&user.to_string()),
        "{}",
        fairness[0].message
    );
    assert!(!report.ok());

    t.teardown().await;
}

#[tokio::test]
async fn verify_flags_an_unpaid_confirmed_order_and_work_stuck_past_the_grace() {
    // Arrange: stop the services first (their sweepers would repair what we break), then
    // write a CONFIRMED order nobody paid, an order PENDING for an hour, and a reservation an
    // hour past its expiry that nothing released
    let mut t = spawn_suite().await;
    t.suite.stop().await.expect("stop");
    let product = t.suite.products()[0].id;
    let user = harness::seed::user_id(1);
    let items = serde_json::json!([{"product_id": product, "quantity": 1, "price_cents": 1999}]);
    let order = t.db("order").await;
    let unpaid = uuid::Uuid::new_v4();
    let stuck = uuid::Uuid::new_v4();
    for (id, status) in [(unpaid, "CONFIRMED"), (stuck, "PENDING")] {
        order
            .execute(
                "INSERT INTO orders (id, reservation_id, user_id, status, total_cents, items, updated_at)
                 VALUES ($1, gen_random_uuid(), $2, $3, 1999, $4, now() - interval '1 hour')",
                &[&id, &user, &status, &items],
            )
            .await
            .expect("insert order");
    }
    let reservation = t.db("reservation").await;
    let expired = uuid::Uuid::new_v4();
    reservation
        .execute(
            "INSERT INTO reservations (id, user_id, cart_id, status, items, total_cents, expires_at)
             VALUES ($1, $2, gen_random_uuid(), 'RESERVED', $3, 1999, now() - interval '1 hour')",
            &[&expired, &user, &items],
        )
        .await
        .expect("insert reservation");

    // Act
    let report = verify(&t).await;

    // Assert
    let exactly_once: Vec<&str> = report
        .violations_of(3)
        .iter()
        .map(|v| v.message.as_str())
        .collect();
    assert!(
        exactly_once
            .iter()
            .any(|m| m.contains("payment") && m.contains(&unpaid.to_string())),
        "{exactly_once:?}"
    );
    let stuck_work: Vec<&str> = report
        .violations_of(4)
        .iter()
        .map(|v| v.message.as_str())
        .collect();
    assert!(
        stuck_work.iter().any(|m| m.contains(&stuck.to_string())),
        "{stuck_work:?}"
    );
    assert!(
        stuck_work.iter().any(|m| m.contains(&expired.to_string())),
        "{stuck_work:?}"
    );
    assert_eq!(report.orders.get("CONFIRMED"), Some(&1));
    assert_eq!(report.orders.get("PENDING"), Some(&1));

    t.teardown().await;
}
