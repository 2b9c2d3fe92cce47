//! What each `flashsale` subcommand does, behind the argument parsing in main.rs.
//! Progress goes to stderr through tracing; stdout carries only the command's result (the
//! URL, a report, a status table), so scripts can read it.

use crate::options::SuiteOptions;
use crate::state::SuiteState;
use crate::suite::Suite;
use std::path::Path;
use std::time::Duration;

/// `flashsale up`: set up the servers, start the suite, print its URL, and leave it running.
pub async fn up(opts: SuiteOptions, skip_setup: bool) -> anyhow::Result<()> {
    if !skip_setup {
        crate::infra::setup().await?;
    }
    let run_dir = opts.run_dir.clone();
    let traced = opts.trace_sample_ratio > 0.0;
    let suite = Suite::start(opts).await?;
    println!("{}", suite.base_url());
    if traced {
        tracing::info!(
            "spans go to {}/<instance>.jsonl (run k6 with the same TRACE_SAMPLE_RATIO)",
            suite
                .run_dir()
                .join(crate::rundata::traces::TRACES_DIR)
                .display()
        );
    }
    tracing::info!(
        "stop it with `flashsale down --run-dir {}`",
        run_dir.display()
    );
    suite.detach();
    Ok(())
}

/// `flashsale down`: stop exactly the processes `up` recorded in `run_dir`.
pub async fn down(run_dir: &Path) -> anyhow::Result<()> {
    if !SuiteState::path(run_dir).exists() {
        tracing::info!("nothing to stop: no suite is up in {}", run_dir.display());
        return Ok(());
    }
    let mut suite = Suite::attach(run_dir)?;
    suite.stop().await?;
    tracing::info!("suite in {} stopped", run_dir.display());
    Ok(())
}

/// Where `verify` looks: explicit flags first, then the running suite's state.json, then the
/// defaults.
pub fn verify_target(
    run_dir: &Path,
    db_prefix: Option<String>,
    database_url: Option<String>,
) -> (String, String) {
    let state = SuiteState::load(run_dir).ok();
    let url = database_url
        .or_else(|| state.as_ref().map(|s| s.database_url.clone()))
        .unwrap_or_else(|| crate::infra::DEFAULT_DATABASE_URL.to_string());
    let prefix = db_prefix
        .or_else(|| state.as_ref().map(|s| s.db_prefix.clone()))
        .unwrap_or_else(|| "flashsale".to_string());
    (url, prefix)
}

/// What `flashsale verify` checks, beyond the run folder.
pub struct VerifyArgs {
    pub db_prefix: Option<String>,
    pub database_url: Option<String>,
    pub amqp_url: Option<String>,
    pub grace: Duration,
    pub drain: Duration,
}

/// `flashsale verify`: wait for the suite to drain, check the invariants (and, for an async
/// suite, the broker), print the report. Returns whether they hold.
pub async fn verify(run_dir: &Path, args: VerifyArgs, json: bool) -> anyhow::Result<bool> {
    let (url, prefix) = verify_target(run_dir, args.db_prefix, args.database_url);
    let state = SuiteState::load(run_dir).ok();
    let amqp = args.amqp_url.or_else(|| {
        state
            .as_ref()
            .filter(|s| s.mode == common::Mode::Async)
            .map(|s| s.amqp_url.clone())
    });
    if !args.drain.is_zero()
        && !crate::verify::wait_drained(&url, &prefix, amqp.as_deref(), args.drain).await?
    {
        tracing::warn!("the suite did not drain within {:?}", args.drain);
    }
    let report = match &amqp {
        Some(amqp) => crate::verify::run_with_broker(&url, &prefix, amqp, args.grace).await?,
        None => crate::verify::run(&url, &prefix, args.grace).await?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.ok())
}

fn dlq_target(
    run_dir: &Path,
    prefix: Option<String>,
    amqp_url: Option<String>,
) -> (String, String) {
    let state = SuiteState::load(run_dir).ok();
    let prefix = prefix
        .or_else(|| state.as_ref().map(|s| s.db_prefix.clone()))
        .unwrap_or_else(|| "flashsale".to_string());
    let url = amqp_url
        .or_else(|| state.as_ref().map(|s| s.amqp_url.clone()))
        .unwrap_or_else(|| crate::options::SuiteOptions::default().amqp_url);
    (url, prefix)
}

/// `flashsale dlq list`: every dead letter, left in place.
pub async fn dlq_list(
    run_dir: &Path,
    prefix: Option<String>,
    amqp_url: Option<String>,
    queue: Option<&str>,
    json: bool,
) -> anyhow::Result<bool> {
    let (url, prefix) = dlq_target(run_dir, prefix, amqp_url);
    let letters = crate::broker::dead_letters(&url, &prefix, queue).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
    } else if letters.is_empty() {
        println!("no dead letters");
    } else {
        for l in &letters {
            println!(
                "{}  {}  {}  {}",
                l.queue, l.event_type, l.message_id, l.payload
            );
        }
        println!("{} dead letter(s)", letters.len());
    }
    Ok(true)
}

