//! The servers the suite runs on: PostgreSQL, Redis and RabbitMQ answering on their standard
//! local ports, and nginx installed (the harness runs its own nginx per suite; the system one
//! is never started); and the load generator, k6, at its pinned version ([`crate::k6`]).
//!
//! [`setup`] installs from Debian's packages only what is missing, starts only what does not
//! answer, and prints one line per action, so running it on a machine that is already set up
//! changes nothing.

use crate::apt::run;
use anyhow::{bail, Context};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const POSTGRES_PORT: u16 = 5432;
pub const REDIS_PORT: u16 = 6379;
pub const RABBITMQ_PORT: u16 = 5672;

/// Fewest PostgreSQL connections the suite needs: test suites run ~10 service processes with
/// small pools each, several suites at once.
pub const MIN_MAX_CONNECTIONS: i64 = 500;

/// The admin URL of the local PostgreSQL server (no database name).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// Ensure everything the suite needs is installed and answering. `flashsale setup` runs this;
/// `flashsale up` runs it first.
pub async fn setup() -> anyhow::Result<()> {
    let mut apt = crate::apt::Apt::default();

    let pg_down = !port_answers(POSTGRES_PORT);
    let redis_down = !port_answers(REDIS_PORT);
    let rabbit_down = !port_answers(RABBITMQ_PORT);

    if pg_down && postgres_version().is_none() {
        apt.install("postgresql")?;
    }
    if redis_down && find_binary("redis-server").is_none() {
        apt.install("redis-server")?;
    }
    if rabbit_down && find_binary("rabbitmq-server").is_none() {
        apt.install("rabbitmq-server")?;
    }
    match find_binary("nginx") {
        Some(path) => tracing::info!("nginx: installed at {}", path.display()),
        None => {
            apt.install("nginx")?;
            nginx_binary()?;
        }
    }
    // Only to validate docker-compose.yml (`docker-compose config`); no Docker engine is used.
    match find_binary("docker-compose") {
        Some(path) => tracing::info!("docker-compose: installed at {}", path.display()),
        None => apt.install("docker-compose")?,
    }

    let version = if pg_down {
        let version = postgres_version()
            .context("PostgreSQL is installed but /etc/postgresql has no cluster")?;
        tracing::info!("postgresql: starting cluster {version}/main");
        run(Command::new("pg_ctlcluster").args([
            "--skip-systemctl-redirect",
            &version,
            "main",
            "start",
        ]))?;
        wait_port("postgresql", POSTGRES_PORT, Duration::from_secs(60))?;
        Some(version)
    } else {
        tracing::info!("postgresql: answering on 127.0.0.1:{POSTGRES_PORT}");
        postgres_version()
    };

    if redis_down {
        tracing::info!("redis: starting redis-server");
        for dir in ["/var/lib/redis", "/var/log/redis"] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
        }
        run(Command::new("redis-server").args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1 -::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ]))?;
        wait_port("redis", REDIS_PORT, Duration::from_secs(30))?;
    } else {
        tracing::info!("redis: answering on 127.0.0.1:{REDIS_PORT}");
    }

    if rabbit_down {
        tracing::info!("rabbitmq: starting rabbitmq-server -detached");
        run(Command::new("rabbitmq-server").arg("-detached"))?;
        wait_port("rabbitmq", RABBITMQ_PORT, Duration::from_secs(120))?;
    } else {
        tracing::info!("rabbitmq: answering on 127.0.0.1:{RABBITMQ_PORT}");
    }

    ensure_postgres_trust(version.as_deref()).await?;
    ensure_max_connections(version.as_deref()).await?;
    crate::k6::ensure_installed(&mut apt)?;
    Ok(())
}

