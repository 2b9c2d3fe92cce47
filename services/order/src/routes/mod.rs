//! Routes of the order service: public, behind a bearer token.

mod orders;
mod payments;

use actix_web::web;

/// One `web::resource` per path, so another method on a known path is a 405, not a 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/payments").route(web::post().to(payments::pay)))
        .service(web::resource("/api/orders/{id}").route(web::get().to(orders::one)));
}
