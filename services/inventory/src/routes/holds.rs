use crate::db::stock::{self, Transition};
use crate::domain::{HoldAnswer, HoldOutcome, HoldRequest, HoldState};
use actix_web::{web, HttpResponse};
use common::auth::InternalCaller;
use common::domain::parse_path_id;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;

pub async fn hold(
    _: InternalCaller,
    pool: web::Data<Pool>,
    body: web::Json<HoldRequest>,
) -> ApiResult<HttpResponse> {
    if body.items.is_empty() {
        return Err(ApiError::unprocessable(
            "empty_hold",
            "a hold needs at least one item",
        ));
    }
    match stock::hold(&pool, &body).await? {
        HoldOutcome::Held(status) => Ok(HttpResponse::Ok().json(HoldAnswer {
            reservation_id: body.reservation_id,
            status,
        })),
        HoldOutcome::SoldOut => Err(ApiError::conflict(
            "sold_out",
            "not enough stock left for this cart",
        )),
        HoldOutcome::LimitReached => Err(ApiError::conflict(
            "limit_reached",
            "this would exceed the per-customer limit",
        )),
        HoldOutcome::AlreadyReleased => Err(ApiError::conflict(
            "hold_released",
            "this reservation was already released",
        )),
        HoldOutcome::UnknownProduct(id) => Err(ApiError::unprocessable(
            "unknown_product",
            format!("product {id} does not exist"),
        )),
    }
}

fn answer(reservation_id: uuid::Uuid, wanted: HoldState, t: Transition) -> ApiResult<HttpResponse> {
    match t {
        Transition::Done => Ok(HttpResponse::Ok().json(HoldAnswer {
            reservation_id,
            status: wanted,
        })),
        Transition::Conflict(state) => Err(ApiError::conflict(
            if state == HoldState::Sold {
                "hold_sold"
            } else {
                "hold_released"
            },
            format!(
                "the holds of this reservation are already {}",
                state.as_str()
            ),
        )),
        Transition::Unknown => Err(ApiError::not_found("hold")),
    }
}

pub async fn commit(
    _: InternalCaller,
    pool: web::Data<Pool>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "reservation")?;
    answer(id, HoldState::Sold, stock::commit(&pool, id).await?)
}

pub async fn release(
    _: InternalCaller,
    pool: web::Data<Pool>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "reservation")?;
    answer(id, HoldState::Released, stock::release(&pool, id).await?)
}
