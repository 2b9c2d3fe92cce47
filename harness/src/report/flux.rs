//! Reading points back out of InfluxDB 2: a Flux query over its HTTP API (`POST
//! /api/v2/query`), the answer's annotated CSV turned into line-protocol [`Point`]s.
//!
//! The query is sent as JSON with a dialect asking for the `#datatype`, `#group` and
//! `#default` annotations and nanosecond times: a bare Flux body (`application/vnd.flux`) gets
//! InfluxDB's default dialect, which has no annotations, and without `#datatype` an integer
//! field cannot be told from a float.
//!
//! The answer is a stream of tables (`result,table,_start,_stop,_time,_value,_field,
//! _measurement,<tags…>`), each block of tables with the same columns after its own
//! annotation rows and header, blocks separated by a blank line. One row is one field of one
//! point; rows of the same measurement, tags and time are merged back into one point.

use super::lineproto::{FieldValue, Point};
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Where the points are, and who may read them.
#[derive(Debug, Clone)]
pub struct Influx {
    /// e.g. `http://127.0.0.1:8086`
    pub url: String,
    pub token: String,
    pub org: String,
    pub bucket: String,
}

/// InfluxDB's error body: `{"code": "unauthorized", "message": "unauthorized access"}`.
#[derive(serde::Deserialize)]
struct ApiError {
    code: Option<String>,
    message: Option<String>,
}

impl Influx {
    /// The points `flux` returns.
    pub async fn query(&self, flux: &str) -> anyhow::Result<Vec<Point>> {
        let url = format!("{}/api/v2/query", self.url.trim_end_matches('/'));
        let body = serde_json::json!({
            "query": flux,
            "type": "flux",
            "dialect": {
                "header": true,
                "annotations": ["datatype", "group", "default"],
                "dateTimeFormat": "RFC3339Nano",
            },
        });
        let response = reqwest::Client::new()
            .post(&url)
            .query(&[("org", &self.org)])
            .header("Authorization", format!("Token {}", self.token))
            .header("Accept", "application/csv")
            .json(&body)
            .send()
            .await
            .with_context(|| format!("querying InfluxDB at {url}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading InfluxDB's answer from {url}"))?;
        if !status.is_success() {
            let detail = match serde_json::from_str::<ApiError>(&text) {
                Ok(ApiError {
                    code,
                    message: Some(message),
                }) => match code {
                    Some(code) => format!("{message} ({code})"),
                    None => message,
                },
                _ => text.trim().chars().take(300).collect(),
            };
            anyhow::bail!(
                "InfluxDB at {url} (org {}) answered {status}: {detail}",
                self.org
            );
        }
        parse_csv(&text).with_context(|| format!("reading InfluxDB's answer from {url}"))
    }

