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
use actix_web::web;
use common::changes::Changes;
use common::client::ServiceClient;
use common::messaging::AsyncRuntime;
use common::web::{Readiness, Service};
use common::Mode;
use std::net::TcpListener;
use std::time::Duration;
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
        let client = ServiceClient::new(&common)?;
        let listener: TcpListener = common::web::bind(&common)?;
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
        common::web::serve(
            SERVICE,
            &common,
            listener,
            readiness,
            cancel,
            tasks,
            move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(pool_data.clone())
                    .app_data(client_data.clone())
                    .app_data(ttl.clone())
                    .app_data(mode.clone())
                    .app_data(relay.clone())
                    .app_data(changes.clone());
                routes::configure(cfg);
            },
        )
        .map(|service| {
            let interval = Duration::from_millis(settings.sweep_interval_ms);
            // The sweeper expires and releases only while the service runs.
            service.on_run(move |cancel| sweeper::spawn(pool, releases, interval, cancel))
        })
    }
}
