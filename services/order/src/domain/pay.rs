//! The Pay saga of `POST /api/payments` (sync mode), as docs/internal-api.md states it.
//!
//! Every step is idempotent, so the saga can be run again from the top at any time: by a payer
//! who got a 503, by a second payer of the same reservation, or by both at once. The only state
//! it keeps is the order row; the peers keep theirs keyed by the order id.

use crate::db::orders;
use crate::domain::peers::{ChargeStatus, Peers, ReservationStatus};
use crate::domain::{IdempotencyKey, NewOrder, Order, OrderStatus};
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use uuid::Uuid;

/// Pay reservation `reservation_id` for `user_id`. `Ok` is the id of the confirmed order; a
/// declined payment, an expired reservation and the like are the errors the payer sees.
pub async fn pay(
    pool: &Pool,
    peers: &Peers,
    user_id: Uuid,
    reservation_id: Uuid,
    key: Option<IdempotencyKey>,
) -> ApiResult<Uuid> {
    // 1. An order that already exists and is final is answered again, without any peer.
    let existing = orders::by_reservation(pool, reservation_id).await?;
    if let Some(order) = &existing {
        if order.user_id != user_id {
            return Err(not_found());
        }
        if order.status.is_final() {
            return settled(order);
        }
    }

    // 2. The reservation, owner only (an unknown one is the reservation service's own 404).
    let reservation = peers.reservation(reservation_id).await?;
    if reservation.user_id != user_id {
        return Err(not_found());
    }
    if reservation.order_id.is_none() && reservation.status != ReservationStatus::Reserved {
        // Unbound and no longer RESERVED is terminal (a reservation never becomes RESERVED
        // again), so an order left pending by an earlier attempt can be closed too.
        if let Some(order) = &existing {
            orders::finish(pool, order.id, OrderStatus::Cancelled).await?;
        }
        return Err(not_payable(reservation.status));
    }

    // 3. One order per reservation, shared by concurrent payers. Should the reservation be
    //    bound already (our row lost), its order id is reused so the saga still lines up.
    let order = match existing {
        Some(order) => order,
        None => {
            let new = NewOrder {
                id: reservation.order_id.unwrap_or_else(Uuid::new_v4),
                reservation_id,
                user_id,
                total_cents: reservation.total_cents,
                items: reservation.items,
                idempotency_key: key.map(IdempotencyKey::into_inner),
            };
            orders::create_or_get(pool, &new).await?
        }
    };
    if order.user_id != user_id {
        return Err(not_found());
    }
    if order.status.is_final() {
        return settled(&order);
    }

    // 4. Bind the order to the reservation, unless a previous attempt already did.
    if reservation.order_id != Some(order.id) {
        if let Err(e) = peers.begin_payment(reservation_id, order.id).await {
            if !matches!(e, ApiError::Conflict { .. }) {
                return Err(e);
            }
            // Expired or not payable: the reservation will never be bound to this order.
            let order = orders::finish(pool, order.id, OrderStatus::Cancelled).await?;
            return match order.status {
                OrderStatus::Cancelled => Err(e),
                _ => settled(&order),
            };
        }
    }

    // 5. Charge (once per order id, whatever the number of calls), then settle the stock.
    let charge = peers
        .charge(order.id, order.user_id, order.total_cents)
        .await?;
    let status = match charge.status {
        ChargeStatus::Succeeded => match peers.confirm(reservation_id, order.id).await {
            Ok(()) => OrderStatus::Confirmed,
            // The reservation refuses for good (cancelled under the order): the money the
            // shopper paid for stock they will not get goes back.
            Err(e @ ApiError::Conflict { .. }) => {
                tracing::warn!(order_id = %order.id, code = e.code(), "charged but the reservation cannot be confirmed: refunding");
                return give_back(pool, peers, &order).await;
            }
            Err(e) => return Err(e),
        },
        ChargeStatus::Declined => {
            peers.cancel(reservation_id, order.id).await?;
            OrderStatus::Declined
        }
        // Given up by the reconciler while this payer was on its way.
        ChargeStatus::Refunded => return give_back(pool, peers, &order).await,
        ChargeStatus::Pending => {
            return Err(ApiError::unavailable(
                "payment_pending",
                "the payment is not settled yet, retry later",
            ))
        }
    };
    let order = orders::finish(pool, order.id, status).await?;
    settled(&order)
}

/// Give the order up: cancel its reservation (the reservation service decides between this
/// and a confirm, so a confirm that won is finished instead), refund its charge, FAILED.
/// Every step is idempotent; a 503 on the way leaves the order PENDING for the next pass.
pub async fn give_up(pool: &Pool, peers: &Peers, order: &Order) -> ApiResult<Uuid> {
    match peers.cancel(order.reservation_id, order.id).await {
        Ok(()) => {}
        Err(e) if e.code() == "reservation_confirmed" => {
            // The stock was sold to this order, which was charged first: finish the saga.
            return pay(pool, peers, order.user_id, order.reservation_id, None).await;
        }
        // Bound to another order: nothing of this order's is held there.
        Err(ApiError::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    give_back(pool, peers, order).await
}

/// Refund the order's charge (if it has one), then FAILED.
async fn give_back(pool: &Pool, peers: &Peers, order: &Order) -> ApiResult<Uuid> {
    peers.refund(order.id).await?;
    let order = orders::finish(pool, order.id, OrderStatus::Failed).await?;
    settled(&order)
}

/// The answer of a final order: the same for every payer, every time.
fn settled(order: &Order) -> ApiResult<Uuid> {
    match order.status {
        OrderStatus::Confirmed => Ok(order.id),
        OrderStatus::Declined => Err(payment_declined(order.id)),
        // An order is cancelled only when its reservation could not be bound to it, which in
        // practice means it expired first.
        OrderStatus::Cancelled => Err(ApiError::conflict(
            "reservation_expired",
            "the reservation expired before it was paid",
        )),
        OrderStatus::Failed => Err(ApiError::conflict(
            "order_failed",
            "the order could not be completed; its payment was refunded",
        )),
        OrderStatus::Pending => Err(ApiError::unavailable(
            "order_pending",
            "the order is still being paid, retry later",
        )),
    }
}

/// 402 with the order's id, so a declined shopper can look the order up.
fn payment_declined(order_id: Uuid) -> ApiError {
    let mut extra = serde_json::Map::new();
    extra.insert("order_id".into(), order_id.to_string().into());
    ApiError::PaymentRequired {
        code: "payment_declined".into(),
        message: "the payment provider declined the charge".into(),
        extra,
    }
}

fn not_payable(status: ReservationStatus) -> ApiError {
    match status {
        ReservationStatus::Expired => ApiError::conflict(
            "reservation_expired",
            "the reservation expired before it was paid",
        ),
        _ => ApiError::conflict(
            "reservation_not_payable",
            "the reservation cannot be paid in its current state",
        ),
    }
}

/// Unknown or someone else's: the payer is never told which.
fn not_found() -> ApiError {
    ApiError::not_found("reservation")
}
