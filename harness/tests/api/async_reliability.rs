//! What async mode promises beyond the shared journey tests: duplicates have no second
//! effect, poison ends in a dead-letter queue that `dlq replay` can re-publish, a replica
//! killed mid-sale loses nothing, and the broker may be away.

use crate::helpers::{drained_report, spawn_suite_with, TestSuite};
use crate::private_servers::TcpProxy;
use crate::shopper::{spawn_checkouts, Api, Outcome};
use common::events::{Event, PaymentSucceeded, ReservationBound, ReservationRequested};
use common::messaging::{Broker, BrokerOptions};
use common::Mode;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A publisher on the suite's exchange, as if it were one of its services.
async fn publisher(t: &TestSuite) -> (Broker, CancellationToken) {
    let state = t.suite.state();
    let cancel = CancellationToken::new();
    let (broker, _task) = Broker::start(
        BrokerOptions {
            url: state.amqp_url.clone(),
            prefix: state.db_prefix.clone(),
            service: "order",
            instance: "test-publisher".into(),
            prefetch: 1,
            delivery_limit: 8,
            frame_max: 8192,
        },
        None,
        cancel.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker.is_connected() {
        assert!(
            Instant::now() < deadline,
            "the test publisher never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (broker, cancel)
}

async fn count(t: &TestSuite, service: &str, sql: &str) -> i64 {
    t.db(service)
        .await
        .query_one(sql, &[])
        .await
        .expect(sql)
        .get(0)
}

#[tokio::test]
async fn a_redelivered_or_duplicated_event_changes_nothing_the_second_time() {
    let t = spawn_suite_with(|o| o.mode = Mode::Async).await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let Outcome::Confirmed { order_id } = api.shopper(1).await.checkout(&product).await else {
        panic!("the checkout did not confirm");
    };
    assert!(drained_report(&t).await.ok());
    let order: Uuid = order_id.parse().expect("order id");
    let row = t
        .db("payment")
        .await
        .query_one(
            "SELECT id, user_id, amount_cents FROM payments WHERE order_id = $1",
            &[&order],
        )
        .await
        .expect("payment");
    let (payment_id, user_id, amount): (Uuid, Uuid, i64) = (row.get(0), row.get(1), row.get(2));
    let reservation_id: Uuid = t
        .db("order")
        .await
        .query_one("SELECT reservation_id FROM orders WHERE id = $1", &[&order])
        .await
        .expect("order")
        .get(0);
    let succeeded = serde_json::to_vec(&PaymentSucceeded {
        order_id: order,
        reservation_id,
        payment_id,
    })
    .expect("json");
    let bound = serde_json::to_vec(&ReservationBound {
        order_id: order,
        reservation_id,
        user_id,
        total_cents: amount,
    })
    .expect("json");
    let (broker, cancel) = publisher(&t).await;
    let same = Uuid::new_v4();

    broker
        .publish(&[
            // A redelivery: the same message twice.
            (PaymentSucceeded::NAME.into(), same, succeeded.clone()),
            (PaymentSucceeded::NAME.into(), same, succeeded.clone()),
            // A duplicate event: the same fact under a new message id.
            (PaymentSucceeded::NAME.into(), Uuid::new_v4(), succeeded),
            (ReservationBound::NAME.into(), Uuid::new_v4(), bound),
        ])
        .await
        .expect("publish");

    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(
        (report.products[0].sold, report.products[0].reserved),
        (1, 0)
    );
    assert_eq!(
        count(&t, "payment", "SELECT count(*) FROM provider_charges").await,
        1
    );
    assert_eq!(
        count(
            &t,
            "order",
            "SELECT count(*) FROM orders WHERE status = 'CONFIRMED'"
        )
        .await,
        1
    );
    cancel.cancel();
    t.teardown().await;
}

#[tokio::test]
async fn a_malformed_message_is_dead_lettered_and_dlq_replay_publishes_it_again() {
    let t = spawn_suite_with(|o| o.mode = Mode::Async).await;
    let state = t.suite.state().clone();
    let (broker, cancel) = publisher(&t).await;

    broker
        .publish(&[(
            ReservationRequested::NAME.into(),
            Uuid::new_v4(),
            b"{\"reservation_id\": 42".to_vec(),
        )])
        .await
        .expect("publish");

    let dead = |n: usize| {
        let (url, prefix) = (state.amqp_url.clone(), state.db_prefix.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let letters = harness::broker::dead_letters(&url, &prefix, Some("inventory"))
                    .await
                    .expect("dlq list");
                if letters.len() == n || Instant::now() > deadline {
                    return letters;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let letters = dead(1).await;
    assert_eq!(letters.len(), 1, "the poison message is in inventory's DLQ");
    assert_eq!(letters[0].event_type, ReservationRequested::NAME);
    let report = harness::verify::run_with_broker(
        &state.database_url,
        &state.db_prefix,
        &state.amqp_url,
        Duration::from_secs(5),
    )
    .await
    .expect("verify");
    assert!(
        !report.ok() && report.dead_letters == 1,
        "verify reports the dead letter: {}",
        report.render_text()
    );

    let replayed = harness::broker::replay(&state.amqp_url, &state.db_prefix, Some("inventory"))
        .await
        .expect("replay");
    assert_eq!(replayed, 1);
    // Still malformed: the service rejects it again, so it comes back to the DLQ, which
    // proves it went through the service's queue once more.
    let letters = dead(1).await;
    assert_eq!(
        letters.len(),
        1,
        "the replayed message was consumed and dead-lettered again"
    );
    cancel.cancel();
    t.teardown().await;
}

#[tokio::test]
async fn killing_a_payment_and_an_inventory_replica_mid_sale_loses_no_order() {
    let mut t = spawn_suite_with(|o| {
        o.mode = Mode::Async;
        o.replicas = 2;
        o.users = 200;
        o.products = 1;
        o.stock = 150;
        o.per_user_limit = 1;
        // A slower provider keeps charges in flight when the replicas die.
        o.extra_env.push(("PAYMENT_LATENCY_MS".into(), "30".into()));
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let shoppers = api.shoppers(200).await;
    let checkouts = spawn_checkouts(shoppers, &product);

    tokio::time::sleep(Duration::from_millis(400)).await;
    t.suite
        .kill_replica("payment", 0, Signal::SIGKILL)
        .await
        .expect("kill payment-0");
    t.suite
        .kill_replica("inventory", 1, Signal::SIGKILL)
        .await
        .expect("kill inventory-1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.suite
        .restart_replica("payment", 0)
        .await
        .expect("restart payment-0");
    t.suite
        .restart_replica("inventory", 1)
        .await
        .expect("restart inventory-1");
    let outcomes: Vec<Outcome> = futures::future::join_all(checkouts)
        .await
        .into_iter()
        .map(|r| r.expect("checkout task"))
        .collect();

    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Confirmed { .. } | Outcome::SoldOut))
        .collect();
    assert!(
        failed.is_empty(),
        "every checkout reached a final state: {failed:?}"
    );
    let confirmed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Confirmed { .. }))
        .count();
    assert_eq!(confirmed, 150);
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(report.products[0].sold, 150);
    assert_eq!(
        count(&t, "payment", "SELECT count(*) FROM provider_charges").await,
        150,
        "no double charge"
    );
    t.teardown().await;
}

#[tokio::test]
async fn services_start_while_rabbitmq_is_away_and_keep_accepted_work_in_the_outbox() {
    let proxy = TcpProxy::down_to(5672);
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let starting = tokio::spawn(spawn_suite_with(move |o| {
        o.mode = Mode::Async;
        o.amqp_url = url;
    }));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!starting.is_finished(), "not ready while RabbitMQ is away");

    proxy.start().await;
    let t = starting
        .await
        .expect("the suite became ready once RabbitMQ was back");
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    assert!(matches!(
        api.shopper(1).await.checkout(&product).await,
        Outcome::Confirmed { .. }
    ));

    proxy.stop();
    let shopper = api.shopper(2).await;
    let cart = shopper.create_cart().await;
    shopper.add_item(&cart, &product, 1).await;
    let (status, body, _) = shopper
        .post("/api/reservations", serde_json::json!({"cart_id": cart}))
        .await;
    assert_eq!(status, 202, "accepted while the broker is away: {body}");
    let id = body["id"].as_str().expect("id").to_string();
    assert!(
        count(
            &t,
            "reservation",
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        .await
            >= 1,
        "kept in the outbox"
    );

    proxy.start().await;
    let reservation = shopper
        .poll(&format!("/api/reservations/{id}"), &["PENDING"])
        .await;
    assert_eq!(
        reservation["status"], "RESERVED",
        "delivered once RabbitMQ was back"
    );
    let (status, paid, _) = shopper.pay(&id, None).await;
    assert_eq!(status, 200, "{paid}");
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    t.teardown().await;
}
