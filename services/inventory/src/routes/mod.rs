//! Routes of the inventory. All are internal: only the suite's services call them.

mod holds;
mod stock;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal/inventory")
            .route("/holds", web::post().to(holds::hold))
            .route(
                "/holds/{reservation_id}/commit",
                web::post().to(holds::commit),
            )
            .route(
                "/holds/{reservation_id}/release",
                web::post().to(holds::release),
            )
            .route("/stock", web::get().to(stock::list))
            .route("/stock/{product_id}", web::get().to(stock::one)),
    );
}
