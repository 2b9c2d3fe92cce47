//! The serving skeleton every service shares: binding, JSON extractor errors, health checks,
//! the JSON 404/405 fallback, and running the server beside background loops until SIGTERM.

use crate::auth::{InternalKey, TokenKeys};
use crate::config::CommonConfig;
use crate::error::ApiError;
use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};
use futures::future::BoxFuture;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Set when the replica received SIGTERM: it still serves, but tells every client to close
/// the connection after the response, and `/readyz` answers 503.
static DRAINING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How long a replica keeps serving after SIGTERM with `Connection: close` on every answer
/// before it stops accepting: nginx retires its keep-alive connections to the replica itself,
/// after a complete response, instead of finding them closed under a request it just sent (a
/// POST that meets a closed connection is never retried). Connections refused afterwards are
/// safe: nginx retries a refused connect on the next replica.
pub const LAME_DUCK: Duration = Duration::from_millis(1500);

/// Middleware: while draining, every response closes its connection.
pub async fn close_when_draining(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    if DRAINING.load(std::sync::atomic::Ordering::Relaxed) {
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(res)
}

/// How long a replica keeps an idle keep-alive connection. Longer than nginx's upstream
/// keepalive timeout (60 s): the proxy must be the side that closes an idle connection,
/// otherwise it may send a request on a connection the replica is closing at that instant,
/// and a POST in that race is never retried.
pub const KEEP_ALIVE: Duration = Duration::from_secs(75);

/// Bind the service's listener (port 0 picks a free port) and, when `PORT_FILE` is set, write
/// the bound port there so the harness can route nginx to it. Every replica binds here, so
/// this is where one with a weak secret refuses to start ([`CommonConfig::check_secrets`]).
pub fn bind(config: &CommonConfig) -> anyhow::Result<TcpListener> {
    config.check_secrets()?;
    let listener = TcpListener::bind((config.host.as_str(), config.port))?;
    let port = listener.local_addr()?.port();
    if let Some(path) = &config.port_file {
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, port.to_string())?;
        std::fs::rename(&tmp, path)?;
    }
    Ok(listener)
}

/// A readiness check: resolves to `Ok` when one dependency answers.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// What `/readyz` checks, by name.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn with_database(mut self, pool: crate::db::PgPool) -> Self {
        self.checks.push((
            "database",
            Arc::new(move || {
                let pool = pool.clone();
                Box::pin(async move { crate::db::ping(&pool).await })
            }),
        ));
        self
    }

    pub fn with_redis(mut self, pool: crate::cache::RedisPool) -> Self {
        self.checks.push((
            "redis",
            Arc::new(move || {
                let pool = pool.clone();
                Box::pin(async move { crate::cache::ping(&pool).await })
            }),
        ));
        self
    }

    pub fn with_check(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }
}

/// App data and routes every service registers: extractor error handlers, token keys, the
/// internal key, `/healthz` and `/readyz`.
pub fn configure(cfg: &mut web::ServiceConfig, config: &CommonConfig, readiness: Readiness) {
    cfg.app_data(json_config(config.body_limit_bytes))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::Data::new(TokenKeys::new(
            &config.token_secret,
            config.token_ttl_secs,
        )))
        .app_data(web::Data::new(InternalKey(config.internal_key.clone())))
        .app_data(web::Data::new(readiness))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// JSON bodies: at most `limit` bytes, `application/json` only, and every way of getting it
/// wrong answered as a JSON error with its own status.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .content_type_required(true)
        .error_handler(move |err, _req| json_error(err, limit).into())
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::unprocessable("invalid_body", format!("invalid request body: {e}"))
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
        }
        other => ApiError::bad_request("malformed_body", format!("unreadable body: {other}")),
    }
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("malformed_path", format!("malformed path: {err}")).into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("malformed_query", format!("malformed query string: {err}")).into()
}

/// Fallback for unknown routes: a JSON 404.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::not_found("route"))
}

