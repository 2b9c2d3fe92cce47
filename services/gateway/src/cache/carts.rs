//! Carts, stored only in Redis: one hash per cart, expiring `CART_TTL_SECS` after its last
//! write. Every change is a single atomic Redis step, so concurrent adds from the same user
//! (two tabs, a retried request) never lose an increment or overshoot the line limit.

use super::Keys;
use crate::domain::{Cart, CartLine, NewLine};
use anyhow::Context;
use common::cache::RedisPool;
use common::domain::Quantity;
use common::{ApiError, ApiResult};
use deadpool_redis::redis::{self, Value};
use uuid::Uuid;

const USER_FIELD: &str = "user";
const LINE_PREFIX: &str = "p:";
/// Fields `k:<Idempotency-Key>`: the adds that happened, so that one sent again does not.
const KEY_PREFIX: &str = "k:";

/// Add to a line if the caller owns the cart and the line stays within the limit, refresh the
/// expiry, and answer the whole cart. Checking and incrementing in one script is what makes
/// the limit hold under concurrent adds.
///
/// KEYS[1] cart; ARGV: owner, line field, quantity to add, line limit, ttl seconds, and the
/// request's idempotency field (`k:<key>`, or empty). An add whose field is already in the
/// cart happened before: the cart is answered as it is, unchanged.
/// Answers -1 (no such cart, or not the caller's), the current quantity (>= 0) when the
/// limit would be exceeded, or the cart's fields and values.
///
/// Sent with EVAL every time rather than EVALSHA: the script is a few hundred bytes, Redis
/// caches its compiled form by content anyway, and a restarted Redis needs no reloading.
const ADD_SCRIPT: &str = r"
if redis.call('HGET', KEYS[1], 'user') ~= ARGV[1] then
    return -1
end
if ARGV[6] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[6]) == 1 then
    return redis.call('HGETALL', KEYS[1])
end
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
if current + tonumber(ARGV[3]) > tonumber(ARGV[4]) then
    return current
end
redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
if ARGV[6] ~= '' then
    redis.call('HSET', KEYS[1], ARGV[6], 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return redis.call('HGETALL', KEYS[1])
";

/// What adding a line ended with.
#[derive(Debug)]
pub enum AddOutcome {
    Added(Cart),
    /// No such cart, or another user's: the caller must not learn which.
    NotFound,
    /// The line would exceed [`Quantity::MAX`]; it holds `current` units and is unchanged.
    OverLimit {
        current: i32,
    },
}

#[derive(Clone)]
pub struct CartStore {
    redis: RedisPool,
    keys: Keys,
    ttl_secs: u64,
}

impl CartStore {
    pub fn new(redis: RedisPool, keys: Keys, ttl_secs: u64) -> Self {
        Self {
            redis,
            keys,
            // EXPIRE 0 would delete the cart on its first write.
            ttl_secs: ttl_secs.max(1),
        }
    }

    /// A new empty cart owned by `user_id`. With an idempotency key its id is derived from
    /// the user and the key, and a cart of that id already there (the same request sent
    /// again) is answered as it is. Without one, a request sent twice leaves an empty cart
    /// nobody knows of, which expires.
    pub async fn create(&self, user_id: Uuid, idempotency: Option<&str>) -> ApiResult<Cart> {
        let id = match idempotency {
            Some(k) => common::web::derived_id("cart", &[user_id.as_bytes(), k.as_bytes()]),
            None => Uuid::new_v4(),
        };
        let key = self.keys.cart(id);
        let mut conn = self.redis.get().await?;
        let (created,): (bool,) = redis::pipe()
            .atomic()
            .cmd("HSETNX")
            .arg(&key)
            .arg(USER_FIELD)
            .arg(user_id.to_string())
            .cmd("EXPIRE")
            .arg(&key)
            .arg(self.ttl_secs)
            .ignore()
            .query_async(&mut conn)
            .await?;
        if !created {
            drop(conn);
            return self.owned_by(id, user_id).await?.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("cart {id} exists with another owner"))
            });
        }
        Ok(Cart {
            id,
            user_id,
            items: Vec::new(),
        })
    }

    /// The cart, if it exists and belongs to `user_id`.
    pub async fn owned_by(&self, cart_id: Uuid, user_id: Uuid) -> ApiResult<Option<Cart>> {
        let mut conn = self.redis.get().await?;
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.keys.cart(cart_id))
            .query_async(&mut conn)
            .await?;
        Ok(parse_cart(cart_id, fields)?.filter(|c| c.user_id == user_id))
    }

    /// Add `line` to the cart of `user_id`, atomically; once per idempotency key.
    pub async fn add(
        &self,
        cart_id: Uuid,
        user_id: Uuid,
        line: NewLine,
        idempotency: Option<&str>,
    ) -> ApiResult<AddOutcome> {
        let mut conn = self.redis.get().await?;
        let reply: Value = redis::cmd("EVAL")
            .arg(ADD_SCRIPT)
            .arg(1)
            .arg(self.keys.cart(cart_id))
            .arg(user_id.to_string())
            .arg(format!("{LINE_PREFIX}{}", line.product_id))
            .arg(line.quantity.get())
            .arg(Quantity::MAX)
            .arg(self.ttl_secs)
            .arg(idempotency.map_or(String::new(), |k| format!("{KEY_PREFIX}{k}")))
            .query_async(&mut conn)
            .await?;
        match reply {
            Value::Int(-1) => Ok(AddOutcome::NotFound),
            Value::Int(current) => Ok(AddOutcome::OverLimit {
                current: i32::try_from(current).context("cart line quantity out of range")?,
            }),
            other => {
                let fields: Vec<(String, String)> = redis::from_redis_value(&other)?;
                match parse_cart(cart_id, fields)? {
                    Some(cart) => Ok(AddOutcome::Added(cart)),
                    None => Err(ApiError::Internal(anyhow::anyhow!(
                        "cart {cart_id} has no owner after an add"
                    ))),
                }
            }
        }
    }
}

/// A cart from its hash fields; `None` when the hash does not exist (no fields).
fn parse_cart(id: Uuid, fields: Vec<(String, String)>) -> ApiResult<Option<Cart>> {
    let mut user_id = None;
    let mut items = Vec::new();
    for (field, value) in fields {
        if field == USER_FIELD {
            user_id = Some(Uuid::try_parse(&value).context("cart owner is not an id")?);
        } else if let Some(product) = field.strip_prefix(LINE_PREFIX) {
            items.push(CartLine {
                product_id: Uuid::try_parse(product).context("cart line is not a product id")?,
                quantity: value
                    .parse()
                    .context("cart line quantity is not a number")?,
            });
        }
    }
    items.sort_by_key(|l| l.product_id);
    Ok(user_id.map(|user_id| Cart { id, user_id, items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cart_is_read_from_its_fields_with_lines_sorted_by_product() {
        let (id, user) = (Uuid::new_v4(), Uuid::new_v4());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let fields = vec![
            (format!("p:{b}"), "2".to_string()),
            ("user".to_string(), user.to_string()),
            (format!("p:{a}"), "7".to_string()),
        ];
        let cart = parse_cart(id, fields).expect("parse").expect("exists");
        assert_eq!(cart.user_id, user);
        assert_eq!(
            cart.items,
            vec![
                CartLine {
                    product_id: a,
                    quantity: 7
                },
                CartLine {
                    product_id: b,
                    quantity: 2
                },
            ]
        );
    }

    #[test]
    fn no_fields_means_no_cart() {
        assert!(parse_cart(Uuid::new_v4(), Vec::new())
            .expect("parse")
            .is_none());
    }
}
