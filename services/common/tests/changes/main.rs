//! Long-polled status URLs (`common::changes`) against the real Redis: two `Changes` on one
//! channel stand for two replicas of a service, each test on a channel of its own.

use common::changes::Changes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const REDIS: &str = "redis://127.0.0.1:6379";
/// Far longer than any wake-up takes: a test that sees its answer before it knows the wake-up
/// worked, and one that sees it after knows the wait ran out.
const LONG_WAIT: Duration = Duration::from_secs(10);

struct Replica {
    changes: Changes,
    cancel: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A replica of service `service` under `prefix`, its listener subscribed once this returns.
async fn replica(prefix: &str, redis_url: &str) -> Replica {
    let cancel = CancellationToken::new();
    let pool = common::cache::pool(redis_url, 2).expect("pool");
    let changes = Changes::new(pool, prefix, "svc", LONG_WAIT, cancel.clone());
    changes.spawn_listener(redis_url, cancel.clone());
    let replica = Replica { changes, cancel };
    if redis_url == REDIS {
        wait_subscribers(replica.changes.channel(), 1).await;
    }
    replica
}

fn prefix() -> String {
    format!("t_chg_{}", &Uuid::new_v4().simple().to_string()[..12])
}

async fn redis() -> deadpool_redis::Connection {
    common::cache::pool(REDIS, 1)
        .expect("pool")
        .get()
        .await
        .expect("a Redis connection")
}

/// Until `channel` has at least `n` subscribers (the listeners subscribe in the background).
async fn wait_subscribers(channel: &str, n: i64) {
    let deadline = Instant::now() + LONG_WAIT;
    loop {
        let (_, count): (String, i64) = deadpool_redis::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut redis().await)
            .await
            .expect("PUBSUB NUMSUB");
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{channel}: {count} of {n} subscribers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A status as a handler reads it: the number of reads, and whether it is final.
#[derive(Default, Clone)]
struct Status {
    reads: Arc<AtomicUsize>,
    settled: Arc<AtomicBool>,
}

impl Status {
    fn settle(&self) {
        self.settled.store(true, Ordering::SeqCst);
    }

    async fn read(&self) -> common::ApiResult<(bool, bool)> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let settled = self.settled.load(Ordering::SeqCst);
        Ok((settled, settled))
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_waiter_is_answered_when_another_replica_publishes_the_change() {
    let prefix = prefix();
    let (waiting, changing) = (replica(&prefix, REDIS).await, replica(&prefix, REDIS).await);
    let (id, status) = (Uuid::new_v4(), Status::default());
    let started = Instant::now();

    let wait = {
        let status = status.clone();
        let changes = waiting.changes.clone();
        tokio::spawn(async move {
            changes
                .read_until_final(id, LONG_WAIT, || status.read())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    status.settle();
    changing.changes.publish(id);
    let settled = wait.await.expect("join").expect("read");

    assert!(settled, "answered with the status before it settled");
    assert!(
        started.elapsed() < LONG_WAIT / 2,
        "woken only by the end of the wait ({:?})",
        started.elapsed()
    );
    assert_eq!(
        status.reads(),
        2,
        "one read before the wait, one after the wake-up"
    );
    assert_eq!(waiting.changes.watched(), 0, "the waiter was forgotten");
}

#[tokio::test]
async fn a_wait_nothing_changes_ends_at_its_deadline_with_the_status_as_it_is() {
    let prefix = prefix();
    let replica = replica(&prefix, REDIS).await;
    let status = Status::default();
    // A change of another id wakes nobody waiting here.
    let other = replica.changes.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        other.publish(Uuid::new_v4());
    });
    let started = Instant::now();

    let settled = replica
        .changes
        .read_until_final(Uuid::new_v4(), Duration::from_secs(1), || status.read())
        .await
        .expect("read");

    assert!(!settled);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.reads(), 2, "read at the start and at the deadline");
    assert_eq!(replica.changes.watched(), 0);
}

#[tokio::test]
async fn a_change_published_right_after_the_first_read_is_not_missed() {
    let prefix = prefix();
    let replica = replica(&prefix, REDIS).await;
    let (id, status) = (Uuid::new_v4(), Status::default());
    let started = Instant::now();

    // The change commits and is published between the first read and the wait: the waiter
    // was registered before the read, so it hears it.
    let changes = replica.changes.clone();
    let settled = replica
        .changes
        .read_until_final(id, LONG_WAIT, || {
            let (status, changes) = (status.clone(), changes.clone());
            async move {
                let read = status.read().await;
                if status.reads() == 1 {
                    status.settle();
                    changes.publish(id);
                    // Long enough for the message to reach the listener before this read
                    // returns: only a waiter registered already can hear it.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                read
            }
        })
        .await
        .expect("read");

    assert!(settled);
    assert!(started.elapsed() < LONG_WAIT / 2, "{:?}", started.elapsed());
}

#[tokio::test]
async fn every_waiter_of_an_id_is_woken_and_then_forgotten() {
    let prefix = prefix();
    let (waiting, changing) = (replica(&prefix, REDIS).await, replica(&prefix, REDIS).await);
    let (id, status) = (Uuid::new_v4(), Status::default());
    let waits: Vec<_> = (0..3)
        .map(|_| {
            let (status, changes) = (status.clone(), waiting.changes.clone());
            tokio::spawn(async move {
                changes
                    .read_until_final(id, LONG_WAIT, || status.read())
                    .await
            })
        })
        .collect();
    let deadline = Instant::now() + LONG_WAIT;
    while status.reads() < 3 {
        assert!(Instant::now() < deadline, "the waiters never read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        waiting.changes.watched(),
        1,
        "three waiters of one id share an entry"
    );

    status.settle();
    changing.changes.publish(id);
    for wait in waits {
        assert!(wait.await.expect("join").expect("read"));
    }

    assert_eq!(waiting.changes.watched(), 0);
}

#[tokio::test]
async fn a_listener_that_lost_redis_wakes_its_waiters_when_it_is_back() {
    let prefix = prefix();
    let replica = replica(&prefix, REDIS).await;
    let (id, status) = (Uuid::new_v4(), Status::default());
    let wait = {
        let (status, changes) = (status.clone(), replica.changes.clone());
        tokio::spawn(async move {
            changes
                .read_until_final(id, LONG_WAIT, || status.read())
                .await
        })
    };
    let deadline = Instant::now() + LONG_WAIT;
    while status.reads() < 1 {
        assert!(Instant::now() < deadline, "the waiter never read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();

    // The change is made while the listener is away, and nobody publishes it again.
    let killed: i64 = deadpool_redis::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut redis().await)
        .await
        .expect("CLIENT KILL");
    status.settle();
    let settled = wait.await.expect("join").expect("read");

    assert!(killed >= 1, "no subscriber was disconnected");
    assert!(settled, "the waiter re-read when its listener came back");
    assert!(started.elapsed() < LONG_WAIT / 2, "{:?}", started.elapsed());
}

#[tokio::test]
async fn without_redis_a_publish_is_a_no_op_and_a_wait_ends_at_its_deadline() {
    // A port nothing listens on: the listener keeps retrying, publishing fails fast.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!(
        "redis://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    drop(listener);
    let replica = replica(&prefix(), &dead).await;
    let (id, status) = (Uuid::new_v4(), Status::default());

    replica.changes.publish(id);
    let settled = replica
        .changes
        .read_until_final(id, Duration::from_secs(1), || status.read())
        .await
        .expect("a wait without Redis is no error");

    assert!(!settled);
    assert_eq!(status.reads(), 2);
}

#[tokio::test]
async fn shutting_down_ends_every_wait_at_once() {
    let prefix = prefix();
    let replica = replica(&prefix, REDIS).await;
    let status = Status::default();
    let wait = {
        let (status, changes) = (status.clone(), replica.changes.clone());
        tokio::spawn(async move {
            changes
                .read_until_final(Uuid::new_v4(), LONG_WAIT, || status.read())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();

    replica.cancel.cancel();
    let settled = wait.await.expect("join").expect("read");

    assert!(!settled);
    assert!(started.elapsed() < LONG_WAIT / 2, "{:?}", started.elapsed());
}
