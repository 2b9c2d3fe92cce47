//! The refund of an order whose charge succeeded but which could not be completed (its
//! reservation was cancelled under it, or the order's saga gave up), keyed by the order id
//! like the charge: any number of calls give the money back once.

use crate::db::payments;
use crate::domain::provider::Provider;
use crate::domain::{Payment, PaymentStatus};
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use uuid::Uuid;

/// Refund `order_id`'s charge and answer its payment: REFUNDED, or DECLINED as it was (nothing
/// was taken). A payment still PENDING is a 503 `payment_pending` (the provider has not
/// decided; the caller tries again), an order without a payment a 404 `payment_not_found`.
pub async fn refund_once(pool: &Pool, provider: &Provider, order_id: Uuid) -> ApiResult<Payment> {
    let payment = payments::by_order(pool, order_id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            // Its own code: the caller must tell "never charged" from a route it cannot reach.
            code: "payment_not_found".into(),
            message: "this order has no payment".into(),
        })?;
    match payment.status {
        PaymentStatus::Declined | PaymentStatus::Refunded => Ok(payment),
        PaymentStatus::Pending => Err(ApiError::unavailable(
            "payment_pending",
            "the payment is not settled yet, retry later",
        )),
        PaymentStatus::Succeeded => {
            // The provider first: should the mark fail, the next call finds the provider's
            // refund done and only marks.
            provider.refund(order_id).await?;
            payments::mark_refunded(pool, order_id).await
        }
    }
}
