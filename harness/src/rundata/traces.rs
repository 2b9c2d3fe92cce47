//! The services' spans (docs/tracing.md): each replica appends to `TRACE_FILE`
//! (`<run_dir>/traces/<instance>.jsonl`, kept in a report as `raw/<mode>/traces/`) one OTLP
//! `ExportTraceServiceRequest` per line, in the OTLP JSON encoding (the OpenTelemetry
//! Collector file exporter's format): ids as hex strings, times as strings of nanoseconds,
//! the span kind as its enum number or name.
//!
//! Only what the report's hop breakdown needs is kept, compactly: a span's trace and span ids,
//! its parent, its kind, its times, and its hop (`service.name` and span name, interned once
//! per distinct pair). A line that does not parse (a replica killed mid-write leaves a
//! truncated last line) is skipped and counted, never an error.

use anyhow::Context;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// A suite's span files, under its run folder and under `raw/<mode>/` of a report.
pub const TRACES_DIR: &str = "traces";
/// The extension of a replica's span file (`<instance>.jsonl`).
pub const TRACE_FILE_EXTENSION: &str = "jsonl";

/// OTLP's span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The enum's number (`2`) or its name (`SPAN_KIND_SERVER`, or `server`); anything else
    /// is unspecified.
    fn parse(value: &serde_json::Value) -> SpanKind {
        let number = match value {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => {
                let name = s.to_ascii_uppercase();
                let name = name.strip_prefix("SPAN_KIND_").unwrap_or(&name);
                match name {
                    "INTERNAL" => Some(1),
                    "SERVER" => Some(2),
                    "CLIENT" => Some(3),
                    "PRODUCER" => Some(4),
                    "CONSUMER" => Some(5),
                    _ => s.parse().ok(),
                }
            }
            _ => None,
        };
        match number {
            Some(1) => SpanKind::Internal,
            Some(2) => SpanKind::Server,
            Some(3) => SpanKind::Client,
            Some(4) => SpanKind::Producer,
            Some(5) => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// A hop: the service a span ran in and the span's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hop {
    pub service: String,
    pub name: String,
    /// A status poll the service held until the status changed (`flashsale.held`): its time
    /// is the wait for the events, not work of its own.
    pub held: bool,
}

impl Hop {
    /// `inventory process ReservationRequested.v1`, `reservation GET /api/reservations/{id}
    /// (held)`: how the report names it.
    pub fn label(&self) -> String {
        let held = if self.held { " (held)" } else { "" };
        format!("{} {}{held}", self.service, self.name)
    }
}

/// One span, as the breakdown needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub trace_id: u128,
    pub span_id: u64,
    /// `None` for a root (no parent, or an all-zero one).
    pub parent_span_id: Option<u64>,
    pub kind: SpanKind,
    /// Unix nanoseconds.
    pub start_ns: u64,
    /// Unix nanoseconds, never before `start_ns`.
    pub end_ns: u64,
    /// Index into [`Spans::hops`].
    pub hop: u32,
}

/// Every span of a set of files, with their hops interned.
#[derive(Debug, Default)]
pub struct Spans {
    pub spans: Vec<Span>,
    /// The distinct hops, indexed by [`Span::hop`].
    pub hops: Vec<Hop>,
    /// Lines that did not parse (a truncated last line, a corrupt one), over all files.
    pub skipped_lines: usize,
    /// Spans without a valid trace or span id, or without times.
    pub skipped_spans: usize,
    /// The span files read.
    pub files: usize,
    index: HashMap<Hop, u32>,
}

impl Spans {
    pub fn hop(&self, span: &Span) -> &Hop {
        &self.hops[span.hop as usize]
    }

    fn intern(&mut self, service: &str, name: &str, held: bool) -> u32 {
        let key = Hop {
            service: service.to_string(),
            name: name.to_string(),
            held,
        };
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        let i = u32::try_from(self.hops.len()).expect("fewer than 2^32 distinct hops");
        self.hops.push(key.clone());
        self.index.insert(key, i);
        i
    }

