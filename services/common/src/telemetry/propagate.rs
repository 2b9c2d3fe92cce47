//! The spans a checkout crosses, and the W3C `traceparent` that ties them into one trace: on
//! the requests a service serves ([`ServerSpan`], under tracing-actix-web's middleware), on
//! the calls it makes ([`client_span`], [`traceparent_of`]), in the outbox row an event
//! is appended with ([`current_traceparent`]), and in the AMQP headers the relay publishes
//! it with ([`publishing`]) and a consumer reads it from ([`received`], [`process_span`]).
//! Names, kinds and times are docs/tracing.md's. With tracing off every function here
//! answers `None` or a disabled span after one check.

use super::tracer;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::BasicProperties;
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C header, on HTTP requests and AMQP messages alike.
pub const TRACEPARENT: &str = "traceparent";

/// The AMQP header with the instant the relay sent a message, in microseconds since the
/// epoch: where the message's `receive` span starts.
pub const SENT_AT_HEADER: &str = "x-sent-at-us";

fn format(span: &SpanContext) -> Option<String> {
    span.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags().to_u8()
        )
    })
}

/// A carrier of one `traceparent` value, read where it is (a header of a request or a
/// message) without copying it into a map first.
struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

/// The context `traceparent` names (as a remote parent), when it parses.
pub fn parent_from(traceparent: &str) -> Option<Context> {
    let cx = TraceContextPropagator::new().extract(&OneHeader(traceparent));
    cx.span().span_context().is_valid().then_some(cx)
}

/// The `traceparent` a call made under `span` carries: sampled or not, so the callee follows
/// the caller's decision instead of starting a trace of its own.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    tracer()?;
    if span.is_disabled() {
        return None;
    }
    format(span.context().span().span_context())
}

/// The `traceparent` an event appended now is stored with: the current span's, when that
/// span is recorded (an event of an unrecorded trace starts no spans downstream).
pub fn current_traceparent() -> Option<String> {
    tracer()?;
    let span = tracing::Span::current();
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let context = cx.span().span_context().clone();
    context.is_sampled().then(|| format(&context)).flatten()
}

fn without_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(path, _)| path)
}

/// `path` without its query, its ids written `{id}` (UUIDs, numbers), for a span name that
/// groups calls.
pub fn path_template(path: &str) -> String {
    without_query(path)
        .split('/')
        .map(|segment| {
            let id = uuid::Uuid::try_parse(segment).is_ok()
                || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()));
            if id {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The span of one outbound call (all its attempts), a child of the current span; disabled
/// when tracing is off.
pub fn client_span(method: &str, path: &str) -> tracing::Span {
    if tracer().is_none() {
        return tracing::Span::none();
    }
    let name = format!("{method} {}", path_template(path));
    tracing::info_span!(
        "call",
        otel.name = %name,
        otel.kind = "client",
        http.request.method = %method,
        url.path = %without_query(path),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// What the outbox row of a traced event carries to the relay.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub traceparent: String,
    /// When the row was inserted (its `clock_timestamp()`).
    pub created_at: SystemTime,
}

/// A traced event on its way to the broker: its `publish` span, open until
/// [`Publishing::end`].
pub struct Publishing {
    cx: Context,
}

impl Publishing {
    /// The publish is over: confirmed (`ok`) or given up.
    pub fn end(self, ok: bool) {
        let span = self.cx.span();
        if !ok {
            span.set_status(Status::error("not confirmed"));
        }
        span.end();
    }
}

/// The span of each request served: its name (`METHOD route`), kind and status, its parent
/// from the request's `traceparent`, and nothing else. tracing-actix-web's default span
/// records a dozen fields more (host, client address, user agent, target, a request id, ...),
/// paid on every request, sampled or not.
pub struct ServerSpan;

impl tracing_actix_web::RootSpanBuilder for ServerSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let route = request.match_pattern();
        let route = route.as_deref().unwrap_or("default");
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("{} {route}", request.method()),
            otel.kind = "server",
            http.route = %route,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            flashsale.held = tracing::field::Empty,
        );
        let parent = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parent_from);
        if let Some(parent) = parent {
            let _ = span.set_parent(parent);
        }
        span
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => {
                // A status poll the service held until the status changed: its time is the
                // wait for the events, which a reader keeps apart from the hops.
                if response
                    .headers()
                    .contains_key(crate::changes::PREFERENCE_APPLIED)
                {
                    span.record("flashsale.held", true);
                }
                response.status()
            }
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        let verdict = if status.is_server_error() {
            "ERROR"
        } else {
            "OK"
        };
        span.record("otel.status_code", verdict);
    }
}

