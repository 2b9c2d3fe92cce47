//! The order service's side of a reservation: read it, bind an order to it, then confirm or
//! cancel it. Every route is idempotent by reservation id and order id, so callers retry.

use super::not_found;
use crate::db::reservations;
use crate::domain::{payability, OrderRequest, Reservation, Status, Unpayable};
use crate::peers::{self, Released};
use actix_web::{web, HttpResponse};
use common::auth::InternalCaller;
use common::client::ServiceClient;
use common::domain::{parse_body_id, parse_path_id};
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use uuid::Uuid;

fn ok(reservation: &Reservation) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(reservation))
}

fn ids(path: &str, body: &OrderRequest) -> ApiResult<(Uuid, Uuid)> {
    Ok((
        parse_path_id(path, "reservation")?,
        parse_body_id(&body.order_id, "order_id")?,
    ))
}

fn bound_elsewhere() -> ApiError {
    ApiError::conflict(
        "order_mismatch",
        "the reservation is bound to another order",
    )
}

fn not_payable(status: Status) -> ApiError {
    ApiError::conflict(
        "reservation_not_payable",
        format!("the reservation is {} and cannot be paid", status.as_str()),
    )
}

pub async fn show(
    _: InternalCaller,
    pool: web::Data<Pool>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "reservation")?;
    ok(&reservations::find(&pool, id).await?.ok_or_else(not_found)?)
}

/// Bind the order to the reservation, atomically, so that the sweeper no longer expires it.
/// A replay by the same order answers the record whatever happened since.
pub async fn begin_payment(
    _: InternalCaller,
    pool: web::Data<Pool>,
    path: web::Path<String>,
    body: web::Json<OrderRequest>,
) -> ApiResult<HttpResponse> {
    let (id, order_id) = ids(&path, &body)?;
    if let Some(bound) = reservations::bind_order(&pool, id, order_id).await? {
        return ok(&bound);
    }
    let (current, past_due) = reservations::find_in(&pool.get().await?, id)
        .await?
        .ok_or_else(not_found)?;
    payability(&current, past_due, order_id, None).map_err(Unpayable::into_api_error)?;
    ok(&current)
}

/// Commit the holds at inventory, then CONFIRMED. Only the order bound by `begin-payment`
/// may confirm.
pub async fn confirm(
    _: InternalCaller,
    pool: web::Data<Pool>,
    client: web::Data<ServiceClient>,
    path: web::Path<String>,
    body: web::Json<OrderRequest>,
) -> ApiResult<HttpResponse> {
    let (id, order_id) = ids(&path, &body)?;
    let current = reservations::find(&pool, id).await?.ok_or_else(not_found)?;
    match current.order_id {
        Some(bound) if bound == order_id => {}
        Some(_) => return Err(bound_elsewhere()),
        None => {
            return Err(ApiError::conflict(
                "reservation_not_payable",
                "no payment has begun for this reservation",
            ))
        }
    }
    match current.status {
        Status::Confirmed => return ok(&current),
        Status::Reserved => {}
        Status::Cancelled => {
            return Err(ApiError::conflict(
                "reservation_cancelled",
                "the reservation was cancelled; its stock is back on sale",
            ))
        }
        status => return Err(not_payable(status)),
    }
    peers::commit(&client, id).await?;
    match reservations::mark_confirmed(&pool, id, order_id).await? {
        Some(confirmed) => ok(&confirmed),
        // A concurrent confirm of the same order won the update.
        None => match reservations::find(&pool, id).await?.ok_or_else(not_found)? {
            r if r.status == Status::Confirmed => ok(&r),
            r => Err(not_payable(r.status)),
        },
    }
}

/// CANCELLED, then the holds are released at inventory. If the release fails the row keeps
/// `release_pending` and the sweeper's release pass finishes the job.
pub async fn cancel(
    _: InternalCaller,
    pool: web::Data<Pool>,
    client: web::Data<ServiceClient>,
    path: web::Path<String>,
    body: web::Json<OrderRequest>,
) -> ApiResult<HttpResponse> {
    let (id, order_id) = ids(&path, &body)?;
    let current = reservations::find(&pool, id).await?.ok_or_else(not_found)?;
    if current.order_id.is_some_and(|bound| bound != order_id) {
        return Err(bound_elsewhere());
    }
    let cancelled = match current.status {
        Status::Pending | Status::Reserved => {
            match reservations::mark_cancelled(&pool, id, order_id).await? {
                Some(cancelled) => cancelled,
                // The row moved on between the read and the update (confirmed, expired,
                // cancelled or bound by another order): answer from where it is now.
                None => {
                    let now = reservations::find(&pool, id).await?.ok_or_else(not_found)?;
                    match now.status {
                        Status::Pending | Status::Reserved => return Err(bound_elsewhere()),
                        Status::Confirmed => return Err(confirmed()),
                        _ => now,
                    }
                }
            }
        }
        Status::Confirmed => return Err(confirmed()),
        // Already final: a replay of this cancel, or nothing is held any more.
        _ => current,
    };
    if cancelled.status == Status::Cancelled {
        release_now(&pool, &client, id).await;
    }
    ok(&cancelled)
}

fn confirmed() -> ApiError {
    ApiError::conflict(
        "reservation_confirmed",
        "the reservation is confirmed; its stock is sold",
    )
}

/// Release at inventory right away if the stock is still to be given back and no sweeper
/// holds the lease. Failures are left to the sweeper.
async fn release_now(pool: &Pool, client: &ServiceClient, id: Uuid) {
    match reservations::claim_release(pool, id).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(reservation_id = %id, error = format!("{e:#}"), "release deferred to the sweeper");
            return;
        }
    }
    match peers::release(client, id).await {
        Ok(Released::Done) => {}
        Ok(Released::AlreadySold) => {
            tracing::error!(reservation_id = %id, "inventory says the stock of a cancelled reservation was sold");
        }
        Err(e) => {
            tracing::warn!(reservation_id = %id, error = %e, "release failed; the sweeper retries it");
            return;
        }
    }
    if let Err(e) = reservations::clear_release(pool, id).await {
        tracing::warn!(reservation_id = %id, error = format!("{e:#}"), "release done but not recorded; the sweeper repeats it");
    }
}
