//! Metrics: what a service measures of itself and where it sends it. The schema (names of
//! measurements, fields and tags) is `docs/metrics.md`; [`schema`] holds the same names as
//! constants, and tests check the Grafana dashboard against them.
//!
//! About once a second ([`MetricsConfig::interval_ms`]) the background task samples the
//! process's CPU and resident memory ([`process`]), takes the per-route request counters that
//! the middleware ([`RequestMetrics`]) filled, and, in async mode, the depth of the service's
//! own queues ([`queue`]). The points, encoded once as line protocol ([`line`]), go into a
//! bounded buffer that a writer task drains to InfluxDB 2 or to a file ([`sink`]).
//!
//! Architecture invariant: no request ever waits on a metrics write. The request path touches
//! atomics only; a slow or absent InfluxDB costs buffered lines, then dropped (and counted)
//! ones, never latency.
//!
//! ```ignore
//! let metrics = Metrics::from_env(SERVICE, &common)?;
//! HttpServer::new(move || App::new().wrap(metrics.middleware()) /* ... */);
//! let task = metrics.spawn(cancel.clone()); // joins the other background tasks
//! ```

pub mod line;
mod process;
pub mod queue;
mod requests;
mod sink;

pub use requests::{Registry, RequestMetrics, RouteSnapshot, UNMATCHED};

use crate::config::{CommonConfig, Mode};
use line::FieldValue;
use serde::Deserialize;
use sink::{Buffer, Sink};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The names every point uses: the code side of `docs/metrics.md`.
pub mod schema {
    pub const PROCESS: &str = "process";
    pub const HTTP: &str = "http";
    pub const QUEUE: &str = "queue";

    pub const TAG_SERVICE: &str = "service";
    pub const TAG_INSTANCE: &str = "instance";
    pub const TAG_MODE: &str = "mode";
    pub const TAG_RUN_ID: &str = "run_id";
    pub const TAG_ROUTE: &str = "route";
    pub const TAG_METHOD: &str = "method";
    pub const TAG_QUEUE: &str = "queue";

    pub const CPU_PERCENT: &str = "cpu_percent";
    pub const CPU_PERCENT_NORMALIZED: &str = "cpu_percent_normalized";
    pub const RSS_BYTES: &str = "rss_bytes";
    pub const DROPPED_POINTS: &str = "dropped_points";

    pub const REQUESTS: &str = "requests";
    pub const ERRORS: &str = "errors";
    pub const P50_MS: &str = "p50_ms";
    pub const P95_MS: &str = "p95_ms";
    pub const MAX_MS: &str = "max_ms";

    /// On `http` points: whether the requests held a status poll (`Prefer: wait` applied,
    /// [`WAIT_HELD`]) or not ([`WAIT_NONE`]); a held poll's time is the wait for an outcome,
    /// so latency readers leave it out, as the report does with k6's.
    pub const TAG_WAIT: &str = "wait";
    pub const WAIT_HELD: &str = "held";
    pub const WAIT_NONE: &str = "none";

    /// The run marks the dashboard's "Runs" annotation reads: one point per k6 run of a
    /// compose study, at the scenario's start. Not a service's point, and nothing writes it
    /// yet: the compose study runner that will is still to come, so the annotation stays
    /// empty until then. Its tags are
    /// [`TAG_MODE`], [`TAG_RUN_ID`], [`TAG_LABEL`] (`warmup-1`, `run-500-2`) and [`TAG_KIND`]
    /// (`warmup` | `counted`); its one field is [`DURATION_S`].
    pub const STUDY_RUN: &str = "study_run";
    pub const TAG_LABEL: &str = "label";
    pub const TAG_KIND: &str = "kind";
    pub const DURATION_S: &str = "duration_s";

