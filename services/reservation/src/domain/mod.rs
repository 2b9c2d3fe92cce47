//! The reservation's vocabulary: its statuses, its lines, the record, and what its routes
//! take and answer.

use chrono::{DateTime, Utc};
use common::domain::Quantity;
use common::events::{NotPayable, Rejection};
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

    /// Where a PENDING reservation goes when inventory refused its hold; `None` when it goes
    /// nowhere: a hold that arrived after the reservation was released (expired) finds the
    /// row already final, and the expiry's release stands. The one place this is decided,
    /// for the sync route's 409/422 and the async handler's `StockRejected` alike.
    pub fn after(rejection: Rejection) -> Option<Self> {
        match rejection {
            Rejection::SoldOut => Some(Self::SoldOut),
            Rejection::LimitReached => Some(Self::LimitReached),
            // Nothing is held for a product that does not exist: the reservation is over.
            Rejection::UnknownProduct => Some(Self::Cancelled),
            Rejection::HoldReleased => None,
        }
    }
}

/// Whether `order_id` may pay `reservation`, asked once the binding update (RESERVED,
/// unexpired, unbound or bound to this order, the owner's) did not match, or to answer a
/// replay. `past_due` is the database's judgement (`expires_at <= now()`), never a
/// replica's clock. `owner` is checked when the caller names one (async mode's
/// `OrderPlaced`; sync mode's order checked ownership before it called).
///
/// `Ok` when the reservation is bound to this very order already: a replay, answered the
/// same whatever happened since (the stock stays held for this order, which the sweeper
/// leaves alone; its saga ends it).
pub fn payability(
    reservation: &Reservation,
    past_due: bool,
    order_id: Uuid,
    owner: Option<Uuid>,
) -> Result<(), Unpayable> {
    if owner.is_some_and(|user| user != reservation.user_id) {
        return Err(Unpayable::NotFound);
    }
    match reservation.order_id {
        Some(bound) if bound == order_id => Ok(()),
        Some(_) => Err(Unpayable::BoundElsewhere),
        None => match reservation.status {
            Status::Expired => Err(Unpayable::Expired),
            Status::Pending | Status::Reserved if past_due => Err(Unpayable::Expired),
            status => Err(Unpayable::InState(status)),
        },
    }
}

/// Why a reservation cannot be bound to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpayable {
    /// Unknown, or someone else's.
    NotFound,
    /// Past its expiry without an order.
    Expired,
    /// Payment began with another order.
    BoundElsewhere,
    /// In a status that is not paid.
    InState(Status),
}

impl Unpayable {
    /// The reason async mode's `ReservationNotPayable` carries.
    pub fn reason(self) -> NotPayable {
        match self {
            Self::NotFound => NotPayable::NotFound,
            Self::Expired => NotPayable::ReservationExpired,
            Self::BoundElsewhere | Self::InState(_) => NotPayable::ReservationNotPayable,
        }
    }

    /// Sync mode's answer to `begin-payment`: the same reason as its code.
    pub fn into_api_error(self) -> ApiError {
        let code = self.reason().code();
        match self {
            Self::NotFound => ApiError::not_found("reservation"),
            Self::Expired => ApiError::conflict(code, "the reservation has expired"),
            Self::BoundElsewhere => ApiError::conflict(
                code,
                "payment of this reservation already began with another order",
            ),
            Self::InState(status) => ApiError::conflict(
                code,
                format!("the reservation is {} and cannot be paid", status.as_str()),
            ),
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

    fn reservation(status: Status, order_id: Option<Uuid>) -> Reservation {
        Reservation {
            id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            cart_id: Uuid::new_v4(),
            status,
            items: vec![line(100, 1)],
            total_cents: 100,
            // Far in the future by this replica's clock: only `past_due` may say otherwise.
            expires_at: Utc::now() + chrono::Duration::days(1),
            order_id,
        }
    }

    #[test]
    fn a_rejected_hold_settles_the_reservation_except_after_a_release() {
        assert_eq!(Status::after(Rejection::SoldOut), Some(Status::SoldOut));
        assert_eq!(
            Status::after(Rejection::LimitReached),
            Some(Status::LimitReached)
        );
        assert_eq!(
            Status::after(Rejection::UnknownProduct),
            Some(Status::Cancelled)
        );
        assert_eq!(Status::after(Rejection::HoldReleased), None);
    }

    #[test]
    fn expiry_is_the_databases_judgement_not_the_replicas_clock() {
        let r = reservation(Status::Reserved, None);
        let order = Uuid::new_v4();

        assert_eq!(
            payability(&r, true, order, None),
            Err(Unpayable::Expired),
            "past due by the database, though not by this clock"
        );
        assert_eq!(
            payability(&r, false, order, None),
            Err(Unpayable::InState(Status::Reserved)),
            "not past due, yet the binding did not match: a race, not payable now"
        );
        assert_eq!(
            payability(&reservation(Status::Expired, None), false, order, None),
            Err(Unpayable::Expired)
        );
    }

    #[test]
    fn a_replay_by_the_bound_order_is_payable_and_any_other_order_is_not() {
        let order = Uuid::new_v4();
        let bound = reservation(Status::Confirmed, Some(order));

        assert_eq!(payability(&bound, true, order, None), Ok(()));
        assert_eq!(
            payability(&bound, false, Uuid::new_v4(), None),
            Err(Unpayable::BoundElsewhere)
        );
        assert_eq!(
            payability(&bound, false, order, Some(Uuid::new_v4())),
            Err(Unpayable::NotFound),
            "someone else's reservation is unknown to them"
        );
        assert_eq!(
            payability(&bound, false, order, Some(bound.user_id)),
            Ok(())
        );
    }

    #[test]
    fn both_transports_say_why_in_the_same_words() {
        for (unpayable, code) in [
            (Unpayable::NotFound, "not_found"),
            (Unpayable::Expired, "reservation_expired"),
            (Unpayable::BoundElsewhere, "reservation_not_payable"),
            (
                Unpayable::InState(Status::SoldOut),
                "reservation_not_payable",
            ),
        ] {
            assert_eq!(unpayable.reason().code(), code);
            assert_eq!(unpayable.into_api_error().code(), code);
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
