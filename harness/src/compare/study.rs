//! `flashsale study`: the comparison's protocol for one mode against a suite that is already
//! running and that the harness did not start: docker-compose's, one `docker-compose up` per
//! mode. The same warm-ups, counted runs, new sale per flash run, drain and invariant check
//! after every run as `compare`, with the same k6 journey and the same raw files, into
//! `DIR/raw/<mode>/` (its `runs.json` a one-mode manifest whose run folders are relative to
//! `DIR`), so `flashsale report --compose DIR` builds the comparison from both modes' studies.
//!
//! What a study cannot do is what needs the suite's processes: it runs no fault plan, and the
//! services' CPU and memory come from their own metrics in InfluxDB, not from /proc.

use super::{new_manifest, CompareOptions, ModeRun, Scenario, PRODUCTS};
use crate::options::SuiteOptions;
use crate::report::flux::Influx;
use crate::report::manifest::{Manifest, RunKind, SuiteRecord};
use crate::state::{SeededProduct, SuiteState};
use anyhow::{bail, Context};
use chrono::Utc;
use common::metrics::line::{encode, encode_tags, FieldValue};
use common::metrics::schema;
use common::Mode;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// The running suite a study measures.
#[derive(Debug, Clone)]
pub struct StudyTarget {
    pub mode: Mode,
    /// nginx's public address, e.g. `http://nginx:8080`.
    pub base_url: String,
    /// PostgreSQL server URL without a database name.
    pub database_url: String,
    pub db_prefix: String,
    /// The suite's RabbitMQ (async: queues must be empty before a run counts as drained).
    pub amqp_url: String,
    /// The seeded users' password.
    pub password: String,
    /// The `RUN_ID` the suite's services tag their metrics with.
    pub run_id: String,
}

pub struct StudyOptions {
    /// The protocol: warm-ups, VU levels, runs, durations, journey settings. Its `modes` and
    /// `scenarios` are ignored (the target's mode, [`StudyOptions::scenario`]); `replicas`
    /// is recorded as the suite's.
    pub protocol: CompareOptions,
    pub scenario: Scenario,
    pub target: StudyTarget,
    /// The study folder, shared by both modes' studies.
    pub dir: PathBuf,
    /// Where each run is marked for Grafana's "Runs" annotation (`study_run` points);
    /// `None`: no marks.
    pub influx: Option<Influx>,
}

/// Run the protocol on the target. `Ok(false)` when a run's invariants failed or k6 failed
/// (a `THRESHOLD_*` limit crossed included).
pub async fn run(opts: StudyOptions) -> anyhow::Result<bool> {
    let mode = opts.target.mode;
    let protocol = CompareOptions {
        modes: vec![mode],
        scenarios: vec![opts.scenario],
        faults: false,
        ..opts.protocol
    };
    protocol.validate()?;
    let k6 = crate::k6::binary()?;
    let target = &opts.target;
    let mode_dir_rel = format!("raw/{}", mode.as_str());
    let mode_dir = opts.dir.join(&mode_dir_rel);
    let metrics_rel = format!("{mode_dir_rel}/metrics");
    let environment = super::environment::collect(&target.database_url, &k6).await;
    let mut manifest = new_manifest(&protocol, opts.scenario, Utc::now(), &environment);
    manifest.suites.push(SuiteRecord {
        mode: mode.as_str().into(),
        run_id: target.run_id.clone(),
        metrics_dir: metrics_rel.clone(),
        // Compose's services send their spans to Jaeger: the folder keeps none.
        traces_dir: None,
        error: None,
    });

    let tag = format!("[{}/{}]", mode.as_str(), opts.scenario.as_str());
    tracing::info!(
        "{tag} study of the suite at {}: seeding {} shoppers",
        target.base_url,
        manifest.settings.users
    );
    // Before anything of an earlier study is replaced: a suite that cannot be measured
    // leaves it as it was.
    let (state, first_product) = prepare(target, &manifest, opts.scenario).await?;
    if mode_dir.exists() {
        tracing::info!(
            "{tag} replacing the earlier study in {}",
            mode_dir.display()
        );
        std::fs::remove_dir_all(&mode_dir)
            .with_context(|| format!("removing {}", mode_dir.display()))?;
    }
    std::fs::create_dir_all(opts.dir.join(&metrics_rel))
        .with_context(|| format!("creating {}", opts.dir.join(&metrics_rel).display()))?;
    let script = match &protocol.script {
        Some(path) => path.clone(),
        None => crate::k6::write_scripts(&opts.dir.join("raw/k6"))?,
    };
    manifest.save(&mode_dir)?;
    let ctx = ModeRun {
        opts: &protocol,
        scenario: opts.scenario,
        mode,
        dir: &opts.dir,
        manifest_dir: &mode_dir,
        first_product,
        k6: &k6,
        script: &script,
        bin_dir: Path::new(""),
        run_id: target.run_id.clone(),
    };
    let result = ctx.run_steps(None, &state, &mut manifest).await;
    if let Err(e) = &result {
        manifest.suites[0].error = Some(format!("{e:#}"));
        manifest.save(&mode_dir)?;
    }
    if let Some(influx) = &opts.influx {
        match write_run_marks(influx, &manifest).await {
            Ok(n) => tracing::info!("{tag} {n} run(s) marked in InfluxDB for Grafana"),
            Err(e) => tracing::warn!("{tag} could not mark the runs in InfluxDB: {e:#}"),
        }
    }
    let ok = result?;
    tracing::info!(
        "{tag} done: {} (next: the other mode, then `flashsale report --compose {}`)",
        mode_dir
            .join(crate::report::manifest::MANIFEST_FILE)
            .display(),
        opts.dir.display()
    );
    Ok(ok)
}

