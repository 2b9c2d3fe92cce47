//! Holds, commits and releases, serialised per reservation by an advisory lock so that a hold
//! and a release of the same reservation cannot interleave.
//!
//! Each operation has two forms: one on the pool that is its own transaction (the sync HTTP
//! routes), and an `_in` form that runs inside the caller's transaction (the async handler,
//! whose transaction also records the inbox row and the outbox event).
//!
//! Lock order inside a hold: hold rows, then the user's row, then the hot stock rows last (in
//! product order), so the hot row is locked only for the final statements and the commit.

use crate::domain::{HoldOutcome, HoldRequest, HoldState, StockLevel};
use common::db::Prepared;
use common::ApiResult;
use deadpool_postgres::{Pool, Transaction};
use uuid::Uuid;

/// Serialise every operation on one reservation's holds.
async fn lock_reservation(tx: &Transaction<'_>, reservation_id: Uuid) -> ApiResult<()> {
    tx.execute_cached(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))",
        &[&reservation_id],
    )
    .await?;
    Ok(())
}

/// The state of a reservation's holds, if any exist, or `Released` for a tombstone: one
/// statement, the holds' own state first.
async fn existing_state(
    tx: &Transaction<'_>,
    reservation_id: Uuid,
) -> ApiResult<Option<HoldState>> {
    let row = tx
        .query_opt_cached(
            "SELECT state FROM (
                 SELECT state, 0 AS rank FROM holds WHERE reservation_id = $1
                 UNION ALL
                 SELECT 'RELEASED', 1 FROM released_reservations WHERE reservation_id = $1
             ) AS known
             ORDER BY rank LIMIT 1",
            &[&reservation_id],
        )
        .await?;
    Ok(row.and_then(|row| HoldState::parse(row.get(0))))
}

/// Hold every item of `req`, all or nothing, in one transaction of its own.
pub async fn hold(pool: &Pool, req: &HoldRequest) -> ApiResult<HoldOutcome> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let outcome = hold_in(&tx, req).await?;
    if let HoldOutcome::Held(_) = outcome {
        tx.commit().await?;
    }
    // Otherwise dropping the transaction rolls back the user count and the hold rows.
    Ok(outcome)
}

/// Hold every item of `req` inside `tx`. On any outcome but [`HoldOutcome::Held`] the hold
/// may have written part of its rows: the caller must roll `tx` back (run it in a savepoint
/// when the transaction has to keep other work).
pub async fn hold_in(tx: &Transaction<'_>, req: &HoldRequest) -> ApiResult<HoldOutcome> {
    lock_reservation(tx, req.reservation_id).await?;
    match existing_state(tx, req.reservation_id).await? {
        Some(HoldState::Released) => return Ok(HoldOutcome::AlreadyReleased),
        Some(state) => return Ok(HoldOutcome::Held(state)),
        None => {}
    }

    // One line per product, in product order (a fixed lock order rules out deadlocks).
    let mut items: Vec<(Uuid, i32)> = Vec::new();
    for item in &req.items {
        match items.iter_mut().find(|(p, _)| *p == item.product_id) {
            Some((_, q)) => *q = q.saturating_add(item.quantity.get()),
            None => items.push((item.product_id, item.quantity.get())),
        }
    }
    items.sort_by_key(|(p, _)| *p);

    for (product_id, quantity) in &items {
        let limit = tx
            .query_opt_cached(
                "SELECT per_user_limit FROM stock WHERE product_id = $1",
                &[product_id],
            )
            .await?;
        let Some(limit) = limit else {
            return Ok(HoldOutcome::UnknownProduct(*product_id));
        };
        let limit: i32 = limit.get(0);
        if limit > 0 && *quantity > limit {
            return Ok(HoldOutcome::LimitReached);
        }
        // The guard in DO UPDATE makes the limit check and the increment one atomic step,
        // even when the same user races itself from many connections.
        let counted = tx
            .query_opt_cached(
                "INSERT INTO user_units (user_id, product_id, units) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, product_id)
                 DO UPDATE SET units = user_units.units + EXCLUDED.units
                 WHERE $4 = 0 OR user_units.units + EXCLUDED.units <= $4
                 RETURNING units",
                &[&req.user_id, product_id, quantity, &limit],
            )
            .await?;
        if counted.is_none() {
            return Ok(HoldOutcome::LimitReached);
        }
        tx.execute_cached(
            "INSERT INTO holds (reservation_id, product_id, user_id, quantity, state)
             VALUES ($1, $2, $3, $4, 'HELD')",
            &[&req.reservation_id, product_id, &req.user_id, quantity],
        )
        .await?;
    }

    for (product_id, quantity) in &items {
        let taken = tx
            .execute_cached(
                "UPDATE stock SET available = available - $2, reserved = reserved + $2
                 WHERE product_id = $1 AND available >= $2",
                &[product_id, quantity],
            )
            .await?;
        if taken == 0 {
            // The caller rolls back the user count and the hold rows.
            return Ok(HoldOutcome::SoldOut);
        }
    }
    Ok(HoldOutcome::Held(HoldState::Held))
}

