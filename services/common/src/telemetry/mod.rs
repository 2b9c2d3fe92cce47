//! Logging and tracing.
//!
//! Logs: one line per event on stderr, filtered by `RUST_LOG` (default `info`).
//!
//! Traces (docs/tracing.md): OpenTelemetry spans for each request served, each call made,
//! each event waiting in the outbox, published, waiting in the broker and handled, with the
//! W3C `traceparent` carried in HTTP and AMQP headers ([`propagate`]), so one checkout is one
//! trace in both modes. `TRACE_SAMPLE_RATIO` (0 to 1) decides; at 0, the default, nothing is
//! installed: no layer, no middleware, no header read or written. Spans leave in batches
//! from a background thread to `TRACE_FILE` (OTLP JSON lines, [`file`]) and/or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/HTTP JSON), and are flushed when the [`Telemetry`]
//! guard `main` holds is dropped.

pub mod file;
pub mod propagate;

use crate::config::Mode;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;
use serde::Deserialize;
use std::sync::OnceLock;
use tracing_subscriber::filter::{filter_fn, FilterExt as _};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// What the tracing settings say, read from the environment (docs/tracing.md).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct TraceSettings {
    /// `TRACE_SAMPLE_RATIO`: share of traces recorded, 0 (off, the default) to 1.
    #[serde(default)]
    pub trace_sample_ratio: f64,
    /// `TRACE_FILE`: OTLP JSON lines appended here.
    #[serde(default)]
    pub trace_file: Option<String>,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: OTLP/HTTP JSON sent to `<endpoint>/v1/traces`.
    #[serde(default)]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// `INSTANCE`, `HOSTNAME`, `MODE`, `RUN_ID`: the replica the spans come from.
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub run_id: Option<String>,
}

impl TraceSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let settings: Self = crate::config::from_env()?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.trace_sample_ratio),
            "TRACE_SAMPLE_RATIO must be between 0 and 1, got {}",
            self.trace_sample_ratio
        );
        Ok(())
    }

    /// Tracing is on: a share above 0.
    pub fn enabled(&self) -> bool {
        self.trace_sample_ratio > 0.0
    }

    fn file(&self) -> Option<&str> {
        self.trace_file.as_deref().filter(|f| !f.is_empty())
    }

    fn endpoint(&self) -> Option<&str> {
        self.otel_exporter_otlp_endpoint
            .as_deref()
            .filter(|e| !e.is_empty())
    }
}

/// The tracer spans are made with when tracing is on; unset when it is off.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The tracer, when tracing is on: what every span-making function asks first, so tracing
/// off costs one load.
pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Whether this process records traces.
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// Keeps the span exporters alive; dropping it flushes what is queued and stops them.
#[must_use = "dropping the guard stops tracing"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("flushing the last spans failed: {e}");
            }
        }
    }
}

/// Logging always, tracing as the environment says (docs/tracing.md). A tracing setting that
/// does not parse is an error: the replica does not start with tracing silently off.
pub fn init(service: &str) -> anyhow::Result<Telemetry> {
    let settings = &TraceSettings::from_env()?;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    // Log lines are events only: request spans would otherwise add their fields to each line.
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .compact()
        .with_filter(filter.and(filter_fn(|meta| meta.is_event())));
    let provider = settings
        .enabled()
        .then(|| provider(service, settings))
        .transpose()?;
    let otel = provider.as_ref().map(|provider| {
        let tracer = provider.tracer("flashsale");
        let _ = TRACER.set(tracer.clone());
        // Spans only, at info and above: log events do not become span events.
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter_fn(|meta| {
                meta.is_span() && *meta.level() <= tracing::Level::INFO
            }))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    tracing::info!(
        service,
        trace_sample_ratio = settings.trace_sample_ratio,
        "starting"
    );
    Ok(Telemetry { provider })
}

/// The most spans a replica queues for export; past it, spans are dropped, never waited for.
const MAX_QUEUED_SPANS: usize = 2048;

fn provider(service: &str, settings: &TraceSettings) -> anyhow::Result<SdkTracerProvider> {
    let instance = crate::config::instance_label(
        service,
        settings.instance.as_deref(),
        settings.hostname.as_deref(),
    );
    let mut attributes = vec![
        KeyValue::new("service.name", service.to_string()),
        KeyValue::new("service.instance.id", instance),
        KeyValue::new("flashsale.mode", settings.mode.as_str()),
    ];
    if let Some(run_id) = settings.run_id.as_ref().filter(|r| !r.is_empty()) {
        attributes.push(KeyValue::new("flashsale.run_id", run_id.clone()));
    }
    let resource = Resource::builder_empty()
        .with_attributes(attributes)
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.trace_sample_ratio,
        ))));
    if let Some(path) = settings.file() {
        builder = builder.with_span_processor(batch(file::OtlpJsonFile::create(path)?));
    }
    if let Some(endpoint) = settings.endpoint() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()?;
        builder = builder.with_span_processor(batch(exporter));
    }
    Ok(builder.build())
}

fn batch(exporter: impl SpanExporter + 'static) -> BatchSpanProcessor {
    BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(MAX_QUEUED_SPANS)
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_outside_0_to_1_is_refused() {
        for bad in [-0.1, 1.5] {
            let settings = TraceSettings {
                trace_sample_ratio: bad,
                ..TraceSettings::default()
            };
            let err = settings.check().expect_err("refused").to_string();
            assert!(err.contains("TRACE_SAMPLE_RATIO"), "{err}");
        }
        let on = TraceSettings {
            trace_sample_ratio: 0.01,
            ..TraceSettings::default()
        };
        assert!(on.check().is_ok() && on.enabled());
        assert!(!TraceSettings::default().enabled());
    }
}
