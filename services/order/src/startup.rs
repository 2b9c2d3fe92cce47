//! Wiring: database, peers, routes, server. `Application::build` binds first, so tests can
//! start the service on port 0 and read `port()`.

use crate::configuration::Settings;
use crate::domain::peers::Peers;
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
    grace: Duration,
    reconciler: tokio::task::JoinHandle<()>,
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
        let listener: TcpListener = common::web::bind(&common)?;
        let port = listener.local_addr()?.port();
        let readiness = Readiness::default().with_database(pool.clone());
        let peers = Peers::new(ServiceClient::new(&common)?);
        let cancel = CancellationToken::new();
        let reconciler = crate::domain::reconcile::spawn(
            pool.clone(),
            peers.clone(),
            settings.order.reconcile_interval(),
            settings.order.reconcile_after(),
            cancel.clone(),
        );
        let peers = web::Data::new(peers);
        let pool = web::Data::new(pool);
        let server_common = common.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(common::web::json_fallbacks())
                .configure(|cfg| common::web::configure(cfg, &server_common, readiness.clone()))
                .app_data(pool.clone())
                .app_data(peers.clone())
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
            cancel,
            grace: Duration::from_secs(common.shutdown_grace_secs),
            reconciler,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        common::web::run_until_stopped(self.server, self.cancel, vec![self.reconciler], self.grace)
            .await
    }
}
