//! Wiring: database, peers' client, routes, server and the expiry sweeper.
//! `Application::build` binds first, so tests can start the service on port 0 and read
//! `port()`.

use crate::configuration::Settings;
use crate::routes::ReservationTtl;
use crate::{db, routes, sweeper, SERVICE};
use actix_web::{web, App, HttpServer};
use common::client::ServiceClient;
use common::web::Readiness;
use deadpool_postgres::Pool;
use std::net::TcpListener;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    cancel: CancellationToken,
    grace: Duration,
    pool: Pool,
    client: ServiceClient,
    sweep_interval: Duration,
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
        let client = ServiceClient::new(&common)?;
        let listener: TcpListener = common::web::bind(&common)?;
        let port = listener.local_addr()?.port();
        let readiness = Readiness::default().with_database(pool.clone());
        let pool_data = web::Data::new(pool.clone());
        let client_data = web::Data::new(client.clone());
        let ttl = web::Data::new(ReservationTtl(settings.reservation_ttl_secs));
        let server_common = common.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(common::web::json_fallbacks())
                .configure(|cfg| common::web::configure(cfg, &server_common, readiness.clone()))
                .app_data(pool_data.clone())
                .app_data(client_data.clone())
                .app_data(ttl.clone())
                .configure(routes::configure)
                .default_service(web::to(common::web::not_found))
        })
        .workers(common.workers)
        .disable_signals()
        .shutdown_timeout(common.shutdown_grace_secs)
        .listen(listener)?
        .run();
        tracing::info!(port, instance = %common.instance_name(SERVICE), "listening");
        Ok(Self {
            port,
            server,
            cancel: CancellationToken::new(),
            grace: Duration::from_secs(common.shutdown_grace_secs),
            pool,
            client,
            sweep_interval: Duration::from_millis(settings.sweep_interval_ms),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve and sweep until SIGTERM/SIGINT, then drain both.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let sweeper = sweeper::spawn(
            self.pool,
            self.client,
            self.sweep_interval,
            self.cancel.clone(),
        );
        common::web::run_until_stopped(self.server, self.cancel, vec![sweeper], self.grace).await
    }
}
