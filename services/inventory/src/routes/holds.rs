use crate::db::stock::{self, Transition};
use crate::domain::{HoldAnswer, HoldOutcome, HoldRequest, HoldState};
use actix_web::{web, HttpResponse};
use common::auth::InternalCaller;
use common::domain::parse_path_id;
use common::events::Rejection;
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
    let outcome = stock::hold(&pool, &body).await?;
    let message = match &outcome {
        HoldOutcome::Held(status) => {
            return Ok(HttpResponse::Ok().json(HoldAnswer {
                reservation_id: body.reservation_id,
                status: *status,
            }))
        }
        HoldOutcome::SoldOut => "not enough stock left for this cart".to_string(),
        HoldOutcome::LimitReached => "this would exceed the per-customer limit".to_string(),
        HoldOutcome::AlreadyReleased => "this reservation was already released".to_string(),
        HoldOutcome::UnknownProduct(id) => format!("product {id} does not exist"),
    };
    // The code is the rejection's, the same word async mode's StockRejected carries.
    Err(match outcome.rejection() {
        Some(Rejection::UnknownProduct) => {
            ApiError::unprocessable(Rejection::UnknownProduct.code(), message)
        }
        Some(rejection) => ApiError::conflict(rejection.code(), message),
        None => ApiError::Internal(anyhow::anyhow!("a hold that held was answered as refused")),
    })
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
