//! Acknowledgements in batches: one `basic.ack` with `multiple` for a run of deliveries whose
//! handlers all finished, instead of one frame per delivery.
//!
//! Every ack is a frame that crosses to lapin's I/O thread and back, and, on a quorum queue, a
//! settle command in RabbitMQ's Raft log. Under load many handlers finish while one ack is on
//! its way, so the next ack covers all of them.
//!
//! What keeps it safe: a `multiple` ack with tag T settles every unsettled delivery up to T on
//! the channel, so T is only ever the end of a run of finished deliveries that starts at the
//! oldest delivery not settled yet. A delivery whose handler still runs, or that is being
//! nacked or rejected on its own, ends the run. A finished delivery behind such a gap is acked
//! on its own once it waited [`HOLD`], so one slow handler does not keep the others' prefetch
//! slots. An ack lost with its channel only means a redelivery, which the inbox drops.

use lapin::options::BasicAckOptions;
use lapin::Channel;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a finished delivery behind an unfinished one waits for the run to reach it before
/// it is acked on its own.
pub(crate) const HOLD: Duration = Duration::from_millis(20);

/// The deliveries of one channel that are not settled, by delivery tag: `None` while the
/// handler runs (or its nack is being sent), the time it finished once it waits for an ack.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    open: BTreeMap<u64, Option<Instant>>,
}

/// The acks one flush sends.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// The end of the run of finished deliveries: acked with `multiple`.
    pub(crate) upto: Option<u64>,
    /// Finished deliveries behind a gap that waited long enough: acked one by one.
    pub(crate) single: Vec<u64>,
}

impl Ledger {
    /// A delivery arrived; recorded before its handler starts. Tags arrive in order.
    pub(crate) fn received(&mut self, tag: u64) {
        self.open.insert(tag, None);
    }

    /// Its handler committed at `at`: it waits for the next ack.
    pub(crate) fn finished(&mut self, tag: u64, at: Instant) {
        if let Some(slot) = self.open.get_mut(&tag) {
            *slot = Some(at);
        }
    }

    /// It was nacked or rejected on its own, and that frame is sent: no ack may cover it, and
    /// the run may now go past it.
    pub(crate) fn settled(&mut self, tag: u64) {
        self.open.remove(&tag);
    }

    /// Take what is due at `now`: the run of finished deliveries from the oldest open one, and
    /// each finished one behind a gap that waited `hold` (all of them with `Duration::ZERO`).
    pub(crate) fn take(&mut self, now: Instant, hold: Duration) -> Due {
        let mut due = Due::default();
        while let Some(oldest) = self.open.first_entry() {
            if oldest.get().is_none() {
                break;
            }
            due.upto = Some(oldest.remove_entry().0);
        }
        due.single = self
            .open
            .iter()
            .filter(|(_, at)| at.is_some_and(|at| now.saturating_duration_since(at) >= hold))
            .map(|(&tag, _)| tag)
            .collect();
        for tag in &due.single {
            self.open.remove(tag);
        }
        due
    }

    /// When the earliest finished delivery behind a gap becomes due on its own.
    pub(crate) fn next_due(&self, hold: Duration) -> Option<Instant> {
        self.open.values().flatten().min().map(|&at| at + hold)
    }
}

/// The acks of one consumer channel: handlers report, one task sends.
#[derive(Clone)]
pub(crate) struct Acks {
    inner: Arc<Inner>,
}

struct Inner {
    channel: Channel,
    ledger: Mutex<Ledger>,
    changed: Notify,
}