/// Outcome of a commit or a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Done now or before: the holds are in the wanted state.
    Done,
    /// The holds are in the other final state (commit after release, release after commit).
    Conflict(HoldState),
    /// No hold was ever placed for this reservation.
    Unknown,
}

/// HELD → SOLD for every hold of the reservation, in one transaction of its own.
pub async fn commit(pool: &Pool, reservation_id: Uuid) -> ApiResult<Transition> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let transition = commit_in(&tx, reservation_id).await?;
    tx.commit().await?;
    Ok(transition)
}

/// HELD → SOLD for every hold of the reservation, inside `tx`.
pub async fn commit_in(tx: &Transaction<'_>, reservation_id: Uuid) -> ApiResult<Transition> {
    lock_reservation(tx, reservation_id).await?;
    match existing_state(tx, reservation_id).await? {
        None => return Ok(Transition::Unknown),
        Some(HoldState::Sold) => return Ok(Transition::Done),
        Some(HoldState::Released) => return Ok(Transition::Conflict(HoldState::Released)),
        Some(HoldState::Held) => {}
    }
    let rows = tx
        .query_cached(
            "UPDATE holds SET state = 'SOLD', updated_at = now()
             WHERE reservation_id = $1 AND state = 'HELD'
             RETURNING product_id, quantity",
            &[&reservation_id],
        )
        .await?;
    let mut lines: Vec<(Uuid, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    lines.sort_by_key(|(p, _)| *p);
    for (product_id, quantity) in &lines {
        tx.execute_cached(
            "UPDATE stock SET reserved = reserved - $2, sold = sold + $2 WHERE product_id = $1",
            &[product_id, quantity],
        )
        .await?;
    }
    Ok(Transition::Done)
}

/// HELD → RELEASED for every hold of the reservation; the stock goes back on sale and the
/// user's units are given back. With no hold yet, a tombstone stops a late hold. One
/// transaction of its own.
pub async fn release(pool: &Pool, reservation_id: Uuid) -> ApiResult<Transition> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let transition = release_in(&tx, reservation_id).await?;
    tx.commit().await?;
    Ok(transition)
}

/// [`release`] inside `tx`.
pub async fn release_in(tx: &Transaction<'_>, reservation_id: Uuid) -> ApiResult<Transition> {
    lock_reservation(tx, reservation_id).await?;
    match existing_state(tx, reservation_id).await? {
        Some(HoldState::Released) => return Ok(Transition::Done),
        Some(HoldState::Sold) => return Ok(Transition::Conflict(HoldState::Sold)),
        Some(HoldState::Held) | None => {}
    }
    tx.execute_cached(
        "INSERT INTO released_reservations (reservation_id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&reservation_id],
    )
    .await?;
    let rows = tx
        .query_cached(
            "UPDATE holds SET state = 'RELEASED', updated_at = now()
             WHERE reservation_id = $1 AND state = 'HELD'
             RETURNING product_id, quantity, user_id",
            &[&reservation_id],
        )
        .await?;
    let mut lines: Vec<(Uuid, i32, Uuid)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    lines.sort_by_key(|(p, _, _)| *p);
    for (product_id, quantity, user_id) in &lines {
        tx.execute_cached(
            "UPDATE user_units SET units = units - $3 WHERE user_id = $1 AND product_id = $2",
            &[user_id, product_id, quantity],
        )
        .await?;
    }
    for (product_id, quantity, _) in &lines {
        tx.execute_cached(
            "UPDATE stock SET reserved = reserved - $2, available = available + $2
             WHERE product_id = $1",
            &[product_id, quantity],
        )
        .await?;
    }
    Ok(Transition::Done)
}

fn level(row: &tokio_postgres::Row) -> StockLevel {
    StockLevel {
        product_id: row.get(0),
        initial: row.get(1),
        available: row.get(2),
        reserved: row.get(3),
        sold: row.get(4),
        per_user_limit: row.get(5),
    }
}

const LEVEL_COLUMNS: &str = "product_id, initial, available, reserved, sold, per_user_limit";

pub async fn levels(pool: &Pool) -> ApiResult<Vec<StockLevel>> {
    let client = pool.get().await?;
    let rows = client
        .query_cached(
            &format!("SELECT {LEVEL_COLUMNS} FROM stock ORDER BY product_id"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(level).collect())
}

pub async fn level_of(pool: &Pool, product_id: Uuid) -> ApiResult<Option<StockLevel>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            &format!("SELECT {LEVEL_COLUMNS} FROM stock WHERE product_id = $1"),
            &[&product_id],
        )
        .await?;
    Ok(row.as_ref().map(level))
}
