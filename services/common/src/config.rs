//! Configuration shared by every service, read from environment variables.
//!
//! Every field but the two secrets has a documented default, so a bare `cargo run -p inventory`
//! with `TOKEN_SECRET` and `INTERNAL_KEY` set works against the local servers. Variable names
//! are the field names in upper case (`DATABASE_URL`, `PORT`, …). Secrets have no default and
//! are never printed: a replica refuses to start with an empty, short or well-known one
//! ([`CommonConfig::check_secrets`]), and [`CommonConfig`]'s `Debug` redacts them.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::fmt;

/// Load any serde struct from the process environment (field `foo_bar` ← `FOO_BAR`).
/// Missing variables take the struct's serde defaults.
pub fn from_env<T: DeserializeOwned>() -> anyhow::Result<T> {
    let settings = ::config::Config::builder()
        .add_source(::config::Environment::default().try_parsing(true))
        .build()?;
    Ok(settings.try_deserialize()?)
}

/// The architecture the suite runs: services calling each other over HTTP, or reacting to
/// events on RabbitMQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Sync,
    Async,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(Mode::Sync),
            "async" => Ok(Mode::Async),
            other => anyhow::bail!("unknown mode {other:?}: expected sync or async"),
        }
    }
}

/// Settings every service reads. Each service adds its own struct beside this one.
#[derive(Clone, Deserialize)]
pub struct CommonConfig {
    /// `MODE`: sync (default) or async.
    #[serde(default)]
    pub mode: Mode,
    /// `HOST`: address to bind. Default 127.0.0.1.
    #[serde(default = "defaults::host")]
    pub host: String,
    /// `PORT`: port to bind; 0 picks a free one (see `PORT_FILE`). Default 0.
    #[serde(default)]
    pub port: u16,
    /// `PORT_FILE`: when set, the bound port is written there once listening.
    #[serde(default)]
    pub port_file: Option<String>,
    /// `INSTANCE`: name of this replica in logs and metrics. Default `<service>-<pid>`.
    #[serde(default)]
    pub instance: Option<String>,
    /// `WORKERS`: actix worker threads. Default 2 (the target machine has 2 cores).
    #[serde(default = "defaults::workers")]
    pub workers: usize,
    /// `DATABASE_URL`: PostgreSQL server URL *without* a database name.
    /// Default `postgres://postgres@127.0.0.1:5432`.
    #[serde(default = "defaults::database_url")]
    pub database_url: String,
    /// `DATABASE_PREFIX`: this service's database is `<prefix>_<service>`. Default `flashsale`.
    #[serde(default = "defaults::database_prefix")]
    pub database_prefix: String,
    /// `DB_POOL_SIZE`: connections per replica. Default 8: the hot stock row serialises
    /// writers, so more connections only queue inside PostgreSQL.
    #[serde(default = "defaults::db_pool_size")]
    pub db_pool_size: usize,
    /// `REDIS_URL`. Default `redis://127.0.0.1:6379`.
    #[serde(default = "defaults::redis_url")]
    pub redis_url: String,
    /// `REDIS_POOL_SIZE`: Redis connections per replica. Default 16: commands are short and
    /// Redis is single-threaded, so connections cost little and a spike needs many.
    #[serde(default = "defaults::redis_pool_size")]
    pub redis_pool_size: usize,
    /// `REDIS_PREFIX`: every key this suite writes starts with it. Default `flashsale`.
    #[serde(default = "defaults::redis_prefix")]
    pub redis_prefix: String,
    /// `AMQP_URL`. Default `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[serde(default = "defaults::amqp_url")]
    pub amqp_url: String,
    /// `AMQP_PREFIX`: prefix of every exchange and queue of the suite. Default `flashsale`.
    #[serde(default = "defaults::amqp_prefix")]
    pub amqp_prefix: String,
    /// `AMQP_PREFETCH`: unacked messages a replica may hold. Default 64.
    #[serde(default = "defaults::amqp_prefetch")]
    pub amqp_prefetch: u16,
    /// `AMQP_BATCH_MAX`: the most messages a consumer handles in one transaction; batches run
    /// `AMQP_PREFETCH / AMQP_BATCH_MAX` at once per replica. 1 handles each message in a
    /// transaction of its own. Default 32.
    #[serde(default = "defaults::amqp_batch_max")]
    pub amqp_batch_max: u16,
    /// `AMQP_FRAME_MAX`: the largest AMQP frame this replica asks for, in bytes (an `AMQP_URL`
    /// with `?frame_max=` wins); see `messaging::amqp_uri` for why it is memory. Default 8192,
    /// lapin's own floor: a smaller size shrinks the frames on the wire, not its buffers.
    #[serde(default = "defaults::amqp_frame_max")]
    pub amqp_frame_max: u32,
    /// `AMQP_DELIVERY_LIMIT`: deliveries before a message is dead-lettered. Default 8.
    #[serde(default = "defaults::amqp_delivery_limit")]
    pub amqp_delivery_limit: u32,
    /// `OUTBOX_POLL_MS`: how often the outbox relay looks for rows nobody signalled. Default 100.
    #[serde(default = "defaults::outbox_poll_ms")]
    pub outbox_poll_ms: u64,
    /// `TOKEN_SECRET`: HMAC key of user bearer tokens, shared by every service. No default:
    /// at least [`MIN_SECRET_BYTES`] bytes, never a well-known value.
    #[serde(default)]
    pub token_secret: String,
    /// `TOKEN_TTL_SECS`: lifetime of a bearer token. Default 3600.
    #[serde(default = "defaults::token_ttl_secs")]
    pub token_ttl_secs: u64,
    /// `INTERNAL_KEY`: shared key that service-to-service calls present in `x-internal-key`.
    /// No default: at least [`MIN_SECRET_BYTES`] bytes, never a well-known value.
    #[serde(default)]
    pub internal_key: String,
    /// `UPSTREAM_URL`: where service-to-service calls go (nginx). Default `http://127.0.0.1:8080`.
    #[serde(default = "defaults::upstream_url")]
    pub upstream_url: String,
    /// `UPSTREAM_TIMEOUT_MS`: whole-call timeout of a service-to-service call. Default 5000.
    #[serde(default = "defaults::upstream_timeout_ms")]
    pub upstream_timeout_ms: u64,
    /// `BODY_LIMIT_BYTES`: largest accepted JSON body. Default 16 KiB.
    #[serde(default = "defaults::body_limit_bytes")]
    pub body_limit_bytes: usize,
    /// `SHUTDOWN_GRACE_SECS`: how long SIGTERM waits for in-flight work. Default 10.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// `STATUS_WAIT_MAX_SECS`: the longest `Prefer: wait=N` a status URL honours (see
    /// `changes`). Default 10: under nginx's 30 s read timeout, and short enough that a
    /// client whose connection died is forgotten soon.
    #[serde(default = "defaults::status_wait_max_secs")]
    pub status_wait_max_secs: u64,
}