    /// Written by Telegraf's docker input in the compose path, not by a service: every
    /// container's CPU and memory, tagged with its compose service. `usage_percent` is of one
    /// core (100 = one core busy), on the point tagged `cpu=cpu-total`.
    pub mod containers {
        pub const CPU: &str = "docker_container_cpu";
        pub const MEM: &str = "docker_container_mem";
        pub const TAG_COMPOSE_SERVICE: &str = "com.docker.compose.service";
        pub const TAG_CPU: &str = "cpu";
        pub const CPU_TOTAL: &str = "cpu-total";
        pub const USAGE_PERCENT: &str = "usage_percent";
        pub const USAGE: &str = "usage";
        /// The container, one of a compose service's replicas.
        pub const TAG_CONTAINER_NAME: &str = "container_name";

        /// Telegraf's two measurements as the compose path keeps them (its config passes
        /// nothing else): their tags besides `mode` and `run_id` (Telegraf's global tags)
        /// and their fields.
        pub const MEASUREMENTS: [super::Measurement; 2] = [
            super::Measurement {
                name: CPU,
                tags: &[TAG_COMPOSE_SERVICE, TAG_CONTAINER_NAME, TAG_CPU],
                fields: &[USAGE_PERCENT],
            },
            super::Measurement {
                name: MEM,
                tags: &[TAG_COMPOSE_SERVICE, TAG_CONTAINER_NAME],
                fields: &[USAGE],
            },
        ];

        pub fn measurement(name: &str) -> Option<&'static super::Measurement> {
            MEASUREMENTS.iter().find(|m| m.name == name)
        }
    }

    pub const READY: &str = "ready";
    pub const UNACKED: &str = "unacked";
    pub const CONSUMERS: &str = "consumers";

    /// Tags on every point.
    pub const COMMON_TAGS: [&str; 4] = [TAG_SERVICE, TAG_INSTANCE, TAG_MODE, TAG_RUN_ID];

    /// One measurement: its own tags (besides [`COMMON_TAGS`]) and its fields.
    pub struct Measurement {
        pub name: &'static str,
        pub tags: &'static [&'static str],
        pub fields: &'static [&'static str],
    }

    pub const MEASUREMENTS: [Measurement; 3] = [
        Measurement {
            name: PROCESS,
            tags: &[],
            fields: &[
                CPU_PERCENT,
                CPU_PERCENT_NORMALIZED,
                RSS_BYTES,
                DROPPED_POINTS,
            ],
        },
        Measurement {
            name: HTTP,
            tags: &[TAG_ROUTE, TAG_METHOD, TAG_WAIT],
            fields: &[REQUESTS, ERRORS, P50_MS, P95_MS, MAX_MS],
        },
        Measurement {
            name: QUEUE,
            tags: &[TAG_QUEUE],
            fields: &[READY, UNACKED, CONSUMERS],
        },
    ];

    pub fn measurement(name: &str) -> Option<&'static Measurement> {
        MEASUREMENTS.iter().find(|m| m.name == name)
    }
}

