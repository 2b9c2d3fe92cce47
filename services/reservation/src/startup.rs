//! Wiring: database, peers' client, routes, server, the expiry sweeper and the listener for
//! status changes (`common::changes`, the long-polled status URL); in async mode
//! also the broker connection consuming the reservation's queue and the outbox relay
//! (`common::messaging::AsyncRuntime`). Sync mode opens no broker connection at all.
//! `Application::build` binds first, so tests can start the service on port 0 and read
//! `port()`.

use crate::configuration::Settings;
use crate::messaging;
use crate::routes::ReservationTtl;
use crate::sweeper::Releases;
use crate::{db, routes, sweeper, SERVICE};
use actix_web::web;
use common::changes::Changes;
use common::client::ServiceClient;
use common::web::{Base, Service};
use common::Mode;
use std::time::Duration;

/// The service, built: `build` answers the running server (`common::web::Service`).
pub struct Application;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let mut base = Base::new(SERVICE, &settings.common, db::migrations::runner()).await?;
        let client = ServiceClient::new(&base.common)?;
        let (changes, changes_listener) =
            Changes::start(&base.common, SERVICE, base.cancel.clone())?;
        let settled = changes.clone();
        let relay =
            base.messaging(|pool, relay, batch| messaging::handler(pool, relay, settled, batch));
        let releases = match base.common.mode {
            Mode::Sync => Releases::Http(client.clone()),
            Mode::Async => Releases::Events(relay.clone(), changes.clone()),
        };
        base.tasks.extend(changes_listener);
        let mode = web::Data::new(base.common.mode);
        let relay = web::Data::new(relay);
        let changes = web::Data::new(changes);
        let pool = base.pool.clone();
        let pool_data = web::Data::new(pool.clone());
        let client_data = web::Data::new(client);
        let ttl = web::Data::new(ReservationTtl(settings.reservation_ttl_secs));
        base.serve(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(pool_data.clone())
                .app_data(client_data.clone())
                .app_data(ttl.clone())
                .app_data(mode.clone())
                .app_data(relay.clone())
                .app_data(changes.clone());
            routes::configure(cfg);
        })
        .map(|service| {
            let interval = Duration::from_millis(settings.sweep_interval_ms);
            // The sweeper expires and releases only while the service runs.
            service.on_run(move |cancel| sweeper::spawn(pool, releases, interval, cancel))
        })
    }
}
