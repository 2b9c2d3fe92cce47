//! Products: names and prices, fixed for the duration of a sale.

use crate::domain::Product;
use common::db::Prepared;
use common::ApiResult;
use deadpool_postgres::Pool;
use uuid::Uuid;

fn product(row: &tokio_postgres::Row) -> Product {
    Product {
        id: row.get(0),
        name: row.get(1),
        price_cents: row.get(2),
    }
}

pub async fn all(pool: &Pool) -> ApiResult<Vec<Product>> {
    let client = pool.get().await?;
    let rows = client
        .query_cached("SELECT id, name, price_cents FROM products", &[])
        .await?;
    Ok(rows.iter().map(product).collect())
}

pub async fn by_id(pool: &Pool, id: Uuid) -> ApiResult<Option<Product>> {
    let client = pool.get().await?;
    let row = client
        .query_opt_cached(
            "SELECT id, name, price_cents FROM products WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(product))
}
