//! Wiring: database, peers, routes, server, the listener for status changes
//! (`common::changes`, the long-polled status URL), and the background work of the mode: the
//! reconciler in sync mode; in async mode the broker connection consuming the order's queue
//! and the outbox relay (`common::messaging::AsyncRuntime`) instead. Sync mode opens no
//! broker connection at all. `Application::build` binds first, so tests can start the
//! service on port 0 and read `port()`.

use crate::configuration::Settings;
use crate::domain::peers::Peers;
use crate::{db, messaging, routes, SERVICE};
use actix_web::{web, App, HttpServer};
use common::changes::Changes;
use common::client::ServiceClient;
use common::messaging::outbox::RelaySignal;
use common::messaging::AsyncRuntime;
use common::web::Readiness;
use common::Mode;
use std::net::TcpListener;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    cancel: CancellationToken,
    grace: Duration,
    /// The background loops, already running: the reconciler (sync) or the broker
    /// supervisor and the outbox relay (async).
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
        let listener: TcpListener = common::web::bind(&common)?;
        let port = listener.local_addr()?.port();
        let mut readiness = Readiness::default().with_database(pool.clone());
        let peers = Peers::new(ServiceClient::new(&common)?);
        let cancel = CancellationToken::new();
        let (changes, changes_listener) = Changes::start(&common, SERVICE, cancel.clone())?;
        let (mut tasks, relay) = match common.mode {
            // The reconciler resumes the HTTP saga; in async mode delivery is the outbox's
            // job and the saga must not run at all.
            Mode::Sync => {
                let reconciler = crate::domain::reconcile::spawn(
                    pool.clone(),
                    peers.clone(),
                    settings.order.reconcile_interval(),
                    settings.order.reconcile_after(),
                    settings.order.reconcile_max_attempts,
                    cancel.clone(),
                );
                (vec![reconciler], RelaySignal::default())
            }
            Mode::Async => {
                let handler = messaging::handler(
                    pool.clone(),
                    changes.clone(),
                    usize::from(common.amqp_batch_max),
                );
                let runtime = AsyncRuntime::start(
                    &common,
                    SERVICE,
                    pool.clone(),
                    Some(handler),
                    cancel.clone(),
                );
                readiness = runtime.readiness(readiness);
                (runtime.tasks, runtime.relay)
            }
        };
        tasks.extend(changes_listener);
        let mode = web::Data::new(common.mode);
        let relay = web::Data::new(relay);
        let peers = web::Data::new(peers);
        let changes = web::Data::new(changes);
        let pool = web::Data::new(pool);
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
                .app_data(pool.clone())
                .app_data(peers.clone())
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

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        common::web::run_until_stopped(self.server, self.cancel, self.tasks, self.grace).await
    }
}
