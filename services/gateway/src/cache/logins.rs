//! Failed-login limits, shared by every gateway replica through Redis.
//!
//! A username that failed `per_user` times, or a client address that failed `per_client` times,
//! within the window is answered 429 (`too_many_attempts`, with `Retry-After`) before any
//! password is checked, so guessing costs the guesser time and the gateway no hash. Only
//! failures count: a crowd of shoppers logging in right from one address (a load generator,
//! a corporate proxy) is never refused for succeeding. Each counter lives for one window from
//! its first failure (fixed window: `SET NX EX`, then `INCR`, in one transaction).

use super::Keys;
use common::cache::RedisPool;
use common::{ApiError, ApiResult};
use deadpool_redis::redis;

/// The limits, from the gateway's settings.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failures of one username per window before it is refused.
    pub per_user: u64,
    /// Failures from one client address per window before it is refused.
    pub per_client: u64,
    pub window_secs: u64,
}

#[derive(Clone)]
pub struct LoginGuard {
    redis: RedisPool,
    keys: Keys,
    limits: LoginLimits,
}

impl LoginGuard {
    pub fn new(redis: RedisPool, keys: Keys, limits: LoginLimits) -> Self {
        Self {
            redis,
            keys,
            limits: LoginLimits {
                window_secs: limits.window_secs.max(1),
                ..limits
            },
        }
    }

    fn keys_of(&self, username: &str, client: &str) -> [String; 2] {
        [
            self.keys.login_failures_of_user(&username.to_lowercase()),
            self.keys.login_failures_of_client(client),
        ]
    }

    /// `Err(429)` when this username or this client used up its failures for the window.
    pub async fn admit(&self, username: &str, client: &str) -> ApiResult<()> {
        let [user_key, client_key] = self.keys_of(username, client);
        let mut conn = self.redis.get().await?;
        let (user, client_failures, user_ttl, client_ttl): (Option<u64>, Option<u64>, i64, i64) =
            redis::pipe()
                .get(&user_key)
                .get(&client_key)
                .ttl(&user_key)
                .ttl(&client_key)
                .query_async(&mut *conn)
                .await?;
        let refused = |ttl: i64, what: &str| {
            let retry = u64::try_from(ttl).unwrap_or(self.limits.window_secs);
            ApiError::too_many_requests(
                "too_many_attempts",
                format!("too many failed logins {what}: retry in {retry} s"),
                retry,
            )
        };
        if user.unwrap_or(0) >= self.limits.per_user {
            return Err(refused(user_ttl, "for this username"));
        }
        if client_failures.unwrap_or(0) >= self.limits.per_client {
            return Err(refused(client_ttl, "from this address"));
        }
        Ok(())
    }

    /// Count one failed login of `username` from `client`.
    pub async fn failed(&self, username: &str, client: &str) -> ApiResult<()> {
        let window = self.limits.window_secs;
        let mut conn = self.redis.get().await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for key in self.keys_of(username, client) {
            pipe.cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("EX")
                .arg(window)
                .arg("NX")
                .ignore()
                .incr(&key, 1)
                .ignore();
        }
        let () = pipe.query_async(&mut *conn).await?;
        Ok(())
    }
}