/// Settings, from the environment (`METRICS_INTERVAL_MS`, `INFLUX_URL`, ...). Empty values
/// count as unset.
#[derive(Clone, Deserialize)]
pub struct MetricsConfig {
    /// `METRICS_INTERVAL_MS`: sampling period. Default 1000.
    #[serde(default = "defaults::interval_ms")]
    pub metrics_interval_ms: u64,
    /// `METRICS_BUFFER`: most points held while the sink is slow or away; past it the oldest
    /// are dropped and counted. Default 10,000 (about 2 MB of lines, ~10 minutes of points).
    #[serde(default = "defaults::buffer")]
    pub metrics_buffer: usize,
    /// `METRICS_WRITE_TIMEOUT_MS`: a write taking longer fails and is retried. Default 5000.
    #[serde(default = "defaults::write_timeout_ms")]
    pub metrics_write_timeout_ms: u64,
    /// `METRICS_FILE`: the line-protocol file to append to when InfluxDB is not configured.
    #[serde(default)]
    pub metrics_file: Option<String>,
    /// `METRICS_DIR`: without `METRICS_FILE`, append to `<METRICS_DIR>/<instance>.lp`.
    #[serde(default)]
    pub metrics_dir: Option<String>,
    /// `INFLUX_URL`, `INFLUX_ORG`, `INFLUX_BUCKET`, `INFLUX_TOKEN`: all four select InfluxDB 2.
    #[serde(default)]
    pub influx_url: Option<String>,
    #[serde(default)]
    pub influx_org: Option<String>,
    #[serde(default)]
    pub influx_bucket: Option<String>,
    #[serde(default)]
    pub influx_token: Option<String>,
    /// `RUN_ID`: the run these points belong to (set by the harness). Default `none`.
    #[serde(default)]
    pub run_id: Option<String>,
    /// `RABBITMQ_MANAGEMENT_URL`, e.g. `http://guest:guest@rabbitmq:15672`: read queue depth
    /// (with unacked messages) there instead of by passive declares.
    #[serde(default)]
    pub rabbitmq_management_url: Option<String>,
    /// `HOSTNAME`: names an instance when `INSTANCE` is unset (a container's id under Docker,
    /// where every replica's pid is 1).
    #[serde(default)]
    pub hostname: Option<String>,
}

mod defaults {
    pub fn interval_ms() -> u64 {
        1000
    }
    pub fn buffer() -> usize {
        10_000
    }
    pub fn write_timeout_ms() -> u64 {
        5000
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every MetricsConfig field has a default")
    }
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl MetricsConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        crate::config::from_env()
    }

    /// The sink these settings select, if any. InfluxDB wins over the file.
    fn sink(&self, instance: &str) -> anyhow::Result<Option<Sink>> {
        let influx = (
            set(&self.influx_url),
            set(&self.influx_org),
            set(&self.influx_bucket),
            set(&self.influx_token),
        );
        if let (Some(url), Some(org), Some(bucket), Some(token)) = influx {
            // The crate panics on a bad URL: check it here and fail start-up instead.
            reqwest::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("INFLUX_URL {url:?} is not a URL: {e}"))?;
            return Ok(Some(Sink::Influx {
                client: influxdb2::Client::new(url, org, token),
                org: org.to_string(),
                bucket: bucket.to_string(),
            }));
        }
        if influx.0.is_some() || influx.1.is_some() || influx.2.is_some() || influx.3.is_some() {
            tracing::warn!(
                "metrics: INFLUX_URL, INFLUX_ORG, INFLUX_BUCKET and INFLUX_TOKEN must all be set \
                 to use InfluxDB; falling back to METRICS_FILE"
            );
        }
        let path = match (set(&self.metrics_file), set(&self.metrics_dir)) {
            (Some(file), _) => Some(PathBuf::from(file)),
            (None, Some(dir)) => Some(PathBuf::from(dir).join(format!("{instance}.lp"))),
            (None, None) => None,
        };
        Ok(path.map(|path| Sink::File { path, file: None }))
    }
}

/// Who is measured: the tags on every point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    pub service: String,
    pub instance: String,
    pub mode: Mode,
    pub run_id: String,
}

impl Labels {
    fn encoded(&self) -> String {
        line::encode_tags(&[
            (schema::TAG_SERVICE, &self.service),
            (schema::TAG_INSTANCE, &self.instance),
            (schema::TAG_MODE, self.mode.as_str()),
            (schema::TAG_RUN_ID, &self.run_id),
        ])
    }
}

/// A service's metrics: cheap to clone; the middleware and the background task share it.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    labels: Labels,
    tags: String,
    interval: Duration,
    write_timeout: Duration,
    /// None: metrics are off (no sink configured).
    registry: Option<Arc<Registry>>,
    buffer: Buffer,
    sink: std::sync::Mutex<Option<Sink>>,
    queues: std::sync::Mutex<Option<queue::QueueSampler>>,
}

