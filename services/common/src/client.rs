//! Service-to-service HTTP calls (sync mode), always through nginx.
//!
//! Every internal endpoint of the suite is idempotent by a key in its path or body (a hold is
//! keyed by reservation id, a charge by order id), so a call that failed in transport or met a
//! 502/504, or nginx's own 503 (no replica answered), is retried with exponential backoff and
//! jitter. A replica's own 503 (`database_busy`, `database_unavailable`) is passed on at once:
//! retrying a busy service only makes it busier. A call has one budget for all its attempts
//! (the sooner of its own timeout and what is left of the request it serves, see
//! [`crate::deadline`]); each attempt gets what is left of it and passes that on to the callee,
//! and an attempt that could not finish in time is not started. A peer's own error answer
//! (404, 409, 422…) is passed on unchanged, never retried.

use crate::auth::INTERNAL_KEY_HEADER;
use crate::config::CommonConfig;
use crate::deadline::{self, BUDGET_HEADER};
use crate::error::{ApiError, ErrorBody};
use crate::telemetry::propagate;
use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tracing::Instrument as _;

#[derive(Clone)]
pub struct ServiceClient {
    http: reqwest::Client,
    base: String,
    internal_key: String,
    timeout: Duration,
    backoff: ExponentialBuilder,
}

/// An attempt with less than this left is not started: it could not finish.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

/// What one attempt ended with, before retry decides.
#[derive(Debug)]
enum Failure {
    Transport(reqwest::Error),
    Status(StatusCode, Option<ErrorBody>),
    Decode(String),
    /// The call's budget ran out before an attempt could start.
    OutOfTime,
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            // A 503 is retried only when no replica answered (nginx's own answer): a replica
            // that says it is busy or its database is away is not helped by more calls.
            Failure::Status(s, body) => match s.as_u16() {
                502 | 504 => true,
                503 => body
                    .as_ref()
                    .is_none_or(|b| b.code == "upstream_unavailable"),
                _ => false,
            },
            Failure::Decode(_) | Failure::OutOfTime => false,
        }
    }
}

impl ServiceClient {
    pub fn new(config: &CommonConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.upstream_timeout_ms))
            .connect_timeout(Duration::from_millis(500))
            // Keep connections to nginx warm: a new TCP handshake per call costs more than
            // the call itself on loopback.
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base: config.upstream_url.trim_end_matches('/').to_string(),
            internal_key: config.internal_key.clone(),
            timeout: Duration::from_millis(config.upstream_timeout_ms),
            backoff: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(20))
                .with_max_delay(Duration::from_millis(400))
                .with_max_times(3)
                .with_jitter(),
        })
    }

    /// POST `body` to `path` (starting with `/internal/`) and decode a 2xx answer.
    pub async fn post<B: Serialize + Sync, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ApiError> {
        let url = format!("{}{}", self.base, path);
        let url = url.as_str();
        let span = propagate::client_span("POST", path);
        let traceparent = propagate::traceparent_of(&span);
        let traceparent = traceparent.as_deref();
        let attempt = |left: Duration| async move {
            let resp = self
                .request(self.http.post(url), left, traceparent)
                .json(body)
                .send()
                .await
                .map_err(Failure::Transport)?;
            decode(resp).await
        };
        self.run(path, attempt).instrument(span).await
    }

    /// GET `path` and decode a 2xx answer.
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ApiError> {
        let url = format!("{}{}", self.base, path);
        let url = url.as_str();
        let span = propagate::client_span("GET", path);
        let traceparent = propagate::traceparent_of(&span);
        let traceparent = traceparent.as_deref();
        let attempt = |left: Duration| async move {
            let resp = self
                .request(self.http.get(url), left, traceparent)
                .send()
                .await
                .map_err(Failure::Transport)?;
            decode(resp).await
        };
        self.run(path, attempt).instrument(span).await
    }

    /// An attempt with `left` of the call's budget: its timeout, the budget passed on, and
    /// the trace it belongs to.
    fn request(
        &self,
        builder: reqwest::RequestBuilder,
        left: Duration,
        traceparent: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let passed_on = left.saturating_sub(deadline::MARGIN).as_millis();
        let builder = builder
            .header(INTERNAL_KEY_HEADER, &self.internal_key)
            .header(BUDGET_HEADER, passed_on.to_string())
            .timeout(left);
        match traceparent {
            Some(traceparent) => builder.header(propagate::TRACEPARENT, traceparent),
            None => builder,
        }
    }

    async fn run<R, F, Fut>(&self, path: &str, mut attempt: F) -> Result<R, ApiError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: std::future::Future<Output = Result<R, Failure>>,
    {
        let deadline = deadline::for_call(self.timeout);
        let timed = || {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let started = (left >= MIN_ATTEMPT).then(|| attempt(left));
            async move {
                match started {
                    Some(fut) => fut.await,
                    None => Err(Failure::OutOfTime),
                }
            }
        };
        timed
            .retry(self.backoff)
            .when(Failure::retryable)
            .notify(|f, wait| tracing::debug!(%path, ?f, ?wait, "retrying internal call"))
            .await
            .map_err(|f| {
                let status = match &f {
                    Failure::Status(status, _) => Some(status.as_u16()),
                    _ => None,
                };
                propagate::failed(&tracing::Span::current(), status);
                into_api_error(path, f)
            })
    }
}

