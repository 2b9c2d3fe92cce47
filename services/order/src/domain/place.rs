//! `POST /api/payments` in async mode: what can be known at once is answered at once, the
//! rest is recorded as intent.
//!
//! The reservation is read over HTTP (owner only; unpayable → 409), then the order row and
//! `OrderPlaced` commit in one transaction, so the reservation service hears of every order
//! recorded and of no other. Only the payer whose insert created the row appends the event:
//! paying again, or two payers at once, share the one order and its one `OrderPlaced`. The
//! events that come back finish the order ([`crate::messaging`]); the payer polls
//! `GET /api/orders/{id}`.

use crate::db::orders;
use crate::domain::peers::{Peers, ReservationStatus};
use crate::domain::{IdempotencyKey, NewOrder, Order};
use chrono::Utc;
use common::events::OrderPlaced;
use common::messaging::outbox::{self, RelaySignal};
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use uuid::Uuid;

/// Place the order of reservation `reservation_id` for `user_id`, or find the one already
/// placed; answers it with its current status.
pub async fn place(
    pool: &Pool,
    peers: &Peers,
    relay: &RelaySignal,
    user_id: Uuid,
    reservation_id: Uuid,
    key: Option<IdempotencyKey>,
) -> ApiResult<Order> {
    // Paying again: the same order, whatever its status, without asking any peer.
    if let Some(order) = orders::by_reservation(pool, reservation_id).await? {
        return owned(order, user_id);
    }

    let reservation = peers.reservation(reservation_id).await?;
    if reservation.user_id != user_id {
        return Err(not_found());
    }
    if reservation.order_id.is_none() {
        match reservation.status {
            ReservationStatus::Reserved if reservation.expires_at > Utc::now() => {}
            ReservationStatus::Reserved | ReservationStatus::Expired => return Err(expired()),
            _ => return Err(not_payable()),
        }
    }

    let new = NewOrder {
        // A reservation already bound (by an order this database no longer has a row for)
        // keeps its order id, so the binding still lines up.
        id: reservation.order_id.unwrap_or_else(Uuid::new_v4),
        reservation_id,
        user_id,
        total_cents: reservation.total_cents,
        items: reservation.items,
        idempotency_key: key.map(IdempotencyKey::into_inner),
    };
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let (order, created) = orders::create_or_get_in(&tx, &new).await?;
    if created {
        outbox::append(
            &tx,
            &OrderPlaced {
                order_id: order.id,
                reservation_id,
                user_id,
            },
        )
        .await?;
    }
    tx.commit().await?;
    if created {
        relay.wake();
    }
    owned(order, user_id)
}

/// The order, if the payer owns it; someone else's is unknown.
fn owned(order: Order, user_id: Uuid) -> ApiResult<Order> {
    if order.user_id == user_id {
        Ok(order)
    } else {
        Err(not_found())
    }
}

fn expired() -> ApiError {
    ApiError::conflict(
        "reservation_expired",
        "the reservation expired before it was paid",
    )
}

fn not_payable() -> ApiError {
    ApiError::conflict(
        "reservation_not_payable",
        "the reservation cannot be paid in its current state",
    )
}

/// Unknown or someone else's: the payer is never told which.
fn not_found() -> ApiError {
    ApiError::not_found("reservation")
}
