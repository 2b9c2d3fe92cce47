//! Wiring: database, peers' client, routes, server, the expiry sweeper and the listener for
//! status changes (`common::changes`, the long-polled status URL); in async mode
//! also the broker connection consuming the reservation's queue and the outbox relay
//! (`common::messaging::AsyncRuntime`). Sync mode opens no broker connection at all.
//! `Application::build` binds first, so tests can start the service on port 0 and read
//! `port()`.

use crate::configuration::Settings;
use crate::messaging::{self, RelaySignal};
use crate::routes::ReservationTtl;
use crate::sweeper::Releases;
use crate::{db, routes, sweeper, SERVICE};
use actix_web::{web, App, HttpServer};
use common::changes::Changes;
use common::client::ServiceClient;
use common::messaging::AsyncRuntime;
use common::web::Readiness;
use common::Mode;
use deadpool_postgres::Pool;
use std::net::TcpListener;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    cancel: CancellationToken,
    grace: Duration,
    pool: Pool,
    releases: Releases,
    sweep_interval: Duration,
    /// Async mode: the broker supervisor and the outbox relay, already running.
    tasks: Vec<JoinHandle<()>>,
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
        let mut readiness = Readiness::default().with_database(pool.clone());
        let cancel = CancellationToken::new();
        let relay = RelaySignal::default();
        let (changes, changes_listener) = Changes::start(&common, SERVICE, cancel.clone())?;
        let mut tasks = Vec::new();
        let releases = match common.mode {
            Mode::Sync => Releases::Http(client.clone()),
            Mode::Async => {
                let handler = messaging::handler(
                    pool.clone(),
                    relay.clone(),
                    changes.clone(),
                    usize::from(common.amqp_batch_max),
                );
                let runtime = AsyncRuntime::start_with_signal(
                    &common,
                    SERVICE,
                    pool.clone(),
                    relay.clone(),
                    Some(handler),
                    cancel.clone(),
                );
                readiness = runtime.readiness(readiness);
                tasks = runtime.tasks;
                Releases::Events(relay.clone(), changes.clone())
            }
        };
        tasks.extend(changes_listener);
        let mode = web::Data::new(common.mode);
        let relay = web::Data::new(relay);
        let changes = web::Data::new(changes);
        let pool_data = web::Data::new(pool.clone());
        let client_data = web::Data::new(client.clone());
        let ttl = web::Data::new(ReservationTtl(settings.reservation_ttl_secs));
        let server_common = common.clone();
        let metrics = common::metrics::Metrics::from_env(SERVICE, &common)?;
        tasks.push(metrics.spawn(cancel.clone()));
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
                .app_data(pool_data.clone())
                .app_data(client_data.clone())
                .app_data(ttl.clone())
                .app_data(mode.clone())
                .app_data(relay.clone())
                .app_data(changes.clone())
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
            grace: Duration::from_secs(common.shutdown_grace_secs),
            pool,
            releases,
            sweep_interval: Duration::from_millis(settings.sweep_interval_ms),
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling it stops the service as SIGTERM does (tests stop their instance with it).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Serve, sweep (and in async mode consume and relay) until SIGTERM/SIGINT, then drain
    /// them all.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let sweeper = sweeper::spawn(
            self.pool,
            self.releases,
            self.sweep_interval,
            self.cancel.clone(),
        );
        let mut tasks = self.tasks;
        tasks.push(sweeper);
        common::web::run_until_stopped(self.server, self.cancel, tasks, self.grace).await
    }
}
