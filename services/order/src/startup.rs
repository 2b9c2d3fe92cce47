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
use common::web::{Base, Service};
use common::Mode;

/// The service, built: `build` answers the running server (`common::web::Service`).
pub struct Application;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        let mut base = Base::new(SERVICE, &settings.common, db::migrations::runner()).await?;
        let peers = Peers::new(ServiceClient::new(&base.common)?);
        let (changes, changes_listener) =
            Changes::start(&base.common, SERVICE, base.cancel.clone())?;
        let settled = changes.clone();
        let relay = base.messaging(|pool, _, batch| messaging::handler(pool, settled, batch));
        if base.common.mode == Mode::Sync {
            // The reconciler resumes the HTTP saga; in async mode delivery is the outbox's
            // job and the saga must not run at all.
            base.tasks.push(crate::domain::reconcile::spawn(
                base.pool.clone(),
                peers.clone(),
                settings.order.reconcile_interval(),
                settings.order.reconcile_after(),
                settings.order.reconcile_max_attempts,
                base.cancel.clone(),
            ));
        }
        base.tasks.extend(changes_listener);
        let mode = web::Data::new(base.common.mode);
        let relay = web::Data::new(relay);
        let peers = web::Data::new(peers);
        let changes = web::Data::new(changes);
        let pool = web::Data::new(base.pool.clone());
        base.serve(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(pool.clone())
                .app_data(peers.clone())
                .app_data(mode.clone())
                .app_data(relay.clone())
                .app_data(changes.clone());
            routes::configure(cfg);
        })
    }
}
