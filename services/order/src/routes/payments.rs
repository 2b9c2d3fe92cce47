use crate::domain::pay;
use crate::domain::peers::Peers;
use crate::domain::{IdempotencyKey, OrderStatus, PaidAnswer, PayRequest};
use actix_web::{web, HttpRequest, HttpResponse};
use common::auth::AuthUser;
use common::domain::parse_body_id;
use common::ApiResult;
use deadpool_postgres::Pool;

/// `POST /api/payments`: pay a reservation; 200 with the confirmed order, or the reason not.
pub async fn pay(
    user: AuthUser,
    req: HttpRequest,
    pool: web::Data<Pool>,
    peers: web::Data<Peers>,
    body: web::Json<PayRequest>,
) -> ApiResult<HttpResponse> {
    let key = IdempotencyKey::from_headers(req.headers())?;
    let reservation_id = parse_body_id(&body.reservation_id, "reservation_id")?;
    let order_id = pay::pay(&pool, &peers, user.user_id, reservation_id, key).await?;
    Ok(HttpResponse::Ok().json(PaidAnswer {
        order_id,
        status: OrderStatus::Confirmed,
    }))
}
