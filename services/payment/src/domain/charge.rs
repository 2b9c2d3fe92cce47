//! The exactly-once charge of an order, shared by the sync route and the async handler.

use crate::db::payments;
use crate::domain::provider::Provider;
use crate::domain::{AmountCents, Payment};
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use uuid::Uuid;

/// Charge `order_id` once, whatever the number of calls, and answer its final payment.
///
/// A payment already final is answered as it is; a pending one is charged at the provider
/// (which keeps the first decision per order) and settled. No transaction and no connection
/// is held while the provider decides. A payment that exists for another user or amount is a
/// `409 payment_mismatch`.
pub async fn charge_once(
    pool: &Pool,
    provider: &Provider,
    order_id: Uuid,
    user_id: Uuid,
    amount: AmountCents,
) -> ApiResult<Payment> {
    let payment = payments::create_or_get(pool, order_id, user_id, amount).await?;
    if payment.user_id != user_id || payment.amount_cents != amount.get() {
        // The order's total never changes, so this is a caller's bug: refuse rather than
        // charge an amount nobody agreed to.
        return Err(ApiError::conflict(
            "payment_mismatch",
            "this order already has a payment for another user or amount",
        ));
    }
    if payment.status.is_final() {
        return Ok(payment);
    }
    // The stored amount, not the request's: the ledger records what the payment says.
    let stored = AmountCents::parse(payment.amount_cents)?;
    let outcome = provider.charge(payment.order_id, stored).await?;
    payments::settle(pool, payment.order_id, outcome).await
}
