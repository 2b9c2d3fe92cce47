use crate::db;
use crate::domain::{Credentials, JsonObject, LoginAnswer, LoginRequest, PasswordChecker};
use actix_web::{web, HttpResponse};
use common::auth::TokenKeys;
use common::{ApiError, ApiResult};
use deadpool_postgres::Pool;

/// `POST /api/auth/login`: a bearer token for the right password. An unknown user and a wrong
/// password get the same answer, after the same work.
pub async fn login(
    pool: web::Data<Pool>,
    keys: web::Data<TokenKeys>,
    checker: web::Data<PasswordChecker>,
    body: web::Json<JsonObject<LoginRequest>>,
) -> ApiResult<HttpResponse> {
    let credentials = Credentials::parse(body.into_inner().0)?;
    let user = db::users::by_username(&pool, &credentials.username).await?;
    let (user_id, stored) = match user {
        Some(u) => (Some(u.id), Some(u.password_hash)),
        None => (None, None),
    };
    let matched = checker.verify(stored, credentials.password).await?;
    let user_id = match user_id {
        Some(id) if matched => id,
        _ => {
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "unknown username or wrong password",
            ))
        }
    };
    let token = keys.issue(user_id)?;
    Ok(HttpResponse::Ok().json(LoginAnswer { token, user_id }))
}
