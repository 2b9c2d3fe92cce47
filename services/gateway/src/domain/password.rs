//! Password verification against stored argon2id PHC strings.

use anyhow::Context;
use argon2::password_hash::{self, PasswordHash, PasswordVerifier};
use argon2::Argon2;
use common::{ApiError, ApiResult};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// argon2id cost of the decoy checked for an unknown username: the cost the users' hashes were
/// made with (`PASSWORD_HASH_PARAMS`), so that "no such user" takes as long as "wrong
/// password" and the answer time does not tell which usernames exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for HashCost {
    /// The OWASP minimum for argon2id (19 MiB, t=2, p=1), what the suite seeds with.
    fn default() -> Self {
        Self {
            m_cost: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl std::str::FromStr for HashCost {
    type Err = anyhow::Error;

    /// `m=19456,t=2,p=1`, the parameter part of a PHC string.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut cost = HashCost::default();
        for part in s.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .with_context(|| format!("expected m=..,t=..,p=.., got {s:?}"))?;
            let value: u32 = value
                .parse()
                .with_context(|| format!("{key} in {s:?} is not a number"))?;
            match key {
                "m" => cost.m_cost = value,
                "t" => cost.t_cost = value,
                "p" => cost.p_cost = value,
                other => anyhow::bail!("unknown argon2 parameter {other:?} in {s:?}"),
            }
        }
        argon2::Params::new(cost.m_cost, cost.t_cost, cost.p_cost, None)
            .map_err(|e| anyhow::anyhow!("argon2 refuses {s:?}: {e}"))?;
        Ok(cost)
    }
}

/// Runs password checks on the blocking pool, at most `parallelism` at a time, with at most
/// `queue` more waiting.
///
/// Each check is CPU-bound for tens of milliseconds and holds its memory cost (m = 19 MiB by
/// default) while it runs; more checks in flight than CPUs would only add memory and context
/// switches, so the rest wait (asynchronously) for a permit. Beyond the queue a login is
/// answered 429 `login_busy` at once: a wait that long would outlast the client's patience,
/// and an unbounded queue is how a login storm takes the whole gateway with it.
#[derive(Clone)]
pub struct PasswordChecker {
    permits: Arc<Semaphore>,
    /// Checks running or waiting.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    decoy: Arc<str>,
}

/// Gives the admission back when the check ends, however it ends.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordChecker {
    /// `parallelism` checks at once (at least 1), `queue` waiting, and a decoy hash of `cost`
    /// (computed here, once: one check's worth of CPU).
    pub fn new(parallelism: usize, queue: usize, cost: HashCost) -> anyhow::Result<Self> {
        let parallelism = parallelism.max(1);
        Ok(Self {
            permits: Arc::new(Semaphore::new(parallelism)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: parallelism + queue,
            decoy: decoy_hash(cost)?.into(),
        })
    }

    /// One permit per CPU.
    pub fn per_cpu(queue: usize, cost: HashCost) -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cpus, queue, cost)
    }

    /// The PHC string checked for unknown usernames.
    pub fn decoy(&self) -> &str {
        &self.decoy
    }

    /// Whether `password` matches `stored` (a PHC string; its own parameters are used). With
    /// no stored hash (unknown user) the decoy is checked and the answer is always `false`.
    /// `Err(429 login_busy)` when the queue is full.
    pub async fn verify(&self, stored: Option<String>, password: String) -> ApiResult<bool> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::too_many_requests(
                "login_busy",
                "too many logins are waiting for a password check: retry in a second",
                1,
            ));
        }
        let _admission = Admission(self.admitted.clone());
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .context("the password checker is closed")?;
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.decoy.to_string());
        let matched = tokio::task::spawn_blocking(move || check(&stored, password.as_bytes()))
            .await
            .context("the password check panicked")??;
        Ok(known && matched)
    }
}

/// A hash of a random password under a random salt at `cost`: no password matches it.
fn decoy_hash(cost: HashCost) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use rand::RngCore;
    let (mut salt, mut secret) = ([0u8; 16], [0u8; 32]);
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut secret);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let params = argon2::Params::new(cost.m_cost, cost.t_cost, cost.p_cost, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    Ok(argon
        .hash_password(&secret, &salt)
        .map_err(|e| anyhow::anyhow!("hashing the decoy: {e}"))?
        .to_string())
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

    fn cheap() -> HashCost {
        HashCost {
            m_cost: 1024,
            t_cost: 1,
            p_cost: 1,
        }
    }

    #[test]
    fn the_decoy_has_the_configured_cost() {
        let checker = PasswordChecker::new(1, 0, cheap()).expect("checker");
        let decoy = PasswordHash::new(checker.decoy()).expect("a PHC string");
        let params = argon2::Params::try_from(&decoy).expect("params");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (1024, 1, 1)
        );
        let default = PasswordChecker::new(1, 0, HashCost::default()).expect("checker");
        assert!(
            default.decoy().contains("m=19456,t=2,p=1"),
            "{}",
            default.decoy()
        );
    }

    #[test]
    fn hash_costs_parse_from_phc_parameters() {
        let cost: HashCost = "m=8,t=1,p=1".parse().expect("parse");
        assert_eq!((cost.m_cost, cost.t_cost, cost.p_cost), (8, 1, 1));
        assert!("m=8,t=0,p=1".parse::<HashCost>().is_err(), "t=0 accepted");
        assert!("m=8;t=1".parse::<HashCost>().is_err());
        assert!("x=1".parse::<HashCost>().is_err());
    }

    #[tokio::test]
    async fn beyond_the_queue_a_check_is_refused_with_429_and_the_rest_still_run() {
        // One check at a time and one waiting: of three at once, one is refused.
        let checker = PasswordChecker::new(1, 1, HashCost::default()).expect("checker");
        let stored = checker.decoy().to_string();
        let attempts = (0..3).map(|_| checker.verify(Some(stored.clone()), "x".into()));
        let results = futures::future::join_all(attempts).await;
        let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(refused.len(), 1, "{results:?}");
        assert_eq!(refused[0].code(), "login_busy");
        assert!(results.iter().filter(|r| matches!(r, Ok(false))).count() == 2);
        // The admissions were given back: the next one runs.
        assert!(!checker
            .verify(Some(stored), "x".into())
            .await
            .expect("admitted"));
    }

    #[tokio::test]
    async fn a_hash_is_checked_with_its_own_parameters() {
        let checker = PasswordChecker::new(1, 0, cheap()).expect("checker");
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
        let checker = PasswordChecker::new(1, 0, cheap()).expect("checker");
        assert!(!checker
            .verify(None, "anything".into())
            .await
            .expect("verify"));
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_internal_error() {
        let checker = PasswordChecker::new(1, 0, cheap()).expect("checker");
        let err = checker
            .verify(Some("not a hash".into()), "x".into())
            .await
            .expect_err("accepted");
        assert_eq!(err.code(), "internal_error");
    }
}
