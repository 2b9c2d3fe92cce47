use super::{expired, not_found, ReservationTtl};
use crate::db::reservations::{self, NewReservation};
use crate::domain::{self, Accepted, PublicView, ReserveRequest, Reserved, Status};
use crate::messaging::{self, RelaySignal};
use crate::peers;
use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use common::auth::AuthUser;
use common::changes::Changes;
use common::client::ServiceClient;
use common::domain::{parse_body_id, parse_path_id};
use common::messaging::outbox;
use common::{ApiError, ApiResult, Mode};
use deadpool_postgres::Pool;
use uuid::Uuid;

/// The Reserve flow: read the cart, record the reservation PENDING, then hold its stock
/// (sync mode) or ask inventory for it with `ReservationRequested` (async mode).
pub async fn reserve(
    user: AuthUser,
    pool: web::Data<Pool>,
    client: web::Data<ServiceClient>,
    ttl: web::Data<ReservationTtl>,
    mode: web::Data<Mode>,
    relay: web::Data<RelaySignal>,
    body: web::Json<ReserveRequest>,
) -> ApiResult<HttpResponse> {
    let cart_id = parse_body_id(&body.cart_id, "cart_id")?;
    let cart = peers::cart(&client, cart_id, user.user_id).await?;
    if cart.user_id != user.user_id || cart.id != cart_id {
        return Err(ApiError::not_found("cart"));
    }
    if cart.items.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_cart",
            "the cart has no items to reserve",
        ));
    }
    let total_cents = domain::total_cents(&cart.items)?;
    let new = NewReservation {
        id: Uuid::new_v4(),
        user_id: user.user_id,
        cart_id,
        items: &cart.items,
        total_cents,
        ttl_secs: ttl.0,
    };
    if **mode == Mode::Async {
        return request_stock(&pool, &relay, new).await;
    }
    let pending = reservations::insert_pending(&pool, new).await?;

    // From here on, a failure leaves the row PENDING: the sweeper expires it and releases
    // at inventory, which is right whether or not the hold landed.
    let (settle_to, rejection) = match peers::hold(&client, &pending).await {
        Ok(()) => (Status::Reserved, None),
        Err(e) => match final_status(&e) {
            Some(status) => (status, Some(e)),
            // The sweeper expired and released this reservation before the hold arrived.
            None if matches!(e, ApiError::Conflict { .. }) && e.code() == "hold_released" => {
                return Err(expired())
            }
            None => return Err(e),
        },
    };
    let settled = reservations::settle(&pool, pending.id, settle_to).await?;
    if let Some(e) = rejection {
        // Inventory's own answer, passed on: 409 sold_out / limit_reached, 422 unknown_product.
        return Err(e);
    }
    // `None`: the sweeper expired the row while the hold was in flight; it releases the
    // stock that was just held.
    let reservation = settled.ok_or_else(expired)?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/api/reservations/{}", reservation.id)))
        .json(Reserved {
            id: reservation.id,
            status: reservation.status,
            expires_at: reservation.expires_at,
        }))
}

/// Async mode: the PENDING row and its `ReservationRequested` commit together, so inventory
/// hears of every reservation recorded and of no other; the client polls the status URL.
async fn request_stock(
    pool: &Pool,
    relay: &RelaySignal,
    new: NewReservation<'_>,
) -> ApiResult<HttpResponse> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let pending = reservations::insert_pending_in(&tx, new).await?;
    outbox::append(&tx, &messaging::reservation_requested(&pending)).await?;
    tx.commit().await?;
    relay.wake();
    Ok(HttpResponse::Accepted()
        .insert_header((LOCATION, format!("/api/reservations/{}", pending.id)))
        .json(Accepted {
            id: pending.id,
            status: pending.status,
        }))
}

/// The final status a rejected hold puts the reservation in; `None` for anything else.
fn final_status(e: &ApiError) -> Option<Status> {
    match (e, e.code()) {
        (ApiError::Conflict { .. }, "sold_out") => Some(Status::SoldOut),
        (ApiError::Conflict { .. }, "limit_reached") => Some(Status::LimitReached),
        // Nothing is held for a product that does not exist: the reservation is over.
        (ApiError::Unprocessable { .. }, "unknown_product") => Some(Status::Cancelled),
        _ => None,
    }
}

/// `GET /api/reservations/{id}`: the caller's own reservation. With `Prefer: wait=N` a
/// PENDING one is answered when it settles, or after N seconds as it is then.
pub async fn show(
    req: HttpRequest,
    user: AuthUser,
    pool: web::Data<Pool>,
    changes: web::Data<Changes>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "reservation")?;
    let read = || async {
        let reservation = reservations::find_owned(&pool, id, user.user_id)
            .await?
            .ok_or_else(not_found)?;
        let settled = reservation.status != Status::Pending;
        Ok((reservation, settled))
    };
    let (reservation, mut answer) = changes
        .answer(req.headers(), id, user.user_id, read)
        .await?;
    Ok(answer.json(PublicView::from(reservation)))
}
