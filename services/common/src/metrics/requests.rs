//! Per-route request metrics: the actix middleware that times every request, and the registry
//! it records into.
//!
//! The request path only touches atomics: a read lock on the route table (a write lock only
//! the first time a route is seen), one histogram bucket increment, and a `fetch_max`. The
//! sampler swaps the counters out once per interval. No allocation but the matched pattern's
//! `String`, which actix builds.

use crate::changes::PREFERENCE_APPLIED;
use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::{Method, StatusCode};
use futures::future::{ready, Either, LocalBoxFuture, Ready};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The route tag of a request that matched no resource (404s, the default service).
pub const UNMATCHED: &str = "unmatched";

/// Latency histogram in microseconds, log-linear: exact below 16 µs, then 16 buckets per
/// power of two (at most 1/16 = 6.25 % wide, so a reported percentile is within ±3.2 % of
/// the true one), up to 2^27 µs ≈ 134 s. 384 counters, 3 KiB per route.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
const MAX_MSB: u32 = 26;
const BUCKETS: usize = ((MAX_MSB - SUB_BITS + 2) as u64 * SUB) as usize;

fn bucket_index(us: u64) -> usize {
    let us = us.min((1 << (MAX_MSB + 1)) - 1);
    if us < SUB {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (us >> shift) & (SUB - 1);
    ((u64::from(shift) + 1) * SUB + sub) as usize
}

/// The value a bucket stands for: its midpoint, in microseconds.
fn bucket_value(index: usize) -> f64 {
    let i = index as u64;
    if i < SUB {
        return i as f64;
    }
    let shift = i / SUB - 1;
    let low = (SUB + i % SUB) << shift;
    low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, us: u64) {
        self.buckets[bucket_index(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// Swap every bucket to zero; returns the counts.
    fn take(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect()
    }
}

/// The `q` quantile (0..=1) of `counts` (as [`Histogram::take`] returns them), in
/// microseconds; `total` is their sum.
fn quantile(counts: &[u64], total: u64, q: f64) -> f64 {
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total.max(1));
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_value(i);
        }
    }
    0.0
}

/// One route's counters over the current interval.
struct RouteStats {
    latency: Histogram,
    errors: AtomicU64,
    max_us: AtomicU64,
}

