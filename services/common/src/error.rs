//! The one error contract of the suite: every failure leaves a service as a JSON body
//! `{"code": "snake_case", "message": "human text"}` with the status that matches it.
//!
//! Unexpected failures become a 500 with a generic message; their cause chain goes to the log,
//! never to the client. A dependency that is away (PostgreSQL, Redis, a peer service) is a 503,
//! because the caller may retry and the service recovers by itself.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub type ApiResult<T> = Result<T, ApiError>;

/// The JSON body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// Extra fields some errors carry (`order_id` of a declined payment).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty", default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, malformed id).
    #[error("{message}")]
    BadRequest {
        code: Cow<'static, str>,
        message: String,
    },
    /// 401: no token, a malformed, expired or forged token, or wrong credentials.
    #[error("{message}")]
    Unauthorized {
        code: Cow<'static, str>,
        message: String,
    },
    /// 402: the payment provider declined; carries the order id.
    #[error("{message}")]
    PaymentRequired {
        code: Cow<'static, str>,
        message: String,
        extra: serde_json::Map<String, serde_json::Value>,
    },
    /// 404: unknown, or not the caller's (we never reveal which).
    #[error("{message}")]
    NotFound {
        code: Cow<'static, str>,
        message: String,
    },
    /// 405: the path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: a business conflict (sold out, limit reached, reservation expired).
    #[error("{message}")]
    Conflict {
        code: Cow<'static, str>,
        message: String,
    },
    /// 413: the body is larger than the limit.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415: the body is not `application/json`.
    #[error("expected a JSON body (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// 422: well-formed JSON whose values are not acceptable (wrong type, missing field,
    /// quantity out of range).
    #[error("{message}")]
    Unprocessable {
        code: Cow<'static, str>,
        message: String,
    },
    /// 429: too many attempts (logins), or too many waiting for the same scarce resource;
    /// `Retry-After` says when to come back.
    #[error("{message}")]
    TooManyRequests {
        code: Cow<'static, str>,
        message: String,
        retry_after_secs: u64,
    },
    /// 503: a dependency is away; the service recovers when it returns.
    #[error("{message}")]
    Unavailable {
        code: Cow<'static, str>,
        message: String,
    },
    /// 500: anything unexpected. The cause is logged, the client sees a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn unauthorized(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::Unauthorized {
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn not_found(what: &str) -> Self {
        Self::NotFound {
            code: "not_found".into(),
            message: format!("{what} not found"),
        }
    }
    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::Conflict {
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn unprocessable(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn too_many_requests(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        Self::TooManyRequests {
            code: code.into(),
            message: message.into(),
            retry_after_secs: retry_after_secs.max(1),
        }
    }
    pub fn unavailable(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::Unavailable {
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn database_unavailable() -> Self {
        Self::unavailable(
            "database_unavailable",
            "the database is unavailable, retry later",
        )
    }
    pub fn cache_unavailable() -> Self {
        Self::unavailable("cache_unavailable", "the cache is unavailable, retry later")
    }

    /// Rebuild an error answered by a peer service so it can be passed on unchanged.
    pub fn from_status(status: u16, body: ErrorBody) -> Self {
        let ErrorBody {
            code,
            message,
            extra,
        } = body;
        let code: Cow<'static, str> = code.into();
        match status {
            400 => Self::BadRequest { code, message },
            401 => Self::Unauthorized { code, message },
            402 => Self::PaymentRequired {
                code,
                message,
                extra,
            },
            404 => Self::NotFound { code, message },
            409 => Self::Conflict { code, message },
            422 => Self::Unprocessable { code, message },
            429 => Self::TooManyRequests {
                code,
                message,
                retry_after_secs: 1,
            },
            503 => Self::Unavailable { code, message },
            _ => Self::Internal(anyhow::anyhow!("peer answered {status}: {code}: {message}")),
        }
    }

    pub fn code(&self) -> &str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::PaymentRequired { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::TooManyRequests { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal(_) => "internal_error",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Self::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let extra = match self {
            Self::PaymentRequired { extra, .. } => extra.clone(),
            _ => serde_json::Map::new(),
        };
        ErrorBody {
            code: self.code().to_string(),
            message,
            extra,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::PaymentRequired { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(e) => tracing::error!(error = ?e, "request failed"),
            Self::Unavailable { message, .. } => tracing::warn!(%message, "dependency unavailable"),
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            Self::Unavailable { .. } => {
                resp.insert_header(("Retry-After", "1"));
            }
            Self::TooManyRequests {
                retry_after_secs, ..
            } => {
                resp.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            _ => {}
        }
        resp.json(self.body())
    }
}

/// A pool that cannot hand out a connection: every connection busy for the whole wait
/// (saturation, `database_busy`) or PostgreSQL away (`database_unavailable`). Both are 503.
impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        tracing::warn!(error = %e, "database pool error");
        if matches!(
            e,
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)
        ) {
            return Self::unavailable(
                "database_busy",
                "every database connection is busy, retry later",
            );
        }
        Self::database_unavailable()
    }
}

/// A query error is a 503 when the connection broke (the server went away) and a 500 otherwise.
impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        let io_failure = std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
        if e.is_closed() || io_failure {
            tracing::warn!(error = %e, "database connection error");
            return Self::database_unavailable();
        }
        if let Some(code) = e.code() {
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
            // 08xxx connection exceptions: the server is going or gone.
            let c = code.code();
            if crate::db::is_transient(&e) {
                tracing::warn!(error = %e, "database statement lost a conflict or timed out");
                return Self::unavailable(
                    "database_busy",
                    "the database could not finish the request in time, retry later",
                );
            }
            if c.starts_with("57P") || c.starts_with("08") {
                tracing::warn!(error = %e, "database went away");
                return Self::database_unavailable();
            }
        }
        Self::Internal(anyhow::Error::new(e).context("database query failed"))
    }
}

impl From<deadpool_redis::PoolError> for ApiError {
    fn from(e: deadpool_redis::PoolError) -> Self {
        tracing::warn!(error = %e, "redis pool error");
        if matches!(
            e,
            deadpool_redis::PoolError::Timeout(deadpool_redis::TimeoutType::Wait)
        ) {
            return Self::unavailable("cache_busy", "every cache connection is busy, retry later");
        }
        Self::cache_unavailable()
    }
}

impl From<deadpool_redis::redis::RedisError> for ApiError {
    fn from(e: deadpool_redis::redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
        {
            tracing::warn!(error = %e, "redis connection error");
            return Self::cache_unavailable();
        }
        Self::Internal(anyhow::Error::new(e).context("redis command failed"))
    }
}
