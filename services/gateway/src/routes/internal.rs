use crate::cache::carts::CartStore;
use crate::catalog::Catalog;
use crate::domain::{PricedCart, PricedLine};
use actix_web::{web, HttpResponse};
use anyhow::Context;
use common::auth::InternalCaller;
use common::domain::parse_path_id;
use common::{ApiError, ApiResult};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct OwnerQuery {
    user_id: String,
}

/// `GET /internal/gateway/carts/{cart_id}?user_id=`: the cart with unit prices, for the
/// reservation service. 404 when missing or owned by someone else.
pub async fn cart(
    _: InternalCaller,
    carts: web::Data<CartStore>,
    catalog: web::Data<Catalog>,
    path: web::Path<String>,
    query: web::Query<OwnerQuery>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "cart")?;
    let user_id = parse_path_id(&query.user_id, "user")?;
    let cart = carts
        .owned_by(id, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("cart"))?;
    let mut items = Vec::with_capacity(cart.items.len());
    for line in cart.items {
        // A line was only ever added for an existing product, and products are not deleted.
        let product = catalog
            .product(line.product_id)
            .await?
            .with_context(|| format!("cart line for vanished product {}", line.product_id))?;
        items.push(PricedLine {
            product_id: line.product_id,
            quantity: line.quantity,
            price_cents: product.price_cents,
        });
    }
    Ok(HttpResponse::Ok().json(PricedCart {
        id: cart.id,
        user_id: cart.user_id,
        items,
    }))
}
