//! Reads and state changes of `reservations`. Every change is one guarded UPDATE, so two
//! replicas (or a request and the sweeper) racing on one row cannot both win: the loser's
//! guard no longer matches once the winner commits.
//!
//! Request paths return [`ApiResult`] (a database that is away is a 503); the sweeper's
//! statements return `anyhow` so that a database outage is logged once per tick by the
//! sweeper loop and not once per statement.
//!
//! The `…_in` functions run on a connection or transaction the caller holds: async mode
//! commits them together with the inbox and outbox rows of the same step. The pool functions
//! of sync mode are the same statements on a connection of their own.

use crate::domain::{Line, Reservation, Status};
use anyhow::Context;
use common::db::Prepared;
use common::{ApiError, ApiResult};
use deadpool_postgres::{GenericClient, Pool};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, user_id, cart_id, status, items, total_cents, expires_at, order_id";

/// How long a replica owns the release of a row before another one may try it.
const RELEASE_LEASE: &str = "interval '5 seconds'";

fn record(row: &Row) -> ApiResult<Reservation> {
    let status: &str = row.get(3);
    let status = Status::parse(status)
        .ok_or_else(|| anyhow::anyhow!("unknown reservation status {status:?} in the database"))?;
    let Json(items): Json<Vec<Line>> = row
        .try_get(4)
        .context("decoding the items of a reservation")?;
    Ok(Reservation {
        id: row.get(0),
        user_id: row.get(1),
        cart_id: row.get(2),
        status,
        items,
        total_cents: row.get(5),
        expires_at: row.get(6),
        order_id: row.get(7),
    })
}

fn optional(row: Option<Row>) -> ApiResult<Option<Reservation>> {
    row.as_ref().map(record).transpose()
}

/// What a new reservation is made of.
pub struct NewReservation<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub cart_id: Uuid,
    pub items: &'a [Line],
    pub total_cents: i64,
    pub ttl_secs: u64,
}

/// Insert a PENDING reservation expiring `ttl_secs` from now on the database clock (the
/// sweeper compares with the same clock); `true` beside it when this call created it. A row
/// of that id already there (the same request sent again) is answered as it is, `false`.
pub async fn insert_pending(
    pool: &Pool,
    new: NewReservation<'_>,
) -> ApiResult<(Reservation, bool)> {
    insert_pending_in(&pool.get().await?, new).await
}

pub async fn insert_pending_in(
    client: &impl GenericClient,
    new: NewReservation<'_>,
) -> ApiResult<(Reservation, bool)> {
    let ttl = i64::try_from(new.ttl_secs).unwrap_or(i64::MAX);
    let row = client
        .query_opt_cached(
            &format!(
                "INSERT INTO reservations (id, user_id, cart_id, status, items, total_cents, expires_at)
                 VALUES ($1, $2, $3, 'PENDING', $4, $5, now() + $6::bigint * interval '1 second')
                 ON CONFLICT (id) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &new.id,
                &new.user_id,
                &new.cart_id,
                &Json(new.items),
                &new.total_cents,
                &ttl,
            ],
        )
        .await?;
    if let Some(row) = row {
        return Ok((record(&row)?, true));
    }
    // The first request's row, read by a statement of its own: one that committed while this
    // insert waited on it is not in the insert's snapshot.
    let row = client
        .query_opt_cached(
            &format!("SELECT {COLUMNS} FROM reservations WHERE id = $1 AND user_id = $2"),
            &[&new.id, &new.user_id],
        )
        .await?;
    let existing = optional(row)?.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "reservation {} conflicts with a row of another user",
            new.id
        ))
    })?;
    Ok((existing, false))
}

/// PENDING → `to`, once the hold at inventory has answered. `None` when the row is no longer
/// PENDING (the sweeper expired it while the hold was in flight).
pub async fn settle(pool: &Pool, id: Uuid, to: Status) -> ApiResult<Option<Reservation>> {
    settle_in(&pool.get().await?, id, to).await
}

