//! Wiring: database, provider, routes, server, and in async mode the messaging runtime
//! (consumer and outbox relay). `Application::build` binds first, so tests can start the
//! service on port 0 and read `port()`.

use crate::configuration::Settings;
use crate::domain::provider::Provider;
use crate::{db, messaging, routes, SERVICE};
use actix_web::{web, App, HttpServer};
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
    /// Background loops drained on shutdown (async mode: broker supervisor, outbox relay).
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
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
        let provider = Provider::new(&settings, pool.clone());
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        let metrics = common::metrics::Metrics::from_env(SERVICE, &common)?;
        tasks.push(metrics.spawn(cancel.clone()));
        if common.mode == Mode::Async {
            // Connects in the background: the service starts (and reports not ready) while
            // RabbitMQ is away.
            let relay = common::messaging::outbox::RelaySignal::default();
            let runtime = AsyncRuntime::start_with_signal(
                &common,
                SERVICE,
                pool.clone(),
                relay.clone(),
                Some(messaging::handler(
                    pool.clone(),
                    provider.clone(),
                    relay.clone(),
                    usize::from(common.amqp_batch_max),
                )),
                cancel.clone(),
            );
            readiness = runtime.readiness(readiness);
            tasks.extend(runtime.tasks);
        }
        let provider = web::Data::new(provider);
        let pool = web::Data::new(pool);
        let server_common = common.clone();
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
                .app_data(provider.clone())
                .configure(routes::configure)
                .default_service(web::to(common::web::not_found))
        })
        .workers(common.workers)
        .keep_alive(common::web::KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(common.shutdown_grace_secs)
        .listen(listener)
        // The messaging runtime is already running: stop it rather than leave it behind.
        .inspect_err(|_| cancel.cancel())?
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

    /// Cancelling it stops the service as SIGTERM does (tests use it to drain a service).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        common::web::run_until_stopped(self.server, self.cancel, self.tasks, self.grace).await
    }
}
