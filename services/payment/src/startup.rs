//! Wiring: database, provider, routes, server, and in async mode the messaging runtime
//! (consumer and outbox relay). `Application::build` binds first, so tests can start the
//! service on port 0 and read `port()`.

use crate::configuration::Settings;
use crate::domain::provider::Provider;
use crate::{db, messaging, routes, SERVICE};
use actix_web::web;
use common::web::{Base, Service};

/// The service, built: `build` answers the running server (`common::web::Service`).
pub struct Application;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Service> {
        settings.validate()?;
        let mut base = Base::new(SERVICE, &settings.common, db::migrations::runner()).await?;
        let provider = Provider::new(&settings, base.pool.clone());
        let charges = provider.clone();
        base.messaging(|pool, relay, batch| messaging::handler(pool, charges, relay, batch));
        let provider = web::Data::new(provider);
        let pool = web::Data::new(base.pool.clone());
        base.serve(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(pool.clone()).app_data(provider.clone());
            routes::configure(cfg);
        })
    }
}