impl CommonConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        from_env()
    }

    /// Refuse secrets an attacker could guess: empty, shorter than [`MIN_SECRET_BYTES`], or
    /// one of the values that circulate in examples (this suite's former defaults among them).
    /// Every replica calls it before it listens ([`crate::web::bind`]).
    pub fn check_secrets(&self) -> anyhow::Result<()> {
        check_secret("TOKEN_SECRET", &self.token_secret)?;
        check_secret("INTERNAL_KEY", &self.internal_key)?;
        if self.token_secret == self.internal_key {
            anyhow::bail!(
                "TOKEN_SECRET and INTERNAL_KEY are the same value: give each its own \
                 (e.g. `openssl rand -hex 32` twice)"
            );
        }
        Ok(())
    }

    /// Database name of `service` under this configuration.
    pub fn database_name(&self, service: &str) -> String {
        format!("{}_{}", self.database_prefix, service)
    }

    pub fn instance_name(&self, service: &str) -> String {
        self.instance
            .clone()
            .unwrap_or_else(|| format!("{service}-{}", std::process::id()))
    }
}

/// The name a replica's metrics and spans carry: `INSTANCE`, else `<service>-<HOSTNAME>` (a
/// container's id under Docker, where every replica's pid is 1), else `<service>-<pid>`.
pub fn instance_label(service: &str, instance: Option<&str>, hostname: Option<&str>) -> String {
    fn set(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    match (set(instance), set(hostname)) {
        (Some(instance), _) => instance.to_string(),
        (None, Some(host)) => format!("{service}-{host}"),
        (None, None) => format!("{service}-{}", std::process::id()),
    }
}

/// The shortest secret a replica accepts, in bytes: an HS256 key should be as long as the
/// hash (RFC 7518, section 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// Values that appear in examples, tutorials and this suite's own history. Compared without
/// case, and also as the repetition of one character.
const WELL_KNOWN_SECRETS: &[&str] = &[
    "flashsale-development-secret-change-me",
    "flashsale-internal-development-key",
    "secret",
    "changeme",
    "change-me",
    "password",
    "your-256-bit-secret",
    "your-secret-key",
    "supersecret",
    "mysecret",
    "internal-key",
];

fn check_secret(name: &str, value: &str) -> anyhow::Result<()> {
    let hint = "generate one with `openssl rand -hex 32`";
    if value.is_empty() {
        anyhow::bail!("{name} is not set: {hint}");
    }
    if value.len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "{name} is {} bytes, shorter than the {MIN_SECRET_BYTES} required: {hint}",
            value.len()
        );
    }
    let lower = value.to_ascii_lowercase();
    let one_char = value.chars().all(|c| value.starts_with(c));
    let placeholder = ["change-me", "changeme", "replace-me"]
        .iter()
        .any(|p| lower.contains(p));
    let known = WELL_KNOWN_SECRETS.contains(&lower.as_str()) || placeholder;
    if known || one_char {
        anyhow::bail!("{name} is a well-known value, which anybody could guess: {hint}");
    }
    Ok(())
}

