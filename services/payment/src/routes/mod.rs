//! Routes of the payment service. All are internal: only the order service calls them.

mod charges;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/payments")
            .route("/charges", web::post().to(charges::charge))
            .route("/by-order/{order_id}", web::get().to(charges::by_order)),
    );
}