pub async fn settle_in(
    client: &impl GenericClient,
    id: Uuid,
    to: Status,
) -> ApiResult<Option<Reservation>> {
    let row = client
        .query_opt_cached(
            &format!(
                "UPDATE reservations SET status = $2, updated_at = now()
                 WHERE id = $1 AND status = 'PENDING'
                 RETURNING {COLUMNS}"
            ),
            &[&id, &to.as_str()],
        )
        .await?;
    optional(row)
}

pub async fn find(pool: &Pool, id: Uuid) -> ApiResult<Option<Reservation>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            &format!("SELECT {COLUMNS} FROM reservations WHERE id = $1"),
            &[&id],
        )
        .await?;
    optional(row)
}

/// The reservation if it exists and belongs to `user_id`.
pub async fn find_owned(pool: &Pool, id: Uuid, user_id: Uuid) -> ApiResult<Option<Reservation>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            &format!("SELECT {COLUMNS} FROM reservations WHERE id = $1 AND user_id = $2"),
            &[&id, &user_id],
        )
        .await?;
    optional(row)
}

/// The reservation, and whether it is past `expires_at` on the database clock (the clock the
/// sweeper and the binding guard use).
pub async fn find_in(
    client: &impl GenericClient,
    id: Uuid,
) -> ApiResult<Option<(Reservation, bool)>> {
    let row = client
        .query_opt_cached(
            &format!("SELECT {COLUMNS}, expires_at <= now() FROM reservations WHERE id = $1"),
            &[&id],
        )
        .await?;
    row.map(|row| Ok((record(&row)?, row.get(8)))).transpose()
}

/// Bind `order_id` to a RESERVED, unexpired reservation that no other order holds. From then
/// on the sweeper leaves the row alone. `None` when the guard does not match.
pub async fn bind_order(pool: &Pool, id: Uuid, order_id: Uuid) -> ApiResult<Option<Reservation>> {
    bind_order_in(&pool.get().await?, id, order_id, None).await
}

/// [`bind_order`], and when `owner` is given only if the reservation is theirs.
pub async fn bind_order_in(
    client: &impl GenericClient,
    id: Uuid,
    order_id: Uuid,
    owner: Option<Uuid>,
) -> ApiResult<Option<Reservation>> {
    let row = client
        .query_opt_cached(
            &format!(
                "UPDATE reservations SET order_id = $2, updated_at = now()
                 WHERE id = $1 AND status = 'RESERVED' AND expires_at > now()
                   AND (order_id IS NULL OR order_id = $2)
                   AND ($3::uuid IS NULL OR user_id = $3)
                 RETURNING {COLUMNS}"
            ),
            &[&id, &order_id, &owner],
        )
        .await?;
    optional(row)
}

/// RESERVED → CONFIRMED for the order bound to it, once inventory has committed the holds.
pub async fn mark_confirmed(
    pool: &Pool,
    id: Uuid,
    order_id: Uuid,
) -> ApiResult<Option<Reservation>> {
    mark_confirmed_in(&pool.get().await?, id, order_id).await
}

pub async fn mark_confirmed_in(
    client: &impl GenericClient,
    id: Uuid,
    order_id: Uuid,
) -> ApiResult<Option<Reservation>> {
    let row = client
        .query_opt_cached(
            &format!(
                "UPDATE reservations SET status = 'CONFIRMED', updated_at = now()
                 WHERE id = $1 AND status = 'RESERVED' AND order_id = $2
                 RETURNING {COLUMNS}"
            ),
            &[&id, &order_id],
        )
        .await?;
    optional(row)
}

/// PENDING/RESERVED → CANCELLED, with the stock still to be given back (`release_pending`),
/// unless another order is bound.
pub async fn mark_cancelled(
    pool: &Pool,
    id: Uuid,
    order_id: Uuid,
) -> ApiResult<Option<Reservation>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            &format!(
                "UPDATE reservations
                 SET status = 'CANCELLED', release_pending = true, updated_at = now()
                 WHERE id = $1 AND status IN ('PENDING', 'RESERVED')
                   AND (order_id IS NULL OR order_id = $2)
                 RETURNING {COLUMNS}"
            ),
            &[&id, &order_id],
        )
        .await?;
    optional(row)
}

