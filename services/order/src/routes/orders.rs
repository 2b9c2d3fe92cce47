use crate::db::orders;
use crate::domain::OrderView;
use actix_web::{web, HttpResponse};
use common::auth::AuthUser;
use common::domain::parse_path_id;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;

/// `GET /api/orders/{id}`: the caller's own order; anyone else's is unknown.
pub async fn one(
    user: AuthUser,
    pool: web::Data<Pool>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "order")?;
    let order = orders::of_user(&pool, id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    Ok(HttpResponse::Ok().json(OrderView::from(&order)))
}
