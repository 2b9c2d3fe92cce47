//! The events of async mode: plain serde structs, versioned by name. The routing key of a
//! message is its event's [`Event::NAME`]; the message type property carries it too.
//!
//! The checkout as events:
//!
//! ```text
//! reservation ─ReservationRequested→ inventory ─StockReserved | StockRejected→ reservation
//! reservation ─ReservationExpired→ inventory (release)
//! order ─OrderPlaced→ reservation ─ReservationBound | ReservationNotPayable→ payment | order
//! payment ─PaymentSucceeded | PaymentDeclined→ inventory, order, reservation
//! ```
//!
//! `PaymentSucceeded` confirms the order and the reservation at once, while inventory sells
//! the held units on its own copy: a paid reservation is bound, and a bound reservation's
//! holds can be neither expired nor released, so the sale cannot fail after the charge and
//! needs no event of its own to say so.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event type. `NAME` is the routing key and the AMQP `type` property.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    const NAME: &'static str;
}

macro_rules! event {
    ($name:ident, $key:literal) => {
        impl Event for $name {
            const NAME: &'static str = $key;
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventItem {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// A reservation was recorded PENDING; inventory should hold its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRequested {
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<EventItem>,
}
event!(ReservationRequested, "ReservationRequested.v1");

/// Inventory holds the reservation's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    pub reservation_id: Uuid,
}
event!(StockReserved, "StockReserved.v1");

/// Inventory could not hold the stock: `reason` is `sold_out`, `limit_reached`,
/// `unknown_product` or `hold_released` (the reservation was released first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRejected {
    pub reservation_id: Uuid,
    pub reason: String,
}
event!(StockRejected, "StockRejected.v1");

/// The reservation expired unpaid; inventory releases whatever it holds for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationExpired {
    pub reservation_id: Uuid,
}
event!(ReservationExpired, "ReservationExpired.v1");

/// An order was recorded PENDING for a reservation; the reservation should bind to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub user_id: Uuid,
}
event!(OrderPlaced, "OrderPlaced.v1");

/// The reservation is bound to the order (it can no longer expire); payment should charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationBound {
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub total_cents: i64,
}
event!(ReservationBound, "ReservationBound.v1");

/// The reservation cannot be paid (`reason`: `reservation_expired`,
/// `reservation_not_payable`, `not_found`); the order is cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationNotPayable {
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub reason: String,
}
event!(ReservationNotPayable, "ReservationNotPayable.v1");

/// The provider charged the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub payment_id: Uuid,
}
event!(PaymentSucceeded, "PaymentSucceeded.v1");

/// The provider declined the order's charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub payment_id: Uuid,
}
event!(PaymentDeclined, "PaymentDeclined.v1");

/// Which service consumes which events: one durable queue per service, bound to these
/// routing keys. Every service declares the whole table at connect, so no event is ever
/// published to an exchange that has no queue for it yet.
pub const SUBSCRIPTIONS: &[(&str, &[&str])] = &[
    (
        "inventory",
        &[
            ReservationRequested::NAME,
            ReservationExpired::NAME,
            PaymentSucceeded::NAME,
            PaymentDeclined::NAME,
        ],
    ),
    (
        "reservation",
        &[
            StockReserved::NAME,
            StockRejected::NAME,
            OrderPlaced::NAME,
            PaymentSucceeded::NAME,
            PaymentDeclined::NAME,
        ],
    ),
    (
        "order",
        &[
            ReservationNotPayable::NAME,
            PaymentSucceeded::NAME,
            PaymentDeclined::NAME,
        ],
    ),
    ("payment", &[ReservationBound::NAME]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_event_has_a_consumer() {
        let consumed: Vec<&str> = SUBSCRIPTIONS
            .iter()
            .flat_map(|(_, e)| e.iter().copied())
            .collect();
        for name in [
            ReservationRequested::NAME,
            StockReserved::NAME,
            StockRejected::NAME,
            ReservationExpired::NAME,
            OrderPlaced::NAME,
            ReservationBound::NAME,
            ReservationNotPayable::NAME,
            PaymentSucceeded::NAME,
            PaymentDeclined::NAME,
        ] {
            assert!(consumed.contains(&name), "{name} has no consumer");
        }
    }
}