    /// Add the spans of one line (one `ExportTraceServiceRequest`); a line that does not
    /// parse is counted in [`Spans::skipped_lines`].
    pub fn add_line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(request) = serde_json::from_str::<ExportRequest>(line) else {
            self.skipped_lines += 1;
            return;
        };
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .attributes
                .iter()
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.get("stringValue"))
                .and_then(|v| v.as_str())
                .unwrap_or("unknown_service")
                .to_string();
            for scope in resource_spans.scope_spans {
                for raw in scope.spans {
                    match raw.parse() {
                        Some((trace_id, span_id, parent_span_id, kind, start_ns, end_ns)) => {
                            let hop = self.intern(&service, &raw.name, raw.held());
                            self.spans.push(Span {
                                trace_id,
                                span_id,
                                parent_span_id,
                                kind,
                                start_ns,
                                end_ns,
                                hop,
                            });
                        }
                        None => self.skipped_spans += 1,
                    }
                }
            }
        }
    }

    /// Add every span of one file.
    pub fn read_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = std::io::BufReader::new(file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            match std::str::from_utf8(&line) {
                Ok(text) => self.add_line(text),
                Err(_) => self.skipped_lines += 1,
            }
        }
        self.files += 1;
        Ok(())
    }
}

/// Every span of the `*.jsonl` files of `dir`; a missing folder has none.
pub fn read_dir(dir: &Path) -> anyhow::Result<Spans> {
    let mut spans = Spans::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(spans),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == TRACE_FILE_EXTENSION))
        .collect();
    paths.sort();
    for path in paths {
        spans.read_file(&path)?;
    }
    Ok(spans)
}

// The parts of OTLP JSON read here; every other field is ignored.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportRequest {
    #[serde(default)]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(default)]
    resource: Resource,
    #[serde(default, alias = "instrumentationLibrarySpans")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize, Default)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    /// An `AnyValue`: `{"stringValue": "order"}` and the like.
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<RawSpan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpan {
    #[serde(default)]
    trace_id: String,
    #[serde(default)]
    span_id: String,
    #[serde(default)]
    parent_span_id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: serde_json::Value,
    #[serde(default)]
    start_time_unix_nano: Option<Nanos>,
    #[serde(default)]
    end_time_unix_nano: Option<Nanos>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

/// OTLP JSON writes 64-bit integers as strings; a number is taken too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Nanos {
    Number(u64),
    Text(String),
}

impl Nanos {
    fn get(&self) -> Option<u64> {
        match self {
            Nanos::Number(n) => Some(*n),
            Nanos::Text(s) => s.trim().parse().ok(),
        }
    }
}

type Parsed = (u128, u64, Option<u64>, SpanKind, u64, u64);

impl RawSpan {
    /// Whether the span says it was a held status poll (`flashsale.held`, a boolValue).
    fn held(&self) -> bool {
        self.attributes.iter().any(|a| {
            a.key == "flashsale.held"
                && a.value.get("boolValue") == Some(&serde_json::Value::Bool(true))
        })
    }

    /// Its ids, parent, kind and times; `None` when an id or a time is missing or invalid
    /// (an all-zero trace or span id is invalid in W3C trace context).
    fn parse(&self) -> Option<Parsed> {
        // 16 hex digits fit a u64.
        let span = |text: &str| hex_id(text, 16).map(|id| id as u64);
        let trace_id = hex_id(&self.trace_id, 32).filter(|id| *id != 0)?;
        let span_id = span(&self.span_id).filter(|id| *id != 0)?;
        let parent_span_id = match self.parent_span_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(span(text)?).filter(|id| *id != 0),
        };
        let start = self.start_time_unix_nano.as_ref()?.get()?;
        let end = self.end_time_unix_nano.as_ref()?.get()?;
        Some((
            trace_id,
            span_id,
            parent_span_id,
            SpanKind::parse(&self.kind),
            start,
            end.max(start),
        ))
    }
}

