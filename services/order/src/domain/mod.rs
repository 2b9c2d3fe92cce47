//! The order's vocabulary (orders, their states, what a payer sends), its view of the peers it
//! calls, the Pay saga (sync mode) and the placing of an order (async mode).

pub mod pay;
pub mod peers;
pub mod place;
pub mod reconcile;

use actix_web::http::header::HeaderMap;
use common::domain::Quantity;
use common::ApiError;
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
}

impl OrderStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "DECLINED" => Some(Self::Declined),
            "CANCELLED" => Some(Self::Cancelled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Declined => "DECLINED",
            Self::Cancelled => "CANCELLED",
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const HEADER: &'static str = "idempotency-key";
    pub const MAX_LEN: usize = 200;

    /// The key of a request, if it has one: at most [`Self::MAX_LEN`] visible ASCII
    /// characters, else a 400. An empty header counts as none.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(Self::HEADER) else {
            return Ok(None);
        };
        let invalid = || {
            ApiError::bad_request(
                "invalid_idempotency_key",
                format!(
                    "Idempotency-Key must be at most {} visible ASCII characters",
                    Self::MAX_LEN
                ),
            )
        };
        let key = value.to_str().map_err(|_| invalid())?.trim();
        if key.len() > Self::MAX_LEN {
            return Err(invalid());
        }
        Ok((!key.is_empty()).then(|| Self(key.to_string())))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static(IdempotencyKey::HEADER),
            HeaderValue::from_str(value).expect("header value"),
        );
        h
    }

    #[test]
    fn an_idempotency_key_of_up_to_200_characters_is_accepted() {
        let key = "k".repeat(200);
        assert_eq!(
            IdempotencyKey::from_headers(&headers(&key)).expect("accepted"),
            Some(IdempotencyKey(key))
        );
        assert_eq!(
            IdempotencyKey::from_headers(&HeaderMap::new()).expect("accepted"),
            None
        );
    }

    #[test]
    fn a_longer_idempotency_key_is_rejected() {
        let err = IdempotencyKey::from_headers(&headers(&"k".repeat(201))).expect_err("accepted");
        assert_eq!(err.code(), "invalid_idempotency_key");
    }
}
