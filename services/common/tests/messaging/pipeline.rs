//! The shared consumer skeleton (`Handler::pipeline`): batches share one transaction, and a
//! batch that fails leaves each of its messages applied exactly once.

use super::{
    bound, cleanup, drop_database, options, prefix, until, until_depth, wait_connected, PG,
};
use common::events::{Event, ReservationBound};
use common::messaging::{
    dead_letter_queue, outbox, Broker, Consume, Effect, HandleError, Handler, Incoming,
};
use deadpool_postgres::{Pool, Transaction};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Records each applied message with the transaction that applied it. An amount of 13 cents
/// fails in the transaction, after its row was written.
struct Recorder;

impl Consume for Recorder {
    type Prepared = ReservationBound;

    fn prepare<'a>(
        &'a self,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<ReservationBound, HandleError>> {
        Box::pin(std::future::ready(message.decode::<ReservationBound>()))
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        message: &'a Incoming,
        event: ReservationBound,
    ) -> BoxFuture<'a, Result<Effect, HandleError>> {
        Box::pin(async move {
            tx.execute(
                "INSERT INTO applied (message_id, txid) VALUES ($1, txid_current())",
                &[&message.message_id],
            )
            .await?;
            if event.total_cents == 13 {
                return Err(HandleError::Failed(anyhow::anyhow!("13 cents never pass")));
            }
            Ok(Effect::NONE)
        })
    }
}

async fn database(prefix: &str) -> Pool {
    let db = format!("{prefix}_pipeline");
    common::db::ensure_database(PG, &db).await.expect("db");
    let pool = common::db::pool(&common::db::database_url(PG, &db), 4).expect("pool");
    pool.get()
        .await
        .expect("conn")
        .batch_execute(&format!(
            "{}CREATE TABLE applied (message_id UUID NOT NULL, txid BIGINT NOT NULL);",
            outbox::SHARED_MIGRATIONS.concat()
        ))
        .await
        .expect("tables");
    pool
}

/// Wait (at most 15 s) until `want` distinct messages are applied.
async fn until_applied(pool: &Pool, want: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while applied(pool).await.1 < want && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `(applications, distinct messages, transactions, largest transaction)` so far.
async fn applied(pool: &Pool) -> (i64, i64, i64, i64) {
    let row = pool
        .get()
        .await
        .expect("conn")
        .query_one(
            "SELECT count(*), count(DISTINCT message_id), count(DISTINCT txid),
                    coalesce((SELECT max(n) FROM (SELECT count(*) AS n FROM applied
                                                  GROUP BY txid) t), 0)
             FROM applied",
            &[],
        )
        .await
        .expect("count");
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

fn message(total_cents: i64) -> (String, Uuid, Vec<u8>) {
    let event = ReservationBound {
        total_cents,
        ..bound()
    };
    (
        ReservationBound::NAME.to_string(),
        Uuid::new_v4(),
        serde_json::to_vec(&event).expect("json"),
    )
}

/// A backlog of `messages` in the payment queue, then a pipeline consumer of batches of 4.
async fn consume_backlog(
    prefix: &str,
    pool: &Pool,
    messages: &[(String, Uuid, Vec<u8>)],
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (publisher, publisher_task) = Broker::start(options(prefix, "order"), None, cancel.clone());
    wait_connected(&publisher).await;
    publisher.publish(messages).await.expect("publish");
    let handler = Handler::pipeline(Recorder, pool.clone(), None, None, 4);
    let (consumer, task) = Broker::start(options(prefix, "payment"), Some(handler), cancel.clone());
    wait_connected(&consumer).await;
    tokio::spawn(async move {
        let _ = tokio::join!(task, publisher_task);
    })
}

#[tokio::test]
async fn a_backlog_is_handled_in_batches_each_message_once() {
    let prefix = prefix();
    let pool = database(&prefix).await;
    let cancel = CancellationToken::new();
    let mut messages: Vec<_> = (0..30).map(|i| message(100 + i)).collect();
    // The same message twice: the inbox lets one through, within a batch or across two.
    messages.push(messages[3].clone());

    let tasks = consume_backlog(&prefix, &pool, &messages, &cancel).await;

    until_applied(&pool, 30).await;
    let queue = common::messaging::queue_name(&prefix, "payment");
    assert_eq!(until_depth(&queue, (0, 0)).await, (0, 0), "all acked");
    let (applications, distinct, transactions, largest) = applied(&pool).await;
    assert_eq!(
        (applications, distinct),
        (30, 30),
        "each message applied once"
    );
    assert!(
        transactions < 30,
        "a backlog shares transactions: {transactions} for 30 messages"
    );
    assert!(largest <= 4, "a batch is at most AMQP_BATCH_MAX: {largest}");
    let inbox: i64 = pool
        .get()
        .await
        .expect("conn")
        .query_one("SELECT count(*) FROM inbox", &[])
        .await
        .expect("inbox")
        .get(0);
    assert_eq!(inbox, 30);
    cancel.cancel();
    let _ = tasks.await;
    cleanup(&prefix).await;
    drop_database(pool, &format!("{prefix}_pipeline")).await;
}

#[tokio::test]
async fn a_failing_message_rolls_its_batch_back_and_only_it_ends_dead_lettered() {
    let prefix = prefix();
    let pool = database(&prefix).await;
    let cancel = CancellationToken::new();
    let mut messages: Vec<_> = (0..12).map(|i| message(100 + i)).collect();
    messages[5] = message(13);
    // Undecodable: poison in `prepare`, before any transaction.
    messages[8] = (
        ReservationBound::NAME.to_string(),
        Uuid::new_v4(),
        b"{".to_vec(),
    );

    let tasks = consume_backlog(&prefix, &pool, &messages, &cancel).await;

    until_applied(&pool, 10).await;
    let queue = common::messaging::queue_name(&prefix, "payment");
    assert_eq!(until_depth(&queue, (0, 0)).await, (0, 0), "all settled");
    let dlq = dead_letter_queue(&prefix, "payment");
    assert!(
        until(|| std::process::Command::new("rabbitmqctl")
            .args(["-q", "list_queues", "name", "messages"])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [dlq.as_str(), "2"]))
            .unwrap_or(false))
        .await,
        "the failing and the undecodable message are dead-lettered, nothing else"
    );
    let (_, distinct, _, _) = applied(&pool).await;
    let committed: i64 = pool
        .get()
        .await
        .expect("conn")
        .query_one(
            "SELECT count(*) FROM applied a JOIN inbox i USING (message_id)",
            &[],
        )
        .await
        .expect("committed")
        .get(0);
    // The 13-cent message's rows were rolled back with it every time.
    assert_eq!(distinct, 10, "the ten good messages, none of the bad");
    assert_eq!(
        committed, 10,
        "each good message applied once, with its inbox row"
    );
    let failed_id = messages[5].1;
    let failed: i64 = pool
        .get()
        .await
        .expect("conn")
        .query_one(
            "SELECT count(*) FROM inbox WHERE message_id = $1",
            &[&failed_id],
        )
        .await
        .expect("inbox")
        .get(0);
    assert_eq!(failed, 0);
    cancel.cancel();
    let _ = tasks.await;
    cleanup(&prefix).await;
    drop_database(pool, &format!("{prefix}_pipeline")).await;
}