impl Acks {
    pub(crate) fn new(channel: Channel) -> Self {
        Self {
            inner: Arc::new(Inner {
                channel,
                ledger: Mutex::new(Ledger::default()),
                changed: Notify::new(),
            }),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.inner
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`Ledger::received`].
    pub(crate) fn received(&self, tag: u64) {
        self.ledger().received(tag);
    }

    /// See [`Ledger::finished`]; the ack follows within [`HOLD`].
    pub(crate) fn finished(&self, tag: u64) {
        self.ledger().finished(tag, Instant::now());
        self.inner.changed.notify_one();
    }

    /// See [`Ledger::settled`].
    pub(crate) fn settled(&self, tag: u64) {
        self.ledger().settled(tag);
        self.inner.changed.notify_one();
    }

    /// Send the acks due (see [`Ledger::take`]). A failed ack is left to redelivery.
    async fn flush(&self, hold: Duration) {
        let due = self.ledger().take(Instant::now(), hold);
        let channel = &self.inner.channel;
        if let Some(upto) = due.upto {
            if let Err(e) = channel
                .basic_ack(upto, BasicAckOptions { multiple: true })
                .await
            {
                tracing::debug!(error = %e, upto, "ack not sent: the broker redelivers");
            }
        }
        for tag in due.single {
            if let Err(e) = channel.basic_ack(tag, BasicAckOptions::default()).await {
                tracing::debug!(error = %e, tag, "ack not sent: the broker redelivers");
            }
        }
    }

    /// Send acks as handlers finish until `stop`; then every finished delivery's.
    pub(crate) async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let next = self.ledger().next_due(HOLD);
            tokio::select! {
                _ = &mut stop => break,
                _ = self.inner.changed.notified() => {}
                _ = sleep_until(next) => {}
            }
            self.flush(HOLD).await;
        }
        self.flush(Duration::ZERO).await;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(tags: std::ops::RangeInclusive<u64>) -> Ledger {
        let mut ledger = Ledger::default();
        for tag in tags {
            ledger.received(tag);
        }
        ledger
    }

    #[test]
    fn a_run_of_finished_deliveries_is_acked_up_to_its_end() {
        let now = Instant::now();
        let mut ledger = ledger(1..=4);
        for tag in [2, 1, 3] {
            ledger.finished(tag, now);
        }
        assert_eq!(
            ledger.take(now, HOLD),
            Due {
                upto: Some(3),
                single: vec![]
            }
        );
        assert_eq!(ledger.take(now, HOLD), Due::default(), "taken once");
        ledger.finished(4, now);
        assert_eq!(ledger.take(now, HOLD).upto, Some(4));
    }

    #[test]
    fn a_delivery_still_handled_is_never_covered() {
        let now = Instant::now();
        let mut ledger = ledger(1..=5);
        for tag in [1, 3, 4, 5] {
            ledger.finished(tag, now);
        }
        // 2 still runs: the run ends at 1, and 3..5 wait behind it.
        assert_eq!(
            ledger.take(now, HOLD),
            Due {
                upto: Some(1),
                single: vec![]
            }
        );
        assert_eq!(ledger.next_due(HOLD), Some(now + HOLD));
        // Once they waited HOLD they go one by one, and 2 still is not covered.
        assert_eq!(
            ledger.take(now + HOLD, HOLD),
            Due {
                upto: None,
                single: vec![3, 4, 5]
            }
        );
        ledger.finished(2, now + HOLD);
        assert_eq!(ledger.take(now + HOLD, HOLD).upto, Some(2));
        assert_eq!(ledger.next_due(HOLD), None);
    }

    #[test]
    fn a_delivery_nacked_on_its_own_ends_the_run_until_its_frame_is_sent() {
        let now = Instant::now();
        let mut ledger = ledger(1..=3);
        ledger.finished(1, now);
        ledger.finished(3, now);
        // 2 is being nacked: it stays open, so no multiple ack reaches it.
        assert_eq!(ledger.take(now, HOLD).upto, Some(1));
        ledger.settled(2);
        assert_eq!(
            ledger.take(now, HOLD),
            Due {
                upto: Some(3),
                single: vec![]
            }
        );
    }

    #[test]
    fn at_the_end_every_finished_delivery_is_due_at_once() {
        let now = Instant::now();
        let mut ledger = ledger(1..=3);
        ledger.finished(2, now);
        ledger.finished(3, now);
        assert_eq!(
            ledger.take(now, Duration::ZERO),
            Due {
                upto: None,
                single: vec![2, 3]
            }
        );
    }
}
