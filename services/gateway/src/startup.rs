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
use common::web::{Readiness, Service};
use std::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The service, built: `build` answers the running server (`common::web::Service`).
pub struct Application;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let common = settings.common.clone();
        let pool = common::db::setup(
            &common.database_url,
            &common.database_name(SERVICE),
            common.db_pool_size,
            db::migrations::runner(),
        )
        .await?;
        let redis = common::cache::pool(&common.redis_url, common.redis_pool_size)?;
        let keys = Keys::new(&common.redis_prefix);
        let listener: TcpListener = common::web::bind(&common)?;
        let readiness = Readiness::default()
            .with_database(pool.clone())
            .with_redis(redis.clone());

        let catalog = web::Data::new(Catalog::new(
            pool.clone(),
            ServiceClient::new(&common)?,
            AvailabilityCache::new(redis.clone(), keys.clone(), settings.catalog_cache_ms),
        ));
        let guard = web::Data::new(LoginGuard::new(
            redis.clone(),
            keys.clone(),
            settings.login_limits,
        ));
        let carts = web::Data::new(CartStore::new(redis, keys, settings.cart_ttl_secs));
        let checker = web::Data::new(PasswordChecker::per_cpu(
            settings.login_queue,
            settings.password_hash,
        )?);
        let pool = web::Data::new(pool);
        let cancel = CancellationToken::new();
        let tasks = Vec::new();
        common::web::serve(
            SERVICE,
            &common,
            listener,
            readiness,
            cancel,
            tasks,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(pool.clone())
                    .app_data(catalog.clone())
                    .app_data(carts.clone())
                    .app_data(checker.clone())
                    .app_data(guard.clone());
                routes::configure(cfg);
            },
        )
    }
}
