//! Routes of the order service: public, behind a bearer token.

mod orders;
mod payments;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/payments", web::post().to(payments::pay))
        .route("/api/orders/{id}", web::get().to(orders::one));
}
