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

/// Why inventory refused to hold a reservation's stock. On the wire (the `StockRejected`
/// event's `reason`, and the code of sync mode's 409/422 answer) as its snake_case name; a
/// reason this enum does not know does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Not enough units left of a product in the cart.
    SoldOut,
    /// The hold would take the user past a product's per-user limit.
    LimitReached,
    /// A product in the cart does not exist: nothing is held.
    UnknownProduct,
    /// The reservation was released (expired) before its hold arrived: nothing is held.
    HoldReleased,
}

impl Rejection {
    pub const ALL: [Rejection; 4] = [
        Self::SoldOut,
        Self::LimitReached,
        Self::UnknownProduct,
        Self::HoldReleased,
    ];

    /// The wire name, which is also sync mode's error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::SoldOut => "sold_out",
            Self::LimitReached => "limit_reached",
            Self::UnknownProduct => "unknown_product",
            Self::HoldReleased => "hold_released",
        }
    }

    /// The rejection an error code names, if it names one.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// Inventory could not hold the stock, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRejected {
    pub reservation_id: Uuid,
    pub reason: Rejection,
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

/// Why a reservation cannot be bound to an order, as the `ReservationNotPayable` event says
/// it; the same words as the 404/409 codes of sync mode's `begin-payment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotPayable {
    /// Unknown, or someone else's.
    NotFound,
    /// Past its expiry without an order.
    ReservationExpired,
    /// Bound to another order, or in a state that is not paid (sold out, cancelled…).
    ReservationNotPayable,
}

impl NotPayable {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::ReservationExpired => "reservation_expired",
            Self::ReservationNotPayable => "reservation_not_payable",
        }
    }
}

/// The reservation cannot be paid; the order is cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationNotPayable {
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub reason: NotPayable,
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

    #[test]
    fn reasons_travel_as_the_codes_of_sync_mode() {
        for r in Rejection::ALL {
            let wire = serde_json::to_value(r).expect("json");
            assert_eq!(wire, serde_json::json!(r.code()));
            assert_eq!(Rejection::from_code(r.code()), Some(r));
        }
        assert_eq!(Rejection::from_code("payment_declined"), None);
        let unknown: Result<StockRejected, _> = serde_json::from_str(
            r#"{"reservation_id":"00000000-0000-0000-0000-000000000000","reason":"gone"}"#,
        );
        assert!(unknown.is_err(), "an unknown reason does not decode");
        for n in [
            NotPayable::NotFound,
            NotPayable::ReservationExpired,
            NotPayable::ReservationNotPayable,
        ] {
            assert_eq!(
                serde_json::to_value(n).expect("json"),
                serde_json::json!(n.code())
            );
        }
    }
}
