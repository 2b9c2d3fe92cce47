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
use actix_web::{web, App, HttpServer};
use common::client::ServiceClient;
use common::web::Readiness;
use std::net::TcpListener;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    cancel: CancellationToken,
    /// Background loops drained on shutdown (the metrics task).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    grace: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
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
        let port = listener.local_addr()?.port();
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
        let server_common = common.clone();
        let cancel = CancellationToken::new();
        let metrics = common::metrics::Metrics::from_env(SERVICE, &common)?;
        let tasks = vec![metrics.spawn(cancel.clone())];
        let server = HttpServer::new(move || {
            App::new()
                .wrap(common::web::json_fallbacks())
                .wrap(actix_web::middleware::from_fn(
                    common::web::close_when_draining,
                ))
                .wrap(actix_web::middleware::from_fn(
                    common::deadline::within_budget,
                ))
                // Outermost, so the time it records includes the other middlewares.
                .wrap(metrics.middleware())
                .configure(|cfg| common::web::configure(cfg, &server_common, readiness.clone()))
                .app_data(pool.clone())
                .app_data(catalog.clone())
                .app_data(carts.clone())
                .app_data(checker.clone())
                .app_data(guard.clone())
                .configure(routes::configure)
                .default_service(web::to(common::web::not_found))
        })
        .workers(common.workers)
        .keep_alive(common::web::KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(common.shutdown_grace_secs)
        .listen(listener)?
        .run();
        tracing::info!(port, instance = %common.instance_name(SERVICE), "listening");
        Ok(Self {
            port,
            server,
            cancel,
            tasks,
            grace: Duration::from_secs(common.shutdown_grace_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        common::web::run_until_stopped(self.server, self.cancel, self.tasks, self.grace).await
    }
}