/// Middleware that gives actix's own bodiless answers (405 on a known path with another
/// method) the suite's JSON error body.
pub fn json_fallbacks<B: actix_web::body::MessageBody + 'static>(
) -> actix_web::middleware::ErrorHandlers<B> {
    use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
    ErrorHandlers::new().handler(actix_web::http::StatusCode::METHOD_NOT_ALLOWED, |res| {
        let (req, _) = res.into_parts();
        let res = actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
        Ok(ErrorHandlerResponse::Response(
            actix_web::dev::ServiceResponse::new(req, res).map_into_right_body(),
        ))
    })
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    if DRAINING.load(std::sync::atomic::Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "code": "draining",
            "message": "this replica is shutting down",
        }));
    }
    let mut failed = serde_json::Map::new();
    for (name, check) in &readiness.checks {
        if let Err(e) = check().await {
            failed.insert((*name).to_string(), format!("{e:#}").into());
        }
    }
    if failed.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "code": "not_ready",
            "message": "a dependency is unavailable",
            "failed": failed,
        }))
    }
}

/// Run `server` and the background `tasks` until SIGTERM/SIGINT (or `cancel`), then drain:
/// stop accepting, let in-flight requests finish within the grace period, cancel the loops
/// and wait for them.
pub async fn run_until_stopped(
    server: Server,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
) -> anyhow::Result<()> {
    let handle = server.handle();
    let mut server = tokio::spawn(server);
    let signalled = tokio::select! {
        _ = crate::shutdown::signal() => {
            tracing::info!("shutdown signal received, draining");
            true
        }
        _ = cancel.cancelled() => {
            tracing::info!("cancelled, draining");
            false
        }
        result = &mut server => {
            cancel.cancel();
            result??;
            return Ok(());
        }
    };
    // On a signal, lame duck first (see LAME_DUCK). The flag is process-wide, as a signal is:
    // an application stopped through its token (tests run several in one process) skips it.
    // Then graceful: stop accepting, finish in-flight requests (bounded by the server's
    // shutdown_timeout), and let the loops finish their current item.
    if signalled {
        DRAINING.store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(LAME_DUCK).await;
    }
    cancel.cancel();
    handle.stop(true).await;
    let _ = tokio::time::timeout(grace, futures::future::join_all(tasks)).await;
    let _ = tokio::time::timeout(grace, server).await;
    tracing::info!("stopped");
    Ok(())
}

/// The optional `Idempotency-Key` header of a POST: the same key, from the same user, has the
/// first request's effect only. At most [`Self::MAX_LEN`] visible ASCII characters; an empty
/// header counts as none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const HEADER: &'static str = "idempotency-key";
    pub const MAX_LEN: usize = 200;

    /// The key of a request, if it has one, else a 400 `invalid_idempotency_key`.
    pub fn from_headers(
        headers: &actix_web::http::header::HeaderMap,
    ) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get(Self::HEADER) else {
            return Ok(None);
        };
        let invalid = || {
            ApiError::bad_request(
                "invalid_idempotency_key",
                format!(
                    "Idempotency-Key must be at most {} visible ASCII characters",
                    Self::MAX_LEN
                ),
            )
        };
        let key = value.to_str().map_err(|_| invalid())?.trim();
        if key.len() > Self::MAX_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid());
        }
        Ok((!key.is_empty()).then(|| Self(key.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Extractor: the request's [`IdempotencyKey`], if any; a malformed one is a 400.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdempotencyHeader(pub Option<IdempotencyKey>);

impl IdempotencyHeader {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_ref().map(IdempotencyKey::as_str)
    }
}

impl actix_web::FromRequest for IdempotencyHeader {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(IdempotencyKey::from_headers(req.headers()).map(IdempotencyHeader))
    }
}

/// The id of what a keyed request creates: the same inputs give the same id (a UUID v5 of
/// `scope` and `parts`), so a request sent twice finds the row or key of the first.
pub fn derived_id(scope: &str, parts: &[&[u8]]) -> uuid::Uuid {
    let mut name = Vec::with_capacity(64);
    name.extend_from_slice(scope.as_bytes());
    for part in parts {
        // Length-prefixed, so that ("ab", "c") and ("a", "bc") never meet.
        name.extend_from_slice(&(part.len() as u32).to_be_bytes());
        name.extend_from_slice(part);
    }
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &name)
}