async fn decode<R: DeserializeOwned>(resp: reqwest::Response) -> Result<R, Failure> {
    let status = resp.status();
    if status.is_success() {
        let bytes = resp.bytes().await.map_err(Failure::Transport)?;
        return serde_json::from_slice(&bytes).map_err(|e| Failure::Decode(e.to_string()));
    }
    let body = resp
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Err(Failure::Status(status, body))
}

fn into_api_error(path: &str, failure: Failure) -> ApiError {
    match failure {
        Failure::OutOfTime => {
            tracing::warn!(%path, "internal call ran out of its budget");
            ApiError::unavailable(
                "upstream_timeout",
                "a downstream service did not answer in time",
            )
        }
        Failure::Transport(e) if e.is_timeout() => {
            tracing::warn!(%path, error = %e, "internal call timed out");
            ApiError::unavailable(
                "upstream_timeout",
                "a downstream service did not answer in time",
            )
        }
        Failure::Transport(e) => {
            tracing::warn!(%path, error = %e, "internal call failed");
            ApiError::unavailable(
                "upstream_unavailable",
                "a downstream service is unavailable",
            )
        }
        Failure::Status(status, _) if matches!(status.as_u16(), 502..=504) => {
            ApiError::unavailable(
                "upstream_unavailable",
                "a downstream service is unavailable",
            )
        }
        Failure::Status(status, Some(body)) => ApiError::from_status(status.as_u16(), body),
        Failure::Status(status, None) => ApiError::Internal(anyhow::anyhow!(
            "{path} answered {status} without an error body"
        )),
        Failure::Decode(e) => {
            ApiError::Internal(anyhow::anyhow!("{path}: undecodable answer: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: Option<&str>) -> Failure {
        Failure::Status(
            StatusCode::from_u16(code).expect("status"),
            body.map(|c| ErrorBody {
                code: c.into(),
                message: "m".into(),
                extra: serde_json::Map::new(),
            }),
        )
    }

    #[test]
    fn only_an_unreachable_peer_is_retried_never_a_busy_one() {
        assert!(status(502, None).retryable());
        assert!(status(504, None).retryable());
        assert!(status(503, Some("upstream_unavailable")).retryable());
        assert!(
            status(503, None).retryable(),
            "a bodiless 503 is nobody's answer"
        );
        for busy in [
            "database_busy",
            "database_unavailable",
            "cache_busy",
            "draining",
        ] {
            assert!(!status(503, Some(busy)).retryable(), "{busy}");
        }
        for own in [400, 404, 409, 422, 429, 500] {
            assert!(!status(own, Some("x")).retryable(), "{own}");
        }
        assert!(!Failure::Decode("x".into()).retryable());
    }
}
