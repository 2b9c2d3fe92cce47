//! The Redis pool against the real Redis, through a proxy that can stop passing bytes on: a
//! Redis that stopped answering while its socket stays open, which no refused connection or
//! closed socket shows.

use actix_web::ResponseError;
use common::ApiError;
use deadpool_redis::redis::{cmd, RedisError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REDIS: &str = "127.0.0.1:6379";

/// Forwards every connection to the real Redis; while `frozen`, holds what it read.
struct FreezingProxy {
    url: String,
    frozen: Arc<AtomicBool>,
}

async fn pass_on(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl FreezingProxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("redis://{}", listener.local_addr().expect("addr"));
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(REDIS).await.expect("the real Redis");
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pass_on(client_read, server_write, flag.clone()));
                tokio::spawn(pass_on(server_read, client_write, flag.clone()));
            }
        });
        Self { url, frozen }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }
}

/// PING through a connection from `pool`, every failure as the API would answer it.
async fn ping(pool: &deadpool_redis::Pool) -> Result<String, ApiError> {
    let mut conn = pool.get().await?;
    Ok(cmd("PING").query_async(&mut conn).await?)
}

#[tokio::test]
async fn a_command_to_a_redis_that_stopped_answering_times_out() {
    let proxy = FreezingProxy::start().await;
    let pool = common::cache::pool_with(&proxy.url, 1, Duration::from_millis(300)).expect("pool");
    let mut conn = pool.get().await.expect("a connection");
    let pong: String = cmd("PING").query_async(&mut conn).await.expect("PING");
    assert_eq!(pong, "PONG");

    proxy.freeze(true);
    let answer: Result<String, RedisError> =
        tokio::time::timeout(Duration::from_secs(5), cmd("PING").query_async(&mut conn))
            .await
            .expect("the command timeout ends the wait, not this test's bound");

    let err = answer.expect_err("nothing came back");
    assert!(err.is_timeout(), "{err}");
    let api: ApiError = err.into();
    assert_eq!(api.code(), "cache_unavailable");
    assert_eq!(api.status_code().as_u16(), 503);

    proxy.freeze(false);
    let pong: String = cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("the same connection answers again once Redis does");
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn a_request_meeting_a_frozen_redis_is_answered_503_before_its_caller_gives_up() {
    let proxy = FreezingProxy::start().await;
    let pool = common::cache::pool(&proxy.url, 1).expect("pool");
    assert_eq!(ping(&pool).await.expect("through the proxy"), "PONG");

    proxy.freeze(true);
    // The idle connection's recycling PING times out, and so does opening a new one.
    let bound = common::cache::COMMAND_TIMEOUT + common::cache::CREATE_TIMEOUT;
    let answer = tokio::time::timeout(bound + Duration::from_secs(1), ping(&pool))
        .await
        .expect("bounded by the command and create timeouts");

    let err = answer.expect_err("nothing came back");
    assert_eq!(err.code(), "cache_unavailable");
    assert!(
        bound < Duration::from_millis(common::config::DEFAULT_UPSTREAM_TIMEOUT_MS),
        "a caller waits longer than the cache may take"
    );
    proxy.freeze(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ping(&pool).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never answered again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