impl fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonConfig")
            .field("mode", &self.mode)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("workers", &self.workers)
            .field("database_url", &self.database_url)
            .field("database_prefix", &self.database_prefix)
            .field("db_pool_size", &self.db_pool_size)
            .field("redis_url", &self.redis_url)
            .field("redis_prefix", &self.redis_prefix)
            .field("upstream_url", &self.upstream_url)
            .field("token_secret", &"<redacted>")
            .field("internal_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Default for CommonConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every CommonConfig field has a default")
    }
}

/// The default budget of a service-to-service call (`UPSTREAM_TIMEOUT_MS`): every wait a
/// callee may have (a pool, a statement, a Redis command) is shorter.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 5000;

mod defaults {
    pub fn host() -> String {
        "127.0.0.1".into()
    }
    pub fn workers() -> usize {
        2
    }
    pub fn database_url() -> String {
        "postgres://postgres@127.0.0.1:5432".into()
    }
    pub fn database_prefix() -> String {
        "flashsale".into()
    }
    pub fn db_pool_size() -> usize {
        8
    }
    pub fn redis_url() -> String {
        "redis://127.0.0.1:6379".into()
    }
    pub fn redis_pool_size() -> usize {
        16
    }
    pub fn redis_prefix() -> String {
        "flashsale".into()
    }
    pub fn amqp_url() -> String {
        "amqp://guest:guest@127.0.0.1:5672/%2f".into()
    }
    pub fn amqp_prefix() -> String {
        "flashsale".into()
    }
    pub fn amqp_prefetch() -> u16 {
        64
    }
    pub fn amqp_batch_max() -> u16 {
        32
    }
    pub fn amqp_frame_max() -> u32 {
        8192
    }
    pub fn amqp_delivery_limit() -> u32 {
        8
    }
    pub fn outbox_poll_ms() -> u64 {
        100
    }
    pub fn token_ttl_secs() -> u64 {
        3600
    }
    pub fn upstream_url() -> String {
        "http://127.0.0.1:8080".into()
    }
    pub fn upstream_timeout_ms() -> u64 {
        super::DEFAULT_UPSTREAM_TIMEOUT_MS
    }
    pub fn status_wait_max_secs() -> u64 {
        10
    }
    pub fn body_limit_bytes() -> usize {
        16 * 1024
    }
    pub fn shutdown_grace_secs() -> u64 {
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(token_secret: &str, internal_key: &str) -> CommonConfig {
        CommonConfig {
            token_secret: token_secret.into(),
            internal_key: internal_key.into(),
            ..CommonConfig::default()
        }
    }

    const GOOD_A: &str = "4f1c0e9a7b2d4c58a1e3f6b9d0c2e4a6";
    const GOOD_B: &str = "9b8a7c6d5e4f30211f2e3d4c5b6a7988";

    #[test]
    fn strong_distinct_secrets_are_accepted() {
        with(GOOD_A, GOOD_B).check_secrets().expect("accepted");
    }

    #[test]
    fn the_defaults_are_empty_and_refused() {
        let err = CommonConfig::default()
            .check_secrets()
            .expect_err("refused");
        assert!(err.to_string().contains("TOKEN_SECRET is not set"), "{err}");
        let err = with(GOOD_A, "").check_secrets().expect_err("refused");
        assert!(err.to_string().contains("INTERNAL_KEY is not set"), "{err}");
    }

    #[test]
    fn short_secrets_are_refused_with_their_length() {
        let err = with("0123456789abcdef0123456789abcde", GOOD_B)
            .check_secrets()
            .expect_err("refused");
        assert!(err.to_string().contains("31 bytes"), "{err}");
    }

    #[test]
    fn well_known_and_placeholder_secrets_are_refused() {
        for weak in [
            "flashsale-development-secret-change-me",
            "FLASHSALE-INTERNAL-DEVELOPMENT-KEY",
            "replace-me-with-32-random-bytes-please",
            &"a".repeat(40),
        ] {
            let err = with(weak, GOOD_B).check_secrets().expect_err("refused");
            assert!(err.to_string().contains("well-known"), "{weak}: {err}");
            let err = with(GOOD_A, weak).check_secrets().expect_err("refused");
            assert!(err.to_string().contains("INTERNAL_KEY"), "{weak}: {err}");
        }
    }

    #[test]
    fn one_value_for_both_secrets_is_refused() {
        let err = with(GOOD_A, GOOD_A).check_secrets().expect_err("refused");
        assert!(err.to_string().contains("the same value"), "{err}");
    }
}
