//! The Grafana dashboard asks only for what the services write: every measurement, field and
//! tag its Flux queries name is one of `common::metrics::schema`'s constants.

use common::metrics::schema::{self, COMMON_TAGS};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn dashboard() -> serde_json::Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../grafana/dashboards/flash-sale.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// Every `"X"` right after `needle`, e.g. `_measurement == "process"`.
fn quoted_after(query: &str, needle: &str) -> Vec<String> {
    query
        .match_indices(needle)
        .filter_map(|(i, _)| {
            let rest = query[i + needle.len()..].trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

/// Names of the tags a query reads: `r.<tag>` in predicates, `columns: [..]` in group and
/// sort, `tag: ".."` in `schema.tagValues`. Columns starting with `_` are InfluxDB's own.
fn tags_of(query: &str) -> BTreeSet<String> {
    let mut tags = BTreeSet::new();
    for (i, _) in query.match_indices("r.") {
        if i > 0 && query[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let name: String = query[i + 2..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        tags.insert(name);
    }
    for (i, _) in query.match_indices("columns: [") {
        let rest = &query[i + "columns: [".len()..];
        let list = &rest[..rest.find(']').expect("a closed column list")];
        for item in list.split(',') {
            let item = item.trim().trim_matches('"');
            if !item.is_empty() {
                tags.insert(item.to_string());
            }
        }
    }
    tags.extend(quoted_after(query, "tag:"));
    tags.retain(|t| !t.starts_with('_'));
    tags
}

fn panel_queries(dash: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            let query = target["query"].as_str().expect("a Flux query").to_string();
            out.push((title, query));
        }
    }
    out
}

#[test]
fn every_dashboard_query_names_a_measurement_field_and_tag_the_services_write() {
    let dash = dashboard();
    let queries = panel_queries(&dash);
    assert!(queries.len() >= 8, "only {} queries", queries.len());
    let mut fields_used = BTreeSet::new();
    for (title, query) in &queries {
        let measurements = quoted_after(query, "_measurement ==");
        assert!(!measurements.is_empty(), "{title}: names no measurement");
        let known: Vec<&schema::Measurement> = measurements
            .iter()
            .map(|m| {
                schema::measurement(m)
                    .or_else(|| schema::containers::measurement(m))
                    .unwrap_or_else(|| panic!("{title}: measurement {m:?} is not written"))
            })
            .collect();
        let fields = quoted_after(query, "_field ==");
        assert!(!fields.is_empty(), "{title}: names no field");
        for field in &fields {
            assert!(
                known.iter().any(|m| m.fields.contains(&field.as_str())),
                "{title}: field {field:?} is not a field of {measurements:?}"
            );
            fields_used.insert(field.clone());
        }
        let tags = tags_of(query);
        assert!(
            tags.contains("mode") && tags.contains("run_id"),
            "{title}: not scoped by the variables"
        );
        for tag in &tags {
            assert!(
                COMMON_TAGS.contains(&tag.as_str())
                    || known.iter().any(|m| m.tags.contains(&tag.as_str())),
                "{title}: tag {tag:?} is not a tag of {measurements:?}"
            );
        }
    }
    for needed in [
        schema::CPU_PERCENT,
        schema::CPU_PERCENT_NORMALIZED,
        schema::RSS_BYTES,
        schema::REQUESTS,
        schema::P95_MS,
        schema::ERRORS,
        schema::READY,
        schema::containers::USAGE_PERCENT,
        schema::containers::USAGE,
    ] {
        assert!(fields_used.contains(needed), "no panel shows {needed}");
    }
}

#[test]
fn latency_panels_keep_held_polls_apart() {
    let queries = panel_queries(&dashboard());
    let p95: Vec<&String> = queries
        .iter()
        .filter(|(_, q)| quoted_after(q, "_field ==").contains(&schema::P95_MS.to_string()))
        .map(|(_, q)| q)
        .collect();
    let left_out = format!(
        "not exists r.{w} or r.{w} != \"{h}\"",
        w = schema::TAG_WAIT,
        h = schema::WAIT_HELD
    );
    let only_held = format!("r.{} == \"{}\"", schema::TAG_WAIT, schema::WAIT_HELD);
    assert!(
        p95.iter().any(|q| q.contains(&left_out)),
        "no p95 panel leaves held polls out (older points without the tag kept)"
    );
    assert!(
        p95.iter().any(|q| q.contains(&only_held)),
        "no panel shows held polls' p95 apart"
    );
    assert!(
        p95.iter()
            .all(|q| q.contains(&left_out) || q.contains(&only_held)),
        "a p95 panel mixes held polls with answers"
    );
}

#[test]
fn no_query_hard_codes_the_bucket() {
    let dash = dashboard();
    let text = dash.to_string();
    let mut buckets = 0;
    for (i, _) in text.match_indices("bucket:") {
        buckets += 1;
        let rest = text[i + "bucket:".len()..].trim_start();
        assert!(
            rest.starts_with("v.defaultBucket"),
            "a query names its bucket: {}",
            &rest[..rest.len().min(40)]
        );
    }
    assert!(buckets >= 10, "only {buckets} bucket reads found");
    let vars = dash["templating"]["list"].as_array().expect("variables");
    assert!(vars.iter().all(|v| v["name"] != "bucket"));
}

#[test]
fn the_run_variable_is_multi_select_and_panels_split_by_run() {
    let dash = dashboard();
    let vars = dash["templating"]["list"].as_array().expect("variables");
    let run = vars
        .iter()
        .find(|v| v["name"] == schema::TAG_RUN_ID)
        .expect("a run variable");
    assert_eq!(run["multi"], true);
    assert_eq!(run["includeAll"], true);
    for (title, query) in panel_queries(&dash) {
        assert!(
            query.contains("r.run_id =~ /^${run_id:regex}$/"),
            "{title}: the run filter does not take several runs"
        );
        if query.contains("\"service\"") {
            assert!(
                query.contains("columns: [\"run_id\", \"service\""),
                "{title}: series of different runs are not apart"
            );
        }
    }
}

#[test]
fn the_run_annotation_reads_what_the_study_writes() {
    let dash = dashboard();
    let annotations = dash["annotations"]["list"].as_array().expect("annotations");
    let run = annotations
        .iter()
        .find(|a| {
            a["target"]["query"].as_str().is_some_and(|q| {
                quoted_after(q, "_measurement ==").contains(&schema::STUDY_RUN.to_string())
            })
        })
        .expect("an annotation from study_run");
    let query = run["target"]["query"].as_str().expect("a Flux query");
    assert_eq!(quoted_after(query, "_measurement =="), [schema::STUDY_RUN]);
    assert_eq!(quoted_after(query, "_field =="), [schema::DURATION_S]);
    let study_tags = [
        schema::TAG_MODE,
        schema::TAG_RUN_ID,
        schema::TAG_LABEL,
        schema::TAG_KIND,
    ];
    let tags = tags_of(query);
    for tag in &tags {
        assert!(
            study_tags.contains(&tag.as_str()),
            "annotation: tag {tag:?}"
        );
    }
    assert!(
        tags.contains(schema::TAG_LABEL),
        "the text is not the run's label"
    );
    assert!(query.contains("timeEnd:"), "the annotation has no end");
    assert_eq!(run["mappings"]["timeEnd"]["value"], "timeEnd");
    assert_eq!(run["mappings"]["text"]["value"], "text");
}

#[test]
fn the_mode_and_run_id_variables_read_tags_the_services_write() {
    let dash = dashboard();
    let vars = dash["templating"]["list"].as_array().expect("variables");
    for name in [schema::TAG_MODE, schema::TAG_RUN_ID] {
        let var = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        let query = var["query"].as_str().expect("a Flux query");
        for tag in tags_of(query) {
            assert!(COMMON_TAGS.contains(&tag.as_str()), "{name}: tag {tag:?}");
        }
        assert!(quoted_after(query, "tag:").contains(&name.to_string()));
    }
}

#[test]
fn the_query_scanner_finds_what_it_must() {
    let q = r#"filter(fn: (r) => r._measurement == "http" and r._field == "p95_ms" and r.route == "x")
      |> group(columns: ["service", "_time"]) schema.tagValues(tag: "mode")"#;
    assert_eq!(quoted_after(q, "_measurement =="), ["http"]);
    assert_eq!(quoted_after(q, "_field =="), ["p95_ms"]);
    let tags: Vec<String> = tags_of(q).into_iter().collect();
    assert_eq!(tags, ["mode", "route", "service"]);
}
