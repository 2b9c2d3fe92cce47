use crate::cache::carts::{AddOutcome, CartStore};
use crate::catalog::Catalog;
use crate::domain::{AddItemRequest, CartView, JsonObject, NewLine};
use actix_web::http::header::LOCATION;
use actix_web::{web, HttpResponse};
use common::auth::AuthUser;
use common::domain::{parse_path_id, Quantity};
use common::web::IdempotencyHeader;
use common::{ApiError, ApiResult};

/// `POST /api/carts` with `{}`: a new empty cart of the caller. The body must be a JSON object
/// (any fields are ignored), so the route keeps the suite's JSON-only contract. With an
/// `Idempotency-Key`, the same key answers the same cart.
pub async fn create(
    key: IdempotencyHeader,
    user: AuthUser,
    carts: web::Data<CartStore>,
    _body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<HttpResponse> {
    let cart = carts.create(user.user_id, key.as_deref()).await?;
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, format!("/api/carts/{}", cart.id)))
        .json(CartView::from(cart)))
}

/// `GET /api/carts/{id}`: the caller's cart; someone else's is as unknown as a missing one.
pub async fn get(
    user: AuthUser,
    carts: web::Data<CartStore>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "cart")?;
    let cart = carts
        .owned_by(id, user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("cart"))?;
    Ok(HttpResponse::Ok().json(CartView::from(cart)))
}

/// `POST /api/carts/{id}/items`: add units of a product; a product already in the cart has
/// its quantity increased. Nothing changes unless the whole request is acceptable. With an
/// `Idempotency-Key`, an add sent again changes nothing and answers the cart.
pub async fn add_item(
    key: IdempotencyHeader,
    user: AuthUser,
    carts: web::Data<CartStore>,
    catalog: web::Data<Catalog>,
    path: web::Path<String>,
    body: web::Json<JsonObject<AddItemRequest>>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "cart")?;
    let JsonObject(request) = body.into_inner();
    let line = NewLine::parse(&request)?;
    if catalog.product(line.product_id).await?.is_none() {
        return Err(ApiError::unprocessable(
            "unknown_product",
            format!("product {} does not exist", line.product_id),
        ));
    }
    match carts.add(id, user.user_id, line, key.as_deref()).await? {
        AddOutcome::Added(cart) => Ok(HttpResponse::Ok().json(CartView::from(cart))),
        AddOutcome::NotFound => Err(ApiError::not_found("cart")),
        AddOutcome::OverLimit { current } => Err(ApiError::unprocessable(
            "invalid_quantity",
            format!(
                "a cart line holds at most {} units; this one holds {current}",
                Quantity::MAX
            ),
        )),
    }
}