/// A service's running HTTP server with its background loops, as [`serve`] started it.
pub struct Service {
    port: u16,
    server: Server,
    cancel: CancellationToken,
    /// Background loops drained on shutdown (the sampler; async mode: broker supervisor,
    /// outbox relay; the sweeper, the reconciler).
    tasks: Vec<JoinHandle<()>>,
    /// Loops that start only when the service runs (the reservation's sweeper).
    on_run: Vec<Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>>,
    grace: Duration,
}

impl Service {
    /// Start `start` (given the service's token) when the service runs, and drain it with
    /// the others: a loop that must not run in a service that was only built.
    pub fn on_run(
        mut self,
        start: impl FnOnce(CancellationToken) -> JoinHandle<()> + Send + 'static,
    ) -> Self {
        self.on_run.push(Box::new(start));
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling it stops the service as SIGTERM does (tests use it to drain a service).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Serve until SIGTERM/SIGINT or the token, then drain ([`run_until_stopped`]).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut tasks = self.tasks;
        for start in self.on_run {
            tasks.push(start(self.cancel.clone()));
        }
        run_until_stopped(self.server, self.cancel, tasks, self.grace).await
    }
}

/// What every service starts from, before what differs: its database (created and migrated
/// with `migrations`), its listener (bound first, so a test can start it on port 0), its
/// readiness (the database), its shutdown token and its background tasks. [`Base::messaging`]
/// adds async mode's consumer and relay; [`Base::serve`] ends the build.
pub struct Base {
    pub service: &'static str,
    pub common: CommonConfig,
    pub pool: deadpool_postgres::Pool,
    pub listener: TcpListener,
    pub readiness: Readiness,
    pub cancel: CancellationToken,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Base {
    pub async fn new(
        service: &'static str,
        common: &CommonConfig,
        migrations: refinery::Runner,
    ) -> anyhow::Result<Self> {
        let pool = crate::db::setup(
            &common.database_url,
            &common.database_name(service),
            common.db_pool_size,
            migrations,
        )
        .await?;
        let listener = bind(common)?;
        Ok(Self {
            service,
            common: common.clone(),
            readiness: Readiness::default().with_database(pool.clone()),
            pool,
            listener,
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
        })
    }

    /// In async mode, the service's consumer and its outbox relay, connecting in the
    /// background: the service starts, and reports not ready, while RabbitMQ is away. `handler`
    /// is given the service's pool, the signal that wakes the relay after its commits, and the
    /// largest batch (`AMQP_BATCH_MAX`). In sync mode nothing. Answers the relay's signal, for
    /// the routes that append to the outbox.
    pub fn messaging(
        &mut self,
        handler: impl FnOnce(
            deadpool_postgres::Pool,
            crate::messaging::outbox::RelaySignal,
            usize,
        ) -> crate::messaging::Handler,
    ) -> crate::messaging::outbox::RelaySignal {
        let relay = crate::messaging::outbox::RelaySignal::default();
        if self.common.mode == crate::Mode::Async {
            let runtime = crate::messaging::AsyncRuntime::start_with_signal(
                &self.common,
                self.service,
                self.pool.clone(),
                relay.clone(),
                Some(handler(
                    self.pool.clone(),
                    relay.clone(),
                    usize::from(self.common.amqp_batch_max),
                )),
                self.cancel.clone(),
            );
            self.readiness = runtime.readiness(std::mem::take(&mut self.readiness));
            self.tasks.extend(runtime.tasks);
        }
        relay
    }

    /// The server, with the service's own `app` (its data and routes): [`serve`].
    pub fn serve<F>(self, app: F) -> anyhow::Result<Service>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        serve(
            self.service,
            &self.common,
            self.listener,
            self.readiness,
            self.cancel,
            self.tasks,
            app,
        )
    }
}

