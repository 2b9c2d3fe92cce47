//! The gateway's Redis state: carts (their only home) and the short-lived availability cache.
//! Every key starts with `REDIS_PREFIX`, so runs and tests sharing one Redis never collide.

pub mod availability;
pub mod carts;

use uuid::Uuid;

/// Names of every key the gateway writes.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// Hash of one cart: field `user` = owner id, field `p:<product_id>` = quantity.
    pub fn cart(&self, cart_id: Uuid) -> String {
        format!("{}:cart:{cart_id}", self.prefix)
    }

    /// Units of one product available, as the inventory last said.
    pub fn availability(&self, product_id: Uuid) -> String {
        format!("{}:avail:{product_id}", self.prefix)
    }

    /// JSON object `{product_id: available}` of every product the inventory stocks.
    pub fn availability_list(&self) -> String {
        format!("{}:avail:all", self.prefix)
    }
}
