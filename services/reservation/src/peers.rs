//! The calls this service makes to its peers, through nginx with `common::client`: the
//! gateway for carts, inventory for holds. A peer's error answer comes back unchanged as an
//! [`ApiError`]; a peer that is away comes back as a 503.

use crate::domain::{Line, Reservation};
use common::client::ServiceClient;
use common::domain::Quantity;
use common::{ApiError, ApiResult};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A cart as the gateway gives it to its peers, prices included.
#[derive(Debug, Deserialize)]
pub struct Cart {
    pub id: Uuid,
    pub user_id: Uuid,
    pub items: Vec<Line>,
}

/// `GET /internal/gateway/carts/{cart_id}?user_id=…`: 404 when it is unknown or someone else's.
pub async fn cart(client: &ServiceClient, cart_id: Uuid, user_id: Uuid) -> ApiResult<Cart> {
    client
        .get(&format!(
            "/internal/gateway/carts/{cart_id}?user_id={user_id}"
        ))
        .await
}

#[derive(Serialize)]
struct HoldItem {
    product_id: Uuid,
    quantity: Quantity,
}

#[derive(Serialize)]
struct HoldRequest {
    reservation_id: Uuid,
    user_id: Uuid,
    items: Vec<HoldItem>,
}

/// `POST /internal/inventory/holds`: hold every line of the reservation, all or nothing.
/// Idempotent by reservation id, so the client's retries cannot hold twice.
pub async fn hold(client: &ServiceClient, reservation: &Reservation) -> ApiResult<()> {
    let body = HoldRequest {
        reservation_id: reservation.id,
        user_id: reservation.user_id,
        items: reservation
            .items
            .iter()
            .map(|l| HoldItem {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect(),
    };
    let _: IgnoredAny = client.post("/internal/inventory/holds", &body).await?;
    Ok(())
}

/// `POST /internal/inventory/holds/{id}/commit`: the held stock becomes sold.
pub async fn commit(client: &ServiceClient, reservation_id: Uuid) -> ApiResult<()> {
    let _: IgnoredAny = client
        .post(
            &format!("/internal/inventory/holds/{reservation_id}/commit"),
            &serde_json::json!({}),
        )
        .await?;
    Ok(())
}

/// How a release ended at inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The stock is back on sale (now or before; or a tombstone stops a late hold).
    Done,
    /// The holds were committed: the stock is sold and stays sold.
    AlreadySold,
}

/// `POST /internal/inventory/holds/{id}/release`: give the held stock back. Safe to repeat.
pub async fn release(client: &ServiceClient, reservation_id: Uuid) -> ApiResult<Released> {
    let answer: ApiResult<IgnoredAny> = client
        .post(
            &format!("/internal/inventory/holds/{reservation_id}/release"),
            &serde_json::json!({}),
        )
        .await;
    match answer {
        Ok(_) => Ok(Released::Done),
        Err(e @ ApiError::Conflict { .. }) if e.code() == "hold_sold" => Ok(Released::AlreadySold),
        Err(e) => Err(e),
    }
}