/// Seed the shoppers and the first sale, and check that the suite's stock is the scenario's.
/// Returns the suite as the protocol sees it and, for the flash scenario, how many products
/// were on sale before (each of the study's sales is new).
async fn prepare(
    target: &StudyTarget,
    manifest: &Manifest,
    scenario: Scenario,
) -> anyhow::Result<(SuiteState, usize)> {
    let settings = &manifest.settings;
    let inventory = crate::store::connect(
        &target.database_url,
        &crate::store::database_name(&target.db_prefix, "inventory"),
    )
    .await
    .context("connecting to the suite's inventory database (is the suite up?)")?;
    let existing: i64 = inventory
        .query_one("SELECT count(*) FROM stock", &[])
        .await
        .context("counting the products on sale")?
        .get(0);
    let first_product = match scenario {
        Scenario::Flash => usize::try_from(existing).unwrap_or(0),
        Scenario::Sustained => 0,
    };
    // The stock of the sale's products that exist already must be the scenario's.
    let ids: Vec<Uuid> = (first_product + 1..=first_product + PRODUCTS)
        .map(crate::seed::product_id)
        .collect();
    let rows = inventory
        .query(
            "SELECT initial, per_user_limit FROM stock WHERE product_id = ANY($1)",
            &[&ids],
        )
        .await
        .context("reading the sale's stock")?;
    for row in rows {
        let (initial, limit): (i32, i32) = (row.get(0), row.get(1));
        if (initial, limit) != (settings.stock, settings.per_user_limit) {
            bail!(
                "the suite's products were seeded for another scenario ({initial} units, limit \
                 {limit}; the {} scenario sells {} units, limit {}): start the suite again with \
                 SCENARIO={} (docker-compose down, then up)",
                scenario.as_str(),
                settings.stock,
                settings.per_user_limit,
                scenario.as_str()
            );
        }
    }
    let options = SuiteOptions {
        mode: target.mode,
        users: settings.users,
        products: first_product + PRODUCTS,
        stock: settings.stock,
        per_user_limit: settings.per_user_limit,
        db_prefix: target.db_prefix.clone(),
        password: target.password.clone(),
        database_url: target.database_url.clone(),
        amqp_url: target.amqp_url.clone(),
        ..SuiteOptions::default()
    };
    let seeded = crate::seed::seed(&target.database_url, &options)
        .await
        .context("seeding the shoppers and the first sale")?;
    let products: Vec<SeededProduct> = seeded.into_iter().skip(first_product).collect();
    let state = SuiteState {
        mode: target.mode,
        port: 0,
        base_url: target.base_url.clone(),
        internal_url: String::new(),
        run_dir: PathBuf::new(),
        db_prefix: target.db_prefix.clone(),
        redis_prefix: String::new(),
        database_url: target.database_url.clone(),
        redis_url: String::new(),
        amqp_url: target.amqp_url.clone(),
        token_secret: String::new(),
        internal_key: String::new(),
        started_at: Utc::now(),
        processes: Vec::new(),
        nginx: None,
        users: settings.users,
        password: target.password.clone(),
        products,
        options,
    };
    Ok((state, first_product))
}