/// Async mode: PENDING/RESERVED → CANCELLED because the payment of the order bound to it was
/// declined. No `release_pending`: inventory releases on its own copy of the event.
pub async fn cancel_declined_in(
    client: &impl GenericClient,
    id: Uuid,
    order_id: Uuid,
) -> ApiResult<Option<Reservation>> {
    let row = client
        .query_opt_cached(
            &format!(
                "UPDATE reservations SET status = 'CANCELLED', updated_at = now()
                 WHERE id = $1 AND status IN ('PENDING', 'RESERVED') AND order_id = $2
                 RETURNING {COLUMNS}"
            ),
            &[&id, &order_id],
        )
        .await?;
    optional(row)
}

/// Take the release lease of one row whose stock is still to be given back. `false` when
/// there is nothing to release or another replica holds the lease.
pub async fn claim_release(pool: &Pool, id: Uuid) -> anyhow::Result<bool> {
    let client = pool.get().await.context("getting a database connection")?;
    let claimed = client
        .execute_cached(
            &format!(
                "UPDATE reservations SET release_claimed_until = now() + {RELEASE_LEASE}
                 WHERE id = $1 AND release_pending
                   AND (release_claimed_until IS NULL OR release_claimed_until < now())"
            ),
            &[&id],
        )
        .await
        .context("claiming a release")?;
    Ok(claimed == 1)
}

/// The stock of this row is back at inventory: nothing left to release.
pub async fn clear_release(pool: &Pool, id: Uuid) -> anyhow::Result<()> {
    let client = pool.get().await.context("getting a database connection")?;
    client
        .execute_cached(
            "UPDATE reservations
             SET release_pending = false, release_claimed_until = NULL, updated_at = now()
             WHERE id = $1",
            &[&id],
        )
        .await
        .context("clearing a release")?;
    Ok(())
}

/// Expire pass: at most `limit` live, unbound reservations past their expiry become EXPIRED
/// with their stock to be released. Rows another replica is expiring are skipped, and the
/// outer guard repeats the filter, so no row is expired twice.
pub async fn expire_due(pool: &Pool, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    let client = pool.get().await.context("getting a database connection")?;
    expire_due_in(&client, limit, true).await
}

/// The expire pass's statement. `owe_release`: record the release for the sweeper's release
/// pass (sync mode); async mode passes `false` and appends `ReservationExpired` instead.
/// A live row never owes a release, so `false` changes nothing else.
pub async fn expire_due_in(
    client: &impl GenericClient,
    limit: i64,
    owe_release: bool,
) -> anyhow::Result<Vec<Uuid>> {
    let rows = client
        .query_cached(
            "UPDATE reservations
             SET status = 'EXPIRED', release_pending = $2, updated_at = now()
             WHERE id IN (
                 SELECT id FROM reservations
                 WHERE status IN ('PENDING', 'RESERVED') AND order_id IS NULL
                   AND expires_at < now()
                 ORDER BY expires_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
               AND status IN ('PENDING', 'RESERVED') AND order_id IS NULL
             RETURNING id",
            &[&limit, &owe_release],
        )
        .await
        .context("expiring reservations")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Release pass: lease at most `limit` rows whose stock is still to be given back and whose
/// lease (if any) has run out. A replica that dies mid-release loses its lease in seconds.
pub async fn claim_releases(pool: &Pool, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    let client = pool.get().await.context("getting a database connection")?;
    let rows = client
        .query_cached(
            &format!(
                "UPDATE reservations SET release_claimed_until = now() + {RELEASE_LEASE}
                 WHERE id IN (
                     SELECT id FROM reservations
                     WHERE release_pending
                       AND (release_claimed_until IS NULL OR release_claimed_until < now())
                     LIMIT $1
                     FOR UPDATE SKIP LOCKED)
                   AND release_pending
                   AND (release_claimed_until IS NULL OR release_claimed_until < now())
                 RETURNING id"
            ),
            &[&limit],
        )
        .await
        .context("claiming releases")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