/// True when something accepts a TCP connection on 127.0.0.1:`port`.
pub fn port_answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn wait_port(name: &str, port: u16, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    while !port_answers(port) {
        if start.elapsed() > timeout {
            bail!(
                "{name} did not answer on 127.0.0.1:{port} within {}s after starting it",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    tracing::info!(
        "{name}: answering on 127.0.0.1:{port} after {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The newest PostgreSQL cluster version under /etc/postgresql, when `pg_ctlcluster` exists.
fn postgres_version() -> Option<String> {
    find_binary("pg_ctlcluster")?;
    let mut versions: Vec<(u32, String)> = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let major = name.split('.').next()?.parse::<u32>().ok()?;
            e.path().join("main").is_dir().then_some((major, name))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, name)| name)
}

/// `name` on PATH or in the system binary folders (root's tools are not always on PATH).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The nginx binary, or an error telling how to get it.
pub fn nginx_binary() -> anyhow::Result<PathBuf> {
    find_binary("nginx")
        .context("nginx is not installed: run `flashsale setup` (apt-get install nginx)")
}

async fn connect_admin() -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5",
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Connecting as `postgres` over TCP without a password must work (the services' URLs carry
/// none). A fresh Debian cluster asks for scram on host connections: trust loopback instead.
async fn ensure_postgres_trust(version: Option<&str>) -> anyhow::Result<()> {
    let err = match connect_admin().await {
        Ok(_) => {
            tracing::info!("postgresql: user postgres connects over TCP without a password");
            return Ok(());
        }
        Err(e) => e,
    };
    let text = format!("{err:#}").to_lowercase();
    let auth_problem = err.code().is_some_and(|c| c.code().starts_with("28"))
        || text.contains("password")
        || text.contains("authentication");
    if !auth_problem {
        return Err(err).context("connecting to PostgreSQL as postgres on 127.0.0.1");
    }
    let version = version.context("PostgreSQL answers but no cluster under /etc/postgresql")?;
    let hba = PathBuf::from(format!("/etc/postgresql/{version}/main/pg_hba.conf"));
    tracing::info!(
        "postgresql: password required for postgres on 127.0.0.1; trusting loopback in {}",
        hba.display()
    );
    let old =
        std::fs::read_to_string(&hba).with_context(|| format!("reading {}", hba.display()))?;
    let new = format!(
        "# added by flashsale setup: the suite connects as postgres without a password\n\
         host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n{old}"
    );
    std::fs::write(&hba, new).with_context(|| format!("writing {}", hba.display()))?;
    run(Command::new("pg_ctlcluster").args([
        "--skip-systemctl-redirect",
        version,
        "main",
        "reload",
    ]))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    connect_admin()
        .await
        .context("connecting to PostgreSQL as postgres after trusting loopback")?;
    tracing::info!("postgresql: user postgres connects over TCP without a password");
    Ok(())
}

async fn ensure_max_connections(version: Option<&str>) -> anyhow::Result<()> {
    let client = connect_admin().await.context("connecting to PostgreSQL")?;
    let current = show_max_connections(&client).await?;
    if current >= MIN_MAX_CONNECTIONS {
        tracing::info!("postgresql: max_connections = {current}");
        return Ok(());
    }
    let version = version.context("PostgreSQL answers but no cluster under /etc/postgresql")?;
    tracing::info!(
        "postgresql: max_connections = {current}, raising to {MIN_MAX_CONNECTIONS} and restarting"
    );
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET max_connections = {MIN_MAX_CONNECTIONS}"
        ))
        .await
        .context("ALTER SYSTEM SET max_connections")?;
    drop(client);
    run(Command::new("pg_ctlcluster").args([
        "--skip-systemctl-redirect",
        "-m",
        "fast",
        version,
        "main",
        "restart",
    ]))?;
    wait_port("postgresql", POSTGRES_PORT, Duration::from_secs(60))?;
    // The port can answer a moment before the server accepts sessions.
    let start = Instant::now();
    let client = loop {
        match connect_admin().await {
            Ok(c) => break c,
            Err(e) if start.elapsed() > Duration::from_secs(30) => {
                return Err(e).context("connecting to PostgreSQL after the restart")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    let now = show_max_connections(&client).await?;
    if now < MIN_MAX_CONNECTIONS {
        bail!("PostgreSQL max_connections is still {now} after the restart");
    }
    tracing::info!("postgresql: max_connections = {now}");
    Ok(())
}

async fn show_max_connections(client: &tokio_postgres::Client) -> anyhow::Result<i64> {
    let row = client
        .query_one("SHOW max_connections", &[])
        .await
        .context("SHOW max_connections")?;
    let value: String = row.get(0);
    value
        .trim()
        .parse()
        .with_context(|| format!("parsing max_connections {value:?}"))
}
