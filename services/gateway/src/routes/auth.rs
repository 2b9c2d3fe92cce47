use crate::cache::logins::LoginGuard;
use crate::db;
use crate::domain::{Credentials, JsonObject, LoginAnswer, LoginRequest, PasswordChecker};
use actix_web::{web, HttpRequest, HttpResponse};
use common::auth::TokenKeys;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;

/// `POST /api/auth/login`: a bearer token for the right password. An unknown user and a wrong
/// password get the same answer, after the same work (a decoy hash of the users' cost). A
/// username or client address with too many recent failures is refused (429) before any hash
/// is checked, and so is a login that finds the queue of hash checks full.
pub async fn login(
    req: HttpRequest,
    pool: web::Data<Pool>,
    keys: web::Data<TokenKeys>,
    checker: web::Data<PasswordChecker>,
    guard: web::Data<LoginGuard>,
    body: web::Json<JsonObject<LoginRequest>>,
) -> ApiResult<HttpResponse> {
    let credentials = Credentials::parse(body.into_inner().0)?;
    let client = client_address(&req);
    guard.admit(&credentials.username, &client).await?;
    let user = db::users::by_username(&pool, &credentials.username).await?;
    let (user_id, stored) = match user {
        Some(u) => (Some(u.id), Some(u.password_hash)),
        None => (None, None),
    };
    let matched = checker.verify(stored, credentials.password).await?;
    let user_id = match user_id {
        Some(id) if matched => id,
        _ => {
            guard.failed(&credentials.username, &client).await?;
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "unknown username or wrong password",
            ));
        }
    };
    let token = keys.issue(user_id)?;
    Ok(HttpResponse::Ok().json(LoginAnswer { token, user_id }))
}

/// The shopper's address: `X-Real-IP` as the suite's nginx sets it (it overwrites whatever the
/// client sent), or the peer's address for a caller that reached the replica directly.
fn client_address(req: &HttpRequest) -> String {
    req.headers()
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
        .unwrap_or_else(|| "unknown".into())
}
