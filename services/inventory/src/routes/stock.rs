use crate::db::stock;
use actix_web::{web, HttpResponse};
use common::auth::InternalCaller;
use common::domain::parse_path_id;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;

pub async fn list(_: InternalCaller, pool: web::Data<Pool>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(stock::levels(&pool).await?))
}

pub async fn one(
    _: InternalCaller,
    pool: web::Data<Pool>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "product")?;
    let level = stock::level_of(&pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    Ok(HttpResponse::Ok().json(level))
}
