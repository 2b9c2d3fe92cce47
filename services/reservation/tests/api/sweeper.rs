use crate::helpers::{spawn_app, spawn_app_with, spawn_app_with_inventory, Row};
use reservation::{sweep_once, SweepStats};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test]
async fn the_sweeper_expires_only_unbound_reservations_past_due() {
    let app = spawn_app().await;
    let past_due = app
        .insert(Row {
            expires_in_secs: -1,
            ..Row::default()
        })
        .await;
    let pending_past_due = app
        .insert(Row {
            status: "PENDING",
            expires_in_secs: -1,
            ..Row::default()
        })
        .await;
    let bound = app
        .insert(Row {
            expires_in_secs: -1,
            order_id: Some(Uuid::new_v4()),
            ..Row::default()
        })
        .await;
    let live = app.insert(Row::default()).await;
    let final_past_due = app
        .insert(Row {
            status: "SOLD_OUT",
            expires_in_secs: -1,
            ..Row::default()
        })
        .await;

    let stats = sweep_once(&app.pool, &app.client).await.expect("sweep");

    assert_eq!(stats.expired, 2);
    for id in [past_due, pending_past_due] {
        let stored = app.stored(id).await;
        assert_eq!(stored.status, "EXPIRED");
        // Nothing listens upstream: the release is still owed.
        assert!(stored.release_pending);
    }
    for (id, status) in [
        (bound, "RESERVED"),
        (live, "RESERVED"),
        (final_past_due, "SOLD_OUT"),
    ] {
        let stored = app.stored(id).await;
        assert_eq!(stored.status, status);
        assert!(!stored.release_pending);
    }
    assert!(stats.release_failed >= 1);
    assert_eq!(stats.released, 0);
}

#[tokio::test]
async fn concurrent_sweeps_never_expire_a_row_twice() {
    let app = spawn_app().await;
    const ROWS: usize = 450;
    {
        let client = app.pool.get().await.expect("connection");
        client
            .execute(
                "INSERT INTO reservations
                   (id, user_id, cart_id, status, items, total_cents, expires_at)
                 SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'RESERVED',
                        '[]'::jsonb, 0, now() - interval '1 second' * g
                 FROM generate_series(1, $1::int) AS g",
                &[&(ROWS as i32)],
            )
            .await
            .expect("insert past-due reservations");
    }

    let mut expired = 0;
    for _ in 0..10 {
        let passes =
            futures::future::join_all((0..4).map(|_| sweep_once(&app.pool, &app.client))).await;
        let this_round: usize = passes.into_iter().map(|p| p.expect("sweep").expired).sum();
        expired += this_round;
        if this_round == 0 {
            break;
        }
    }

    assert_eq!(expired, ROWS, "every row expired exactly once");
    assert_eq!(app.count_with_status("EXPIRED").await, ROWS as i64);
    assert_eq!(app.count_with_status("RESERVED").await, 0);
}

#[tokio::test]
async fn the_sweeper_gives_expired_stock_back_at_inventory() {
    let app = spawn_app_with_inventory().await;
    let product = app.seed_stock(10).await;
    let user = Uuid::new_v4();
    let id = app
        .insert(Row {
            user_id: user,
            product_id: product,
            quantity: 2,
            expires_in_secs: -1,
            ..Row::default()
        })
        .await;
    app.hold_at_inventory(id, user, product, 2).await;
    assert_eq!(app.stock(product).await, (8, 2, 0));

    let first = sweep_once(&app.pool, &app.client).await.expect("sweep");
    let second = sweep_once(&app.pool, &app.client).await.expect("sweep");

    assert_eq!(
        first,
        SweepStats {
            expired: 1,
            released: 1,
            release_failed: 0
        }
    );
    assert_eq!(second, SweepStats::default());
    assert_eq!(app.stock(product).await, (10, 0, 0));
    let stored = app.stored(id).await;
    assert_eq!(stored.status, "EXPIRED");
    assert!(!stored.release_pending);
}

#[tokio::test]
async fn a_release_that_failed_is_retried_once_its_lease_runs_out() {
    let app = spawn_app_with_inventory().await;
    let id = app
        .insert(Row {
            status: "CANCELLED",
            ..Row::default()
        })
        .await;
    {
        // A release owed whose lease (taken by a replica that then failed) has run out.
        let client = app.pool.get().await.expect("connection");
        client
            .execute(
                "UPDATE reservations SET release_pending = true,
                     release_claimed_until = now() - interval '1 second'
                 WHERE id = $1",
                &[&id],
            )
            .await
            .expect("owe a release");
    }

    let stats = sweep_once(&app.pool, &app.client).await.expect("sweep");

    assert_eq!(stats.released, 1);
    assert!(!app.stored(id).await.release_pending);
}

#[tokio::test]
async fn the_background_sweeper_expires_past_due_reservations() {
    let app = spawn_app_with(|s| s.sweep_interval_ms = 50).await;
    let id = app
        .insert(Row {
            expires_in_secs: -1,
            ..Row::default()
        })
        .await;

    let deadline = Instant::now() + Duration::from_secs(10);
    while app.stored(id).await.status != "EXPIRED" {
        assert!(Instant::now() < deadline, "not expired in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
