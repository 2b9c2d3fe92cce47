//! Routes of the payment service. All are internal: only the order service calls them.

mod charges;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/payments")
            .service(web::resource("/charges").route(web::post().to(charges::charge)))
            .service(web::resource("/refunds").route(web::post().to(charges::refund)))
            .service(web::resource("/by-order/{order_id}").route(web::get().to(charges::by_order))),
    );
}