/// `flashsale dlq replay`: publish dead letters back to their queues.
pub async fn dlq_replay(
    run_dir: &Path,
    prefix: Option<String>,
    amqp_url: Option<String>,
    queue: Option<&str>,
) -> anyhow::Result<bool> {
    let (url, prefix) = dlq_target(run_dir, prefix, amqp_url);
    let n = crate::broker::replay(&url, &prefix, queue).await?;
    println!("replayed {n} dead letter(s)");
    Ok(true)
}

/// `flashsale status`: every recorded process, alive and ready. Returns whether all are.
pub async fn status(run_dir: &Path, json: bool) -> anyhow::Result<bool> {
    let suite = Suite::attach(run_dir)?;
    let rows = suite.status().await;
    let healthy = rows.iter().all(|r| r.alive && r.ready);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "mode": suite.mode(),
                "base_url": suite.base_url(),
                "db_prefix": suite.state().db_prefix,
                "healthy": healthy,
                "processes": rows,
            }))?
        );
    } else {
        use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(vec!["instance", "pid", "port", "alive", "ready"]);
        for r in &rows {
            table.add_row(vec![
                r.instance.clone(),
                r.pid.to_string(),
                r.port.to_string(),
                yes_no(r.alive).into(),
                yes_no(r.ready).into(),
            ]);
        }
        println!(
            "{} mode at {} (databases {}_*), started {}",
            suite.mode(),
            suite.base_url(),
            suite.state().db_prefix,
            suite.state().started_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        println!("{table}");
    }
    Ok(healthy)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// `flashsale compare`: the comparison and its reports. Returns whether every run's
/// invariants held. Ctrl-C stops the suite under way (dropping it kills what it started).
pub async fn compare(opts: crate::compare::CompareOptions) -> anyhow::Result<bool> {
    tokio::select! {
        result = crate::compare::run(opts) => result,
        _ = tokio::signal::ctrl_c() => {
            anyhow::bail!("interrupted: the suite under way was stopped; finished runs are in the report folder")
        }
    }
}

/// `flashsale study`: the protocol for one mode against a suite flashsale did not start.
pub async fn study(opts: crate::compare::study::StudyOptions) -> anyhow::Result<bool> {
    tokio::select! {
        result = crate::compare::study::run(opts) => result,
        _ = tokio::signal::ctrl_c() => {
            anyhow::bail!("interrupted: the finished runs are in the study folder's runs.json")
        }
    }
}

/// `flashsale ceiling`: the journey against the null backend, in each mode's shape. Returns
/// whether every journey completed (otherwise the figures are no ceiling).
pub async fn ceiling(opts: crate::ceiling::CeilingOptions) -> anyhow::Result<bool> {
    let (ok, dir, ceiling) = tokio::select! {
        result = crate::ceiling::run(&opts) => result?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: the null backend was stopped"),
    };
    println!("{}", ceiling.table());
    println!(
        "report: {}",
        dir.join(crate::ceiling::MARKDOWN_FILE).display()
    );
    if !ok {
        tracing::error!(
            "some journeys failed against the null backend: these figures are no ceiling"
        );
    }
    Ok(ok)
}

/// `flashsale report DIR`: rebuild a comparison's report.md and report.html from its raw data.
pub fn report(dir: &Path) -> anyhow::Result<bool> {
    let built = crate::report::build(dir)?;
    println!("{}", built.tables);
    println!("{}\n{}", built.markdown.display(), built.html.display());
    crate::report::index::refresh(&crate::report::index::parent(dir));
    Ok(true)
}

/// `flashsale diff A B`: what changed from report A to report B, in Markdown or JSON.
pub fn diff(a: &Path, b: &Path, json: bool) -> anyhow::Result<bool> {
    let diff = crate::report::diff::diff(a, b)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&diff)?);
    } else {
        print!("{}", diff.markdown()?);
    }
    Ok(true)
}

/// `flashsale report --compose DIR`: a compose study's folder made a report folder (its
/// modes merged, their metrics and the containers' CPU read from InfluxDB), then its report.
pub async fn report_compose(
    dir: &Path,
    influx: &crate::report::flux::Influx,
) -> anyhow::Result<bool> {
    let suites = crate::report::compose::prepare(dir, influx).await?;
    for s in &suites {
        println!(
            "{}: {} service points, {} container CPU points from {}",
            s.mode, s.service_points, s.container_points, influx.url
        );
        if s.container_points == 0 {
            println!(
                "{}: no container CPU from Telegraf in the runs' windows: the CPU split the \
                 study sampled inside its container is cleared, the report has none",
                s.mode
            );
        } else if s.samples_split < s.samples {
            println!(
                "{}: {} of {} load samples had no container point near them: no split for those",
                s.mode,
                s.samples - s.samples_split,
                s.samples
            );
        }
    }
    report(dir)
}