    /// Flux for every point of `measurements` in `[start, stop)` whose tags equal `tags`.
    pub fn select(
        &self,
        start: DateTime<Utc>,
        stop: DateTime<Utc>,
        measurements: &[&str],
        tags: &[(&str, &str)],
    ) -> String {
        let any_of = |column: &str, values: &[&str]| {
            values
                .iter()
                .map(|v| format!("r.{column} == {}", string(v)))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let mut flux = format!(
            "from(bucket: {})\n  |> range(start: {}, stop: {})\n  |> filter(fn: (r) => {})",
            string(&self.bucket),
            time(start),
            time(stop),
            any_of("_measurement", measurements),
        );
        for (tag, value) in tags {
            flux.push_str(&format!(
                "\n  |> filter(fn: (r) => r[{}] == {})",
                string(tag),
                string(value)
            ));
        }
        flux
    }
}

/// A Flux string literal: `\`, `"` and the `${` of interpolation escaped.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A Flux time literal, to the nanosecond.
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Columns of a table that are not tags.
const NOT_TAGS: [&str; 8] = [
    "result",
    "table",
    "_start",
    "_stop",
    "_time",
    "_value",
    "_field",
    "_measurement",
];

/// Which point a row is a field of: its time, measurement and tags.
type Key = (i64, String, BTreeMap<String, String>);

/// One block of tables: its column names, their types, their defaults.
struct Block {
    header: Vec<String>,
    types: Vec<String>,
    defaults: Vec<String>,
}

impl Block {
    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

/// The points of an annotated-CSV answer, in time order. A table of Flux's `error` column
/// (a query that failed while it ran) is an error with its message.
pub fn parse_csv(text: &str) -> anyhow::Result<Vec<Point>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut points: BTreeMap<Key, BTreeMap<String, FieldValue>> = BTreeMap::new();
    let mut types: Vec<String> = Vec::new();
    let mut defaults: Vec<String> = Vec::new();
    let mut block: Option<Block> = None;
    for (i, record) in reader.records().enumerate() {
        let record = record.context("the CSV does not parse")?;
        let row: Vec<String> = record.iter().map(str::to_string).collect();
        let line = record.position().map_or(i + 1, |p| p.line() as usize);
        match row.first().map(String::as_str) {
            _ if row.iter().all(String::is_empty) => block = None,
            Some("#datatype") => {
                types = row;
                block = None;
            }
            Some("#default") => defaults = row,
            Some(a) if a.starts_with('#') => {}
            _ => match &block {
                None => {
                    anyhow::ensure!(
                        types.len() == row.len(),
                        "line {line}: a table without its #datatype annotation (or of \
                         another width)"
                    );
                    block = Some(Block {
                        header: row,
                        types: std::mem::take(&mut types),
                        defaults: std::mem::take(&mut defaults),
                    });
                }
                Some(b) => {
                    if let Some(e) = b.column("error") {
                        anyhow::bail!("the query failed: {}", row.get(e).map_or("?", |s| s));
                    }
                    let (key, field, value) =
                        record_of(b, &row).with_context(|| format!("line {line}"))?;
                    points.entry(key).or_default().insert(field, value);
                }
            },
        }
    }
    Ok(points
        .into_iter()
        .map(|((t, measurement, tags), fields)| Point {
            measurement,
            tags,
            fields,
            timestamp: Some(t),
        })
        .collect())
}

/// The row's value in column `i`, or the block's default for it when empty.
fn cell<'a>(b: &'a Block, row: &'a [String], i: usize) -> &'a str {
    match row.get(i).map(String::as_str) {
        Some("") | None => b.defaults.get(i).map_or("", String::as_str),
        Some(v) => v,
    }
}

/// One row: which point (time, measurement, tags), which field, its value.
fn record_of(b: &Block, row: &[String]) -> anyhow::Result<(Key, String, FieldValue)> {
    let named = |name: &str| -> anyhow::Result<usize> {
        b.column(name)
            .with_context(|| format!("no {name} column in the table"))
    };
    let measurement = cell(b, row, named("_measurement")?);
    let field = cell(b, row, named("_field")?);
    let time = cell(b, row, named("_time")?);
    let v = named("_value")?;
    let value = cell(b, row, v);
    let t = DateTime::parse_from_rfc3339(time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .with_context(|| format!("_time {time:?} is not an RFC 3339 time"))?;
    let kind = b.types.get(v).map_or("", String::as_str);
    let bad = || format!("_value {value:?} is not a {kind}");
    let value = match kind {
        "double" => FieldValue::Float(value.parse().with_context(bad)?),
        "long" => FieldValue::Int(value.parse().with_context(bad)?),
        "unsignedLong" => FieldValue::UInt(value.parse().with_context(bad)?),
        "boolean" => FieldValue::Bool(value.parse().with_context(bad)?),
        "string" => FieldValue::Str(value.to_string()),
        other => anyhow::bail!("_value of type {other:?}: not a field type"),
    };
    let tags = b
        .header
        .iter()
        .enumerate()
        .filter(|(i, name)| *i > 0 && !name.is_empty() && !NOT_TAGS.contains(&name.as_str()))
        .filter_map(|(i, name)| {
            let value = cell(b, row, i);
            (!value.is_empty()).then(|| (name.clone(), value.to_string()))
        })
        .collect();
    Ok(((t, measurement.to_string(), tags), field.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two blocks (a double and a long `_value`), a string field, defaults for `result`.
    const ANSWER: &str = "\
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339Nano,double,string,string,string,string,string,string
#group,false,false,true,true,false,false,true,true,true,true,true,true
#default,_result,,,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,instance,mode,run_id,service
,,0,2026-01-01T00:00:00Z,2026-01-01T00:05:00Z,2026-01-01T00:01:00.5Z,37.5,cpu_percent,process,gateway-0,sync,r-sync,gateway
,,0,2026-01-01T00:00:00Z,2026-01-01T00:05:00Z,2026-01-01T00:01:01.5Z,40,cpu_percent,process,gateway-0,sync,r-sync,gateway

#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339Nano,long,string,string,string,string,string,string
#group,false,false,true,true,false,false,true,true,true,true,true,true
#default,_result,,,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,instance,mode,run_id,service
,,1,2026-01-01T00:00:00Z,2026-01-01T00:05:00Z,2026-01-01T00:01:00.5Z,14237696,rss_bytes,process,gateway-0,sync,r-sync,gateway
,,2,2026-01-01T00:00:00Z,2026-01-01T00:05:00Z,2026-01-01T00:01:00.5Z,-3,rss_bytes,process,order-0,sync,r-sync,order

#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339Nano,string,string,string,string
#group,false,false,true,true,false,false,true,true,true
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,note
,,3,2026-01-01T00:00:00Z,2026-01-01T00:05:00Z,2026-01-01T00:01:00Z,\"a, \"\"quoted\"\" text\",text,marks,x

";

    #[test]
    fn rows_of_one_point_merge_and_keep_their_types() {
        let points = parse_csv(ANSWER).expect("parses");
        assert_eq!(points.len(), 4, "{points:#?}");
        let at = |ns: i64, instance: &str| {
            points
                .iter()
                .find(|p| p.timestamp == Some(ns) && p.tag("instance") == Some(instance))
                .unwrap_or_else(|| panic!("no point of {instance} at {ns}"))
        };
        let t0 = 1_767_225_660_500_000_000;
        let gateway = at(t0, "gateway-0");
        assert_eq!(gateway.measurement, "process");
        assert_eq!(gateway.fields["cpu_percent"], FieldValue::Float(37.5));
        assert_eq!(gateway.fields["rss_bytes"], FieldValue::Int(14_237_696));
        assert_eq!(gateway.tag("service"), Some("gateway"));
        assert_eq!(gateway.tag("mode"), Some("sync"));
        assert!(gateway.tag("result").is_none() && gateway.tag("_start").is_none());
        assert_eq!(
            at(t0 + 1_000_000_000, "gateway-0").fields["cpu_percent"],
            FieldValue::Float(40.0)
        );
        assert_eq!(at(t0, "order-0").fields["rss_bytes"], FieldValue::Int(-3));
        let mark = points
            .iter()
            .find(|p| p.measurement == "marks")
            .expect("mark");
        assert_eq!(
            mark.fields["text"],
            FieldValue::Str("a, \"quoted\" text".into())
        );
        assert_eq!(mark.tag("note"), Some("x"));
        assert!(
            points.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
            "not in time order"
        );
    }

    #[test]
    fn an_empty_answer_has_no_points_and_errors_say_what_is_wrong() {
        assert_eq!(parse_csv("").expect("empty"), []);
        assert_eq!(parse_csv("\r\n").expect("blank"), []);
        let failed = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,\"panic: boom\",\n";
        let err = format!("{:#}", parse_csv(failed).expect_err("a failed query"));
        assert!(err.contains("panic: boom"), "{err}");
        let bare = ",result,table,_time,_value,_field,_measurement\n,_result,0,2026-01-01T00:00:00Z,1,f,m\n";
        let err = format!("{:#}", parse_csv(bare).expect_err("no annotations"));
        assert!(err.contains("#datatype"), "{err}");
        let typed = ANSWER.replacen(",14237696,", ",14.5,", 1);
        let err = format!("{:#}", parse_csv(&typed).expect_err("a long that is not"));
        assert!(err.contains("\"14.5\" is not a long"), "{err}");
    }

    /// A fake InfluxDB: answers [`ANSWER`] to a query request as [`Influx::query`] must send
    /// it, InfluxDB's 401 to another token, and 400 with what is wrong to anything else.
    async fn fake_influx() -> String {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        async fn query(req: HttpRequest, body: web::Bytes) -> HttpResponse {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            if header("authorization") != "Token good-token" {
                return HttpResponse::Unauthorized()
                    .content_type("application/json; charset=utf-8")
                    .body(r#"{"code":"unauthorized","message":"unauthorized access"}"#);
            }
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let flux = json["query"].as_str().unwrap_or_default();
            let mut wrong = Vec::new();
            let mut check = |ok: bool, what: &str| {
                if !ok {
                    wrong.push(what.to_string());
                }
            };
            check(req.method() == "POST", "method");
            check(req.path() == "/api/v2/query", "path");
            check(req.query_string() == "org=flash+sale", "org");
            check(header("accept") == "application/csv", "accept");
            check(header("content-type") == "application/json", "content-type");
            check(json["type"] == "flux", "type");
            check(
                json["dialect"]["annotations"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == "datatype")),
                "annotations",
            );
            check(json["dialect"]["dateTimeFormat"] == "RFC3339Nano", "times");
            check(flux.starts_with("from(bucket: \"metrics\")"), "bucket");
            check(
                flux.contains("r._measurement == \"process\""),
                "measurement",
            );
            check(flux.contains("r[\"mode\"] == \"sync\""), "mode");
            if !wrong.is_empty() {
                return HttpResponse::BadRequest()
                    .content_type("application/json")
                    .body(format!(
                        r#"{{"code":"invalid","message":"wrong {wrong:?}"}}"#
                    ));
            }
            HttpResponse::Ok().content_type("text/csv").body(ANSWER)
        }
        let server = HttpServer::new(|| App::new().default_service(web::to(query)))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .expect("bind");
        let url = format!("http://{}", server.addrs()[0]);
        tokio::spawn(server.run());
        url
    }

    fn influx(url: &str, token: &str) -> Influx {
        Influx {
            url: format!("{url}/"),
            token: token.into(),
            org: "flash sale".into(),
            bucket: "metrics".into(),
        }
    }

    fn window() -> (DateTime<Utc>, DateTime<Utc>) {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        (start, start + chrono::Duration::minutes(5))
    }

    #[tokio::test]
    async fn a_query_is_sent_as_influxdb_wants_it_and_its_answer_read() {
        let url = fake_influx().await;
        let influx = influx(&url, "good-token");
        let (start, stop) = window();
        let flux = influx.select(start, stop, &["process"], &[("mode", "sync")]);
        let points = influx.query(&flux).await.expect("the query succeeds");
        assert_eq!(points, parse_csv(ANSWER).expect("parses"));
        assert_eq!(points.len(), 4);

        let other = influx.select(start, stop, &["http"], &[("mode", "async")]);
        let err = format!(
            "{:#}",
            influx.query(&other).await.expect_err("a bad request")
        );
        assert!(
            err.contains("400") && err.contains(r#"wrong ["measurement", "mode"]"#),
            "{err}"
        );
    }

    #[tokio::test]
    async fn influxdbs_refusal_is_an_error_with_its_url_and_message() {
        let url = fake_influx().await;
        let influx = influx(&url, "wrong-token");
        let (start, stop) = window();
        let flux = influx.select(start, stop, &["process"], &[("mode", "sync")]);
        let err = format!("{:#}", influx.query(&flux).await.expect_err("refused"));
        assert!(
            err.contains(&format!("{url}/api/v2/query"))
                && err.contains("401")
                && err.contains("unauthorized access (unauthorized)"),
            "{err}"
        );
        let nobody = Influx {
            url: "http://127.0.0.1:9".into(),
            ..influx
        };
        let err = format!("{:#}", nobody.query(&flux).await.expect_err("no server"));
        assert!(err.contains("http://127.0.0.1:9/api/v2/query"), "{err}");
    }

    #[test]
    fn flux_literals_are_escaped() {
        let influx = Influx {
            url: String::new(),
            token: String::new(),
            org: String::new(),
            bucket: "b\"${x}".into(),
        };
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.25Z")
            .expect("time")
            .with_timezone(&Utc);
        let flux = influx.select(
            start,
            start + chrono::Duration::seconds(60),
            &["process", "http"],
            &[("mode", "sync")],
        );
        assert_eq!(
            flux,
            "from(bucket: \"b\\\"\\${x}\")\n  |> range(start: 2026-01-01T00:00:00.250Z, stop: \
             2026-01-01T00:01:00.250Z)\n  |> filter(fn: (r) => r._measurement == \"process\" or \
             r._measurement == \"http\")\n  |> filter(fn: (r) => r[\"mode\"] == \"sync\")"
        );
    }
}