impl RouteStats {
    fn new() -> Self {
        Self {
            latency: Histogram::new(),
            errors: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    fn record(&self, status: StatusCode, us: u64) {
        self.latency.record(us);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        if status.is_server_error() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One route's numbers over one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSnapshot {
    pub method: &'static str,
    pub route: String,
    /// The requests were held status polls (the response carried `Preference-Applied`).
    pub held: bool,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// The route table: (method, held) → matched pattern → counters. A held poll's time is the
/// wait for an outcome, not the service's answer time, so it is counted apart.
#[derive(Default)]
pub struct Registry {
    routes: RwLock<HashMap<Key, HashMap<String, RouteStats>>>,
}

/// A route table's outer key: the method's tag and whether the poll was held.
type Key = (&'static str, bool);

/// Methods other than the standard ones share one tag, so a client cannot grow the table.
fn method_tag(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl Registry {
    /// Count one request. `route` is the matched pattern, None when nothing matched; `held`
    /// whether the response said it held the poll (`Preference-Applied`).
    pub fn record(
        &self,
        method: &Method,
        route: Option<String>,
        held: bool,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let key = (method_tag(method), held);
        let route_str = route.as_deref().unwrap_or(UNMATCHED);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        {
            // A poisoned lock only means a panic elsewhere mid-record; the counters are atomics
            // and still valid.
            let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
            if let Some(stats) = routes.get(&key).and_then(|m| m.get(route_str)) {
                stats.record(status, us);
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes
            .entry(key)
            .or_default()
            .entry(route.unwrap_or_else(|| UNMATCHED.to_string()))
            .or_insert_with(RouteStats::new)
            .record(status, us);
    }

    /// Take the interval's numbers of every route that saw a request, and start a new interval.
    pub fn take(&self) -> Vec<RouteSnapshot> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (&(method, held), by_route) in routes.iter() {
            for (route, stats) in by_route {
                let counts = stats.latency.take();
                let errors = stats.errors.swap(0, Ordering::Relaxed);
                let max_us = stats.max_us.swap(0, Ordering::Relaxed);
                let requests: u64 = counts.iter().sum();
                if requests == 0 {
                    continue;
                }
                let max_ms = max_us as f64 / 1000.0;
                // A bucket's midpoint may lie above the largest value seen in it.
                let q = |q| (quantile(&counts, requests, q) / 1000.0).min(max_ms);
                out.push(RouteSnapshot {
                    method,
                    route: route.clone(),
                    held,
                    requests,
                    errors,
                    p50_ms: q(0.50),
                    p95_ms: q(0.95),
                    max_ms,
                });
            }
        }
        out
    }
}

/// The middleware: `App::new().wrap(metrics.middleware())`. Outermost is best, so the time
/// includes the other middlewares. With metrics off it only passes requests through.
#[derive(Clone)]
pub struct RequestMetrics {
    registry: Option<Arc<Registry>>,
}

impl RequestMetrics {
    pub(crate) fn new(registry: Option<Arc<Registry>>) -> Self {
        Self { registry }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestMetricsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestMetricsMiddleware {
            service,
            registry: self.registry.clone(),
        }))
    }
}

pub struct RequestMetricsMiddleware<S> {
    service: S,
    registry: Option<Arc<Registry>>,
}

impl<S, B> Service<ServiceRequest> for RequestMetricsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future =
        Either<S::Future, LocalBoxFuture<'static, Result<ServiceResponse<B>, actix_web::Error>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let Some(registry) = self.registry.clone() else {
            return Either::Left(self.service.call(req));
        };
        let start = Instant::now();
        let method = req.method().clone();
        let fut = self.service.call(req);
        Either::Right(Box::pin(async move {
            let result = fut.await;
            let elapsed = start.elapsed();
            match &result {
                // After routing the request knows its resource, so this is a lookup by the
                // resource's index, not a second walk of the route table.
                Ok(res) => registry.record(
                    &method,
                    res.request().match_pattern(),
                    res.headers().contains_key(PREFERENCE_APPLIED),
                    res.status(),
                    elapsed,
                ),
                Err(e) => registry.record(
                    &method,
                    None,
                    false,
                    e.as_response_error().status_code(),
                    elapsed,
                ),
            }
            result
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_indexes_are_monotonic_and_values_fall_inside_their_bucket() {
        let mut last = 0;
        for us in (0..200_000u64).chain([1 << 26, (1 << 27) - 1, 1 << 40, u64::MAX]) {
            let i = bucket_index(us);
            assert!(i >= last, "index went down at {us}");
            assert!(i < BUCKETS, "{us} → {i}");
            last = i;
            if us < (1 << 27) {
                let v = bucket_value(i);
                assert!(
                    (v - us as f64).abs() <= (us as f64 / 32.0).max(0.5),
                    "{us} µs stands as {v}"
                );
            }
        }
    }

    #[test]
    fn quantiles_and_counts_come_out_per_route_and_reset_each_interval() {
        let registry = Registry::default();
        for ms in 1..=100u64 {
            registry.record(
                &Method::GET,
                Some("/api/products/{id}".into()),
                false,
                StatusCode::OK,
                Duration::from_millis(ms),
            );
        }
        registry.record(
            &Method::POST,
            None,
            false,
            StatusCode::INTERNAL_SERVER_ERROR,
            Duration::from_millis(3),
        );
        let mut snaps = registry.take();
        snaps.sort_by(|a, b| a.route.cmp(&b.route));
        assert_eq!(snaps.len(), 2);
        let get = &snaps[0];
        assert_eq!(
            (get.method, get.route.as_str()),
            ("GET", "/api/products/{id}")
        );
        assert_eq!((get.requests, get.errors), (100, 0));
        assert!((get.p50_ms - 50.0).abs() < 2.0, "{get:?}");
        assert!((get.p95_ms - 95.0).abs() < 3.5, "{get:?}");
        assert_eq!(get.max_ms, 100.0);
        let post = &snaps[1];
        assert_eq!(
            (post.route.as_str(), post.requests, post.errors),
            (UNMATCHED, 1, 1)
        );
        assert!(
            registry.take().is_empty(),
            "a quiet interval writes no point"
        );
    }

    #[actix_web::test]
    async fn a_held_and_a_plain_poll_of_one_route_are_counted_apart() {
        use actix_web::{test, web, App, HttpRequest, HttpResponse};
        let registry = Arc::new(Registry::default());
        let app = test::init_service(
            App::new()
                .wrap(RequestMetrics::new(Some(registry.clone())))
                .route(
                    "/api/orders/{id}",
                    web::get().to(|req: HttpRequest| async move {
                        let mut res = HttpResponse::Ok();
                        if req.headers().contains_key("prefer") {
                            res.insert_header(("Preference-Applied", "wait=5"));
                        }
                        res.finish()
                    }),
                ),
        )
        .await;
        for prefer in [true, false, false] {
            let mut req = test::TestRequest::get().uri("/api/orders/7");
            if prefer {
                req = req.insert_header(("Prefer", "wait=5"));
            }
            assert!(test::call_service(&app, req.to_request())
                .await
                .status()
                .is_success());
        }
        let mut snaps = registry.take();
        snaps.sort_by_key(|s| s.held);
        let seen: Vec<_> = snaps
            .iter()
            .map(|s| (s.method, s.route.as_str(), s.held, s.requests))
            .collect();
        assert_eq!(
            seen,
            [
                ("GET", "/api/orders/{id}", false, 2),
                ("GET", "/api/orders/{id}", true, 1)
            ]
        );
    }
}
