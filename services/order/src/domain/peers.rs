//! The order's view of the services it calls (sync mode; async mode only reads the reservation): typed calls to the reservation and
//! payment services' internal routes through nginx. `ServiceClient` retries transport failures
//! and 502/503/504 (every route here is idempotent by the ids in its path and body) and passes
//! a peer's own error answer on unchanged.

use crate::domain::OrderLine;
use chrono::{DateTime, Utc};
use common::client::ServiceClient;
use common::ApiResult;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Status of a reservation, as the reservation service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Pending,
    Reserved,
    SoldOut,
    LimitReached,
    Confirmed,
    Expired,
    Cancelled,
}

/// The part of a reservation record the order needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Reservation {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: ReservationStatus,
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
    /// Until when it holds its stock, unless an order is bound.
    pub expires_at: DateTime<Utc>,
    /// The order bound to it by `begin-payment`, if any.
    pub order_id: Option<Uuid>,
}

/// Outcome of a charge at the payment service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChargeStatus {
    Pending,
    Succeeded,
    Declined,
    /// Given back: the order was given up after its charge.
    Refunded,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChargeAnswer {
    pub status: ChargeStatus,
}

#[derive(Serialize)]
struct OrderRef {
    order_id: Uuid,
}

#[derive(Serialize)]
struct ChargeRequest {
    order_id: Uuid,
    user_id: Uuid,
    amount_cents: i64,
}

/// An answer whose content the order does not need (the reservation record after a step).
#[derive(Deserialize)]
struct Ignored {}

#[derive(Clone)]
pub struct Peers {
    client: ServiceClient,
}

impl Peers {
    pub fn new(client: ServiceClient) -> Self {
        Self { client }
    }

    pub async fn reservation(&self, id: Uuid) -> ApiResult<Reservation> {
        self.client
            .get(&format!("/internal/reservations/{id}"))
            .await
    }

    /// Bind `order_id` to the reservation; 409 `reservation_expired` / `reservation_not_payable`
    /// when it can no longer be paid.
    pub async fn begin_payment(&self, reservation_id: Uuid, order_id: Uuid) -> ApiResult<()> {
        self.reservation_step(reservation_id, "begin-payment", order_id)
            .await
    }

    /// Commit the reservation's holds: the stock is sold.
    pub async fn confirm(&self, reservation_id: Uuid, order_id: Uuid) -> ApiResult<()> {
        self.reservation_step(reservation_id, "confirm", order_id)
            .await
    }

    /// Release the reservation's holds: the stock goes back on sale.
    pub async fn cancel(&self, reservation_id: Uuid, order_id: Uuid) -> ApiResult<()> {
        self.reservation_step(reservation_id, "cancel", order_id)
            .await
    }

    async fn reservation_step(
        &self,
        reservation_id: Uuid,
        step: &str,
        order_id: Uuid,
    ) -> ApiResult<()> {
        let _: Ignored = self
            .client
            .post(
                &format!("/internal/reservations/{reservation_id}/{step}"),
                &OrderRef { order_id },
            )
            .await?;
        Ok(())
    }

    /// Charge the order, at most once whatever the number of calls (keyed by the order id).
    pub async fn charge(
        &self,
        order_id: Uuid,
        user_id: Uuid,
        amount_cents: i64,
    ) -> ApiResult<ChargeAnswer> {
        self.client
            .post(
                "/internal/payments/charges",
                &ChargeRequest {
                    order_id,
                    user_id,
                    amount_cents,
                },
            )
            .await
    }

    /// Give the order's charge back, at most once (keyed by the order id). An order that was
    /// never charged has nothing to give back, which is as good as done.
    pub async fn refund(&self, order_id: Uuid) -> ApiResult<()> {
        let answer: Result<ChargeAnswer, _> = self
            .client
            .post("/internal/payments/refunds", &OrderRef { order_id })
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.code() == "payment_not_found" => Ok(()),
            Err(e) => Err(e),
        }
    }
}
