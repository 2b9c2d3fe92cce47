//! Long-polled status URLs: a replica's waiters for status changes made by any replica.
//!
//! In async mode a shopper learns a reservation's or an order's outcome from its status URL.
//! A client that sends `Prefer: wait=N` (RFC 7240) is answered as soon as the status leaves
//! PENDING, or after N seconds with the status as it is then, instead of polling again and
//! again. The replica that changes a status publishes the row's id on the service's Redis
//! channel once its transaction has committed ([`Changes::publish`]); every replica of the
//! service listens on that channel and wakes its waiters for that id.
//!
//! Nothing depends on a notification arriving: a waiter re-reads the database whenever it is
//! woken and when its wait runs out, so a lost message (Redis away, a reconnect) only makes
//! that one answer arrive at the end of its wait, with the status the database holds.
//!
//! A client may also poll without a wait, as often as it likes. A PENDING status read from the
//! database is kept by the replica that read it (with its owner) until a change of that id is
//! heard, or for at most [`PENDING_FRESH`], so a short poll of a status that has not changed
//! costs no database round trip. A change committed while the read ran is never missed: the
//! id is watched before the read, and a value read while a change was heard is not kept. A lost
//! notification makes a kept PENDING at most [`PENDING_FRESH`] stale.
//!
//! Sync mode applies no wait, keeps nothing and runs no listener: there a status is final when the request
//! that made it answers, and nothing publishes changes.

use crate::cache::RedisPool;
use crate::ApiResult;
use crate::CommonConfig;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{HttpResponse, HttpResponseBuilder};
use futures::StreamExt;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The `Prefer` preference this module honours, and the `Preference-Applied` it answers with.
pub const PREFER_WAIT: &str = "wait";
/// The response header (RFC 7240) that says the wait was applied: the poll was held. The
/// request metrics read it to count held polls apart.
pub const PREFERENCE_APPLIED: &str = "preference-applied";

/// The longest a PUBLISH may take before it is given up (its waiters then answer at the end
/// of their wait).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest a replica answers a PENDING status from memory without reading it again, in
/// case the change that ended it was not heard (Redis away, a PUBLISH that timed out).
pub const PENDING_FRESH: Duration = Duration::from_secs(1);

/// The most PENDING statuses a replica keeps; past it, the stale ones are dropped.
const KEPT_MAX: usize = 100_000;

/// Redis connections a replica publishes on. They are multiplexed (commands pipeline on one
/// connection) and a PUBLISH is a fraction of a millisecond, so a few serve every consumer;
/// each connection costs a driver task and its buffers in every replica.
const PUBLISH_CONNECTIONS: usize = 2;

/// The waiters of one replica, and the channel its service's changes are published on.
#[derive(Clone)]
pub struct Changes {
    inner: Arc<Inner>,
}

struct Inner {
    channel: String,
    redis: RedisPool,
    max_wait: Duration,
    /// One sender per id somebody waits for; every waiter holds a receiver of it.
    waiters: Mutex<HashMap<Uuid, watch::Sender<()>>>,
    /// PENDING statuses read from the database, until a change of their id is heard.
    kept: Mutex<HashMap<Uuid, Kept>>,
    /// Cancelled at shutdown: every wait ends at once, with the status as it is.
    cancel: CancellationToken,
}