/// A hex id of exactly `digits` digits (at most 32).
fn hex_id(text: &str, digits: usize) -> Option<u128> {
    let text = text.trim();
    if text.len() != digits || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

    /// One line of a span file with `spans` (written on several lines here, for reading).
    fn line(spans: &str) -> String {
        let spans = spans.replace('\n', "");
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"order"}}}},{{"key":"service.instance.id","value":{{"stringValue":"order-1"}}}}]}},"scopeSpans":[{{"scope":{{"name":"flashsale"}},"spans":[{spans}]}}]}}]}}"#
        )
    }

    #[test]
    fn a_line_gives_its_spans_with_ids_kinds_and_times_in_either_encoding() {
        let mut spans = Spans::default();
        spans.add_line(&line(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"b7ad6b7169203331","parentSpanId":"","name":"POST /api/payments","kind":2,"startTimeUnixNano":"1000","endTimeUnixNano":"5000"}},
               {{"traceId":"{TRACE}","spanId":"00f067aa0ba902b7","parentSpanId":"b7ad6b7169203331","name":"POST /internal/holds","kind":"SPAN_KIND_CLIENT","startTimeUnixNano":2000,"endTimeUnixNano":3000,"attributes":[{{"key":"http.response.status_code","value":{{"intValue":"200"}}}}]}}"#
        )));

        assert_eq!(spans.skipped_lines, 0);
        assert_eq!(spans.spans.len(), 2);
        let (server, client) = (spans.spans[0], spans.spans[1]);
        assert_eq!(server.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(server.parent_span_id, None);
        assert_eq!(server.kind, SpanKind::Server);
        assert_eq!((server.start_ns, server.end_ns), (1000, 5000));
        assert_eq!(client.parent_span_id, Some(0xb7ad6b7169203331));
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!((client.start_ns, client.end_ns), (2000, 3000));
        assert_eq!(spans.hop(&server).label(), "order POST /api/payments");
        assert_eq!(spans.hop(&client).label(), "order POST /internal/holds");
        assert_eq!(spans.hops.len(), 2);
    }

    #[test]
    fn kinds_are_read_by_number_or_name_and_hops_are_interned_once() {
        let kinds = [
            (serde_json::json!(4), SpanKind::Producer),
            (serde_json::json!("SPAN_KIND_CONSUMER"), SpanKind::Consumer),
            (serde_json::json!("internal"), SpanKind::Internal),
            (serde_json::json!(0), SpanKind::Unspecified),
            (serde_json::Value::Null, SpanKind::Unspecified),
        ];
        for (value, kind) in kinds {
            assert_eq!(SpanKind::parse(&value), kind, "{value}");
        }
        let mut spans = Spans::default();
        for id in ["0000000000000001", "0000000000000002"] {
            spans.add_line(&line(&format!(
                r#"{{"traceId":"{TRACE}","spanId":"{id}","name":"publish OrderPlaced","kind":4,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}"#
            )));
        }
        assert_eq!(spans.spans.len(), 2);
        assert_eq!(spans.hops.len(), 1);
        assert_eq!(spans.spans[0].hop, spans.spans[1].hop);
    }

    #[test]
    fn a_truncated_line_is_skipped_and_counted_and_bad_spans_are_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = line(&format!(
            r#"{{"traceId":"{TRACE}","spanId":"0000000000000001","name":"GET /api/products","kind":2,"startTimeUnixNano":"10","endTimeUnixNano":"20"}},
               {{"traceId":"{TRACE}","spanId":"0000000000000000","name":"zero id","kind":2,"startTimeUnixNano":"10","endTimeUnixNano":"20"}},
               {{"traceId":"{TRACE}","spanId":"0000000000000003","name":"no end","kind":2,"startTimeUnixNano":"10"}}"#
        ));
        let truncated = &good[..good.len() / 2];
        std::fs::write(
            dir.path().join("gateway-0.jsonl"),
            format!("{good}\n\n{truncated}"),
        )
        .expect("write");
        std::fs::write(dir.path().join("gateway-0.log"), "not spans").expect("write");

        let spans = read_dir(dir.path()).expect("reads");

        assert_eq!(spans.files, 1, "only .jsonl files are span files");
        assert_eq!(spans.spans.len(), 1);
        assert_eq!(
            spans.skipped_lines, 1,
            "the truncated line, not the blank one"
        );
        assert_eq!(
            spans.skipped_spans, 2,
            "the all-zero id and the span without an end"
        );
        assert_eq!(
            read_dir(&dir.path().join("missing")).expect("none").files,
            0
        );
    }
}