/// What every service's server is made of: the JSON fallbacks, the lame-duck and budget
/// middlewares, the request metrics (so the time they record includes the others), the
/// request's span outermost when tracing is on, `/healthz`, `/readyz`, `/metrics`, the extractor configs, then the service's own
/// `app` (its data and routes) and the JSON 404. Listening on `listener`, with the service's
/// metrics sampler added to `tasks`; a failure to start cancels `cancel`, so loops already
/// running (the messaging runtime) stop with it.
pub fn serve<F>(
    service: &'static str,
    common: &CommonConfig,
    listener: TcpListener,
    readiness: Readiness,
    cancel: CancellationToken,
    mut tasks: Vec<JoinHandle<()>>,
    app: F,
) -> anyhow::Result<Service>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let port = listener.local_addr()?.port();
    let sampler =
        crate::metrics::Metrics::from_env(service, common).inspect_err(|_| cancel.cancel())?;
    tasks.push(sampler.spawn(cancel.clone()));
    let metrics = sampler.middleware();
    let config = common.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(json_fallbacks())
            .wrap(actix_web::middleware::from_fn(close_when_draining))
            .wrap(actix_web::middleware::from_fn(
                crate::deadline::within_budget,
            ))
            .wrap(metrics.clone())
            // Each request's server span (docs/tracing.md), its parent read from the
            // request's `traceparent`; not even wrapped with tracing off.
            .wrap(actix_web::middleware::Condition::new(
                crate::telemetry::enabled(),
                tracing_actix_web::TracingLogger::<crate::telemetry::propagate::ServerSpan>::new(),
            ))
            .configure(|cfg| configure(cfg, &config, readiness.clone()))
            .configure(app.clone())
            .default_service(web::to(not_found))
    })
    .workers(common.workers)
    .keep_alive(KEEP_ALIVE)
    .disable_signals()
    .shutdown_timeout(common.shutdown_grace_secs)
    .listen(listener)
    .inspect_err(|_| cancel.cancel())?
    .run();
    tracing::info!(port, instance = %common.instance_name(service), "listening");
    Ok(Service {
        port,
        server,
        cancel,
        tasks,
        on_run: Vec::new(),
        grace: Duration::from_secs(common.shutdown_grace_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn key(value: &str) -> Result<Option<IdempotencyKey>, ApiError> {
        let req = TestRequest::default()
            .insert_header((IdempotencyKey::HEADER, value))
            .to_http_request();
        IdempotencyKey::from_headers(req.headers())
    }

    #[test]
    fn an_idempotency_key_of_up_to_200_characters_is_accepted() {
        let long = "k".repeat(200);
        assert_eq!(key(&long).expect("accepted"), Some(IdempotencyKey(long)));
        let none = TestRequest::default().to_http_request();
        assert_eq!(
            IdempotencyKey::from_headers(none.headers()).expect("accepted"),
            None
        );
        assert_eq!(key("").expect("accepted"), None, "empty counts as none");
    }

    #[test]
    fn a_longer_or_unprintable_idempotency_key_is_rejected() {
        for bad in ["k".repeat(201), "a b".into()] {
            let err = key(&bad).expect_err("accepted");
            assert_eq!(err.code(), "invalid_idempotency_key", "{bad:?}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_keep_their_parts_apart() {
        let a = derived_id("reservation", &[b"cart", b""]);
        assert_eq!(a, derived_id("reservation", &[b"cart", b""]));
        assert_ne!(a, derived_id("reservation", &[b"cart", b"k1"]));
        assert_ne!(a, derived_id("cart", &[b"cart", b""]));
        assert_ne!(
            derived_id("x", &[b"ab", b"c"]),
            derived_id("x", &[b"a", b"bc"])
        );
    }
}
