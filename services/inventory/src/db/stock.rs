//! Holds, commits and releases, serialised per reservation by an advisory lock so that a hold
//! and a release of the same reservation cannot interleave.
//!
//! Each operation has two forms: one on the pool that is its own transaction (the sync HTTP
//! routes), and an `_in` form that runs inside the caller's transaction (the async handler,
//! whose transaction also records the inbox row and the outbox event).
//!
//! A hold and a commit are one statement each: the functions `hold_stock` and `commit_holds`
//! of `V3__hold_functions.sql` run the steps in PostgreSQL, in one round trip instead of six
//! to eight (every hold and commit of a flash sale goes through here). A release, off the
//! checkout path (expiry, decline), stays a sequence of statements.
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
        .query_one_cached("SELECT hold_state($1)", &[&reservation_id])
        .await?;
    Ok(row.get::<_, Option<&str>>(0).and_then(HoldState::parse))
}

/// `hold_stock` raises these when a concurrent hold took the stock or the user's last units
/// between its checks and its writes; the statement's writes are rolled back with it.
const RACED_SOLD_OUT: &str = "FS001";
const RACED_LIMIT: &str = "FS002";

/// Hold every item of `req`, all or nothing, in one statement (its own transaction).
pub async fn hold(pool: &Pool, req: &HoldRequest) -> ApiResult<HoldOutcome> {
    let client = pool.get().await?;
    run_hold(&client, req).await
}

/// Hold every item of `req` inside `tx`. On any outcome but [`HoldOutcome::Held`] the hold
/// may have failed part-way (a race lost to a concurrent hold aborts the statement): the
/// caller must roll `tx` back (run it in a savepoint when the transaction has to keep other
/// work).
pub async fn hold_in(tx: &Transaction<'_>, req: &HoldRequest) -> ApiResult<HoldOutcome> {
    run_hold(tx, req).await
}

async fn run_hold(client: &impl Prepared, req: &HoldRequest) -> ApiResult<HoldOutcome> {
    // One line per product, in product order (a fixed lock order rules out deadlocks).
    let mut items: Vec<(Uuid, i32)> = Vec::new();
    for item in &req.items {
        match items.iter_mut().find(|(p, _)| *p == item.product_id) {
            Some((_, q)) => *q = q.saturating_add(item.quantity.get()),
            None => items.push((item.product_id, item.quantity.get())),
        }
    }
    items.sort_by_key(|(p, _)| *p);
    let (products, quantities): (Vec<Uuid>, Vec<i32>) = items.into_iter().unzip();

    let row = client
        .query_one_cached(
            "SELECT outcome, product FROM hold_stock($1, $2, $3, $4)",
            &[&req.reservation_id, &req.user_id, &products, &quantities],
        )
        .await;
    let row = match row {
        Ok(row) => row,
        Err(e) => {
            return match e.code().map(|c| c.code()) {
                Some(RACED_SOLD_OUT) => Ok(HoldOutcome::SoldOut),
                Some(RACED_LIMIT) => Ok(HoldOutcome::LimitReached),
                _ => Err(e.into()),
            }
        }
    };
    let outcome: &str = row.get(0);
    Ok(match outcome {
        "HELD" => HoldOutcome::Held(HoldState::Held),
        "SOLD" => HoldOutcome::Held(HoldState::Sold),
        "RELEASED" => HoldOutcome::AlreadyReleased,
        "SOLD_OUT" => HoldOutcome::SoldOut,
        "LIMIT_REACHED" => HoldOutcome::LimitReached,
        "UNKNOWN_PRODUCT" => HoldOutcome::UnknownProduct(row.get(1)),
        other => {
            return Err(anyhow::anyhow!("hold_stock answered an unknown outcome {other:?}").into())
        }
    })
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

/// HELD → SOLD for every hold of the reservation, in one statement (its own transaction).
pub async fn commit(pool: &Pool, reservation_id: Uuid) -> ApiResult<Transition> {
    let client = pool.get().await?;
    run_commit(&client, reservation_id).await
}

/// HELD → SOLD for every hold of the reservation, inside `tx`.
pub async fn commit_in(tx: &Transaction<'_>, reservation_id: Uuid) -> ApiResult<Transition> {
    run_commit(tx, reservation_id).await
}

async fn run_commit(client: &impl Prepared, reservation_id: Uuid) -> ApiResult<Transition> {
    let row = client
        .query_one_cached("SELECT commit_holds($1)", &[&reservation_id])
        .await?;
    let outcome: &str = row.get(0);
    Ok(match outcome {
        "DONE" => Transition::Done,
        "RELEASED" => Transition::Conflict(HoldState::Released),
        "UNKNOWN" => Transition::Unknown,
        other => {
            return Err(
                anyhow::anyhow!("commit_holds answered an unknown outcome {other:?}").into(),
            )
        }
    })
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
