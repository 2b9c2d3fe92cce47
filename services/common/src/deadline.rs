//! A call's time budget, carried along the chain of service-to-service calls.
//!
//! A caller gives a call [`UPSTREAM_TIMEOUT_MS`](crate::config::CommonConfig::upstream_timeout_ms)
//! in all, retries included, and tells the callee what is left of it in [`BUDGET_HEADER`]
//! (milliseconds, relative, so no two clocks need agree). The callee serves the request inside
//! that deadline ([`within_budget`]), and its own calls get what is left of it, less
//! [`MARGIN`] for the answer's way back. So a call never outlives its caller's patience: a
//! retry that could not finish in time is not started, and the time a hop spent is gone from
//! every hop after it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use std::time::Duration;
use tokio::time::Instant;

/// The header with what is left of the caller's budget, in milliseconds.
pub const BUDGET_HEADER: &str = "x-budget-ms";

/// Kept back from the budget passed on: the callee's answer still has to reach the caller.
pub const MARGIN: Duration = Duration::from_millis(50);

/// A budget larger than this is taken as this: a header cannot extend a callee's patience
/// beyond any caller's.
pub const MAX_BUDGET: Duration = Duration::from_secs(60);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The deadline of the request being served on this task, if its caller sent a budget.
pub fn inherited() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// The deadline of a call about to be made with `timeout` of its own: the sooner of the two.
pub fn for_call(timeout: Duration) -> Instant {
    let own = Instant::now() + timeout;
    inherited().map_or(own, |d| d.min(own))
}

/// Parse a budget header's value: whole milliseconds, at most [`MAX_BUDGET`].
pub fn parse_budget(value: &str) -> Option<Duration> {
    let ms: u64 = value.trim().parse().ok()?;
    Some(Duration::from_millis(ms).min(MAX_BUDGET))
}

/// Middleware: serve the request inside the deadline its caller's budget sets, so the calls
/// it makes get only what is left (see [`for_call`]). A request without one has none.
pub async fn within_budget(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let budget = req
        .headers()
        .get(BUDGET_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_budget);
    match budget {
        Some(budget) => {
            DEADLINE
                .scope(Instant::now() + budget, next.call(req))
                .await
        }
        None => next.call(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `fut` as if serving a request with `budget` left.
    async fn scope<F: std::future::Future>(budget: Duration, fut: F) -> F::Output {
        DEADLINE.scope(Instant::now() + budget, fut).await
    }

    #[test]
    fn a_budget_is_whole_milliseconds_and_capped() {
        assert_eq!(parse_budget("1200"), Some(Duration::from_millis(1200)));
        assert_eq!(parse_budget(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_budget("999999999"), Some(MAX_BUDGET));
        assert_eq!(parse_budget("-5"), None);
        assert_eq!(parse_budget("1.5"), None);
        assert_eq!(parse_budget(""), None);
    }

    #[tokio::test]
    async fn a_call_gets_the_sooner_of_its_own_timeout_and_the_inherited_deadline() {
        let own = Duration::from_secs(5);
        assert!(inherited().is_none());
        let alone = for_call(own) - Instant::now();
        assert!(alone > Duration::from_millis(4900) && alone <= own);

        let inside = scope(Duration::from_millis(300), async {
            for_call(own) - Instant::now()
        })
        .await;
        assert!(inside <= Duration::from_millis(300), "{inside:?}");

        let generous = scope(Duration::from_secs(30), async {
            for_call(own) - Instant::now()
        })
        .await;
        assert!(
            generous <= own,
            "an inherited budget never extends a call's own timeout"
        );
    }
}
