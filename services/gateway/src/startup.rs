//! Wiring: database, Redis, the inventory client, routes, server. `Application::build` binds
//! first, so tests can start the service on port 0 and read `port()`.

use crate::cache::availability::AvailabilityCache;
use crate::cache::carts::CartStore;
use crate::cache::logins::LoginGuard;
use crate::cache::Keys;
use crate::catalog::Catalog;
use crate::configuration::Settings;
use crate::domain::PasswordChecker;
use crate::{db, routes, SERVICE};
use actix_web::web;
use common::client::ServiceClient;
use common::web::{Base, Service};

/// The service, built: `build` answers the running server (`common::web::Service`).
pub struct Application;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let mut base = Base::new(SERVICE, &settings.common, db::migrations::runner()).await?;
        let common = &base.common;
        let redis = common::cache::pool(&common.redis_url, common.redis_pool_size)?;
        let keys = Keys::new(&common.redis_prefix);
        let catalog = web::Data::new(Catalog::new(
            base.pool.clone(),
            ServiceClient::new(common)?,
            AvailabilityCache::new(redis.clone(), keys.clone(), settings.catalog_cache_ms),
        ));
        let guard = web::Data::new(LoginGuard::new(
            redis.clone(),
            keys.clone(),
            settings.login_limits,
        ));
        let checker = web::Data::new(PasswordChecker::per_cpu(
            settings.login_queue,
            settings.password_hash,
        )?);
        base.readiness = std::mem::take(&mut base.readiness).with_redis(redis.clone());
        let carts = web::Data::new(CartStore::new(redis, keys, settings.cart_ttl_secs));
        let pool = web::Data::new(base.pool.clone());
        base.serve(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(pool.clone())
                .app_data(catalog.clone())
                .app_data(carts.clone())
                .app_data(checker.clone())
                .app_data(guard.clone());
            routes::configure(cfg);
        })
    }
}
