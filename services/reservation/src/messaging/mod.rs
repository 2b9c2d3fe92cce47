//! Async mode: the events the reservation consumes, and what each one does to a reservation.
//!
//! - `StockReserved` → PENDING becomes RESERVED;
//! - `StockRejected` → PENDING becomes SOLD_OUT / LIMIT_REACHED / CANCELLED (`unknown_product`);
//!   `hold_released` changes nothing (the sweeper expired the row first; its
//!   `ReservationExpired` already released);
//! - `OrderPlaced` → the begin-payment binding of sync mode, then `ReservationBound` or
//!   `ReservationNotPayable`;
//! - `PaymentSucceeded` → CONFIRMED (inventory sells the held units on its own copy);
//! - `PaymentDeclined` → CANCELLED (inventory releases on its own copy of the event).
//!
//! On the shared consumer skeleton (`common::messaging`), each message's inbox row (a
//! duplicate stops there), its state change and the events it causes commit together, with
//! the rest of its batch; then the relay is woken, and a reservation that left PENDING is
//! published for the status URL's waiters (`common::changes`). A transition that no longer
//! applies (the row moved on) is a no-op, acked like any other.

pub use common::messaging::outbox::RelaySignal;

use crate::db::reservations;
use crate::domain::{payability, Status, Unpayable};
use common::changes::Changes;
use common::events::{
    Event, EventItem, NotPayable, OrderPlaced, PaymentDeclined, PaymentSucceeded, ReservationBound,
    ReservationNotPayable, ReservationRequested, StockRejected, StockReserved,
};
use common::messaging::{outbox, Consume, Effect, HandleError, Handler, Incoming};
use deadpool_postgres::{Pool, Transaction};
use futures::future::BoxFuture;

/// A message this service consumes, decoded.
#[derive(Debug)]
enum Consumed {
    StockReserved(StockReserved),
    StockRejected(StockRejected),
    OrderPlaced(OrderPlaced),
    PaymentSucceeded(PaymentSucceeded),
    PaymentDeclined(PaymentDeclined),
}

impl Consumed {
    /// An unknown type or a payload that does not decode is poison: it can never succeed.
    fn decode(incoming: &Incoming) -> Result<Self, HandleError> {
        Ok(match incoming.event_type.as_str() {
            StockReserved::NAME => Self::StockReserved(incoming.decode()?),
            StockRejected::NAME => Self::StockRejected(incoming.decode()?),
            OrderPlaced::NAME => Self::OrderPlaced(incoming.decode()?),
            PaymentSucceeded::NAME => Self::PaymentSucceeded(incoming.decode()?),
            PaymentDeclined::NAME => Self::PaymentDeclined(incoming.decode()?),
            other => {
                return Err(HandleError::Poison(anyhow::anyhow!(
                    "the reservation service does not consume {other:?}"
                )))
            }
        })
    }
}

/// The consumer of the reservation's queue, in batches of up to `max_batch`. A reservation
/// its message settled (it left PENDING) is published to `changes` once committed, for the
/// status URL's waiters.
pub fn handler(pool: Pool, relay: RelaySignal, changes: Changes, max_batch: usize) -> Handler {
    Handler::pipeline(Reservations, pool, Some(relay), Some(changes), max_batch)
}

/// The reservation's part of the consumer skeleton (`common::messaging::Consume`).
struct Reservations;

impl Consume for Reservations {
    type Prepared = Consumed;

    fn prepare<'a>(
        &'a self,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<Consumed, HandleError>> {
        Box::pin(std::future::ready(Consumed::decode(message)))
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        _message: &'a Incoming,
        consumed: Consumed,
    ) -> BoxFuture<'a, Result<Effect, HandleError>> {
        Box::pin(apply(tx, consumed))
    }
}

/// One message's effect; `changed` when it settled a reservation.
async fn apply(tx: &Transaction<'_>, message: Consumed) -> Result<Effect, HandleError> {
    Ok(match message {
        Consumed::StockReserved(e) => {
            Effect::changed(settle(tx, &e.reservation_id, Status::Reserved, "StockReserved").await?)
        }
        Consumed::StockRejected(e) => Effect::changed(stock_rejected(tx, e).await?),
        Consumed::OrderPlaced(e) => {
            order_placed(tx, e).await?;
            Effect::APPENDED
        }
        Consumed::PaymentSucceeded(e) => {
            let confirmed =
                reservations::mark_confirmed_in(tx, e.reservation_id, e.order_id).await?;
            log_late(confirmed.is_none(), &e.reservation_id, "PaymentSucceeded");
            Effect::NONE
        }
        Consumed::PaymentDeclined(e) => {
            let cancelled =
                reservations::cancel_declined_in(tx, e.reservation_id, e.order_id).await?;
            log_late(cancelled.is_none(), &e.reservation_id, "PaymentDeclined");
            Effect::NONE
        }
    })
}

