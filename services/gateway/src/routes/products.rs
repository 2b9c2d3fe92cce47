use crate::catalog::Catalog;
use actix_web::{web, HttpResponse};
use common::auth::AuthUser;
use common::domain::parse_path_id;
use common::{ApiError, ApiResult};

/// `GET /api/products`: every product with its availability, sorted by name.
pub async fn list(_: AuthUser, catalog: web::Data<Catalog>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(catalog.list().await?))
}

/// `GET /api/products/{id}`.
pub async fn one(
    _: AuthUser,
    catalog: web::Data<Catalog>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "product")?;
    let product = catalog
        .view(id)
        .await?
        .ok_or_else(|| ApiError::not_found("product"))?;
    Ok(HttpResponse::Ok().json(product))
}
