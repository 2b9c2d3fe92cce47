//! Seed data: users `user1..userN` sharing one password, and the flash-sale products with
//! their stock. Written straight into the gateway's and inventory's databases once their
//! migrations have run, in one statement per table so 10,000 users take a fraction of a second.
//!
//! Ids are deterministic (UUID v5 of `user-<k>` / `product-<k>`), so two runs of the same size
//! sell the same product ids and a load script may compute them.

use crate::options::{HashParams, SuiteOptions};
use crate::state::SeededProduct;
use crate::store::{connect, database_name};
use anyhow::Context;
use argon2::password_hash::{PasswordHasher, SaltString};
use uuid::Uuid;

/// Namespace of the seeded ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2d3e_8a4b_4c5d_9e0f_1a2b_3c4d_5e6f);

pub fn username(k: usize) -> String {
    format!("user{k}")
}

pub fn user_id(k: usize) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("user-{k}").as_bytes())
}

pub fn product_id(k: usize) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("product-{k}").as_bytes())
}

/// `Flash product k` costs 19.99 + (k - 1) × 10.00.
pub fn product(k: usize, opts: &SuiteOptions) -> SeededProduct {
    SeededProduct {
        id: product_id(k),
        name: format!("Flash product {k}"),
        price_cents: 1999 + (k as i64 - 1) * 1000,
        stock: opts.stock,
        per_user_limit: opts.per_user_limit,
    }
}

/// One argon2id PHC string of `password`, with a random salt.
pub fn hash_password(password: &str, params: HashParams) -> anyhow::Result<String> {
    use rand::RngCore;
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let params = argon2::Params::new(params.m_cost, params.t_cost, params.p_cost, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters {params:?}: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let hash = argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the seed password: {e}"))?;
    Ok(hash.to_string())
}

/// Insert the users and products of `opts` (skipping any that already exist, for
/// `keep_databases`). Returns the seeded products.
pub async fn seed(server_url: &str, opts: &SuiteOptions) -> anyhow::Result<Vec<SeededProduct>> {
    let password = opts.password.clone();
    let params = opts.hash_params;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password, params))
        .await
        .context("hashing task")??;

    let gateway = connect(server_url, &database_name(&opts.db_prefix, "gateway")).await?;
    let ids: Vec<Uuid> = (1..=opts.users).map(user_id).collect();
    let names: Vec<String> = (1..=opts.users).map(username).collect();
    gateway
        .execute(
            "INSERT INTO users (id, username, password_hash)
             SELECT id, name, $3::text FROM unnest($1::uuid[], $2::text[]) AS u(id, name)
             ON CONFLICT DO NOTHING",
            &[&ids, &names, &hash],
        )
        .await
        .context("seeding users into the gateway database")?;

    let products: Vec<SeededProduct> = (1..=opts.products).map(|k| product(k, opts)).collect();
    let ids: Vec<Uuid> = products.iter().map(|p| p.id).collect();
    let names: Vec<String> = products.iter().map(|p| p.name.clone()).collect();
    let prices: Vec<i64> = products.iter().map(|p| p.price_cents).collect();
    gateway
        .execute(
            "INSERT INTO products (id, name, price_cents)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])
             ON CONFLICT DO NOTHING",
            &[&ids, &names, &prices],
        )
        .await
        .context("seeding products into the gateway database")?;

    let inventory = connect(server_url, &database_name(&opts.db_prefix, "inventory")).await?;
    inventory
        .execute(
            "INSERT INTO stock (product_id, initial, available, reserved, sold, per_user_limit)
             SELECT id, $2::int, $2::int, 0, 0, $3::int FROM unnest($1::uuid[]) AS p(id)
             ON CONFLICT DO NOTHING",
            &[&ids, &opts.stock, &opts.per_user_limit],
        )
        .await
        .context("seeding stock into the inventory database")?;
    Ok(products)
}

/// The stock and per-user limit `seed` seeds: the scenario's (as `compare` seeds it), each
/// overridden when given; without a scenario 1000 units, one per user.
pub fn stock_and_limit(
    scenario: Option<crate::compare::Scenario>,
    stock: Option<i32>,
    per_user_limit: Option<i32>,
) -> (i32, i32) {
    let (default_stock, default_limit) = scenario.map_or((1000, 1), |s| {
        s.stock_and_limit(crate::compare::DEFAULT_FLASH_STOCK)
    });
    (
        stock.unwrap_or(default_stock),
        per_user_limit.unwrap_or(default_limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Scenario, DEFAULT_FLASH_STOCK, SUSTAINED_STOCK};
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn the_seed_hash_verifies_the_password_and_nothing_else() {
        let hash = hash_password("flashsale", HashParams::cheap()).expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&hash).expect("PHC string");
        let argon = argon2::Argon2::default();
        assert!(argon.verify_password(b"flashsale", &parsed).is_ok());
        assert!(argon.verify_password(b"wrong", &parsed).is_err());
    }

    #[test]
    fn seeded_ids_are_deterministic_and_distinct() {
        assert_eq!(product_id(1), product_id(1));
        assert_ne!(product_id(1), product_id(2));
        assert_ne!(user_id(1), product_id(1));
    }

    #[test]
    fn a_scenario_seeds_what_compare_seeds_and_explicit_values_override_it() {
        assert_eq!(
            stock_and_limit(Some(Scenario::Flash), None, None),
            Scenario::Flash.stock_and_limit(DEFAULT_FLASH_STOCK)
        );
        assert_eq!(
            stock_and_limit(Some(Scenario::Flash), None, None),
            (DEFAULT_FLASH_STOCK, 1)
        );
        assert_eq!(
            stock_and_limit(Some(Scenario::Sustained), None, None),
            (SUSTAINED_STOCK, 0)
        );
        assert_eq!(
            stock_and_limit(Some(Scenario::Sustained), Some(50), None),
            (50, 0)
        );
        assert_eq!(
            stock_and_limit(Some(Scenario::Flash), None, Some(3)),
            (DEFAULT_FLASH_STOCK, 3)
        );
        assert_eq!(stock_and_limit(None, None, None), (1000, 1));
        assert_eq!(stock_and_limit(None, Some(7), Some(0)), (7, 0));
    }
}