/// One `study_run` point per run (when it started, how long it ran), for the dashboard's
/// "Runs" annotation, through InfluxDB 2's write API. Returns how many were written.
async fn write_run_marks(influx: &Influx, manifest: &Manifest) -> anyhow::Result<usize> {
    let Some(suite) = manifest.suites.first() else {
        return Ok(0);
    };
    let body: Vec<String> = manifest
        .runs
        .iter()
        .map(|run| {
            let label = Path::new(&run.dir)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kind = match run.kind {
                RunKind::Warmup => "warmup",
                RunKind::Counted => "counted",
            };
            let secs = (run.ended_at - run.started_at).num_milliseconds() as f64 / 1e3;
            encode(
                schema::STUDY_RUN,
                &encode_tags(&[
                    (schema::TAG_MODE, &run.mode),
                    (schema::TAG_RUN_ID, &suite.run_id),
                    (schema::TAG_LABEL, &label),
                    (schema::TAG_KIND, kind),
                ]),
                &[],
                &[(schema::DURATION_S, FieldValue::Float(secs))],
                run.started_at.timestamp_nanos_opt().unwrap_or(0),
            )
        })
        .collect();
    if body.is_empty() {
        return Ok(0);
    }
    let url = format!("{}/api/v2/write", influx.url.trim_end_matches('/'));
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .post(&url)
        .query(&[
            ("org", influx.org.as_str()),
            ("bucket", influx.bucket.as_str()),
            ("precision", "ns"),
        ])
        .header("Authorization", format!("Token {}", influx.token))
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(body.join("\n") + "\n")
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("POST {url}: {status}: {text}");
    }
    Ok(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::manifest::{Environment, RunRecord, Settings};
    use std::sync::{Arc, Mutex};

    fn manifest() -> Manifest {
        let start = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let run = |kind, index, label: &str, secs| RunRecord {
            mode: "async".into(),
            kind,
            index,
            vus: 500,
            duration_secs: 30.0,
            started_at: start,
            ended_at: start + chrono::Duration::milliseconds(secs),
            dir: format!("raw/async/{label}"),
            k6_exit_code: Some(0),
            drained: true,
            drain_secs: 1.0,
            products: Vec::new(),
        };
        Manifest {
            version: crate::report::manifest::MANIFEST_VERSION,
            scenario: "sustained".into(),
            created_at: start,
            settings: Settings {
                modes: vec!["async".into()],
                warmup_vus: 500,
                warmups: 1,
                vus: vec![500],
                runs: 1,
                duration_secs: 30.0,
                warmup_duration_secs: 20.0,
                replicas: 2,
                users: 500,
                products: 5,
                stock: 10_000_000,
                per_user_limit: 0,
                new_products_per_run: false,
                think_time_secs: 0.0,
                arrival_rate: 0,
                poll_wait_secs: 5,
                login_every_iteration: false,
                quick: false,
                trace_sample_ratio: 0.0,
                service_env: Default::default(),
            },
            environment: Environment::default(),
            suites: vec![SuiteRecord {
                mode: "async".into(),
                run_id: "compose-1".into(),
                metrics_dir: "raw/async/metrics".into(),
                traces_dir: None,
                error: None,
            }],
            runs: vec![
                run(RunKind::Warmup, 1, "warmup-1", 20_500),
                run(RunKind::Counted, 1, "run-500-1", 31_250),
            ],
        }
    }

    /// What the fake InfluxDB saw: the request line's query, the auth header, the body.
    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

    async fn fake_influx(status: u16) -> (String, Seen) {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let seen: Seen = Arc::default();
        let data = web::Data::new(seen.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/api/v2/write",
                web::post().to(
                    move |req: HttpRequest, body: String, seen: web::Data<Seen>| async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        seen.lock().expect("not poisoned").push((
                            req.query_string().to_string(),
                            auth,
                            body,
                        ));
                        match status {
                            204 => HttpResponse::NoContent().finish(),
                            _ => HttpResponse::Unauthorized().json(serde_json::json!({
                                "code": "unauthorized", "message": "unauthorized access"
                            })),
                        }
                    },
                ),
            )
        })
        .workers(1)
        .listen(listener)
        .expect("listening")
        .run();
        actix_web::rt::spawn(server);
        (url, seen)
    }

    fn influx(url: String, token: &str) -> Influx {
        Influx {
            url,
            org: "flashsale".into(),
            bucket: "flashsale".into(),
            token: token.into(),
        }
    }

    #[actix_web::test]
    async fn runs_are_marked_as_study_run_points_through_the_write_api() {
        let (url, seen) = fake_influx(204).await;
        let influx = influx(url, "secret-token");
        let written = write_run_marks(&influx, &manifest())
            .await
            .expect("written");
        assert_eq!(written, 2);
        let seen = seen.lock().expect("not poisoned");
        let (query, auth, body) = &seen[0];
        assert_eq!(query, "org=flashsale&bucket=flashsale&precision=ns");
        assert_eq!(auth, "Token secret-token");
        let lines: Vec<_> = body.lines().map(common::metrics::line::parse).collect();
        assert_eq!(lines.len(), 2);
        let counted = lines[1].as_ref().expect("line protocol");
        assert_eq!(counted.measurement, schema::STUDY_RUN);
        assert_eq!(counted.tag(schema::TAG_MODE), Some("async"));
        assert_eq!(counted.tag(schema::TAG_RUN_ID), Some("compose-1"));
        assert_eq!(counted.tag(schema::TAG_LABEL), Some("run-500-1"));
        assert_eq!(counted.tag(schema::TAG_KIND), Some("counted"));
        assert_eq!(
            counted.field(schema::DURATION_S).and_then(|v| v.as_f64()),
            Some(31.25)
        );
        let warmup = lines[0].as_ref().expect("line protocol");
        assert_eq!(warmup.tag(schema::TAG_KIND), Some("warmup"));
    }

    #[actix_web::test]
    async fn a_refused_write_is_an_error_with_influxdbs_message() {
        let (url, _) = fake_influx(401).await;
        let influx = influx(url, "wrong");
        let err = write_run_marks(&influx, &manifest())
            .await
            .expect_err("401 is an error");
        let text = format!("{err:#}");
        assert!(text.contains("401"), "{text}");
        assert!(text.contains("unauthorized access"), "{text}");
    }
}
