//! The reservation's vocabulary: its statuses, its lines, the record, and what its routes
//! take and answer.

use chrono::{DateTime, Utc};
use common::domain::Quantity;
use common::ApiError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a reservation stands. PENDING and RESERVED are live; every other status is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Inserted; the hold at inventory has not answered (yet).
    Pending,
    /// Stock is held until `expires_at`.
    Reserved,
    SoldOut,
    LimitReached,
    /// Paid: the holds are committed, the stock is sold.
    Confirmed,
    /// Not paid in time: the holds are (or are being) given back.
    Expired,
    /// Given up (payment declined, unknown product): the holds are (or are being) given back.
    Cancelled,
}

impl Status {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => Self::Pending,
            "RESERVED" => Self::Reserved,
            "SOLD_OUT" => Self::SoldOut,
            "LIMIT_REACHED" => Self::LimitReached,
            "CONFIRMED" => Self::Confirmed,
            "EXPIRED" => Self::Expired,
            "CANCELLED" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Reserved => "RESERVED",
            Self::SoldOut => "SOLD_OUT",
            Self::LimitReached => "LIMIT_REACHED",
            Self::Confirmed => "CONFIRMED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// One line of a reservation: what the cart held, at the price the cart showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product_id: Uuid,
    pub quantity: Quantity,
    pub price_cents: i64,
}

/// Sum of the lines, refusing a total that does not fit in 64 bits.
pub fn total_cents(lines: &[Line]) -> Result<i64, ApiError> {
    lines
        .iter()
        .try_fold(0i64, |sum, l| {
            l.price_cents
                .checked_mul(i64::from(l.quantity.get()))
                .and_then(|line| sum.checked_add(line))
        })
        .ok_or_else(|| ApiError::unprocessable("invalid_cart", "the cart total is out of range"))
}

/// A reservation as stored; also the answer of every internal route.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    pub id: Uuid,
    pub user_id: Uuid,
    pub cart_id: Uuid,
    pub status: Status,
    pub items: Vec<Line>,
    pub total_cents: i64,
    pub expires_at: DateTime<Utc>,
    pub order_id: Option<Uuid>,
}

/// What its owner sees: `GET /api/reservations/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct PublicView {
    pub id: Uuid,
    pub status: Status,
    pub expires_at: DateTime<Utc>,
    pub total_cents: i64,
    pub items: Vec<Line>,
}

impl From<Reservation> for PublicView {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id,
            status: r.status,
            expires_at: r.expires_at,
            total_cents: r.total_cents,
            items: r.items,
        }
    }
}

/// The answer of a successful reserve: 201.
#[derive(Debug, Clone, Serialize)]
pub struct Reserved {
    pub id: Uuid,
    pub status: Status,
    pub expires_at: DateTime<Utc>,
}

/// The answer of a reserve in async mode: 202, the hold is on its way.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub id: Uuid,
    pub status: Status,
}

/// `POST /api/reservations`. The id is read as text so that a malformed one is told apart
/// (422 `invalid_id`) from a missing field or a wrong type (422 `invalid_body`).
#[derive(Debug, Deserialize)]
pub struct ReserveRequest {
    pub cart_id: String,
}

/// Body of `begin-payment`, `confirm` and `cancel`.
#[derive(Debug, Deserialize)]
pub struct OrderRequest {
    pub order_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(price_cents: i64, quantity: i64) -> Line {
        Line {
            product_id: Uuid::new_v4(),
            quantity: Quantity::parse(quantity).expect("quantity"),
            price_cents,
        }
    }

    #[test]
    fn the_total_is_the_sum_of_price_times_quantity() {
        assert_eq!(
            total_cents(&[line(250, 2), line(1_000, 1)]).expect("total"),
            1_500
        );
        assert_eq!(total_cents(&[]).expect("total"), 0);
    }

    #[test]
    fn a_total_beyond_64_bits_is_refused() {
        let err = total_cents(&[line(i64::MAX / 2, 3)]).expect_err("overflow accepted");
        assert_eq!(err.code(), "invalid_cart");
    }

    #[test]
    fn every_status_round_trips_through_its_text() {
        for s in [
            Status::Pending,
            Status::Reserved,
            Status::SoldOut,
            Status::LimitReached,
            Status::Confirmed,
            Status::Expired,
            Status::Cancelled,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).expect("serialize"),
                serde_json::Value::from(s.as_str())
            );
        }
        assert_eq!(Status::parse("HELD"), None);
    }
}
