//! Catalog reads: the fixed part of a product (name, price) from the `products` table, kept
//! in process memory, joined with the units available, which the inventory owns.
//!
//! Availability is read through the Redis cache. The cache is an optimisation, not a
//! dependency: with Redis away the inventory is asked directly. With the inventory away and
//! nothing cached, the answer is 503.

use crate::cache::availability::AvailabilityCache;
use crate::db;
use crate::domain::{Product, ProductView};
use common::client::ServiceClient;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::RwLock;
use uuid::Uuid;

/// The part of the inventory's stock answer the catalog uses.
#[derive(Debug, Deserialize)]
struct StockLevel {
    product_id: Uuid,
    available: i64,
}

/// Products read so far. Products do not change during a sale, so an entry never goes stale;
/// `complete` says whether `by_id` holds the whole table.
#[derive(Default)]
struct Memo {
    by_id: HashMap<Uuid, Product>,
    complete: bool,
}

pub struct Catalog {
    pool: Pool,
    inventory: ServiceClient,
    availability: AvailabilityCache,
    memo: RwLock<Memo>,
}

impl Catalog {
    pub fn new(pool: Pool, inventory: ServiceClient, availability: AvailabilityCache) -> Self {
        Self {
            pool,
            inventory,
            availability,
            memo: RwLock::default(),
        }
    }

    fn memo(&self) -> std::sync::RwLockReadGuard<'_, Memo> {
        // A panic while holding the lock cannot leave the map half-written (each write is
        // one insert or one swap), so a poisoned lock is still usable.
        self.memo.read().unwrap_or_else(|e| e.into_inner())
    }

    fn memo_mut(&self) -> std::sync::RwLockWriteGuard<'_, Memo> {
        self.memo.write().unwrap_or_else(|e| e.into_inner())
    }

    /// One product's name and price; a product not yet in memory is looked up in the table.
    pub async fn product(&self, id: Uuid) -> ApiResult<Option<Product>> {
        if let Some(product) = self.memo().by_id.get(&id) {
            return Ok(Some(product.clone()));
        }
        let found = db::products::by_id(&self.pool, id).await?;
        if let Some(product) = &found {
            let mut memo = self.memo_mut();
            memo.by_id.insert(id, product.clone());
            // It was not in the memo: the table grew since the memo was complete.
            memo.complete = false;
        }
        Ok(found)
    }

    /// Every product, from memory once the table has been read whole.
    async fn products(&self, refresh: bool) -> ApiResult<Vec<Product>> {
        {
            let memo = self.memo();
            if memo.complete && !refresh {
                return Ok(memo.by_id.values().cloned().collect());
            }
        }
        let products = db::products::all(&self.pool).await?;
        let mut memo = self.memo_mut();
        memo.by_id = products.iter().map(|p| (p.id, p.clone())).collect();
        // An empty table is not remembered: the products may be seeded after start-up.
        memo.complete = !products.is_empty();
        Ok(products)
    }

    /// `GET /api/products`: every product with its availability, sorted by name.
    pub async fn list(&self) -> ApiResult<Vec<ProductView>> {
        let levels = self.availability_all().await?;
        let mut products = self.products(false).await?;
        if levels
            .keys()
            .any(|id| !products.iter().any(|p| p.id == *id))
        {
            // The inventory stocks a product the memo has not seen: it was seeded after the
            // memo was filled.
            products = self.products(true).await?;
        }
        let mut views: Vec<ProductView> = products
            .into_iter()
            .map(|p| {
                let available = levels.get(&p.id).copied().unwrap_or(0);
                ProductView::new(p, available)
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(views)
    }

    /// `GET /api/products/{id}`: one product with its availability, `None` if unknown.
    pub async fn view(&self, id: Uuid) -> ApiResult<Option<ProductView>> {
        let Some(product) = self.product(id).await? else {
            return Ok(None);
        };
        let available = self.availability_of(id).await?;
        Ok(Some(ProductView::new(product, available)))
    }

    async fn availability_all(&self) -> ApiResult<HashMap<Uuid, i64>> {
        match self.availability.all().await {
            Ok(Some(levels)) => return Ok(levels),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "availability cache unreadable, asking inventory"),
        }
        let levels: Vec<StockLevel> = self.inventory.get("/internal/inventory/stock").await?;
        let levels: HashMap<Uuid, i64> = levels
            .into_iter()
            .map(|l| (l.product_id, l.available))
            .collect();
        if let Err(e) = self.availability.store_all(&levels).await {
            tracing::warn!(error = %e, "could not cache availability");
        }
        Ok(levels)
    }

    async fn availability_of(&self, id: Uuid) -> ApiResult<i64> {
        match self.availability.one(id).await {
            Ok(Some(available)) => return Ok(available),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "availability cache unreadable, asking inventory"),
        }
        let path = format!("/internal/inventory/stock/{id}");
        let available = match self.inventory.get::<StockLevel>(&path).await {
            Ok(level) => level.available,
            // A product the inventory does not stock has nothing available.
            Err(ApiError::NotFound { .. }) => 0,
            Err(e) => return Err(e),
        };
        if let Err(e) = self.availability.store_one(id, available).await {
            tracing::warn!(error = %e, "could not cache availability");
        }
        Ok(available)
    }
}
