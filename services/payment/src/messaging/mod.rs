//! Async mode: the payment's consumer. It consumes `ReservationBound` and emits
//! `PaymentSucceeded` or `PaymentDeclined`.
//!
//! The charge cannot live inside the handler's transaction: the provider takes its time, and
//! no transaction or connection is held while it decides. So the charge is the skeleton's
//! `prepare` step (`common::messaging::Consume`): a redelivered message already in the inbox
//! charges nothing; otherwise the exactly-once charge of the sync route (keyed by order id,
//! the provider's ledger keeps the first decision). Then one transaction, shared with the
//! rest of the batch, records the message in the inbox and appends the outcome to the outbox. A redelivery after a crash
//! between the charge and that commit finds the stored charge and emits the same outcome; a
//! second message for the same order (another message id) charges nothing and repeats the
//! outcome, which every consumer of it treats as a no-op.

use crate::domain::charge::charge_once;
use crate::domain::provider::Provider;
use crate::domain::{AmountCents, Payment, PaymentStatus};
use common::db::Prepared;
use common::events::{Event, PaymentDeclined, PaymentSucceeded, ReservationBound};
use common::messaging::outbox::{self, RelaySignal};
use common::messaging::{Consume, Effect, HandleError, Handler, Incoming};
use common::ApiError;
use deadpool_postgres::{Pool, Transaction};
use futures::future::BoxFuture;
use uuid::Uuid;

/// The handler the payment's queue is consumed with, in batches of up to `max_batch`: the
/// charges of a batch run concurrently, then one transaction records all their outcomes.
pub fn handler(pool: Pool, provider: Provider, relay: RelaySignal, max_batch: usize) -> Handler {
    Handler::pipeline(
        Payments {
            pool: pool.clone(),
            provider,
        },
        pool,
        Some(relay),
        None,
        max_batch,
    )
}

/// The payment's part of the consumer skeleton (`common::messaging::Consume`).
struct Payments {
    pool: Pool,
    provider: Provider,
}

/// A bound reservation's charge, decided before the transaction; `None` when the message was
/// handled before.
struct Charged {
    payment: Option<Payment>,
    reservation_id: Uuid,
}

impl Consume for Payments {
    type Prepared = Charged;

    fn prepare<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Result<Charged, HandleError>> {
        Box::pin(self.charge(message))
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        _message: &'a Incoming,
        charged: Charged,
    ) -> BoxFuture<'a, Result<Effect, HandleError>> {
        Box::pin(async move {
            let Some(payment) = charged.payment else {
                return Ok(Effect::NONE);
            };
            append_outcome(tx, &payment, charged.reservation_id).await?;
            Ok(Effect::APPENDED)
        })
    }
}

impl Payments {
    async fn charge(&self, incoming: &Incoming) -> Result<Charged, HandleError> {
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
        // Only a redelivery can have been handled before; a copy under the same id that was
        // not (a relay that published twice) charges nothing either: the ledger keys the
        // charge by order.
        if incoming.redelivered && processed(&self.pool, incoming.message_id).await? {
            return Ok(Charged {
                payment: None,
                reservation_id: bound.reservation_id,
            });
        }
        let charged = charge_once(
            &self.pool,
            &self.provider,
            bound.order_id,
            bound.user_id,
            amount,
        )
        .await;
        let payment = match charged {
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
        Ok(Charged {
            payment: Some(payment),
            reservation_id: bound.reservation_id,
        })
    }
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
    tx: &Transaction<'_>,
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