/// PENDING → `to`, answering `Some(id)`; a reservation no longer PENDING (expired by the
/// sweeper first) stays as it is, and the answer is `None`.
async fn settle(
    tx: &Transaction<'_>,
    id: &uuid::Uuid,
    to: Status,
    event: &str,
) -> Result<Option<uuid::Uuid>, HandleError> {
    let settled = reservations::settle_in(tx, *id, to).await?;
    log_late(settled.is_none(), id, event);
    Ok(settled.map(|_| *id))
}

async fn stock_rejected(
    tx: &Transaction<'_>,
    e: StockRejected,
) -> Result<Option<uuid::Uuid>, HandleError> {
    let Some(to) = Status::after(e.reason) else {
        // Released before the hold arrived: the sweeper expired the row and its
        // ReservationExpired did the release. Nothing left to do.
        return Ok(None);
    };
    settle(tx, &e.reservation_id, to, "StockRejected").await
}

/// The begin-payment binding of sync mode, answered with an event instead of a status code.
async fn order_placed(tx: &Transaction<'_>, e: OrderPlaced) -> Result<(), HandleError> {
    match binding(tx, &e).await? {
        Ok(total_cents) => {
            outbox::append(
                tx,
                &ReservationBound {
                    order_id: e.order_id,
                    reservation_id: e.reservation_id,
                    user_id: e.user_id,
                    total_cents,
                },
            )
            .await?;
        }
        Err(reason) => {
            tracing::info!(order_id = %e.order_id, reservation_id = %e.reservation_id, reason = reason.code(), "order placed on a reservation that cannot be paid");
            outbox::append(
                tx,
                &ReservationNotPayable {
                    order_id: e.order_id,
                    reservation_id: e.reservation_id,
                    reason,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Bind the order (owner only): `Ok(total_cents)` once it is bound, or why it cannot be, as
/// sync mode's `begin-payment` decides it ([`payability`]).
async fn binding(
    tx: &Transaction<'_>,
    e: &OrderPlaced,
) -> Result<Result<i64, NotPayable>, HandleError> {
    let owner = Some(e.user_id);
    if let Some(bound) =
        reservations::bind_order_in(tx, e.reservation_id, e.order_id, owner).await?
    {
        return Ok(Ok(bound.total_cents));
    }
    Ok(match reservations::find_in(tx, e.reservation_id).await? {
        None => Err(NotPayable::NotFound),
        // Bound to this very order already (another message of the same order, or a bound
        // reservation whose payment has moved on): say so again. Payment charges an order at
        // most once and answers a repeat with the same outcome.
        Some((r, past_due)) => payability(&r, past_due, e.order_id, owner)
            .map(|()| r.total_cents)
            .map_err(Unpayable::reason),
    })
}

fn log_late(late: bool, reservation_id: &uuid::Uuid, event: &str) {
    if late {
        tracing::debug!(%reservation_id, event, "the reservation has moved on: nothing to do");
    }
}

/// The event that asks inventory to hold a new reservation's lines.
pub fn reservation_requested(reservation: &crate::domain::Reservation) -> ReservationRequested {
    ReservationRequested {
        reservation_id: reservation.id,
        user_id: reservation.user_id,
        items: reservation
            .items
            .iter()
            .map(|l| EventItem {
                product_id: l.product_id,
                quantity: l.quantity.get(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn an_event_this_service_does_not_consume_is_poison() {
        let err =
            Consumed::decode(&Incoming::first("ReservationBound.v1", b"{}")).expect_err("decoded");
        assert!(matches!(err, HandleError::Poison(_)), "{err}");
    }

    #[test]
    fn a_payload_that_does_not_decode_is_poison() {
        let err = Consumed::decode(&Incoming::first(
            StockReserved::NAME,
            b"{\"reservation_id\":1}",
        ))
        .expect_err("decoded");
        assert!(matches!(err, HandleError::Poison(_)), "{err}");
    }

    #[test]
    fn every_subscribed_event_decodes() {
        let id = Uuid::new_v4();
        let (reservations, subscribed) = common::events::SUBSCRIPTIONS
            .iter()
            .find(|(service, _)| *service == crate::SERVICE)
            .expect("the reservation subscribes");
        assert_eq!(*reservations, "reservation");
        for name in *subscribed {
            let payload = serde_json::json!({
                "reservation_id": id, "order_id": id, "user_id": id, "payment_id": id,
                "reason": "sold_out",
            });
            let decoded = Consumed::decode(&Incoming::first(name, payload.to_string().as_bytes()));
            assert!(decoded.is_ok(), "{name} does not decode");
        }
    }
}