/// Just claimed by the relay: the event's `outbox` span (written → now) and its `publish`
/// span (now → [`Publishing::end`]), and the AMQP headers that carry the latter to the
/// consumer. `None` when tracing is off or the row's parent does not parse.
pub fn publishing(event: &str, outbound: &Outbound) -> Option<(Publishing, FieldTable)> {
    let tracer = tracer()?;
    let parent = parent_from(&outbound.traceparent)?;
    let now = SystemTime::now();
    let mut outbox = tracer
        .span_builder(format!("outbox {event}"))
        .with_kind(SpanKind::Internal)
        .with_start_time(outbound.created_at.min(now))
        .start_with_context(tracer, &parent);
    outbox.end_with_timestamp(now);
    let publish = tracer
        .span_builder(format!("publish {event}"))
        .with_kind(SpanKind::Producer)
        .with_start_time(now)
        .start_with_context(tracer, &parent);
    let cx = parent.with_span(publish);
    let traceparent = format(cx.span().span_context())?;
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from(TRACEPARENT),
        AMQPValue::LongString(traceparent.into()),
    );
    headers.insert(
        ShortString::from(SENT_AT_HEADER),
        AMQPValue::LongLongInt(micros(now)),
    );
    Some((Publishing { cx }, headers))
}

fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn header<'a>(properties: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    properties.headers().as_ref()?.inner().get(name)
}

/// A message just taken up by a consumer: its `receive` span (sent → now), ended, and the
/// context its handling continues in. `None` when tracing is off or the message carries no
/// trace.
pub fn received(properties: &BasicProperties, event: &str) -> Option<Context> {
    let tracer = tracer()?;
    let parent = match header(properties, TRACEPARENT)? {
        AMQPValue::LongString(s) => parent_from(std::str::from_utf8(s.as_bytes()).ok()?)?,
        _ => return None,
    };
    let now = SystemTime::now();
    let sent = match header(properties, SENT_AT_HEADER) {
        Some(AMQPValue::LongLongInt(us)) => u64::try_from(*us)
            .ok()
            .map(|us| UNIX_EPOCH + Duration::from_micros(us)),
        _ => None,
    }
    .unwrap_or(now)
    .min(now);
    let mut receive = tracer
        .span_builder(format!("receive {event}"))
        .with_kind(SpanKind::Consumer)
        .with_start_time(sent)
        .start_with_context(tracer, &parent);
    receive.end_with_timestamp(now);
    Some(parent.with_span(receive))
}

/// The `process` span of one message of a batch of `batch` messages, a child of its
/// `receive` span; disabled when the message carries no trace.
pub fn process_span(
    event: &str,
    message_id: uuid::Uuid,
    trace: Option<&Context>,
    batch: usize,
) -> tracing::Span {
    let Some(parent) = trace else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        "process",
        otel.name = %format!("process {event}"),
        otel.kind = "consumer",
        messaging.message.id = %message_id,
        messaging.batch.message_count = batch,
    );
    let _ = span.set_parent(parent.clone());
    span
}

/// Mark `span` (a client or process span) as failed, with the HTTP status when there is one.
pub fn failed(span: &tracing::Span, status: Option<u16>) {
    if span.is_disabled() {
        return;
    }
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    span.record("otel.status_code", "ERROR");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_a_path_are_written_as_a_placeholder() {
        assert_eq!(
            path_template("/internal/reservations/6a2f0c1e-8a8f-4a51-9f3c-0c8e8d1b2a3f/confirm"),
            "/internal/reservations/{id}/confirm"
        );
        assert_eq!(
            path_template("/internal/gateway/carts/42"),
            "/internal/gateway/carts/{id}"
        );
        assert_eq!(path_template("/internal/holds"), "/internal/holds");
        assert_eq!(
            path_template("/internal/gateway/carts/6a2f0c1e-8a8f-4a51-9f3c-0c8e8d1b2a3f?user_id=7"),
            "/internal/gateway/carts/{id}"
        );
    }

    #[test]
    fn a_traceparent_is_read_back_as_the_parent_it_names() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = parent_from(tp).expect("parses");
        let span = cx.span().span_context().clone();
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span.is_sampled() && span.is_remote());
        assert_eq!(format(&span).as_deref(), Some(tp));
        assert!(parent_from("00-zz-00f067aa0ba902b7-01").is_none());
    }

    #[test]
    fn with_tracing_off_nothing_is_made() {
        // No test of this binary installs a tracer.
        assert!(client_span("GET", "/x").is_disabled());
        assert!(current_traceparent().is_none());
        let outbound = Outbound {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            created_at: SystemTime::now(),
        };
        assert!(publishing("E", &outbound).is_none());
    }
}
