//! `flashsale`: start the flash-sale suite natively, check its invariants, compare the
//! architectures. Argument parsing only; the work is in the library.

use clap::{Parser, Subcommand, ValueEnum};
use harness::{commands, HashParams, SuiteOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "flashsale",
    version,
    about = "Flash-sale suite harness: sync (HTTP) vs async (RabbitMQ)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make sure PostgreSQL, Redis and RabbitMQ answer locally (installing and starting what
    /// is missing) and nginx is installed.
    Setup,
    /// Start the whole suite (runs `setup` first), print its URL, and leave it running.
    Up(UpArgs),
    /// Stop exactly the processes `up` started.
    Down {
        #[arg(long, default_value = "run")]
        run_dir: PathBuf,
    },
    /// Check the invariants over the five databases; exit status 1 on any violation.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Where a running suite's state.json is (its database prefix and URL are used).
        #[arg(long, default_value = "run")]
        run_dir: PathBuf,
        /// Database prefix (default: the running suite's, else `flashsale`).
        #[arg(long)]
        db_prefix: Option<String>,
        /// PostgreSQL server URL without a database name.
        #[arg(long)]
        database_url: Option<String>,
        /// Work younger than this is in flight, not stuck.
        #[arg(long, default_value_t = 10.0)]
        grace_secs: f64,
        /// Wait at most this long for the suite to drain (outboxes, queues, PENDING work)
        /// before checking; 0 checks at once.
        #[arg(long, default_value_t = 30.0)]
        drain_secs: f64,
        /// RabbitMQ URL; the broker is checked when given or when the running suite is async.
        #[arg(long)]
        amqp_url: Option<String>,
    },
    /// Dead-lettered messages of an async suite.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Show every process of the running suite: alive, ready.
    Status {
        #[arg(long, default_value = "run")]
        run_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// List dead letters (they stay where they are).
    List {
        #[command(flatten)]
        target: DlqTarget,
        #[arg(long)]
        json: bool,
    },
    /// Publish dead letters back to the queue they died in, then remove them from the DLQ.
    Replay {
        #[command(flatten)]
        target: DlqTarget,
    },
}

#[derive(clap::Args)]
struct DlqTarget {
    /// One queue only: a DLQ name (`<prefix>.<service>.dlq`) or a service name.
    #[arg(long)]
    queue: Option<String>,
    #[arg(long, default_value = "run")]
    run_dir: PathBuf,
    /// Queue prefix (default: the running suite's database prefix, else `flashsale`).
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long)]
    amqp_url: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Sync,
    Async,
}

#[derive(clap::Args)]
struct UpArgs {
    #[arg(long, value_enum)]
    mode: ModeArg,
    /// Processes per service.
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 5)]
    products: usize,
    /// Initial units of every product.
    #[arg(long, default_value_t = 1000)]
    stock: i32,
    /// Units of each product one user may buy; 0 = no limit.
    #[arg(long, default_value_t = 1)]
    per_user_limit: i32,
    /// nginx's port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, default_value = "run")]
    run_dir: PathBuf,
    #[arg(long, default_value = "flashsale")]
    db_prefix: String,
    #[arg(long, default_value = "flashsale")]
    redis_prefix: String,
    /// actix workers per replica.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// PostgreSQL connections per replica.
    #[arg(long, default_value_t = 4)]
    db_pool_size: usize,
    /// The seeded users' password.
    #[arg(long, default_value = "flashsale")]
    password: String,
    /// Folder of the service binaries (default: beside this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Extra environment for every service, e.g. `--env PAYMENT_LATENCY_MS=200` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Keep the databases and Redis keys of an earlier run.
    #[arg(long)]
    keep_databases: bool,
    /// Do not check or start PostgreSQL, Redis and RabbitMQ first.
    #[arg(long)]
    skip_setup: bool,
}

fn parse_env(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {raw:?}"))
}

impl UpArgs {
    fn into_options(self) -> SuiteOptions {
        SuiteOptions {
            mode: match self.mode {
                ModeArg::Sync => common::Mode::Sync,
                ModeArg::Async => common::Mode::Async,
            },
            replicas: self.replicas,
            users: self.users,
            products: self.products,
            stock: self.stock,
            per_user_limit: self.per_user_limit,
            port: self.port,
            run_dir: self.run_dir,
            db_prefix: self.db_prefix,
            redis_prefix: self.redis_prefix,
            bin_dir: self.bin_dir,
            workers: self.workers,
            db_pool_size: self.db_pool_size,
            password: self.password,
            hash_params: HashParams::default(),
            extra_env: self.env,
            keep_databases: self.keep_databases,
            ..SuiteOptions::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .init();

    let result = match Cli::parse().command {
        Command::Setup => harness::infra::setup().await.map(|()| true),
        Command::Up(args) => {
            let skip = args.skip_setup;
            commands::up(args.into_options(), skip).await.map(|()| true)
        }
        Command::Down { run_dir } => commands::down(&run_dir).await.map(|()| true),
        Command::Verify {
            json,
            run_dir,
            db_prefix,
            database_url,
            grace_secs,
            drain_secs,
            amqp_url,
        } => {
            commands::verify(
                &run_dir,
                commands::VerifyArgs {
                    db_prefix,
                    database_url,
                    amqp_url,
                    grace: Duration::from_secs_f64(grace_secs.max(0.0)),
                    drain: Duration::from_secs_f64(drain_secs.max(0.0)),
                },
                json,
            )
            .await
        }
        Command::Dlq { action } => match action {
            DlqAction::List { target, json } => {
                commands::dlq_list(
                    &target.run_dir,
                    target.prefix,
                    target.amqp_url,
                    target.queue.as_deref(),
                    json,
                )
                .await
            }
            DlqAction::Replay { target } => {
                commands::dlq_replay(
                    &target.run_dir,
                    target.prefix,
                    target.amqp_url,
                    target.queue.as_deref(),
                )
                .await
            }
        },
        Command::Status { run_dir, json } => commands::status(&run_dir, json).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
    }
}
