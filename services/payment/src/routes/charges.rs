use crate::db::payments;
use crate::domain::charge::charge_once;
use crate::domain::provider::Provider;
use crate::domain::refund::refund_once;
use crate::domain::{AmountCents, ChargeRequest, RefundRequest};
use actix_web::{web, HttpResponse};
use common::auth::InternalCaller;
use common::domain::parse_path_id;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;

/// Charge an order exactly once. Every call for the same order answers the same payment.
pub async fn charge(
    _: InternalCaller,
    pool: web::Data<Pool>,
    provider: web::Data<Provider>,
    body: web::Json<ChargeRequest>,
) -> ApiResult<HttpResponse> {
    let amount = AmountCents::parse(body.amount_cents)?;
    let payment = charge_once(&pool, &provider, body.order_id, body.user_id, amount).await?;
    Ok(HttpResponse::Ok().json(payment.answer()))
}

/// Give an order's charge back, once. Every call for the same order answers the same payment.
pub async fn refund(
    _: InternalCaller,
    pool: web::Data<Pool>,
    provider: web::Data<Provider>,
    body: web::Json<RefundRequest>,
) -> ApiResult<HttpResponse> {
    let payment = refund_once(&pool, &provider, body.order_id).await?;
    Ok(HttpResponse::Ok().json(payment.answer()))
}

pub async fn by_order(
    _: InternalCaller,
    pool: web::Data<Pool>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let order_id = parse_path_id(&path, "order")?;
    let payment = payments::by_order(&pool, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    Ok(HttpResponse::Ok().json(payment))
}
