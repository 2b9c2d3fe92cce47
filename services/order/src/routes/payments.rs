use crate::domain::peers::Peers;
use crate::domain::{pay, place};
use crate::domain::{IdempotencyKey, OrderStatus, PaidAnswer, PayRequest};
use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use common::auth::AuthUser;
use common::domain::parse_body_id;
use common::messaging::outbox::RelaySignal;
use common::{ApiResult, Mode};
use deadpool_postgres::Pool;

/// `POST /api/payments`: pay a reservation. Sync mode: 200 with the confirmed order, or the
/// reason not. Async mode: 202 with the order and its status URL, once the order is recorded.
pub async fn pay(
    user: AuthUser,
    req: HttpRequest,
    pool: web::Data<Pool>,
    peers: web::Data<Peers>,
    mode: web::Data<Mode>,
    relay: web::Data<RelaySignal>,
    body: web::Json<PayRequest>,
) -> ApiResult<HttpResponse> {
    let key = IdempotencyKey::from_headers(req.headers())?;
    let reservation_id = parse_body_id(&body.reservation_id, "reservation_id")?;
    if **mode == Mode::Async {
        let order = place::place(&pool, &peers, &relay, user.user_id, reservation_id, key).await?;
        return Ok(HttpResponse::Accepted()
            .insert_header((LOCATION, format!("/api/orders/{}", order.id)))
            .json(PaidAnswer {
                order_id: order.id,
                status: order.status,
            }));
    }
    let order_id = pay::pay(&pool, &peers, user.user_id, reservation_id, key).await?;
    Ok(HttpResponse::Ok().json(PaidAnswer {
        order_id,
        status: OrderStatus::Confirmed,
    }))
}
