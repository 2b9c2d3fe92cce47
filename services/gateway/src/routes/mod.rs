//! Routes of the gateway: login, the catalog and carts (public, behind a bearer token except
//! login), and the cart read of the reservation service (internal).

mod auth;
mod carts;
mod internal;
mod products;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path, so another method on a known path is a 405, not a 404.
    cfg.service(web::resource("/api/auth/login").route(web::post().to(auth::login)))
        .service(web::resource("/api/products").route(web::get().to(products::list)))
        .service(web::resource("/api/products/{id}").route(web::get().to(products::one)))
        .service(web::resource("/api/carts").route(web::post().to(carts::create)))
        .service(web::resource("/api/carts/{id}").route(web::get().to(carts::get)))
        .service(web::resource("/api/carts/{id}/items").route(web::post().to(carts::add_item)))
        .service(
            web::resource("/internal/gateway/carts/{cart_id}").route(web::get().to(internal::cart)),
        );
}
