//! The expiry sweeper: a loop in every replica that gives back the stock of reservations
//! nobody paid for in time.
//!
//! Each pass has two steps:
//! 1. **expire**: live (PENDING/RESERVED) reservations past `expires_at` with no order bound
//!    become EXPIRED with `release_pending`, in one UPDATE over a `FOR UPDATE SKIP LOCKED`
//!    subquery — replicas share the rows, none is expired twice;
//! 2. **release**: rows with `release_pending` (expired ones, and cancelled ones whose release
//!    failed) are leased for a few seconds, released at inventory, then cleared. A release is
//!    idempotent at inventory, so a lease that runs out while its holder is still calling
//!    costs a duplicate call, never a duplicate effect.
//!
//! A failed release keeps its lease, which doubles as back-off: the row is tried again once
//! the lease runs out. Errors never stop the loop, and an outage is logged once, not once
//! per tick.
//!
//! Async mode has only the first step: the expiring transaction also appends one
//! `ReservationExpired` per row to the outbox (and owes no release), so the release travels
//! as an event that the outbox delivers for certain; inventory releases on it. The expired
//! ids are published as status changes too, so a held poll of a reservation that expired
//! while PENDING is answered at once (`common::changes`).

use crate::db::reservations;
use crate::messaging::RelaySignal;
use crate::peers::{self, Released};
use anyhow::Context;
use common::changes::Changes;
use common::client::ServiceClient;
use common::events::ReservationExpired;
use common::messaging::outbox;
use common::ApiError;
use deadpool_postgres::Pool;
use futures::{FutureExt, StreamExt};
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Rows expired per pass; more wait for the next tick, oldest first.
const EXPIRE_BATCH: i64 = 200;
/// Rows leased for release per pass.
const RELEASE_BATCH: i64 = 100;
/// Release calls in flight at once per replica: enough to drain a burst of expiries, few
/// enough not to crowd the inventory's hot stock rows.
const RELEASE_CONCURRENCY: usize = 4;
/// While passes keep failing, log one line every this many ticks.
const LOG_EVERY_FAILED_TICKS: u64 = 20;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepStats {
    /// Reservations this pass moved to EXPIRED.
    pub expired: usize,
    /// Reservations whose stock this pass gave back (or found already sold) and cleared.
    pub released: usize,
    /// Releases that failed; they are retried once their lease runs out.
    pub release_failed: usize,
}

/// How the release of one leased row ended.
enum Outcome {
    Released,
    Failed(ApiError),
    /// Released at inventory, but the flag could not be cleared: it will be released again,
    /// harmlessly, after the lease.
    NotCleared(anyhow::Error),
}

/// How expired stock goes back to inventory.
#[derive(Clone)]
pub enum Releases {
    /// Sync mode: `release_pending`, then a release call to inventory ([`sweep_once`]).
    Http(ServiceClient),
    /// Async mode: a `ReservationExpired` in the outbox ([`expire_with_events`]), and the
    /// status change published to the replicas' waiters.
    Events(RelaySignal, Changes),
}

/// Async mode's pass: expire, appending `ReservationExpired` for each row in the same
/// transaction, then wake the relay and tell the waiters.
pub async fn expire_with_events(
    pool: &Pool,
    relay: &RelaySignal,
    changes: &Changes,
) -> anyhow::Result<SweepStats> {
    let mut client = pool.get().await.context("getting a database connection")?;
    let tx = client.transaction().await.context("starting the expiry")?;
    let expired = reservations::expire_due_in(&tx, EXPIRE_BATCH, false).await?;
    for &reservation_id in &expired {
        outbox::append(&tx, &ReservationExpired { reservation_id })
            .await
            .context("recording ReservationExpired")?;
    }
    tx.commit().await.context("committing the expiry")?;
    if !expired.is_empty() {
        relay.wake();
    }
    for &reservation_id in &expired {
        changes.publish(reservation_id);
    }
    Ok(SweepStats {
        expired: expired.len(),
        ..SweepStats::default()
    })
}

/// One pass: expire, then release. Errors from PostgreSQL end the pass with `Err`; release
/// failures at inventory are counted in the stats.
pub async fn sweep_once(pool: &Pool, client: &ServiceClient) -> anyhow::Result<SweepStats> {
    let expired = reservations::expire_due(pool, EXPIRE_BATCH).await?;
    let claimed = reservations::claim_releases(pool, RELEASE_BATCH).await?;

    let mut stats = SweepStats {
        expired: expired.len(),
        ..SweepStats::default()
    };
    let mut first_failure: Option<ApiError> = None;
    let mut db_error: Option<anyhow::Error> = None;
    let mut outcomes = futures::stream::iter(claimed)
        .map(|id| release_one(pool, client, id))
        .buffer_unordered(RELEASE_CONCURRENCY);
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Outcome::Released => stats.released += 1,
            Outcome::Failed(e) => {
                stats.release_failed += 1;
                // Inventory is away: stop calling it this pass; the leases left on the
                // remaining rows are the back-off.
                let away = matches!(e, ApiError::Unavailable { .. });
                first_failure.get_or_insert(e);
                if away {
                    break;
                }
            }
            Outcome::NotCleared(e) => {
                db_error.get_or_insert(e);
            }
        }
    }
    drop(outcomes);

    if let Some(e) = db_error {
        return Err(e.context("clearing released reservations"));
    }
    if let Some(e) = first_failure {
        tracing::warn!(
            failed = stats.release_failed,
            released = stats.released,
            error = %e,
            "releases at inventory failed; retried when their lease runs out"
        );
    }
    Ok(stats)
}

async fn release_one(pool: &Pool, client: &ServiceClient, id: Uuid) -> Outcome {
    match peers::release(client, id).await {
        Ok(Released::Done) => {}
        Ok(Released::AlreadySold) => {
            // An expired reservation has no order, and a cancelled one was cancelled by its
            // order: neither can have been committed. Nothing to give back; say so loudly.
            tracing::error!(reservation_id = %id, "inventory says the stock of a released reservation was sold");
        }
        Err(e) => return Outcome::Failed(e),
    }
    match reservations::clear_release(pool, id).await {
        Ok(()) => Outcome::Released,
        Err(e) => Outcome::NotCleared(e),
    }
}

/// Run a pass ([`sweep_once`] or [`expire_with_events`]) every `interval` (the first pass
/// after one interval) until `cancel`. A pass in progress finishes before the loop stops.
pub fn spawn(
    pool: Pool,
    releases: Releases,
    interval: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let interval = interval.max(Duration::from_millis(1));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed_ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let pass = match &releases {
                Releases::Http(client) => AssertUnwindSafe(sweep_once(&pool, client).boxed()),
                Releases::Events(relay, changes) => {
                    AssertUnwindSafe(expire_with_events(&pool, relay, changes).boxed())
                }
            }
            .catch_unwind();
            let result = match pass.await {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!("the sweep pass panicked")),
            };
            match result {
                Ok(stats) => {
                    if failed_ticks > 0 {
                        tracing::info!(failed_ticks, "sweeper recovered");
                    }
                    failed_ticks = 0;
                    if stats != SweepStats::default() {
                        tracing::debug!(?stats, "sweep pass");
                    }
                }
                Err(e) => {
                    failed_ticks += 1;
                    if failed_ticks % LOG_EVERY_FAILED_TICKS == 1 {
                        tracing::warn!(
                            failed_ticks,
                            error = format!("{e:#}"),
                            "sweep pass failed; retrying next tick"
                        );
                    }
                }
            }
        }
        tracing::info!("sweeper stopped");
    })
}
