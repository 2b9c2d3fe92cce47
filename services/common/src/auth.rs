//! Bearer tokens and the internal key.
//!
//! The gateway issues HS256 JWTs at login; every service verifies them locally with the shared
//! secret, so no request pays a round trip to a session store. Service-to-service calls carry
//! the internal key in `x-internal-key` instead; `/internal/...` routes refuse anything else.

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::future::{ready, Ready};
use uuid::Uuid;

pub const INTERNAL_KEY_HEADER: &str = "x-internal-key";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
}

/// Signs and checks bearer tokens. Registered once as app data by every service.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

impl TokenKeys {
    pub fn new(secret: &str, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl_secs,
        }
    }

    pub fn issue(&self, user_id: Uuid) -> anyhow::Result<String> {
        let now = now_secs();
        let claims = Claims {
            sub: user_id,
            iat: now,
            exp: now + self.ttl_secs,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Issue a token with an explicit expiry (tests use it to build expired tokens).
    pub fn issue_with_exp(&self, user_id: Uuid, exp: u64) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id,
            iat: now_secs(),
            exp,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("token_expired", "the bearer token has expired")
                }
                ErrorKind::InvalidSignature => {
                    ApiError::unauthorized("invalid_token", "the bearer token signature is invalid")
                }
                _ => ApiError::unauthorized("invalid_token", "the bearer token is malformed"),
            })
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The authenticated caller of a public route. Extracting it answers 401 when the
/// `Authorization: Bearer` header is missing, malformed, expired or forged.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Uuid,
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<AuthUser, ApiError> {
    let keys = req
        .app_data::<web::Data<TokenKeys>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("TokenKeys not registered")))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "an Authorization: Bearer token is required",
            )
        })?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid_token", "the bearer token is malformed"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "expected `Authorization: Bearer <token>`")
        })?;
    let claims = keys.verify(token)?;
    Ok(AuthUser {
        user_id: claims.sub,
    })
}

/// The shared key of service-to-service calls, registered as app data.
#[derive(Clone)]
pub struct InternalKey(pub String);

/// Extracting it proves the caller is one of the suite's services.
#[derive(Debug, Clone, Copy)]
pub struct InternalCaller;

impl FromRequest for InternalCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<InternalKey>>();
        let given = req.headers().get(INTERNAL_KEY_HEADER);
        ready(match (expected, given) {
            (Some(expected), Some(given))
                if constant_time_eq(expected.0.as_bytes(), given.as_bytes()) =>
            {
                Ok(InternalCaller)
            }
            // An internal route is not part of the public API: to an outsider it does not exist.
            _ => Err(ApiError::not_found("route")),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_signed_with_another_secret_is_rejected() {
        let ours = TokenKeys::new("secret-a", 60);
        let theirs = TokenKeys::new("secret-b", 60);
        let token = theirs.issue(Uuid::new_v4()).expect("issue");
        let err = ours.verify(&token).expect_err("forged token accepted");
        assert_eq!(err.code(), "invalid_token");
    }

    #[test]
    fn an_expired_token_is_rejected_as_expired() {
        let keys = TokenKeys::new("secret", 60);
        let token = keys
            .issue_with_exp(Uuid::new_v4(), now_secs() - 5)
            .expect("issue");
        assert_eq!(
            keys.verify(&token).expect_err("accepted").code(),
            "token_expired"
        );
    }

    #[test]
    fn a_fresh_token_round_trips_its_user() {
        let keys = TokenKeys::new("secret", 60);
        let id = Uuid::new_v4();
        let claims = keys
            .verify(&keys.issue(id).expect("issue"))
            .expect("verify");
        assert_eq!(claims.sub, id);
    }
}