/// `flashsale k6-merge`: one run's files from several k6 runners.
pub fn k6_merge(runners: &[std::path::PathBuf], out: &Path) -> anyhow::Result<bool> {
    let merged = crate::k6::merge::merge(runners, out)?;
    println!(
        "{} runner(s), {} samples\n{}\n{}",
        merged.runners,
        merged.samples,
        merged.summary.display(),
        merged.series.display()
    );
    match merged.window {
        Some((from, to)) => {
            let iso = |t: i64| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default()
            };
            println!("started_at {}  ended_at {}", iso(from), iso(to));
            Ok(true)
        }
        None => {
            eprintln!("no sample of the journey (phase=journey) in any runner's series");
            Ok(false)
        }
    }
}

/// What `flashsale chaos` is given.
pub struct ChaosArgs {
    pub run_dir: std::path::PathBuf,
    /// The run's length: as long as the load the user drives.
    pub duration: Duration,
    /// How long a stopped replica (or RabbitMQ) stays down.
    pub restart_after: Duration,
    /// Longest wait for the suite to drain after the run.
    pub drain_timeout: Duration,
    /// The RabbitMQ node to restart (default: the machine's); `None` with `no_broker` skips it.
    pub rabbitmq_node: Option<String>,
    pub no_broker: bool,
    /// k6's CSV time series of the load (`k6 run --out csv=…`): the failures a shopper saw,
    /// including nginx's own 503s, which the services' metrics cannot count.
    pub k6_csv: Option<std::path::PathBuf>,
    pub json: bool,
}

/// `flashsale chaos`: the standard fault plan against the suite that is up in `run_dir`
/// while the user drives load, then drain and audit. Prints the fault log (and keeps it in
/// `<run_dir>/faults/`). Returns whether every fault came back and nothing was lost.
pub async fn chaos(args: ChaosArgs) -> anyhow::Result<bool> {
    use crate::chaos::{self, FaultKind, FaultPlan, Promises, RabbitNode, Series};
    let mut suite = Suite::attach(&args.run_dir)?;
    let mode = suite.mode();
    let mut plan = FaultPlan::standard(mode, suite.state().options.replicas, args.duration);
    plan.restart_after = args.restart_after;
    if mode == common::Mode::Async && args.no_broker {
        let kinds = plan.faults.into_iter().map(|f| f.kind);
        let kinds = kinds.filter(|k| *k != FaultKind::BrokerRestart).collect();
        plan = FaultPlan {
            restart_after: args.restart_after,
            ..FaultPlan::spread(kinds, args.duration)
        };
    } else if mode == common::Mode::Async {
        plan.broker = Some(match args.rabbitmq_node {
            Some(node) => RabbitNode::named(node)?,
            None => RabbitNode::machine()?,
        });
    }
    tracing::info!(
        "{} fault(s) over {:?} against the {mode} suite in {}; drive the load now",
        plan.faults.len(),
        args.duration,
        args.run_dir.display()
    );
    let mut log = tokio::select! {
        log = chaos::run(&mut suite, &plan) => log?,
        _ = tokio::signal::ctrl_c() => {
            tracing::warn!("interrupted: starting again whatever the plan had stopped");
            chaos::repair(&mut suite, &plan).await?;
            anyhow::bail!("interrupted");
        }
    };
    let metrics = suite.run_dir().join("metrics");
    tracing::info!("run over; waiting for the load to stop");
    if !chaos::wait_idle(&metrics, Duration::from_secs(3), args.drain_timeout).await {
        tracing::warn!(
            "the load did not stop within {:?}; draining under it",
            args.drain_timeout
        );
    }
    let series = match &args.k6_csv {
        Some(path) => Series::from_k6_csv(path),
        None => Series::from_metrics_dir(&metrics),
    };
    match series {
        Ok(series) => log.measure(&series),
        Err(e) => tracing::warn!("no per-second load figures: {e:#}"),
    }
    tracing::info!("draining (at most {:?}) and auditing", args.drain_timeout);
    log.settle(&suite, &Promises::default(), args.drain_timeout)
        .await?;
    let dir = suite.run_dir().join("faults");
    std::fs::create_dir_all(&dir)?;
    let stem = dir.join(log.started_at.format("%Y%m%d-%H%M%S").to_string());
    std::fs::write(
        stem.with_extension("json"),
        serde_json::to_string_pretty(&log)?,
    )?;
    std::fs::write(stem.with_extension("md"), log.render_markdown())?;
    tracing::info!("fault log kept in {}.{{md,json}}", stem.display());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&log)?);
    } else {
        print!("{}", log.render_markdown());
    }
    Ok(log.passed())
}
