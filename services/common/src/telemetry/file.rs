//! Spans appended to a file as OTLP JSON lines: each export batch is one
//! `ExportTraceServiceRequest` in OTLP's JSON encoding (hex trace and span ids, nanosecond
//! times as strings), on a line of its own, the format of the OpenTelemetry Collector's file
//! exporter. A replica started again appends to its file; a replica killed mid-write leaves at
//! most a truncated last line, which readers skip.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug)]
pub struct OtlpJsonFile {
    file: Mutex<File>,
    resource: ResourceAttributesWithSchema,
}

impl OtlpJsonFile {
    /// Open `path` for appending, creating it and its folder.
    pub fn create(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("opening TRACE_FILE {}: {e}", path.display()))?;
        // A replica killed mid-write left a cut last line: end it, so the first line written
        // now is not glued to it and lost with it.
        if ends_unfinished(&mut file)? {
            file.write_all(b"\n")?;
        }
        Ok(Self {
            file: Mutex::new(file),
            resource: ResourceAttributesWithSchema::default(),
        })
    }

    /// One batch as the line written for it (newline included).
    pub fn line(&self, batch: Vec<SpanData>) -> serde_json::Result<Vec<u8>> {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let mut line = serde_json::to_vec(&request)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// Whether `file` is not empty and its last byte is not a newline.
fn ends_unfinished(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

impl SpanExporter for OtlpJsonFile {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let line = self
            .line(batch)
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
        let mut file = self
            .file
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("trace file lock poisoned".into()))?;
        // One write per line: with O_APPEND a line lands whole or, if the process dies in
        // the call, cut at its end.
        file.write_all(&line)
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        let file = self
            .file
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("trace file lock poisoned".into()))?;
        file.sync_data()
            .map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt as _, Tracer as _};
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn spans_are_appended_as_otlp_json_lines() {
        let dir = std::env::temp_dir().join(format!("otlp-file-{}", uuid::Uuid::new_v4()));
        let path = dir.join("traces").join("order-0.jsonl");
        // Twice: a replica started again appends to its file.
        for round in 0..2u64 {
            let provider = SdkTracerProvider::builder()
                .with_resource(
                    Resource::builder_empty()
                        .with_attributes([KeyValue::new("service.name", "order")])
                        .build(),
                )
                .with_simple_exporter(OtlpJsonFile::create(&path).expect("file"))
                .build();
            let tracer = provider.tracer("t");
            let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + round);
            let parent = tracer
                .span_builder("POST /api/payments")
                .with_kind(SpanKind::Server)
                .with_start_time(start)
                .start(&tracer);
            let cx = opentelemetry::Context::new().with_span(parent);
            let mut child = tracer
                .span_builder("publish PaymentSucceeded")
                .with_kind(SpanKind::Producer)
                .with_start_time(start + Duration::from_millis(2))
                .start_with_context(&tracer, &cx);
            child.end_with_timestamp(start + Duration::from_millis(5));
            cx.span()
                .end_with_timestamp(start + Duration::from_millis(7));
            provider.shutdown().expect("flush");
        }
        let text = std::fs::read_to_string(&path).expect("written");
        let whole = text.clone();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
            .collect();
        // The simple exporter sends each span as it ends: two spans a round.
        assert_eq!(lines.len(), 4, "{text}");
        let spans: Vec<&serde_json::Value> = lines
            .iter()
            .map(|l| {
                let rs = &l["resourceSpans"][0];
                assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
                assert_eq!(
                    rs["resource"]["attributes"][0]["value"]["stringValue"],
                    "order"
                );
                &rs["scopeSpans"][0]["spans"][0]
            })
            .collect();
        let (child, parent) = (spans[0], spans[1]);
        assert_eq!(child["name"], "publish PaymentSucceeded");
        assert_eq!(parent["name"], "POST /api/payments");
        let trace = child["traceId"].as_str().expect("hex trace id");
        assert_eq!(trace.len(), 32);
        assert_eq!(parent["traceId"], trace);
        assert_eq!(child["parentSpanId"], parent["spanId"]);
        assert_eq!(parent["spanId"].as_str().map(str::len), Some(16));
        // Nanoseconds as strings, OTLP JSON's encoding of 64-bit integers.
        assert_eq!(parent["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(parent["endTimeUnixNano"], "1700000000007000000");
        assert_eq!(child["startTimeUnixNano"], "1700000000002000000");
        // SPAN_KIND_SERVER = 2, SPAN_KIND_PRODUCER = 4.
        assert_eq!(parent["kind"], 2);
        assert_eq!(child["kind"], 4);
        let second = spans[3];
        assert_eq!(second["startTimeUnixNano"], "1700000001000000000");

        // A replica killed mid-line, then started again: its cut line stays cut, its new
        // lines stay whole.
        std::fs::write(&path, format!("{whole}{{\"resourceSpans\":[{{\"reso")).expect("cut");
        let exporter = OtlpJsonFile::create(&path).expect("reopen");
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .build();
        provider.tracer("t").start("after the restart").end();
        provider.shutdown().expect("flush");
        let text = std::fs::read_to_string(&path).expect("written");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(serde_json::from_str::<serde_json::Value>(lines[4]).is_err());
        let last: serde_json::Value = serde_json::from_str(lines[5]).expect("a whole line");
        assert_eq!(
            last["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"],
            "after the restart"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
