//! Routes of the reservation service: the public `/api/reservations` (bearer token) and the
//! internal `/internal/reservations/...` that the order service calls (internal key).

mod internal;
mod public;

use actix_web::web;
use common::ApiError;

/// How long a new reservation holds its stock, registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct ReservationTtl(pub u64);

/// One `web::resource` per path (not `scope.route`, which puts the method guard on the
/// path itself): another method on a known path is then a 405, not a 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/reservations")
            .service(web::resource("").route(web::post().to(public::reserve)))
            .service(web::resource("/{id}").route(web::get().to(public::show))),
    )
    .service(
        web::scope("/internal/reservations")
            .service(web::resource("/{id}").route(web::get().to(internal::show)))
            .service(
                web::resource("/{id}/begin-payment").route(web::post().to(internal::begin_payment)),
            )
            .service(web::resource("/{id}/confirm").route(web::post().to(internal::confirm)))
            .service(web::resource("/{id}/cancel").route(web::post().to(internal::cancel))),
    );
}

fn not_found() -> ApiError {
    ApiError::not_found("reservation")
}

fn expired() -> ApiError {
    ApiError::conflict("reservation_expired", "the reservation has expired")
}
