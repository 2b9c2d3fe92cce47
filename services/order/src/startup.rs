//! Wiring: database, peers, routes, server, the listener for status changes
//! (`common::changes`, the long-polled status URL), and the background work of the mode: the
//! reconciler in sync mode; in async mode the broker connection consuming the order's queue
//! and the outbox relay (`common::messaging::AsyncRuntime`) instead. Sync mode opens no
//! broker connection at all. `Application::build` binds first, so tests can start the
//! service on port 0 and read `port()`.

use crate::configuration::Settings;
use crate::domain::peers::Peers;
use crate::{db, messaging, routes, SERVICE};
use actix_web::web;
use common::changes::Changes;
use common::client::ServiceClient;
use common::messaging::outbox::RelaySignal;
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
        common::web::serve(
            SERVICE,
            &common,
            listener,
            readiness,
            cancel,
            tasks,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(pool.clone())
                    .app_data(peers.clone())
                    .app_data(mode.clone())
                    .app_data(relay.clone())
                    .app_data(changes.clone());
                routes::configure(cfg);
            },
        )
    }
}
