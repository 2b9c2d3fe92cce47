//! Async mode: the events the order consumes, each one finishing a PENDING order.
//!
//! - `PaymentSucceeded` → CONFIRMED (paid: the bound reservation's stock can no longer be
//!   released, and inventory sells it on its own copy of the event);
//! - `PaymentDeclined` → DECLINED (inventory and the reservation undo on their own copies);
//! - `ReservationNotPayable` → CANCELLED (the reservation expired or cannot be paid).
//!
//! On the shared consumer skeleton (`common::messaging`), each message's inbox row (a
//! duplicate stops there) and its status change commit together, with the rest of its
//! batch; a finished order is then published for the status URL's waiters
//! (`common::changes`). An order already final keeps its status: a late or repeated event is a
//! no-op, acked like any other.

use crate::db::orders;
use crate::domain::OrderStatus;
use common::changes::Changes;
use common::events::{Event, PaymentDeclined, PaymentSucceeded, ReservationNotPayable};
use common::messaging::{Consume, Effect, HandleError, Handler, Incoming};
use deadpool_postgres::{Pool, Transaction};
use futures::future::BoxFuture;
use uuid::Uuid;

/// A message this service consumes, reduced to what it does: finish order `order_id`.
#[derive(Debug, PartialEq, Eq)]
struct Finish {
    order_id: Uuid,
    reservation_id: Uuid,
    status: OrderStatus,
}

impl Finish {
    /// An unknown type or a payload that does not decode is poison: it can never succeed.
    fn decode(incoming: &Incoming) -> Result<Self, HandleError> {
        Ok(match incoming.event_type.as_str() {
            PaymentSucceeded::NAME => {
                let e: PaymentSucceeded = incoming.decode()?;
                Self::new(e.order_id, e.reservation_id, OrderStatus::Confirmed)
            }
            PaymentDeclined::NAME => {
                let e: PaymentDeclined = incoming.decode()?;
                Self::new(e.order_id, e.reservation_id, OrderStatus::Declined)
            }
            ReservationNotPayable::NAME => {
                let e: ReservationNotPayable = incoming.decode()?;
                Self::new(e.order_id, e.reservation_id, OrderStatus::Cancelled)
            }
            other => {
                return Err(HandleError::Poison(anyhow::anyhow!(
                    "the order service does not consume {other:?}"
                )))
            }
        })
    }

    fn new(order_id: Uuid, reservation_id: Uuid, status: OrderStatus) -> Self {
        Self {
            order_id,
            reservation_id,
            status,
        }
    }
}

/// The consumer of the order's queue, in batches of up to `max_batch`. It appends no events,
/// so it never wakes the relay; an order it finished is published to `changes` once
/// committed, for the status URL's waiters.
pub fn handler(pool: Pool, changes: Changes, max_batch: usize) -> Handler {
    Handler::pipeline(Orders, pool, None, Some(changes), max_batch)
}

/// The order's part of the consumer skeleton (`common::messaging::Consume`).
struct Orders;

impl Consume for Orders {
    type Prepared = Finish;

    fn prepare<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Result<Finish, HandleError>> {
        Box::pin(std::future::ready(Finish::decode(message)))
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        message: &'a Incoming,
        finish: Finish,
    ) -> BoxFuture<'a, Result<Effect, HandleError>> {
        Box::pin(async move {
            if !orders::finish_in(tx, finish.order_id, finish.status).await? {
                tracing::debug!(order_id = %finish.order_id, event = %message.event_type, "order not pending: nothing to do");
                return Ok(Effect::NONE);
            }
            tracing::info!(order_id = %finish.order_id, reservation_id = %finish.reservation_id, status = finish.status.as_str(), "order finished");
            Ok(Effect::changed(Some(finish.order_id)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_consumed_event_finishes_the_order_in_its_status() {
        let (order_id, reservation_id) = (Uuid::new_v4(), Uuid::new_v4());
        let payload = serde_json::json!({
            "order_id": order_id, "reservation_id": reservation_id,
            "payment_id": Uuid::new_v4(), "reason": "reservation_expired",
        })
        .to_string();
        for (name, status) in [
            (PaymentSucceeded::NAME, OrderStatus::Confirmed),
            (PaymentDeclined::NAME, OrderStatus::Declined),
            (ReservationNotPayable::NAME, OrderStatus::Cancelled),
        ] {
            let finish = Finish::decode(&Incoming::first(name, payload.as_bytes())).expect(name);
            assert_eq!(finish, Finish::new(order_id, reservation_id, status));
        }
    }

    #[test]
    fn every_subscribed_event_is_handled() {
        let (_, subscribed) = common::events::SUBSCRIPTIONS
            .iter()
            .find(|(service, _)| *service == crate::SERVICE)
            .expect("the order subscribes");
        for name in *subscribed {
            let err = Finish::decode(&Incoming::first(name, b"{}")).expect_err("empty payload");
            // Poison because the payload is empty, not because the type is unknown.
            assert!(
                format!("{err}").contains("does not decode"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn an_event_this_service_does_not_consume_is_poison() {
        let err = Finish::decode(&Incoming::first("OrderPlaced.v1", b"{}")).expect_err("decoded");
        assert!(matches!(err, HandleError::Poison(_)), "{err}");
        assert!(format!("{err}").contains("does not consume"), "{err}");
    }
}
