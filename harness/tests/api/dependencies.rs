//! A dependency away: affected calls answer 503 with a JSON error, and the suite recovers by
//! itself when the dependency returns.

use crate::helpers::spawn_suite_with;
use crate::private_servers::{PrivatePostgres, PrivateRedis};
use crate::shopper::Api;
use common::Mode;
use serde_json::json;
use std::time::{Duration, Instant};

/// Retry `probe` until it answers `want` (at most 30 s); the last answer is returned.
async fn eventually<F, Fut>(want: u16, mut probe: F) -> (u16, serde_json::Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, serde_json::Value)>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = probe().await;
        if answer.0 == want || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn with_redis_away_carts_answer_503_and_recover_when_it_returns(mode: Mode) {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.redis_url = url;
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let shopper = api.shopper(1).await;
    let cart = shopper.create_cart().await;

    redis.stop();
    let (status, body, _) = shopper.post("/api/carts", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "cache_unavailable");
    let (status, body, _) = shopper.get(&format!("/api/carts/{cart}")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("cache_unavailable"))
    );

    redis.start_again();
    let (status, body) = eventually(201, || async {
        let (s, b, _) = shopper.post("/api/carts", json!({})).await;
        (s, b)
    })
    .await;
    assert_eq!(status, 201, "carts work again without a restart: {body}");
    t.teardown().await;
    drop(redis);
}

async fn with_postgres_away_calls_answer_503_and_recover_when_it_returns(mode: Mode) {
    let pg = PrivatePostgres::start();
    let url = pg.url();
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.database_url = url;
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let shopper = api.shopper(1).await;
    let product = t.suite.products()[0].id.to_string();
    let cart = shopper.create_cart().await;
    shopper.add_item(&cart, &product, 1).await;

    pg.stop();
    let (status, body, _) = api.login("user2", "flashsale").await;
    assert_eq!(status, 503, "login: {body}");
    assert_eq!(body["code"], "database_unavailable");
    let (status, body, _) = shopper.reserve(&cart).await;
    assert_eq!(status, 503, "reserve: {body}");
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );

    pg.start_again();
    let (status, body) = eventually(200, || async {
        let (s, b, _) = api.login("user2", "flashsale").await;
        (s, b)
    })
    .await;
    assert_eq!(status, 200, "login works again without a restart: {body}");
    let (status, body) = eventually(201, || async {
        let (s, b, _) = shopper.reserve(&cart).await;
        (s, b)
    })
    .await;
    assert_eq!(status, 201, "reserve works again: {body}");
    t.teardown().await;
    drop(pg);
}

crate::helpers::in_both_modes!(
    with_redis_away_carts_answer_503_and_recover_when_it_returns,
    with_postgres_away_calls_answer_503_and_recover_when_it_returns
);
