//! Async mode: the payment's consumer. It consumes `ReservationBound` and emits
//! `PaymentSucceeded` or `PaymentDeclined`.
//!
//! The charge cannot live inside the handler's transaction: the provider takes its time, and
//! no transaction or connection is held while it decides. So the order is: a message already
//! in the inbox is acked at once; otherwise the exactly-once charge of the sync route (keyed
//! by order id, the provider's ledger keeps the first decision); then one transaction records
//! the message in the inbox and appends the outcome to the outbox. A redelivery after a crash
//! between the charge and that commit finds the stored charge and emits the same outcome; a
//! second message for the same order (another message id) charges nothing and repeats the
//! outcome, which every consumer of it treats as a no-op.

use crate::domain::charge::charge_once;
use crate::domain::provider::Provider;
use crate::domain::{AmountCents, Payment, PaymentStatus};
use common::db::Prepared;
use common::events::{Event, PaymentDeclined, PaymentSucceeded, ReservationBound};
use common::messaging::outbox::{self, RelaySignal};
use common::messaging::{HandleError, Handler, Incoming};
use common::ApiError;
use deadpool_postgres::Pool;
use std::sync::Arc;
use uuid::Uuid;

/// The handler the payment's queue is consumed with.
pub fn handler(pool: Pool, provider: Provider, relay: RelaySignal) -> Handler {
    Arc::new(move |incoming: Incoming| {
        let (pool, provider, relay) = (pool.clone(), provider.clone(), relay.clone());
        Box::pin(async move { handle(&pool, &provider, &relay, &incoming).await })
    })
}

async fn handle(
    pool: &Pool,
    provider: &Provider,
    relay: &RelaySignal,
    incoming: &Incoming,
) -> Result<(), HandleError> {
    if incoming.event_type != ReservationBound::NAME {
        return Err(HandleError::Poison(anyhow::anyhow!(
            "payment does not consume {}",
            incoming.event_type
        )));
    }
    let bound: ReservationBound = incoming.decode()?;
    let amount = AmountCents::parse(bound.total_cents).map_err(|e| {
        HandleError::Poison(anyhow::anyhow!("ReservationBound {}: {e}", bound.order_id))
    })?;
    if processed(pool, incoming.message_id).await? {
        return Ok(());
    }
    let payment = match charge_once(pool, provider, bound.order_id, bound.user_id, amount).await {
        Ok(payment) => payment,
        // Another user or amount for a paid order: no retry can make it payable.
        Err(e @ ApiError::Conflict { .. }) => {
            return Err(HandleError::Poison(anyhow::anyhow!(
                "ReservationBound {}: {e}",
                bound.order_id
            )))
        }
        Err(e) => return Err(e.into()),
    };

    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    if !outbox::first_delivery(&tx, incoming.message_id, &incoming.event_type).await? {
        // A copy of this message committed meanwhile (it was charged once, by the ledger).
        tx.commit().await?;
        return Ok(());
    }
    append_outcome(&tx, &payment, bound.reservation_id).await?;
    tx.commit().await?;
    relay.wake();
    Ok(())
}

/// Whether this message id was handled (and its outcome emitted) before.
async fn processed(pool: &Pool, message_id: Uuid) -> Result<bool, HandleError> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached("SELECT 1 FROM inbox WHERE message_id = $1", &[&message_id])
        .await?;
    Ok(row.is_some())
}

async fn append_outcome(
    tx: &deadpool_postgres::Transaction<'_>,
    payment: &Payment,
    reservation_id: Uuid,
) -> Result<(), HandleError> {
    let (order_id, payment_id) = (payment.order_id, payment.payment_id);
    match payment.status {
        PaymentStatus::Succeeded => {
            outbox::append(
                tx,
                &PaymentSucceeded {
                    order_id,
                    reservation_id,
                    payment_id,
                },
            )
            .await?;
        }
        PaymentStatus::Declined => {
            outbox::append(
                tx,
                &PaymentDeclined {
                    order_id,
                    reservation_id,
                    payment_id,
                },
            )
            .await?;
        }
        PaymentStatus::Refunded => {
            // Only the sync saga refunds; an order of async mode never gets here. Should one,
            // it goes to the dead-letter queue, where an operator sees it.
            return Err(HandleError::Failed(anyhow::anyhow!(
                "payment of order {order_id} was refunded; no outcome to announce"
            )));
        }
        PaymentStatus::Pending => {
            // settle() answers a final payment; retry rather than emit nothing.
            return Err(HandleError::Failed(anyhow::anyhow!(
                "payment of order {order_id} is still PENDING after the charge"
            )));
        }
    }
    Ok(())
}
