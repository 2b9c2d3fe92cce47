//! The messaging layer against a real RabbitMQ and PostgreSQL, each test on its own queue
//! prefix and database.

use common::events::{Event, ReservationBound};
use common::messaging::{
    dead_letter_queue, outbox, queue_name, Broker, BrokerOptions, HandleError, Handler, Incoming,
};
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn options(prefix: &str, service: &'static str) -> BrokerOptions {
    BrokerOptions {
        url: AMQP.into(),
        prefix: prefix.into(),
        service,
        instance: format!("{service}-test"),
        prefetch: 8,
        delivery_limit: 3,
        frame_max: 8192,
    }
}

fn prefix() -> String {
    format!("t_mq_{}", &Uuid::new_v4().simple().to_string()[..8])
}

async fn wait_connected(broker: &Broker) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker.is_connected() {
        assert!(Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn message_count(queue: &str) -> u32 {
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("passive declare");
    let _ = conn.close(200, "bye".into()).await;
    q.message_count()
}

async fn cleanup(prefix: &str) {
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    for (service, _) in common::events::SUBSCRIPTIONS {
        for q in [
            queue_name(prefix, service),
            dead_letter_queue(prefix, service),
        ] {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for x in [format!("{prefix}.events"), format!("{prefix}.dlx")] {
        let _ = ch
            .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "bye".into()).await;
}

fn recording_handler(
    seen: Arc<Mutex<Vec<Incoming>>>,
    fail: Option<fn() -> HandleError>,
) -> Handler {
    Handler::each(move |incoming: Incoming| {
        let seen = seen.clone();
        Box::pin(async move {
            seen.lock().expect("lock").push(incoming.clone());
            incoming.decode::<ReservationBound>()?;
            match fail {
                Some(f) => Err(f()),
                None => Ok(()),
            }
        })
    })
}

fn bound() -> ReservationBound {
    ReservationBound {
        order_id: Uuid::new_v4(),
        reservation_id: Uuid::new_v4(),
        user_id: Uuid::new_v4(),
        total_cents: 1000,
    }
}

#[tokio::test]
async fn a_published_event_reaches_the_consuming_service_once_and_is_acked() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (consumer, consumer_task) = Broker::start(
        options(&prefix, "payment"),
        Some(recording_handler(seen.clone(), None)),
        cancel.clone(),
    );
    let (publisher, publisher_task) =
        Broker::start(options(&prefix, "order"), None, cancel.clone());
    wait_connected(&publisher).await;
    wait_connected(&consumer).await;
    let event = bound();

    publisher
        .publish(&[(
            ReservationBound::NAME.into(),
            Uuid::new_v4(),
            serde_json::to_vec(&event).expect("json"),
        )])
        .await
        .expect("publish confirmed");

    assert!(
        until(|| seen.lock().expect("lock").len() == 1).await,
        "delivered"
    );
    let got = seen.lock().expect("lock")[0]
        .decode::<ReservationBound>()
        .expect("decode");
    assert_eq!(got, event);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        seen.lock().expect("lock").len(),
        1,
        "acked, not redelivered"
    );
    cancel.cancel();
    let _ = tokio::join!(consumer_task, publisher_task);
    assert_eq!(message_count(&queue_name(&prefix, "payment")).await, 0);
    cleanup(&prefix).await;
}

#[test]
fn the_frame_size_asked_for_is_the_default_unless_the_url_names_one() {
    let uri = common::messaging::amqp_uri(AMQP, 8192).expect("parse");
    assert_eq!(uri.query.frame_max, Some(8192));
    assert_eq!(uri.vhost, "/");
    let named =
        common::messaging::amqp_uri(&format!("{AMQP}?frame_max=65536"), 8192).expect("parse");
    assert_eq!(named.query.frame_max, Some(65536));
    let err = common::messaging::amqp_uri("http://nope", 8192).expect_err("not AMQP");
    assert!(err.contains("is not an AMQP URL"), "{err}");
}

/// What `rabbitmqctl -q <args>` prints; it must succeed.
fn rabbitmqctl(args: &[&str]) -> String {
    let out = std::process::Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .output()
        .expect("run rabbitmqctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The frame size a connection negotiated, as RabbitMQ reports it; the connection is found
/// by the unique name it gave in its client properties.
fn negotiated_frame_max(connection_name: &str) -> Option<u32> {
    let quoted = format!("\"{connection_name}\"");
    rabbitmqctl(&["list_connections", "frame_max", "client_properties"])
        .lines()
        .find(|line| line.contains(&quoted))?
        .split('\t')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[tokio::test]
async fn a_small_frame_size_is_negotiated_and_still_carries_events_many_frames_long() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let small = |service| BrokerOptions {
        // AMQP's smallest frame: a 40 KiB event below takes ten.
        frame_max: 4096,
        instance: format!("{prefix}-{service}"),
        ..options(&prefix, service)
    };
    let (consumer, consumer_task) = Broker::start(
        small("payment"),
        Some(recording_handler(seen.clone(), None)),
        cancel.clone(),
    );
    let (publisher, publisher_task) = Broker::start(small("order"), None, cancel.clone());
    wait_connected(&publisher).await;
    wait_connected(&consumer).await;
    assert_eq!(
        negotiated_frame_max(&format!("{prefix}-payment")),
        Some(4096)
    );
    assert_eq!(negotiated_frame_max(&format!("{prefix}-order")), Some(4096));

    let mut payload = serde_json::to_value(bound()).expect("json");
    payload["note"] = "x".repeat(40 * 1024).into();
    let payload = serde_json::to_vec(&payload).expect("json");
    publisher
        .publish(&[(
            ReservationBound::NAME.into(),
            Uuid::new_v4(),
            payload.clone(),
        )])
        .await
        .expect("publish confirmed");

    assert!(
        until(|| seen.lock().expect("lock").len() == 1).await,
        "delivered"
    );
    assert_eq!(seen.lock().expect("lock")[0].payload, payload, "intact");
    cancel.cancel();
    let _ = tokio::join!(consumer_task, publisher_task);
    assert_eq!(message_count(&queue_name(&prefix, "payment")).await, 0);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_malformed_message_is_dead_lettered_instead_of_looping() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (consumer, task) = Broker::start(
        options(&prefix, "payment"),
        Some(recording_handler(seen.clone(), None)),
        cancel.clone(),
    );
    wait_connected(&consumer).await;

    consumer
        .publish(&[(
            ReservationBound::NAME.into(),
            Uuid::new_v4(),
            b"{not json".to_vec(),
        )])
        .await
        .expect("publish");

    let dlq = dead_letter_queue(&prefix, "payment");
    let deadline = Instant::now() + Duration::from_secs(15);
    while message_count(&dlq).await != 1 {
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.lock().expect("lock").len(), 1, "poison is not retried");
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_dead_lettered_after_the_delivery_limit() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = recording_handler(
        seen.clone(),
        Some(|| HandleError::Failed(anyhow::anyhow!("always"))),
    );
    let (consumer, task) =
        Broker::start(options(&prefix, "payment"), Some(handler), cancel.clone());
    wait_connected(&consumer).await;

    consumer
        .publish(&[(
            ReservationBound::NAME.into(),
            Uuid::new_v4(),
            serde_json::to_vec(&bound()).expect("json"),
        )])
        .await
        .expect("publish");

    let dlq = dead_letter_queue(&prefix, "payment");
    let deadline = Instant::now() + Duration::from_secs(20);
    while message_count(&dlq).await != 1 {
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deliveries = seen.lock().expect("lock").len();
    assert!(
        (3..=4).contains(&deliveries),
        "delivered {deliveries} times with a limit of 3"
    );
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
}

const PG: &str = "postgres://postgres@127.0.0.1:5432";

/// A database of its own with the outbox tables, and `n` events committed to its outbox.
async fn outbox_with(prefix: &str, n: usize) -> deadpool_postgres::Pool {
    let db = format!("{prefix}_outbox");
    common::db::ensure_database(PG, &db).await.expect("db");
    let pool = common::db::pool(&common::db::database_url(PG, &db), 2).expect("pool");
    pool.get()
        .await
        .expect("conn")
        .batch_execute(&outbox::SHARED_MIGRATIONS.concat())
        .await
        .expect("tables");
    let mut client = pool.get().await.expect("conn");
    let tx = client.transaction().await.expect("tx");
    for _ in 0..n {
        outbox::append(&tx, &bound()).await.expect("append");
    }
    tx.commit().await.expect("commit");
    pool
}

async fn count(pool: &deadpool_postgres::Pool, sql: &str) -> i64 {
    pool.get()
        .await
        .expect("conn")
        .query_one(sql, &[])
        .await
        .expect("count")
        .get(0)
}

async fn drop_outbox(pool: deadpool_postgres::Pool, prefix: &str) {
    drop_database(pool, &format!("{prefix}_outbox")).await;
}

/// Close `pool` and drop its database `name`.
async fn drop_database(pool: deadpool_postgres::Pool, name: &str) {
    drop(pool);
    let (client, conn) = tokio_postgres::connect(&format!("{PG}/postgres"), tokio_postgres::NoTls)
        .await
        .expect("pg");
    tokio::spawn(conn);
    let _ = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
}

#[tokio::test]
async fn the_outbox_relay_publishes_committed_rows_once_and_marks_them_sent() {
    let prefix = prefix();
    let pool = outbox_with(&prefix, 20).await;
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (consumer, task) = Broker::start(
        options(&prefix, "payment"),
        Some(recording_handler(seen.clone(), None)),
        cancel.clone(),
    );
    wait_connected(&consumer).await;

    let (a, b) = tokio::join!(
        outbox::publish_batch(&pool, &consumer, 500),
        outbox::publish_batch(&pool, &consumer, 500)
    );

    assert_eq!(
        a.expect("relay a") + b.expect("relay b"),
        20,
        "two relays share the rows"
    );
    assert!(until(|| seen.lock().expect("lock").len() == 20).await);
    let unsent = count(
        &pool,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
    )
    .await;
    assert_eq!(unsent, 0);
    let claimed = count(
        &pool,
        "SELECT count(*) FROM outbox WHERE claimed_until IS NOT NULL",
    )
    .await;
    assert_eq!(claimed, 0, "a sent row keeps no claim");
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
    drop_outbox(pool, &prefix).await;
}

#[tokio::test]
async fn a_relay_that_cannot_publish_gives_its_claim_back_and_leaves_no_transaction_open() {
    let prefix = prefix();
    let pool = outbox_with(&prefix, 20).await;
    let cancel = CancellationToken::new();
    let mut away = options(&prefix, "order");
    away.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let (broker, task) = Broker::start(away, None, cancel.clone());

    let err = outbox::publish_batch(&pool, &broker, 500)
        .await
        .expect_err("RabbitMQ is away");

    assert!(format!("{err:#}").contains("not connected"), "{err:#}");
    let free = count(
        &pool,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND claimed_until IS NULL",
    )
    .await;
    assert_eq!(free, 20, "the rows are free for the next attempt at once");
    let open = count(
        &pool,
        &format!(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = '{prefix}_outbox' AND state LIKE 'idle in transaction%'"
        ),
    )
    .await;
    assert_eq!(open, 0, "no transaction outlives a statement");
    cancel.cancel();
    let _ = task.await;
    drop_outbox(pool, &prefix).await;
}

#[tokio::test]
async fn rows_claimed_by_a_relay_that_died_wait_for_its_lease_then_go_out_once() {
    let prefix = prefix();
    let pool = outbox_with(&prefix, 20).await;
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (consumer, task) = Broker::start(
        options(&prefix, "payment"),
        Some(recording_handler(seen.clone(), None)),
        cancel.clone(),
    );
    wait_connected(&consumer).await;

    // A relay claims the rows and dies before it publishes them.
    let claim = outbox::claim(&pool, 500, Duration::from_secs(2))
        .await
        .expect("claim");
    assert_eq!(claim.ids.len(), 20);
    drop(claim);

    let during = outbox::publish_batch(&pool, &consumer, 500)
        .await
        .expect("relay");
    assert_eq!(during, 0, "a live claim keeps the rows from other relays");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let after = outbox::publish_batch(&pool, &consumer, 500)
        .await
        .expect("relay");

    assert_eq!(after, 20, "an expired claim is no claim");
    assert!(until(|| seen.lock().expect("lock").len() == 20).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        seen.lock().expect("lock").len(),
        20,
        "each row went out once"
    );
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
    drop_outbox(pool, &prefix).await;
}

#[tokio::test]
async fn a_publisher_started_while_rabbitmq_is_unreachable_waits_and_reports_not_connected() {
    let cancel = CancellationToken::new();
    let mut opts = options(&prefix(), "order");
    opts.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let (broker, task) = Broker::start(opts, None, cancel.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(!broker.is_connected());
    let err = broker
        .publish(&[(
            ReservationBound::NAME.into(),
            Uuid::new_v4(),
            b"{}".to_vec(),
        )])
        .await
        .expect_err("cannot publish while away");
    assert!(format!("{err:#}").contains("not connected"));
    cancel.cancel();
    let _ = task.await;
}

/// `(ready, unacked)` of `queue`, as RabbitMQ counts them.
fn queue_depth(queue: &str) -> (u32, u32) {
    let stdout = rabbitmqctl(&[
        "list_queues",
        "name",
        "messages_ready",
        "messages_unacknowledged",
    ]);
    let line = stdout
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&queue))
        .unwrap_or_else(|| panic!("{queue} not listed: {stdout}"));
    (
        line[1].trim().parse().expect("ready"),
        line[2].trim().parse().expect("unacked"),
    )
}

async fn until_depth(queue: &str, want: (u32, u32)) -> (u32, u32) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let depth = queue_depth(queue);
        if depth == want || Instant::now() > deadline {
            return depth;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Acks go out in batches (one `multiple` ack per run of finished deliveries), so the test
/// that matters is the one a batch could break: a delivery whose handler still runs is never
/// acked along with the younger ones that finished, and those are still acked.
#[tokio::test]
async fn deliveries_that_finished_are_acked_while_an_older_one_is_still_handled() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::<Incoming>::new()));
    let release = Arc::new(tokio::sync::Notify::new());
    let handler: Handler = {
        let (seen, release) = (seen.clone(), release.clone());
        Handler::each(move |incoming: Incoming| {
            let (seen, release) = (seen.clone(), release.clone());
            Box::pin(async move {
                seen.lock().expect("lock").push(incoming.clone());
                // The event worth 1 cent is the slow one: it waits to be released.
                if incoming.decode::<ReservationBound>()?.total_cents == 1 {
                    release.notified().await;
                }
                Ok(())
            })
        })
    };
    let (consumer, task) =
        Broker::start(options(&prefix, "payment"), Some(handler), cancel.clone());
    wait_connected(&consumer).await;
    let message = |total_cents| {
        (
            ReservationBound::NAME.to_string(),
            Uuid::new_v4(),
            serde_json::to_vec(&ReservationBound {
                total_cents,
                ..bound()
            })
            .expect("json"),
        )
    };
    // The slow one first, so that it has the oldest delivery tag.
    consumer.publish(&[message(1)]).await.expect("publish");
    assert!(until(|| seen.lock().expect("lock").len() == 1).await);
    let fast: Vec<_> = (0..5).map(|_| message(1000)).collect();
    consumer.publish(&fast).await.expect("publish");
    assert!(until(|| seen.lock().expect("lock").len() == 6).await);

    let queue = queue_name(&prefix, "payment");
    assert_eq!(
        until_depth(&queue, (0, 1)).await,
        (0, 1),
        "the five that finished are acked, the one still handled is not"
    );
    release.notify_one();
    assert_eq!(until_depth(&queue, (0, 0)).await, (0, 0), "then it is too");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.lock().expect("lock").len(), 6, "nothing redelivered");
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
}

/// Deliveries nacked on their own (a handler that failed once) between ones acked in a batch:
/// an ack that covered a nacked tag would close the channel (unknown delivery tag) and the
/// acked ones would come again.
#[tokio::test]
async fn failed_deliveries_between_acked_ones_are_requeued_and_the_rest_come_once() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::<Incoming>::new()));
    let handler: Handler = {
        let seen = seen.clone();
        Handler::each(move |incoming: Incoming| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.lock().expect("lock").push(incoming.clone());
                // Odd amounts fail on their first delivery.
                let event = incoming.decode::<ReservationBound>()?;
                if event.total_cents % 2 == 1 && !incoming.redelivered {
                    return Err(HandleError::Failed(anyhow::anyhow!("first try fails")));
                }
                Ok(())
            })
        })
    };
    let (consumer, task) =
        Broker::start(options(&prefix, "payment"), Some(handler), cancel.clone());
    wait_connected(&consumer).await;
    let batch: Vec<_> = (0..40)
        .map(|i| {
            (
                ReservationBound::NAME.to_string(),
                Uuid::new_v4(),
                serde_json::to_vec(&ReservationBound {
                    total_cents: 100 + i,
                    ..bound()
                })
                .expect("json"),
            )
        })
        .collect();
    consumer.publish(&batch).await.expect("publish");

    assert!(
        until(|| seen.lock().expect("lock").len() >= 60).await,
        "20 failed once and came again"
    );
    let queue = queue_name(&prefix, "payment");
    assert_eq!(until_depth(&queue, (0, 0)).await, (0, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().expect("lock").clone();
    for (_, id, _) in &batch {
        let times = seen.iter().filter(|m| m.message_id == *id).count();
        let odd = seen
            .iter()
            .find(|m| m.message_id == *id)
            .and_then(|m| m.decode::<ReservationBound>().ok())
            .is_some_and(|e| e.total_cents % 2 == 1);
        assert_eq!(times, if odd { 2 } else { 1 }, "message {id}");
    }
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
}

/// A deadlock the database chose this transaction to lose passes by itself: the message is
/// handled again in place, and never goes back to the queue for it.
#[tokio::test]
async fn a_transient_failure_is_retried_in_place_without_a_redelivery() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::<Incoming>::new()));
    let handler: Handler = {
        let seen = seen.clone();
        Handler::each(move |incoming: Incoming| {
            let seen = seen.clone();
            Box::pin(async move {
                let attempt = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(incoming.clone());
                    seen.len()
                };
                if attempt <= 2 {
                    return Err(HandleError::Transient(anyhow::anyhow!("deadlock detected")));
                }
                Ok(())
            })
        })
    };
    let (consumer, task) =
        Broker::start(options(&prefix, "payment"), Some(handler), cancel.clone());
    wait_connected(&consumer).await;
    consumer
        .publish(&[(
            ReservationBound::NAME.into(),
            Uuid::new_v4(),
            serde_json::to_vec(&bound()).expect("json"),
        )])
        .await
        .expect("publish");
    assert!(
        until(|| seen.lock().expect("lock").len() >= 3).await,
        "handled again"
    );
    let queue = queue_name(&prefix, "payment");
    assert_eq!(until_depth(&queue, (0, 0)).await, (0, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3, "two transient failures, then done");
    assert!(
        seen.iter().all(|m| !m.redelivered),
        "never given back to the queue"
    );
    assert_eq!(
        message_count(&dead_letter_queue(&prefix, "payment")).await,
        0
    );
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
}

