//! Wiring: database, routes, server, and in async mode the messaging runtime (consumer and
//! outbox relay). `Application::build` binds first, so tests can start the service on port 0
//! and read `port()`.

use crate::configuration::Settings;
use crate::{db, messaging, routes, SERVICE};
use actix_web::web;
use common::messaging::AsyncRuntime;
use common::web::{Readiness, Service};
use common::Mode;
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
        let listener: TcpListener = common::web::bind(&common)?;
        let mut readiness = Readiness::default().with_database(pool.clone());
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
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
                    relay.clone(),
                    usize::from(common.amqp_batch_max),
                )),
                cancel.clone(),
            );
            readiness = runtime.readiness(readiness);
            tasks.extend(runtime.tasks);
        }
        let pool = web::Data::new(pool);
        common::web::serve(
            SERVICE,
            &common,
            listener,
            readiness,
            cancel,
            tasks,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(pool.clone());
                routes::configure(cfg);
            },
        )
    }
}