impl Metrics {
    /// The metrics of `service` as the environment configures them: tags from `common`
    /// (`INSTANCE`, `MODE`) and `RUN_ID`; in async mode the service's own queue and its
    /// dead-letter queue are sampled too, by every replica (readers take the largest value per
    /// queue, never the sum).
    pub fn from_env(service: &str, common: &CommonConfig) -> anyhow::Result<Metrics> {
        let config = MetricsConfig::from_env()?;
        let instance = crate::config::instance_label(
            service,
            common.instance.as_deref(),
            config.hostname.as_deref(),
        );
        let labels = Labels {
            service: service.to_string(),
            instance,
            mode: common.mode,
            run_id: set(&config.run_id).unwrap_or("none").to_string(),
        };
        let metrics = Metrics::new(config.clone(), labels)?;
        // Only a service that consumes events owns a queue (crate::events::SUBSCRIPTIONS).
        let owns_queue = crate::events::SUBSCRIPTIONS
            .iter()
            .any(|(name, _)| *name == service);
        if common.mode == Mode::Async && owns_queue {
            metrics.sample_queues(
                common.amqp_url.clone(),
                set(&config.rabbitmq_management_url).map(str::to_string),
                vec![
                    crate::messaging::queue_name(&common.amqp_prefix, service),
                    crate::messaging::dead_letter_queue(&common.amqp_prefix, service),
                ],
            );
        }
        Ok(metrics)
    }

    /// Metrics with explicit settings and tags. Off (a pass-through middleware, a task that
    /// returns at once) when `config` selects no sink.
    pub fn new(config: MetricsConfig, labels: Labels) -> anyhow::Result<Metrics> {
        let sink = config.sink(&labels.instance)?;
        match &sink {
            Some(sink) => tracing::info!(
                sink = %sink.describe(),
                run_id = %labels.run_id,
                "metrics: every {} ms",
                config.metrics_interval_ms
            ),
            None => {
                tracing::info!("metrics: off (none of INFLUX_*, METRICS_FILE, METRICS_DIR is set)")
            }
        }
        Ok(Metrics {
            inner: Arc::new(Inner {
                tags: labels.encoded(),
                labels,
                interval: Duration::from_millis(config.metrics_interval_ms.max(10)),
                write_timeout: Duration::from_millis(config.metrics_write_timeout_ms.max(1)),
                registry: sink.is_some().then(|| Arc::new(Registry::default())),
                buffer: Buffer::new(config.metrics_buffer),
                sink: std::sync::Mutex::new(sink),
                queues: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Metrics that record and write nothing.
    pub fn off(labels: Labels) -> Metrics {
        let config = MetricsConfig::default();
        Metrics::new(config, labels).expect("no sink configured, nothing to fail")
    }

    /// Also sample these queues' depth every interval (before [`Metrics::spawn`]).
    pub fn sample_queues(
        &self,
        amqp_url: String,
        management_url: Option<String>,
        queues: Vec<String>,
    ) {
        if self.is_on() && !queues.is_empty() {
            let sampler = queue::QueueSampler::new(amqp_url, management_url, queues);
            *self.inner.queues.lock().unwrap_or_else(|e| e.into_inner()) = Some(sampler);
        }
    }

    pub fn is_on(&self) -> bool {
        self.inner.registry.is_some()
    }

    pub fn labels(&self) -> &Labels {
        &self.inner.labels
    }

    /// The actix middleware recording every request into these metrics.
    pub fn middleware(&self) -> RequestMetrics {
        RequestMetrics::new(self.inner.registry.clone())
    }

    /// Points dropped since start because the buffer was full.
    pub fn dropped_points(&self) -> u64 {
        self.inner.buffer.dropped()
    }

    /// Start sampling and writing until `cancel`; then one last sample is taken and written
    /// (within the write timeout). Call once; later calls return a finished task.
    pub fn spawn(&self, cancel: CancellationToken) -> JoinHandle<()> {
        let sink = self
            .inner
            .sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let queues = self
            .inner
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(sink) = sink else {
            return tokio::spawn(async {});
        };
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run(sink, queues, cancel).await })
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Inner {
    async fn run(
        self: Arc<Self>,
        sink: Sink,
        mut queues: Option<queue::QueueSampler>,
        cancel: CancellationToken,
    ) {
        let done = CancellationToken::new();
        let writer = {
            let inner = self.clone();
            let done = done.clone();
            tokio::spawn(async move {
                sink::run_writer(
                    &inner.buffer,
                    sink,
                    inner.write_timeout,
                    inner.interval,
                    done,
                )
                .await;
            })
        };
        // Queue depth has its own task: a broker that is slow to answer must not delay the
        // process and request points.
        let queue_task = queues.take().map(|mut sampler| {
            let inner = self.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(inner.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut last_log: Option<std::time::Instant> = None;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = cancel.cancelled() => return,
                    }
                    let (depths, error) = tokio::select! {
                        sampled = sampler.sample() => sampled,
                        _ = cancel.cancelled() => return,
                    };
                    inner.buffer.push(inner.queue_lines(&depths, now_ns()));
                    if let Some(e) = error {
                        if last_log.is_none_or(|t| t.elapsed() >= inner.interval) {
                            last_log = Some(std::time::Instant::now());
                            tracing::warn!("metrics: queue depth: {e}");
                        }
                    }
                }
            })
        });
        let mut process = process::ProcessSampler::new();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = cancel.cancelled() => break,
            }
            let lines = self.sample(&mut process);
            self.buffer.push(lines);
        }
        if let Some(task) = queue_task {
            let _ = task.await;
        }
        // The last, partial interval.
        let lines = self.sample(&mut process);
        self.buffer.push(lines);
        done.cancel();
        let _ = writer.await;
    }

