//! Password verification against stored argon2id PHC strings.

use anyhow::Context;
use argon2::password_hash::{self, PasswordHash, PasswordVerifier};
use argon2::Argon2;
use common::{ApiError, ApiResult};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Verified when the username is unknown, so that "no such user" takes as long as "wrong
/// password" and the answer time does not tell which usernames exist. A hash of random bytes
/// with argon2's default parameters (those the suite seeds with); no password matches it.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$9fgUL30wUTuzEJRkrVn7Pg$U0xEsfUGoAyLiDYX3PY6WKREckcuQ5JjW354hWvbEeY";

/// Runs password checks on the blocking pool, at most `parallelism` at a time.
///
/// Each check is CPU-bound for tens of milliseconds and holds its memory cost (m = 19 MiB by
/// default) while it runs; more checks in flight than CPUs would only add memory and context
/// switches, so the rest wait (asynchronously) for a permit.
#[derive(Clone)]
pub struct PasswordChecker {
    permits: Arc<Semaphore>,
}

impl PasswordChecker {
    pub fn new(parallelism: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
        }
    }

    /// One permit per CPU.
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Whether `password` matches `stored` (a PHC string; its own parameters are used). With
    /// no stored hash (unknown user) the decoy is checked and the answer is always `false`.
    pub async fn verify(&self, stored: Option<String>, password: String) -> ApiResult<bool> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("the password checker is closed")?;
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DECOY_HASH.to_string());
        let matched = tokio::task::spawn_blocking(move || check(&stored, password.as_bytes()))
            .await
            .context("the password check panicked")??;
        Ok(known && matched)
    }
}

fn check(stored: &str, password: &[u8]) -> ApiResult<bool> {
    let hash = PasswordHash::new(stored).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!("stored password hash is malformed: {e}"))
    })?;
    match Argon2::default().verify_password(password, &hash) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(e) => Err(ApiError::Internal(anyhow::anyhow!(
            "verifying a password hash failed: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Params, Version};

    fn cheap_hash(password: &str) -> String {
        let params = Params::new(1024, 1, 1, None).expect("params");
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .expect("hash")
            .to_string()
    }

    #[tokio::test]
    async fn a_hash_is_checked_with_its_own_parameters() {
        let checker = PasswordChecker::new(1);
        let stored = cheap_hash("secret");
        assert!(checker
            .verify(Some(stored.clone()), "secret".into())
            .await
            .expect("verify"));
        assert!(!checker
            .verify(Some(stored), "Secret".into())
            .await
            .expect("verify"));
    }

    #[tokio::test]
    async fn an_unknown_user_never_matches() {
        let checker = PasswordChecker::new(1);
        assert!(!checker
            .verify(None, "anything".into())
            .await
            .expect("verify"));
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_internal_error() {
        let checker = PasswordChecker::new(1);
        let err = checker
            .verify(Some("not a hash".into()), "x".into())
            .await
            .expect_err("accepted");
        assert_eq!(err.code(), "internal_error");
    }
}
