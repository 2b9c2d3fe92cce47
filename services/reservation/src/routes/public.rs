use super::{expired, not_found, ReservationTtl};
use crate::db::reservations::{self, NewReservation};
use crate::domain::{self, Accepted, PublicView, Reservation, ReserveRequest, Reserved, Status};
use crate::messaging::{self, RelaySignal};
use crate::peers;
use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use common::auth::AuthUser;
use common::changes::Changes;
use common::client::ServiceClient;
use common::domain::{parse_body_id, parse_path_id};
use common::events::Rejection;
use common::messaging::outbox;
use common::web::IdempotencyHeader;
use common::{ApiError, ApiResult, Mode};
use deadpool_postgres::Pool;
use uuid::Uuid;

/// The Reserve flow: read the cart, record the reservation PENDING, then hold its stock
/// (sync mode) or ask inventory for it with `ReservationRequested` (async mode).
///
/// Safe to send twice: the reservation's id is derived from the cart and the request's
/// `Idempotency-Key` (none: the cart alone), so a request sent again (by nginx after the
/// first replica died under it, or by the client) finds the first one's row. A PENDING row is
/// taken up where the first request left it (the hold at inventory is keyed by reservation
/// id); a settled one is answered as the first request was. A client that wants a second
/// reservation of one cart (after it sold out, say) sends a new key.
pub async fn reserve(
    (user, key): (AuthUser, IdempotencyHeader),
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
        id: reservation_id(cart_id, key.as_deref()),
        user_id: user.user_id,
        cart_id,
        items: &cart.items,
        total_cents,
        ttl_secs: ttl.0,
    };
    if **mode == Mode::Async {
        return request_stock(&pool, &relay, new).await;
    }
    let (pending, created) = reservations::insert_pending(&pool, new).await?;
    if !created && pending.status != Status::Pending {
        return answer_again(pending);
    }

    // From here on, a failure leaves the row PENDING: the sweeper expires it and releases
    // at inventory, which is right whether or not the hold landed.
    let (settle_to, rejection) = match peers::hold(&client, &pending).await {
        Ok(()) => (Status::Reserved, None),
        Err(e) => match rejection_of(&e).map(Status::after) {
            Some(Some(status)) => (status, Some(e)),
            // The sweeper expired and released this reservation before the hold arrived.
            Some(None) => return Err(expired()),
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
    let (pending, created) = reservations::insert_pending_in(&tx, new).await?;
    // A request sent again finds the first one's row, whose event committed with it.
    if created {
        outbox::append(&tx, &messaging::reservation_requested(&pending)).await?;
    }
    tx.commit().await?;
    if created {
        relay.wake();
    }
    Ok(HttpResponse::Accepted()
        .insert_header((LOCATION, format!("/api/reservations/{}", pending.id)))
        .json(Accepted {
            id: pending.id,
            status: pending.status,
        }))
}

/// The id of the reservation of `cart_id` under the request's idempotency key.
fn reservation_id(cart_id: Uuid, key: Option<&str>) -> Uuid {
    common::web::derived_id(
        "reservation",
        &[cart_id.as_bytes(), key.unwrap_or_default().as_bytes()],
    )
}

/// Sync mode: the answer the first request of a reservation that is no longer PENDING got.
fn answer_again(reservation: Reservation) -> ApiResult<HttpResponse> {
    match reservation.status {
        // Inventory's words, as the first request passed them on.
        Status::SoldOut => Err(ApiError::conflict(
            "sold_out",
            "not enough stock left for this cart",
        )),
        Status::LimitReached => Err(ApiError::conflict(
            "limit_reached",
            "this would exceed the per-customer limit",
        )),
        Status::Expired => Err(expired()),
        Status::Cancelled => Err(ApiError::conflict(
            "reservation_cancelled",
            "this cart's reservation was cancelled: reserve again with a new Idempotency-Key",
        )),
        Status::Pending | Status::Reserved | Status::Confirmed => Ok(HttpResponse::Created()
            .insert_header((LOCATION, format!("/api/reservations/{}", reservation.id)))
            .json(Reserved {
                id: reservation.id,
                status: reservation.status,
                expires_at: reservation.expires_at,
            })),
    }
}

/// The rejection inventory answered a hold with (its 409/422 code); `None` for any other
/// error, which leaves the reservation PENDING.
fn rejection_of(e: &ApiError) -> Option<Rejection> {
    match e {
        ApiError::Conflict { .. } | ApiError::Unprocessable { .. } => {
            Rejection::from_code(e.code())
        }
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
