//! The order's vocabulary (orders, their states, what a payer sends), its view of the peers it
//! calls, the Pay saga (sync mode) and the placing of an order (async mode).

pub mod pay;
pub mod peers;
pub mod place;
pub mod reconcile;

use common::domain::Quantity;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// State of an order. `PENDING` while the saga runs; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Declined,
    Cancelled,
    /// Charged but never completed: its reservation was cancelled and its charge refunded.
    Failed,
}

impl OrderStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "DECLINED" => Some(Self::Declined),
            "CANCELLED" => Some(Self::Cancelled),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Declined => "DECLINED",
            Self::Cancelled => "CANCELLED",
            Self::Failed => "FAILED",
        }
    }

    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// A stored order.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: Uuid,
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub total_cents: i64,
}

/// One line of a reservation, copied into its order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub quantity: Quantity,
    pub price_cents: i64,
}

/// What an order is created from.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: Uuid,
    pub reservation_id: Uuid,
    pub user_id: Uuid,
    pub total_cents: i64,
    pub items: Vec<OrderLine>,
    pub idempotency_key: Option<String>,
}

/// `GET /api/orders/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderView {
    pub id: Uuid,
    pub status: OrderStatus,
    pub reservation_id: Uuid,
    pub total_cents: i64,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id,
            status: o.status,
            reservation_id: o.reservation_id,
            total_cents: o.total_cents,
        }
    }
}

/// `POST /api/payments` body. The id stays text until parsed, so a malformed one is a 422
/// `invalid_id` rather than a generic body error.
#[derive(Debug, Clone, Deserialize)]
pub struct PayRequest {
    pub reservation_id: String,
}

/// `POST /api/payments` answer: 200 in sync mode (always CONFIRMED), 202 in async mode (the
/// order's current status).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaidAnswer {
    pub order_id: Uuid,
    pub status: OrderStatus,
}

/// The optional `Idempotency-Key` header. Payments are already idempotent by reservation; the
/// key is kept on the order for the record.
pub use common::web::IdempotencyKey;