impl Changes {
    /// `service`'s changes on the suite's Redis (`{redis_prefix}:changes:{service}`); a wait
    /// asked for is cut to `max_wait`.
    pub fn new(
        redis: RedisPool,
        redis_prefix: &str,
        service: &str,
        max_wait: Duration,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                channel: format!("{redis_prefix}:changes:{service}"),
                redis,
                max_wait,
                waiters: Mutex::new(HashMap::new()),
                kept: Mutex::new(HashMap::new()),
                cancel,
            }),
        }
    }

    /// `service`'s changes as `config` says, with the listener already running until `cancel`.
    /// In sync mode no wait is applied and there is no listener.
    pub fn start(
        config: &CommonConfig,
        service: &str,
        cancel: CancellationToken,
    ) -> anyhow::Result<(Self, Option<JoinHandle<()>>)> {
        let redis = crate::cache::pool(&config.redis_url, PUBLISH_CONNECTIONS)?;
        let max_wait = match config.mode {
            crate::Mode::Sync => Duration::ZERO,
            crate::Mode::Async => Duration::from_secs(config.status_wait_max_secs),
        };
        let changes = Self::new(
            redis,
            &config.redis_prefix,
            service,
            max_wait,
            cancel.clone(),
        );
        let listener =
            (!max_wait.is_zero()).then(|| changes.spawn_listener(&config.redis_url, cancel));
        Ok((changes, listener))
    }

    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// Tell every replica that `id`'s status changed. Call it after the change committed.
    /// It returns at once: the PUBLISH runs on its own task, bounded by [`PUBLISH_TIMEOUT`],
    /// so a slow or hung Redis never holds up the consumer that made the change. Best effort:
    /// a failure is logged, and the waiters find the change when their wait ends.
    pub fn publish(&self, id: Uuid) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let sent = tokio::time::timeout(PUBLISH_TIMEOUT, async {
                let mut conn = inner.redis.get().await?;
                let _: i64 = deadpool_redis::redis::cmd("PUBLISH")
                    .arg(&inner.channel)
                    .arg(id.to_string())
                    .query_async(&mut conn)
                    .await?;
                anyhow::Ok(())
            })
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {PUBLISH_TIMEOUT:?}")));
            if let Err(e) = sent {
                tracing::warn!(error = %format!("{e:#}"), %id, "status change not published: its waiters answer at the end of their wait");
            }
        });
    }

    /// Listen on the channel until `cancel`, reconnecting with a backoff when Redis goes away.
    /// After every (re)subscription all waiters are woken, since changes made while the
    /// listener was away were not heard.
    pub fn spawn_listener(&self, redis_url: &str, cancel: CancellationToken) -> JoinHandle<()> {
        let (changes, url) = (self.clone(), redis_url.to_string());
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                let mut subscribed = false;
                let lost = tokio::select! {
                    _ = cancel.cancelled() => return,
                    lost = changes.listen(&url, &mut subscribed) => lost,
                };
                tracing::warn!(error = %format!("{lost:#}"), channel = %changes.channel(), "status change listener lost Redis; reconnecting");
                // A subscription that was up starts the backoff afresh; failed attempts grow it.
                if subscribed {
                    pause = Duration::from_millis(100);
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        })
    }

    /// Subscribe once and wake waiters until the connection ends; answers why it ended.
    /// `subscribed` says whether the subscription was up before that.
    async fn listen(&self, url: &str, subscribed: &mut bool) -> anyhow::Error {
        let mut pubsub = match async {
            let client = deadpool_redis::redis::Client::open(url)?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&self.inner.channel).await?;
            anyhow::Ok(pubsub)
        }
        .await
        {
            Ok(pubsub) => pubsub,
            Err(e) => return e,
        };
        *subscribed = true;
        tracing::debug!(channel = %self.inner.channel, "listening for status changes");
        self.wake_all();
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            match msg
                .get_payload::<String>()
                .ok()
                .and_then(|p| Uuid::try_parse(&p).ok())
            {
                Some(id) => self.wake(id),
                None => {
                    tracing::warn!(channel = %self.inner.channel, "status change without a valid id: ignored")
                }
            }
        }
        anyhow::anyhow!("the subscription ended")
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, watch::Sender<()>>> {
        self.inner
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Kept>> {
        self.inner
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    // The waiters hear a change before its kept value goes: a read that checks for the change
    // under the kept lock (see `keep`) then either sees it or has its value removed after.
    fn wake(&self, id: Uuid) {
        if let Some(sender) = self.waiters().get(&id) {
            sender.send_replace(());
        }
        self.kept().remove(&id);
    }

    fn wake_all(&self) {
        for sender in self.waiters().values() {
            sender.send_replace(());
        }
        self.kept().clear();
    }

    /// Whether this replica keeps PENDING statuses (async mode, where changes are heard).
    fn keeps(&self) -> bool {
        !self.inner.max_wait.is_zero()
    }

    /// The PENDING value kept for `id`, if `owner` read it and it is fresh.
    fn kept_value<T: Clone + 'static>(&self, id: Uuid, owner: Uuid) -> Option<T> {
        let kept = self.kept();
        let entry = kept.get(&id)?;
        if entry.owner != owner || entry.read_at.elapsed() >= PENDING_FRESH {
            return None;
        }
        entry.value.downcast_ref::<T>().cloned()
    }

    /// Keep `value`, read while `waiter` watched `id`, unless a change was heard meanwhile.
    fn keep<T: Send + Sync + 'static>(&self, waiter: &Waiter, owner: Uuid, value: T) {
        let mut kept = self.kept();
        if waiter.heard() {
            return;
        }
        if kept.len() >= KEPT_MAX {
            kept.retain(|_, k| k.read_at.elapsed() < PENDING_FRESH);
        }
        kept.insert(
            waiter.id,
            Kept {
                owner,
                read_at: Instant::now(),
                value: Arc::new(value),
            },
        );
    }

    /// How many PENDING statuses this replica keeps.
    pub fn kept_count(&self) -> usize {
        self.kept().len()
    }

    /// One read without a wait: a fresh kept PENDING value of `owner`'s, or `read`, whose
    /// PENDING answer is kept unless a change of `id` was heard while it ran.
    async fn read_once<T, F, Fut>(&self, id: Uuid, owner: Uuid, read: F) -> ApiResult<T>
    where
        T: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = ApiResult<(T, bool)>>,
    {
        if !self.keeps() {
            return Ok(read().await?.0);
        }
        if let Some(value) = self.kept_value::<T>(id, owner) {
            return Ok(value);
        }
        let waiter = self.watch(id);
        let (value, done) = read().await?;
        if !done {
            self.keep(&waiter, owner, value.clone());
        }
        Ok(value)
    }

    /// How many ids this replica has waiters for (the waiter map never outgrows its waits).
    pub fn watched(&self) -> usize {
        self.waiters().len()
    }

    /// The wait `headers` ask for (`Prefer: wait=N`, N whole seconds), cut to the maximum;
    /// `None` when they ask for none, or for none that is longer than zero (a client told
    /// `wait=0` was applied would ask again at once). An unreadable preference is ignored, as
    /// RFC 7240 says.
    fn asked_wait(&self, headers: &HeaderMap) -> Option<Duration> {
        prefer_wait(headers)
            .map(|w| w.min(self.inner.max_wait))
            .filter(|w| !w.is_zero())
    }

    /// A status URL's answer for `owner` (whom `read` answers only their own row): `read` once
    /// (or the PENDING value kept from an earlier read, see the module's notes), or, when the
    /// request prefers a wait, until final or the wait runs out. The builder is a 200 that says
    /// which wait was applied, and that the answer varies with `Prefer`.
    pub async fn answer<T, F, Fut>(
        &self,
        headers: &HeaderMap,
        id: Uuid,
        owner: Uuid,
        read: F,
    ) -> ApiResult<(T, HttpResponseBuilder)>
    where
        T: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = ApiResult<(T, bool)>>,
    {
        let mut builder = HttpResponse::Ok();
        builder.insert_header((header::VARY, "Prefer"));
        let value = match self.asked_wait(headers) {
            Some(wait) => {
                builder.insert_header((
                    HeaderName::from_static(PREFERENCE_APPLIED),
                    format!("{PREFER_WAIT}={}", wait.as_secs()),
                ));
                self.read_until_final(id, wait, read).await?
            }
            None => self.read_once(id, owner, read).await?,
        };
        Ok((value, builder))
    }

    /// Read with `read` (which answers the value and whether it is final), and while it is not
    /// final, wait up to `wait` for a change of `id` and read again. The waiter is registered
    /// before the first read, so a change committed after that read is never missed.
    pub async fn read_until_final<T, F, Fut>(
        &self,
        id: Uuid,
        wait: Duration,
        read: F,
    ) -> ApiResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ApiResult<(T, bool)>>,
    {
        let deadline = Instant::now() + wait;
        let mut waiter = self.watch(id);
        loop {
            let (value, done) = read().await?;
            if done || Instant::now() >= deadline {
                return Ok(value);
            }
            tokio::select! {
                _ = waiter.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = self.inner.cancel.cancelled() => return Ok(value),
            }
        }
    }

    fn watch(&self, id: Uuid) -> Waiter {
        let mut waiters = self.waiters();
        let sender = waiters.entry(id).or_insert_with(|| watch::channel(()).0);
        Waiter {
            changes: self.clone(),
            id,
            receiver: Some(sender.subscribe()),
        }
    }
}

