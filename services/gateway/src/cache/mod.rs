//! The gateway's Redis state: carts (their only home), the short-lived availability cache, and
//! the failed-login counters every gateway replica shares.
//! Every key starts with `REDIS_PREFIX`, so runs and tests sharing one Redis never collide.

pub mod availability;
pub mod carts;
pub mod logins;

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

    /// Failed logins for one username in the current window (the name as typed, lower case).
    pub fn login_failures_of_user(&self, username: &str) -> String {
        format!("{}:login:user:{username}", self.prefix)
    }

    /// Failed logins from one client address in the current window.
    pub fn login_failures_of_client(&self, client: &str) -> String {
        format!("{}:login:client:{client}", self.prefix)
    }

    /// JSON object `{product_id: available}` of every product the inventory stocks.
    pub fn availability_list(&self) -> String {
        format!("{}:avail:all", self.prefix)
    }
}