/// A failed delivery goes back to the queue after a pause, not at once, so a moment's
/// failure does not spend the delivery limit in milliseconds.
#[tokio::test]
async fn a_failed_delivery_is_requeued_after_a_delay() {
    let prefix = prefix();
    let cancel = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let handler: Handler = {
        let seen = seen.clone();
        Handler::each(move |_incoming: Incoming| {
            let seen = seen.clone();
            Box::pin(async move {
                let attempt = {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(Instant::now());
                    seen.len()
                };
                if attempt <= 2 {
                    return Err(HandleError::Failed(anyhow::anyhow!("not yet")));
                }
                Ok(())
            })
        })
    };
    let (consumer, task) =
        Broker::start(options(&prefix, "payment"), Some(handler), cancel.clone());
    wait_connected(&consumer).await;
    consumer
        .publish(&[(
            ReservationBound::NAME.into(),
            Uuid::new_v4(),
            serde_json::to_vec(&bound()).expect("json"),
        )])
        .await
        .expect("publish");
    assert!(
        until(|| seen.lock().expect("lock").len() >= 3).await,
        "delivered 3 times"
    );
    let times = seen.lock().expect("lock").clone();
    // First requeue: 100 ms ± 50 %; second: 200 ms ± 50 %.
    assert!(
        times[1] - times[0] >= Duration::from_millis(50),
        "{:?}",
        times[1] - times[0]
    );
    assert!(
        times[2] - times[1] >= Duration::from_millis(100),
        "{:?}",
        times[2] - times[1]
    );
    cancel.cancel();
    let _ = task.await;
    cleanup(&prefix).await;
}

mod pipeline;