/// A PENDING value read from the database, and whose it is.
struct Kept {
    owner: Uuid,
    read_at: Instant,
    value: Arc<dyn Any + Send + Sync>,
}

/// One wait for one id; dropping the last waiter of an id forgets the id.
struct Waiter {
    changes: Changes,
    id: Uuid,
    receiver: Option<watch::Receiver<()>>,
}

impl Waiter {
    /// Whether a change was heard since the waiter was made (or last waited for).
    fn heard(&self) -> bool {
        self.receiver
            .as_ref()
            .is_some_and(|r| r.has_changed().unwrap_or(true))
    }

    /// Returns once a change was heard since the last call (or since the waiter was made).
    async fn changed(&mut self) {
        let heard = match self.receiver.as_mut() {
            Some(receiver) => receiver.changed().await.is_ok(),
            None => false,
        };
        if !heard {
            // The sender is only dropped with the last waiter, i.e. never while this one
            // lives; never return early in a loop.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut waiters = self.changes.waiters();
        drop(self.receiver.take());
        if waiters
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            waiters.remove(&self.id);
        }
    }
}

/// `Prefer: wait=N` from `headers` (RFC 7240 §4.3): N as whole seconds, `None` when absent or
/// not a non-negative integer. Preferences are comma-separated and may repeat the header; a
/// preference's parameters (after `;`) are ignored, and so are quotes around the value.
pub fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(HeaderName::from_static("prefer"))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pref| {
            let token = pref.split(';').next()?.trim();
            let (name, value) = token.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case(PREFER_WAIT) {
                return None;
            }
            value.trim().trim_matches('"').parse::<u64>().ok()
        })
        .next()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                HeaderName::from_static("prefer"),
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        map
    }

    fn async_changes() -> Changes {
        let redis = crate::cache::pool("redis://127.0.0.1:1", 1).expect("a pool");
        Changes::new(
            redis,
            "test",
            "svc",
            Duration::from_secs(5),
            CancellationToken::new(),
        )
    }

    /// A read that counts its calls and answers `status`, final unless "PENDING".
    fn counted<'a>(
        reads: &'a std::sync::atomic::AtomicUsize,
        status: &'static str,
    ) -> impl Fn() -> std::future::Ready<ApiResult<(String, bool)>> + 'a {
        move || {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::ready(Ok((status.to_string(), status != "PENDING")))
        }
    }

    async fn short_poll(
        changes: &Changes,
        id: Uuid,
        owner: Uuid,
        read: impl Fn() -> std::future::Ready<ApiResult<(String, bool)>>,
    ) -> String {
        changes
            .answer(&headers(&[]), id, owner, read)
            .await
            .expect("an answer")
            .0
    }

    #[tokio::test]
    async fn a_short_poll_of_an_unchanged_pending_status_reads_the_database_once() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let changes = async_changes();
        let (id, owner, stranger) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let reads = AtomicUsize::new(0);
        for _ in 0..5 {
            assert_eq!(
                short_poll(&changes, id, owner, counted(&reads, "PENDING")).await,
                "PENDING"
            );
        }
        assert_eq!(reads.load(SeqCst), 1, "later polls answered from memory");
        // Kept for its owner only.
        short_poll(&changes, id, stranger, counted(&reads, "PENDING")).await;
        assert_eq!(reads.load(SeqCst), 2);
        // A change heard: the next poll reads again, and a final status is not kept.
        changes.wake(id);
        assert_eq!(
            short_poll(&changes, id, owner, counted(&reads, "RESERVED")).await,
            "RESERVED"
        );
        short_poll(&changes, id, owner, counted(&reads, "RESERVED")).await;
        assert_eq!(reads.load(SeqCst), 4);
        assert_eq!(changes.watched(), 0, "no waiter outlives its read");
    }

    #[tokio::test]
    async fn a_pending_status_read_while_its_change_was_heard_is_not_kept() {
        let changes = async_changes();
        let id = Uuid::new_v4();
        let owner = Uuid::new_v4();
        // The change commits and is heard while the read is on its way back.
        let racing = || {
            changes.wake(id);
            std::future::ready(Ok(("PENDING".to_string(), false)))
        };
        changes
            .answer(&headers(&[]), id, owner, racing)
            .await
            .expect("answer");
        assert_eq!(changes.kept_count(), 0);
        // Stale after PENDING_FRESH at the latest, should a change never be heard.
        let reads = std::sync::atomic::AtomicUsize::new(0);
        short_poll(&changes, id, owner, counted(&reads, "PENDING")).await;
        changes.kept().get_mut(&id).expect("kept").read_at -= PENDING_FRESH;
        short_poll(&changes, id, owner, counted(&reads, "PENDING")).await;
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn sync_mode_keeps_nothing() {
        let redis = crate::cache::pool("redis://127.0.0.1:1", 1).expect("a pool");
        let changes = Changes::new(
            redis,
            "test",
            "svc",
            Duration::ZERO,
            CancellationToken::new(),
        );
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let (id, owner) = (Uuid::new_v4(), Uuid::new_v4());
        short_poll(&changes, id, owner, counted(&reads, "PENDING")).await;
        short_poll(&changes, id, owner, counted(&reads, "PENDING")).await;
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn prefer_wait_reads_the_wait_preference_among_others() {
        assert_eq!(
            prefer_wait(&headers(&["wait=5"])),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            prefer_wait(&headers(&["respond-async, WAIT = 3"])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            prefer_wait(&headers(&["return=minimal", "wait=\"7\"; x=y"])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(prefer_wait(&headers(&["wait=0"])), Some(Duration::ZERO));
    }

    #[test]
    fn an_absent_or_unreadable_wait_is_no_wait() {
        assert_eq!(prefer_wait(&headers(&[])), None);
        assert_eq!(prefer_wait(&headers(&["return=minimal"])), None);
        assert_eq!(prefer_wait(&headers(&["wait=-1"])), None);
        assert_eq!(prefer_wait(&headers(&["wait=1.5"])), None);
        assert_eq!(prefer_wait(&headers(&["wait"])), None);
        assert_eq!(prefer_wait(&headers(&["waiting=5"])), None);
    }
}