    /// The `process` point and one `http` point per route that saw requests.
    fn sample(&self, process: &mut process::ProcessSampler) -> Vec<String> {
        use schema::*;
        let ts = now_ns();
        let p = process.sample();
        let mut lines = vec![line::encode(
            PROCESS,
            &self.tags,
            &[],
            &[
                (CPU_PERCENT, FieldValue::Float(p.cpu_percent)),
                (
                    CPU_PERCENT_NORMALIZED,
                    FieldValue::Float(p.cpu_percent_normalized),
                ),
                (
                    RSS_BYTES,
                    FieldValue::Int(i64::try_from(p.rss_bytes).unwrap_or(i64::MAX)),
                ),
                (
                    DROPPED_POINTS,
                    FieldValue::Int(i64::try_from(self.buffer.dropped()).unwrap_or(i64::MAX)),
                ),
            ],
            ts,
        )];
        if let Some(registry) = &self.registry {
            for r in registry.take() {
                lines.push(line::encode(
                    HTTP,
                    &self.tags,
                    &[
                        (TAG_ROUTE, &r.route),
                        (TAG_METHOD, r.method),
                        (TAG_WAIT, if r.held { WAIT_HELD } else { WAIT_NONE }),
                    ],
                    &[
                        (REQUESTS, count(r.requests)),
                        (ERRORS, count(r.errors)),
                        (P50_MS, FieldValue::Float(r.p50_ms)),
                        (P95_MS, FieldValue::Float(r.p95_ms)),
                        (MAX_MS, FieldValue::Float(r.max_ms)),
                    ],
                    ts,
                ));
            }
        }
        lines
    }

    fn queue_lines(&self, depths: &[queue::QueueDepth], ts: i64) -> Vec<String> {
        use schema::*;
        depths
            .iter()
            .map(|d| {
                let mut fields = vec![(READY, count(d.ready))];
                if let Some(unacked) = d.unacked {
                    fields.push((UNACKED, count(unacked)));
                }
                fields.push((CONSUMERS, count(d.consumers)));
                line::encode(QUEUE, &self.tags, &[(TAG_QUEUE, &d.queue)], &fields, ts)
            })
            .collect()
    }
}

fn count(n: u64) -> FieldValue {
    FieldValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
}
