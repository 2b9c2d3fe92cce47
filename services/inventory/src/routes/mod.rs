//! Routes of the inventory. All are internal: only the suite's services call them.

mod holds;
mod stock;

use actix_web::web;

/// One `web::resource` per path, so another method on a known path is a 405, not a 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/inventory")
            .service(web::resource("/holds").route(web::post().to(holds::hold)))
            .service(
                web::resource("/holds/{reservation_id}/commit")
                    .route(web::post().to(holds::commit)),
            )
            .service(
                web::resource("/holds/{reservation_id}/release")
                    .route(web::post().to(holds::release)),
            )
            .service(web::resource("/stock").route(web::get().to(stock::list)))
            .service(web::resource("/stock/{product_id}").route(web::get().to(stock::one))),
    );
}
