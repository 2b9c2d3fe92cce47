use crate::db::orders;
use crate::domain::{OrderStatus, OrderView};
use actix_web::{web, HttpRequest, HttpResponse};
use common::auth::AuthUser;
use common::changes::Changes;
use common::domain::parse_path_id;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;

/// `GET /api/orders/{id}`: the caller's own order; anyone else's is unknown. With
/// `Prefer: wait=N` a PENDING one is answered when it finishes, or after N seconds as it is.
pub async fn one(
    req: HttpRequest,
    user: AuthUser,
    pool: web::Data<Pool>,
    changes: web::Data<Changes>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = parse_path_id(&path, "order")?;
    let read = || async {
        let order = orders::of_user(&pool, id, user.user_id)
            .await?
            .ok_or_else(|| ApiError::not_found("order"))?;
        let finished = order.status != OrderStatus::Pending;
        Ok((order, finished))
    };
    let (order, mut answer) = changes
        .answer(req.headers(), id, user.user_id, read)
        .await?;
    Ok(answer.json(OrderView::from(&order)))
}
