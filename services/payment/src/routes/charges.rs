use crate::db::payments;
use crate::domain::provider::Provider;
use crate::domain::{AmountCents, ChargeRequest};
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
    let payment = payments::create_or_get(&pool, body.order_id, body.user_id, amount).await?;
    if payment.user_id != body.user_id || payment.amount_cents != amount.get() {
        // The order's total never changes, so this is a caller's bug: refuse rather than
        // charge an amount nobody agreed to.
        return Err(ApiError::conflict(
            "payment_mismatch",
            "this order already has a payment for another user or amount",
        ));
    }
    if payment.status.is_final() {
        return Ok(HttpResponse::Ok().json(payment.answer()));
    }
    // The stored amount, not the request's: the ledger records what the payment says.
    let stored = AmountCents::parse(payment.amount_cents)?;
    let outcome = provider.charge(payment.order_id, stored).await?;
    let payment = payments::settle(&pool, payment.order_id, outcome).await?;
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
