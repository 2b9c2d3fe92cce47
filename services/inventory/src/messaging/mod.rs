//! Async mode: the inventory's consumer, on the shared skeleton (`common::messaging`): each
//! event's inbox row (a duplicate has no second effect), its stock change and the events it
//! causes commit together, with the other messages of its batch; the relay is woken after
//! the commit.
//!
//! | consumes               | does                                   | emits                          |
//! | ---------------------- | -------------------------------------- | ------------------------------ |
//! | `ReservationRequested` | the hold, its event appended first     | `StockReserved`/`StockRejected` |
//! | `ReservationExpired`   | release (tombstone if no hold yet)     | nothing                        |
//! | `PaymentSucceeded`     | commit the holds                       | nothing                        |
//! | `PaymentDeclined`      | release                                | nothing                        |

use crate::db::stock::{self, Transition};
use crate::domain::{HoldItem, HoldRequest};
use common::domain::Quantity;
use common::events::{
    Event, PaymentDeclined, PaymentSucceeded, ReservationExpired, ReservationRequested,
    StockRejected, StockReserved,
};
use common::messaging::outbox::{self, RelaySignal};
use common::messaging::{Consume, Effect, HandleError, Handler, Incoming};
use deadpool_postgres::{Pool, Transaction};
use futures::future::BoxFuture;
use uuid::Uuid;

/// The handler the inventory's queue is consumed with, in batches of up to `max_batch`.
pub fn handler(pool: Pool, relay: RelaySignal, max_batch: usize) -> Handler {
    Handler::pipeline(Stock, pool, Some(relay), None, max_batch)
}

/// The stock's part of the consumer skeleton (`common::messaging::Consume`).
struct Stock;

impl Consume for Stock {
    type Prepared = Command;
    /// Every command locks the stock rows of its products, in no order across a batch.
    const SERIAL_BATCHES: bool = true;

    fn prepare<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Result<Command, HandleError>> {
        Box::pin(std::future::ready(command(message)))
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        message: &'a Incoming,
        command: Command,
    ) -> BoxFuture<'a, Result<Effect, HandleError>> {
        Box::pin(async move {
            let appended = match command {
                Command::Hold(req) => hold(tx, &req).await?,
                Command::Commit {
                    reservation_id,
                    order_id,
                } => commit(tx, reservation_id, order_id).await?,
                Command::Release { reservation_id } => {
                    release(tx, reservation_id, &message.event_type).await?
                }
            };
            Ok(if appended {
                Effect::APPENDED
            } else {
                Effect::NONE
            })
        })
    }
}

/// What an event asks of the stock, decoded before any database work.
enum Command {
    Hold(HoldRequest),
    Commit {
        reservation_id: Uuid,
        order_id: Uuid,
    },
    Release {
        reservation_id: Uuid,
    },
}

fn command(incoming: &Incoming) -> Result<Command, HandleError> {
    Ok(match incoming.event_type.as_str() {
        ReservationRequested::NAME => Command::Hold(hold_request(incoming.decode()?)?),
        ReservationExpired::NAME => Command::Release {
            reservation_id: incoming.decode::<ReservationExpired>()?.reservation_id,
        },
        PaymentSucceeded::NAME => {
            let paid: PaymentSucceeded = incoming.decode()?;
            Command::Commit {
                reservation_id: paid.reservation_id,
                order_id: paid.order_id,
            }
        }
        PaymentDeclined::NAME => Command::Release {
            reservation_id: incoming.decode::<PaymentDeclined>()?.reservation_id,
        },
        other => {
            return Err(HandleError::Poison(anyhow::anyhow!(
                "inventory does not consume {other}"
            )))
        }
    })
}

/// The hold the event asks for, with the same validation as the HTTP route: a reservation
/// service never sends an empty hold or a quantity out of range, so such a message is poison.
fn hold_request(event: ReservationRequested) -> Result<HoldRequest, HandleError> {
    if event.items.is_empty() {
        return Err(HandleError::Poison(anyhow::anyhow!(
            "ReservationRequested {} has no items",
            event.reservation_id
        )));
    }
    let items = event
        .items
        .iter()
        .map(|item| {
            Ok(HoldItem {
                product_id: item.product_id,
                quantity: Quantity::parse(i64::from(item.quantity)).map_err(|e| {
                    HandleError::Poison(anyhow::anyhow!(
                        "ReservationRequested {}: {e}",
                        event.reservation_id
                    ))
                })?,
            })
        })
        .collect::<Result<Vec<_>, HandleError>>()?;
    Ok(HoldRequest {
        reservation_id: event.reservation_id,
        user_id: event.user_id,
        items,
    })
}

/// The savepoint a step's event and its stock change share (see [`hold`]).
const STEP: &str = "SAVEPOINT stock_step";
const UNDO_STEP: &str = "ROLLBACK TO SAVEPOINT stock_step";

/// The sync hold, with the hot stock rows still last before the commit: the event a hold
/// causes is appended first, inside a savepoint, and the hold runs after it. Held: the
/// transaction commits at once, so a stock row is locked for the commit only. Rejected
/// (before any write, or by a concurrent hold that aborted the statement): back to the
/// savepoint, and the inbox row commits with `StockRejected` instead.
async fn hold(tx: &Transaction<'_>, req: &HoldRequest) -> Result<bool, HandleError> {
    tx.batch_execute(STEP).await?;
    // Also for a hold placed (or sold) before under another message id: the reservation
    // service ignores a StockReserved it no longer waits for.
    outbox::append(
        tx,
        &StockReserved {
            reservation_id: req.reservation_id,
        },
    )
    .await?;
    let Some(reason) = stock::hold_in(tx, req).await?.rejection() else {
        return Ok(true);
    };
    tx.batch_execute(UNDO_STEP).await?;
    outbox::append(
        tx,
        &StockRejected {
            reservation_id: req.reservation_id,
            reason,
        },
    )
    .await?;
    Ok(true)
}

/// A paid reservation's holds become SOLD. The order and the reservation are confirmed on
/// their own copies of `PaymentSucceeded`, so nothing is emitted. Holds found RELEASED (or
/// missing) mean stock was given back under a bound reservation: that must never be papered
/// over by a commit, so it is logged for an operator (and `flashsale verify` reports the
/// confirmed order without sold units) and acked.
async fn commit(
    tx: &Transaction<'_>,
    reservation_id: Uuid,
    order_id: Uuid,
) -> Result<bool, HandleError> {
    match stock::commit_in(tx, reservation_id).await? {
        Transition::Done => {}
        Transition::Conflict(state) => {
            tracing::error!(%reservation_id, %order_id, state = state.as_str(),
                "payment succeeded but the holds are no longer HELD: not committed");
        }
        Transition::Unknown => {
            tracing::error!(%reservation_id, %order_id,
                "payment succeeded for a reservation with no holds: nothing to commit");
        }
    }
    Ok(false)
}

/// Expired or declined: the stock goes back on sale (a tombstone if no hold arrived yet).
/// Holds already SOLD cannot be released; for an expired (unbound) or declined reservation
/// that cannot happen, so it is logged and acked.
async fn release(
    tx: &Transaction<'_>,
    reservation_id: Uuid,
    cause: &str,
) -> Result<bool, HandleError> {
    match stock::release_in(tx, reservation_id).await? {
        Transition::Done | Transition::Unknown => {}
        Transition::Conflict(state) => {
            tracing::error!(%reservation_id, %cause, state = state.as_str(),
                "release asked for holds that are already sold: left as they are");
        }
    }
    Ok(false)
}
