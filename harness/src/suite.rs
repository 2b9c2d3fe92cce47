//! A running suite: the five services' replicas and nginx, started natively from the
//! workspace's binaries, on fresh databases, with seeded users and products.
//!
//! [`Suite::start`] is what `flashsale up` and the end-to-end tests run; [`Suite::attach`]
//! finds a suite that an earlier `up` left running, through `<run_dir>/state.json`. A
//! `Suite` only ever signals the pids it recorded, and only while they still run the binary
//! it recorded, so a stale state file can never make it kill an unrelated process.
//!
//! Layout of the run folder: `state.json`, `logs/<instance>.log`, `pids/<instance>.pid`,
//! `ports/<instance>` (written by each service), `nginx/` (nginx's prefix: its config, pid,
//! error log and temp folders), `metrics/<instance>.lp` and `traces/<instance>.jsonl` (each
//! replica's metrics and, when traced, its spans).

use crate::nginx::{NginxConfig, Upstream, SERVICES};
use crate::options::{self, SuiteOptions};
use crate::process::{self, Spawn};
use crate::rundata::traces::{TRACES_DIR, TRACE_FILE_EXTENSION};
use crate::state::{NginxRecord, ProcessRecord, SeededProduct, SuiteState};
use anyhow::{bail, Context};
use common::Mode;
use nix::sys::signal::Signal;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// How long a SIGTERM'd service may drain before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long nginx may finish its requests after SIGQUIT.
const NGINX_GRACE: Duration = Duration::from_secs(5);

pub struct Suite {
    state: SuiteState,
    /// Processes this handle spawned, by pid: waited for so they leave no zombies, and asked
    /// for their exit status when start-up fails.
    children: HashMap<u32, Child>,
    /// Whether dropping this handle kills the suite: true for a suite started here, false for
    /// an attached or detached one.
    owned: bool,
    http: reqwest::Client,
}

/// One process as `status` sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessStatus {
    pub instance: String,
    pub pid: u32,
    pub port: u16,
    /// Alive and still running the recorded binary.
    pub alive: bool,
    /// `/readyz` (nginx: `/nginx-health`) answered 200.
    pub ready: bool,
}

impl Suite {
    /// Start a fresh suite and return once every replica and nginx answer ready and the seed
    /// data is in. On any failure, everything already started is killed again.
    pub async fn start(opts: SuiteOptions) -> anyhow::Result<Suite> {
        validate(&opts)?;
        std::fs::create_dir_all(&opts.run_dir)
            .with_context(|| format!("creating run folder {}", opts.run_dir.display()))?;
        let run_dir = std::fs::canonicalize(&opts.run_dir)?;
        refuse_if_running(&run_dir)?;

        let bin_dir = match &opts.bin_dir {
            Some(dir) => dir.clone(),
            None => default_bin_dir()?,
        };
        let mut binaries = HashMap::new();
        for service in SERVICES {
            let path = bin_dir.join(service);
            if !path.is_file() {
                bail!(
                    "service binary {} is missing: run `cargo build --workspace --bins` first",
                    path.display()
                );
            }
            binaries.insert(service, std::fs::canonicalize(&path)?);
        }
        let nginx = std::fs::canonicalize(crate::infra::nginx_binary()?)?;
        // Before anything is dropped or started: a busy port would only fail at nginx's start.
        let internal_port = opts.internal_port()?;
        for port in [opts.port, internal_port] {
            std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
                format!(
                    "port {port} on 127.0.0.1 is in use: choose another with --port \
                     (the suite takes --port for its public listener and the next one for \
                     its internal one)"
                )
            })?;
        }

        if opts.keep_databases {
            tracing::info!(
                "keeping databases {}_* and Redis keys {}:*",
                opts.db_prefix,
                opts.redis_prefix
            );
        } else {
            tracing::info!(
                "fresh state: dropping databases {}_*, deleting Redis keys {}:*",
                opts.db_prefix,
                opts.redis_prefix
            );
            crate::store::drop_databases(&opts.database_url, &opts.db_prefix).await?;
            crate::store::clear_redis(&opts.redis_url, &opts.redis_prefix).await?;
            // Messages of an earlier run must not reach this one's services.
            // (RabbitMQ may be away right now: the services wait for it, and so can this.)
            if let Err(e) = crate::broker::delete_topology(&opts.amqp_url, &opts.db_prefix).await {
                if opts.mode == common::Mode::Async {
                    tracing::warn!("could not clear the suite's queues: {e:#}");
                }
            }
        }

        for sub in ["logs", "pids", "ports", "nginx", TRACES_DIR] {
            std::fs::create_dir_all(run_dir.join(sub))?;
        }
        for entry in std::fs::read_dir(run_dir.join("ports"))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }

        let state = SuiteState {
            mode: opts.mode,
            port: opts.port,
            base_url: format!("http://127.0.0.1:{}", opts.port),
            internal_url: format!("http://127.0.0.1:{internal_port}"),
            run_dir: run_dir.clone(),
            db_prefix: opts.db_prefix.clone(),
            redis_prefix: opts.redis_prefix.clone(),
            database_url: opts.database_url.clone(),
            redis_url: opts.redis_url.clone(),
            amqp_url: opts.amqp_url.clone(),
            token_secret: random_hex(32),
            internal_key: random_hex(32),
            started_at: chrono::Utc::now(),
            processes: Vec::new(),
            nginx: None,
            users: opts.users,
            password: opts.password.clone(),
            products: Vec::new(),
            options: SuiteOptions {
                run_dir: run_dir.clone(),
                bin_dir: Some(bin_dir),
                ..opts.clone()
            },
        };
        let mut suite = Suite {
            state,
            children: HashMap::new(),
            owned: true,
            http: http_client()?,
        };
        match suite.boot(&binaries, &nginx).await {
            Ok(()) => Ok(suite),
            Err(e) => {
                suite.kill_now();
                Err(e)
            }
        }
    }

    async fn boot(
        &mut self,
        binaries: &HashMap<&'static str, PathBuf>,
        nginx: &Path,
    ) -> anyhow::Result<()> {
        let opts = self.state.options.clone();
        let timeout = Duration::from_secs(opts.ready_timeout_secs);
        let deadline = Instant::now() + timeout;
        tracing::info!(
            "starting {} replica(s) of {} in {} mode",
            opts.replicas,
            SERVICES.join(", "),
            opts.mode
        );
        for service in SERVICES {
            for index in 0..opts.replicas {
                let exe = binaries[service].clone();
                let instance = format!("{service}-{index}");
                let child = self.spawn_replica(service, index, &exe, None)?;
                self.state.processes.push(ProcessRecord {
                    service: service.to_string(),
                    instance,
                    index,
                    pid: child.id(),
                    port: 0,
                    exe,
                });
                self.children.insert(child.id(), child);
            }
        }
        self.state.save()?;

        tracing::info!("waiting for every replica's port file");
        self.wait_ports(deadline).await?;
        self.state.save()?;

        tracing::info!("starting nginx on 127.0.0.1:{}", opts.port);
        self.start_nginx(nginx)?;
        self.state.save()?;

        tracing::info!("waiting for every replica's /readyz and nginx's /nginx-health");
        self.wait_ready(deadline, timeout).await?;

        tracing::info!(
            "seeding {} users and {} products ({} units each)",
            opts.users,
            opts.products,
            opts.stock
        );
        self.state.products = crate::seed::seed(&self.state.database_url, &opts).await?;
        self.state.save()?;
        tracing::info!("suite is up at {}", self.state.base_url);
        Ok(())
    }

    /// The environment of replica `index` of `service`: the suite's settings, then
    /// `extra_env`. With `port` set (a restart) it binds that port instead of a free one.
    fn replica_env(&self, service: &str, index: usize, port: Option<u16>) -> Vec<(String, String)> {
        let s = &self.state;
        let o = &s.options;
        let instance = format!("{service}-{index}");
        let mut env: Vec<(String, String)> = vec![
            ("MODE".into(), s.mode.as_str().into()),
            ("HOST".into(), "127.0.0.1".into()),
            ("PORT".into(), port.unwrap_or(0).to_string()),
            ("INSTANCE".into(), instance.clone()),
            ("WORKERS".into(), o.workers.to_string()),
            ("DATABASE_URL".into(), s.database_url.clone()),
            ("DATABASE_PREFIX".into(), s.db_prefix.clone()),
            ("DB_POOL_SIZE".into(), o.db_pool_size.to_string()),
            ("REDIS_URL".into(), s.redis_url.clone()),
            ("REDIS_PREFIX".into(), s.redis_prefix.clone()),
            ("AMQP_URL".into(), s.amqp_url.clone()),
            // One topology per suite: a suite's queues are `<db prefix>.<service>`.
            ("AMQP_PREFIX".into(), s.db_prefix.clone()),
            ("TOKEN_SECRET".into(), s.token_secret.clone()),
            ("INTERNAL_KEY".into(), s.internal_key.clone()),
            ("UPSTREAM_URL".into(), s.internal_url.clone()),
            // The gateway's decoy for unknown usernames costs what the seeded hashes cost.
            (
                "PASSWORD_HASH_PARAMS".into(),
                format!(
                    "m={},t={},p={}",
                    o.hash_params.m_cost, o.hash_params.t_cost, o.hash_params.p_cost
                ),
            ),
        ];
        // A restarted replica binds its old port and writes the same number again.
        let file = s.run_dir.join("ports").join(&instance);
        env.push(("PORT_FILE".into(), file.to_string_lossy().into()));
        // Each replica's metrics (docs/metrics.md), appended across restarts.
        let metrics = s.run_dir.join("metrics").join(format!("{instance}.lp"));
        env.push(("METRICS_FILE".into(), metrics.to_string_lossy().into()));
        // Its spans (docs/tracing.md), appended across restarts: a replica writes the file
        // only when it traces (a ratio above 0).
        env.push((
            "TRACE_SAMPLE_RATIO".into(),
            o.trace_sample_ratio.to_string(),
        ));
        env.push((
            "TRACE_FILE".into(),
            trace_file(&s.run_dir, &instance).to_string_lossy().into(),
        ));
        env.extend(o.extra_env.iter().cloned());
        env
    }

    fn spawn_replica(
        &self,
        service: &str,
        index: usize,
        exe: &Path,
        port: Option<u16>,
    ) -> anyhow::Result<Child> {
        let instance = format!("{service}-{index}");
        let env = self.replica_env(service, index, port);
        let child = process::spawn(&Spawn {
            exe,
            args: &[],
            env: &env,
            log: &self.log_path(&instance),
        })?;
        std::fs::write(self.pid_path(&instance), child.id().to_string())?;
        Ok(child)
    }

    async fn wait_ports(&mut self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            let mut missing = None;
            for i in 0..self.state.processes.len() {
                if self.state.processes[i].port != 0 {
                    continue;
                }
                let instance = self.state.processes[i].instance.clone();
                let file = self.state.run_dir.join("ports").join(&instance);
                let port = std::fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| t.trim().parse::<u16>().ok())
                    .filter(|p| *p != 0);
                match port {
                    Some(port) => self.state.processes[i].port = port,
                    None => {
                        self.fail_if_exited(i)?;
                        missing.get_or_insert(i);
                    }
                }
            }
            let Some(i) = missing else { return Ok(()) };
            if Instant::now() >= deadline {
                let p = &self.state.processes[i];
                bail!(
                    "{} wrote no port file within {}s; last lines of {}:\n{}",
                    p.instance,
                    self.state.options.ready_timeout_secs,
                    self.log_path(&p.instance).display(),
                    process::tail(&self.log_path(&p.instance), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fail start-up at once, with its log, when process `i` has already exited.
    fn fail_if_exited(&mut self, i: usize) -> anyhow::Result<()> {
        let p = &self.state.processes[i];
        let status = match self.children.get_mut(&p.pid) {
            Some(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
            None => (!process::is_alive(p.pid)).then(|| "exited".to_string()),
        };
        if let Some(status) = status {
            bail!(
                "{} ({}) exited during start-up ({status}); last lines of {}:\n{}",
                p.instance,
                p.exe.display(),
                self.log_path(&p.instance).display(),
                process::tail(&self.log_path(&p.instance), 30)
            );
        }
        Ok(())
    }

    fn nginx_config(&self) -> NginxConfig {
        NginxConfig {
            mode: self.state.mode,
            port: self.state.port,
            internal_port: options::internal_port(self.state.port).expect("checked at start"),
            suite: self.state.db_prefix.clone(),
            prefix: self.state.run_dir.join("nginx"),
            upstreams: SERVICES
                .iter()
                .map(|service| Upstream {
                    name: service.to_string(),
                    ports: self
                        .state
                        .processes
                        .iter()
                        .filter(|p| p.service == *service)
                        .map(|p| p.port)
                        .collect(),
                })
                .collect(),
        }
    }

    fn start_nginx(&mut self, nginx: &Path) -> anyhow::Result<()> {
        let config = self.nginx_config();
        let conf = config.write_and_check(nginx)?;
        let child = config.spawn(nginx, &conf)?;
        let pid = child.id();
        std::fs::write(self.pid_path("nginx"), pid.to_string())?;
        self.children.insert(pid, child);
        self.state.nginx = Some(NginxRecord {
            pid,
            port: self.state.port,
            exe: nginx.to_path_buf(),
            conf,
        });
        Ok(())
    }

    async fn wait_ready(&mut self, deadline: Instant, timeout: Duration) -> anyhow::Result<()> {
        let mut last: HashMap<String, String> = HashMap::new();
        loop {
            let mut pending = None;
            for i in 0..self.state.processes.len() {
                let p = &self.state.processes[i];
                let url = format!("http://127.0.0.1:{}/readyz", p.port);
                let instance = p.instance.clone();
                match self.probe(&url).await {
                    Ok(()) => {
                        last.remove(&instance);
                    }
                    Err(e) => {
                        last.insert(instance, e);
                        self.fail_if_exited(i)?;
                        pending.get_or_insert(i);
                    }
                }
            }
            let nginx_ready = self.probe_nginx().await;
            if let Some(n) = &self.state.nginx {
                if let Some(status) = self
                    .children
                    .get_mut(&n.pid)
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    let log = self.state.run_dir.join("nginx/error.log");
                    bail!(
                        "nginx exited during start-up ({status}); last lines of {}:\n{}",
                        log.display(),
                        process::tail(&log, 30)
                    );
                }
            }
            match (pending, &nginx_ready) {
                (None, Ok(())) => return Ok(()),
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                (Some(i), _) => {
                    let p = &self.state.processes[i];
                    bail!(
                        "{} is not ready after {}s (last answer: {}); last lines of {}:\n{}",
                        p.instance,
                        timeout.as_secs(),
                        last.get(&p.instance).map_or("none", String::as_str),
                        self.log_path(&p.instance).display(),
                        process::tail(&self.log_path(&p.instance), 30)
                    );
                }
                (None, Err(e)) => {
                    let log = self.state.run_dir.join("nginx/error.log");
                    bail!(
                        "nginx does not answer /nginx-health on port {} after {}s ({e}); last lines of {}:\n{}",
                        self.state.port,
                        timeout.as_secs(),
                        log.display(),
                        process::tail(&log, 30)
                    );
                }
            }
        }
    }

    /// `/nginx-health` answered by this suite's nginx: another suite's nginx that holds the
    /// port (its own start-up won the race for it) answers too, with its own name.
    async fn probe_nginx(&self) -> Result<(), String> {
        let url = format!("{}/nginx-health", self.state.base_url);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let suite = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("suite")?.as_str().map(str::to_string));
        match suite {
            Some(suite) if status.is_success() && suite == self.state.db_prefix => Ok(()),
            Some(other) if status.is_success() => Err(format!(
                "port {} is served by another suite's nginx ({other})",
                self.state.port
            )),
            _ => Err(unexpected(status, &body)),
        }
    }

    /// GET `url`: Ok on 200, else what came back.
    async fn probe(&self, url: &str) -> Result<(), String> {
        match self.http.get(url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let status = r.status();
                Err(unexpected(status, &r.text().await.unwrap_or_default()))
            }
            Err(e) => Err(format!("{e}")),
        }
    }

    /// Find the suite an earlier `flashsale up` left in `run_dir`. Dropping the handle leaves
    /// it running; call [`Suite::stop`] to stop it.
    pub fn attach(run_dir: impl AsRef<Path>) -> anyhow::Result<Suite> {
        let run_dir = run_dir.as_ref();
        if !crate::state::SuiteState::path(run_dir).exists() {
            bail!(
                "no suite is up in {} (no {})",
                run_dir.display(),
                crate::state::STATE_FILE
            );
        }
        Ok(Suite {
            state: SuiteState::load(run_dir)?,
            children: HashMap::new(),
            owned: false,
            http: http_client()?,
        })
    }

    /// Leave the suite running when this handle is dropped (what `flashsale up` does).
    pub fn detach(mut self) {
        self.owned = false;
    }

    /// Stop what this suite started: SIGTERM every replica (those still running their recorded
    /// binary), up to 15 s to drain, then SIGKILL; nginx SIGQUIT, then SIGKILL. Removes
    /// state.json. Databases stay, for `verify`.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let services: Vec<(u32, PathBuf)> = self
            .state
            .processes
            .iter()
            .map(|p| (p.pid, p.exe.clone()))
            .collect();
        let signalled: Vec<u32> = services
            .iter()
            .filter(|(pid, exe)| process::signal_ours(*pid, exe, Signal::SIGTERM))
            .map(|(pid, _)| *pid)
            .collect();
        tracing::info!("sent SIGTERM to {} service process(es)", signalled.len());
        let left = self.wait_gone(&signalled, STOP_GRACE).await;
        if !left.is_empty() {
            tracing::warn!(
                "killing {} service process(es) still draining after {}s",
                left.len(),
                STOP_GRACE.as_secs()
            );
            for (pid, exe) in services.iter().filter(|(pid, _)| left.contains(pid)) {
                process::signal_ours(*pid, exe, Signal::SIGKILL);
            }
            self.wait_gone(&left, Duration::from_secs(5)).await;
        }
        if let Some(n) = self.state.nginx.clone() {
            if process::signal_group_ours(n.pid, &n.exe, Signal::SIGQUIT) {
                tracing::info!("sent SIGQUIT to nginx ({})", n.pid);
                if !self.wait_gone(&[n.pid], NGINX_GRACE).await.is_empty() {
                    process::signal_group_ours(n.pid, &n.exe, Signal::SIGKILL);
                    self.wait_gone(&[n.pid], Duration::from_secs(5)).await;
                }
            }
        }
        self.owned = false;
        let still: Vec<u32> = self.state.live_pids();
        if !still.is_empty() {
            bail!("processes {still:?} are still alive after SIGKILL");
        }
        self.forget_files();
        Ok(())
    }

    async fn wait_gone(&mut self, pids: &[u32], timeout: Duration) -> Vec<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            for child in self.children.values_mut() {
                let _ = child.try_wait();
            }
            let alive: Vec<u32> = pids
                .iter()
                .copied()
                .filter(|p| process::is_alive(*p))
                .collect();
            if alive.is_empty() || Instant::now() >= deadline {
                return alive;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL every process of the suite at once (no draining) and forget it: a crash of
    /// the whole machine, as far as the suite can tell. Databases stay.
    pub fn kill(&mut self) {
        self.kill_now();
    }

    /// SIGKILL everything still ours, at once. Used when start-up fails and on drop.
    fn kill_now(&mut self) {
        let mut pids = Vec::new();
        for p in &self.state.processes {
            if process::signal_ours(p.pid, &p.exe, Signal::SIGKILL) {
                pids.push(p.pid);
            }
        }
        if let Some(n) = &self.state.nginx {
            if process::signal_group_ours(n.pid, &n.exe, Signal::SIGKILL) {
                pids.push(n.pid);
            }
        }
        let mut children: Vec<Child> = self.children.drain().map(|(_, c)| c).collect();
        process::wait_exit(&pids, &mut children, Duration::from_secs(5));
        self.owned = false;
        self.forget_files();
    }

    fn forget_files(&self) {
        let _ = std::fs::remove_file(SuiteState::path(&self.state.run_dir));
        for p in &self.state.processes {
            let _ = std::fs::remove_file(self.pid_path(&p.instance));
        }
        let _ = std::fs::remove_file(self.pid_path("nginx"));
    }

    /// Send `signal` to replica `index` (0-based) of `service`. For a signal that ends it
    /// (TERM, KILL, INT, QUIT) this waits until it has exited (up to 20 s).
    pub async fn kill_replica(
        &mut self,
        service: &str,
        index: usize,
        signal: Signal,
    ) -> anyhow::Result<()> {
        let p = self.state.replica(service, index)?.clone();
        if !process::signal_ours(p.pid, &p.exe, signal) {
            bail!("{} (pid {}) is not running", p.instance, p.pid);
        }
        tracing::info!("sent {signal} to {} ({})", p.instance, p.pid);
        if matches!(
            signal,
            Signal::SIGTERM | Signal::SIGKILL | Signal::SIGINT | Signal::SIGQUIT
        ) {
            let left = self.wait_gone(&[p.pid], Duration::from_secs(20)).await;
            if !left.is_empty() {
                bail!(
                    "{} (pid {}) did not exit within 20 s of {signal}",
                    p.instance,
                    p.pid
                );
            }
        }
        Ok(())
    }

    /// Start replica `index` of `service` again, on the port it had (nginx's upstream still
    /// names it), and wait until its `/readyz` answers 200. It must not be running.
    pub async fn restart_replica(&mut self, service: &str, index: usize) -> anyhow::Result<()> {
        let p = self.state.replica(service, index)?.clone();
        if process::is_ours(p.pid, &p.exe) {
            bail!(
                "{} (pid {}) is still running: kill it first",
                p.instance,
                p.pid
            );
        }
        if let Some(mut old) = self.children.remove(&p.pid) {
            let _ = old.try_wait();
        }
        let child = self.spawn_replica(service, index, &p.exe, Some(p.port))?;
        let pid = child.id();
        self.children.insert(pid, child);
        if let Some(rec) = self
            .state
            .processes
            .iter_mut()
            .find(|r| r.service == service && r.index == index)
        {
            rec.pid = pid;
        }
        self.state.save()?;
        tracing::info!("restarted {} as pid {pid} on port {}", p.instance, p.port);
        let timeout = Duration::from_secs(self.state.options.ready_timeout_secs);
        let deadline = Instant::now() + timeout;
        let url = format!("http://127.0.0.1:{}/readyz", p.port);
        let i = self
            .state
            .processes
            .iter()
            .position(|r| r.service == service && r.index == index)
            .context("replica vanished from the state")?;
        loop {
            let last = match self.probe(&url).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            self.fail_if_exited(i)?;
            if Instant::now() >= deadline {
                bail!(
                    "{} is not ready {}s after its restart (last answer: {last}); last lines of {}:\n{}",
                    p.instance,
                    timeout.as_secs(),
                    self.log_path(&p.instance).display(),
                    process::tail(&self.log_path(&p.instance), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every process: alive, and ready.
    pub async fn status(&self) -> Vec<ProcessStatus> {
        let mut out = Vec::new();
        for p in &self.state.processes {
            let alive = process::is_ours(p.pid, &p.exe);
            let ready = alive
                && self
                    .probe(&format!("http://127.0.0.1:{}/readyz", p.port))
                    .await
                    .is_ok();
            out.push(ProcessStatus {
                instance: p.instance.clone(),
                pid: p.pid,
                port: p.port,
                alive,
                ready,
            });
        }
        if let Some(n) = &self.state.nginx {
            let alive = process::is_ours(n.pid, &n.exe);
            let ready = alive && self.probe_nginx().await.is_ok();
            out.push(ProcessStatus {
                instance: "nginx".into(),
                pid: n.pid,
                port: n.port,
                alive,
                ready,
            });
        }
        out
    }

    /// Drop the suite's five databases and delete its Redis keys (tests clean up with this).
    pub async fn drop_databases(&self) -> anyhow::Result<()> {
        crate::store::drop_databases(&self.state.database_url, &self.state.db_prefix).await?;
        crate::store::clear_redis(&self.state.redis_url, &self.state.redis_prefix).await?;
        if self.state.mode == common::Mode::Async {
            crate::broker::delete_topology(&self.state.amqp_url, &self.state.db_prefix).await?;
        }
        Ok(())
    }

    /// nginx's address, e.g. `http://127.0.0.1:8080`.
    /// nginx's internal listener, where `/internal/...` is routed (the public one answers 404).
    pub fn internal_url(&self) -> &str {
        &self.state.internal_url
    }

    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    pub fn token_secret(&self) -> &str {
        &self.state.token_secret
    }

    pub fn internal_key(&self) -> &str {
        &self.state.internal_key
    }

    /// Full URL of `service`'s database, e.g. `postgres://postgres@127.0.0.1:5432/flashsale_order`.
    pub fn database_url(&self, service: &str) -> String {
        common::db::database_url(
            &self.state.database_url,
            &crate::store::database_name(&self.state.db_prefix, service),
        )
    }

    pub fn mode(&self) -> Mode {
        self.state.mode
    }

    pub fn state(&self) -> &SuiteState {
        &self.state
    }

    pub fn run_dir(&self) -> &Path {
        &self.state.run_dir
    }

    pub fn products(&self) -> &[SeededProduct] {
        &self.state.products
    }

    /// The replicas of `service`, by index.
    pub fn replicas(&self, service: &str) -> Vec<&ProcessRecord> {
        self.state
            .processes
            .iter()
            .filter(|p| p.service == service)
            .collect()
    }

    pub fn replica(&self, service: &str, index: usize) -> anyhow::Result<&ProcessRecord> {
        self.state.replica(service, index)
    }

    pub fn log_path(&self, instance: &str) -> PathBuf {
        self.state
            .run_dir
            .join("logs")
            .join(format!("{instance}.log"))
    }

    fn pid_path(&self, instance: &str) -> PathBuf {
        self.state
            .run_dir
            .join("pids")
            .join(format!("{instance}.pid"))
    }
}

impl Drop for Suite {
    /// A suite started here and never stopped (a panicking test) is killed, so nothing leaks.
    fn drop(&mut self) {
        if self.owned {
            self.kill_now();
        }
    }
}

/// Where replica `instance` of a suite in `run_dir` appends its spans (`TRACE_FILE`).
pub fn trace_file(run_dir: &Path, instance: &str) -> PathBuf {
    run_dir
        .join(TRACES_DIR)
        .join(format!("{instance}.{TRACE_FILE_EXTENSION}"))
}

fn validate(opts: &SuiteOptions) -> anyhow::Result<()> {
    anyhow::ensure!(opts.replicas >= 1, "replicas must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&opts.trace_sample_ratio),
        "the trace sample ratio must be between 0 and 1, got {}",
        opts.trace_sample_ratio
    );
    anyhow::ensure!(opts.stock >= 0, "stock must not be negative");
    anyhow::ensure!(
        opts.per_user_limit >= 0,
        "per_user_limit must not be negative (0 = none)"
    );
    anyhow::ensure!(opts.port != 0, "the nginx port must be set");
    anyhow::ensure!(
        !opts.db_prefix.is_empty()
            && opts
                .db_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "db prefix {:?} must be [A-Za-z0-9_]+",
        opts.db_prefix
    );
    anyhow::ensure!(
        !opts.redis_prefix.is_empty(),
        "redis prefix must not be empty"
    );
    Ok(())
}

/// Refuse to start over a suite that is still running; forget a stale state file.
fn refuse_if_running(run_dir: &Path) -> anyhow::Result<()> {
    let path = SuiteState::path(run_dir);
    if !path.exists() {
        return Ok(());
    }
    match SuiteState::load(run_dir) {
        Ok(state) => {
            let live = state.live_pids();
            if !live.is_empty() {
                bail!(
                    "a suite is already running in {} (pids {}): stop it first with `flashsale down --run-dir {}`",
                    run_dir.display(),
                    live.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
                    run_dir.display()
                );
            }
            tracing::info!(
                "removing stale {} (none of its processes is alive)",
                path.display()
            );
        }
        Err(e) => tracing::warn!("removing unreadable {}: {e:#}", path.display()),
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))
}

/// The folder of the running executable, or its parent when that is cargo's `deps` folder
/// (integration tests run from target/debug/deps; the binaries are in target/debug).
pub fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the current executable")?;
    let dir = exe
        .parent()
        .context("the current executable has no folder")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        Ok(dir.parent().unwrap_or(dir).to_path_buf())
    } else {
        Ok(dir.to_path_buf())
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A probe's answer that was not the one expected: its status and the start of its body.
fn unexpected(status: reqwest::StatusCode, body: &str) -> String {
    format!("{status} {}", body.chars().take(300).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A suite handle over a state that runs nothing (owned: false, so dropping it kills
    /// nothing).
    fn suite(options: SuiteOptions) -> Suite {
        let run_dir = PathBuf::from("/tmp/flashsale-suite-env");
        Suite {
            state: SuiteState {
                mode: options.mode,
                port: options.port,
                base_url: "http://127.0.0.1:8080".into(),
                internal_url: "http://127.0.0.1:8081".into(),
                run_dir: run_dir.clone(),
                db_prefix: options.db_prefix.clone(),
                redis_prefix: options.redis_prefix.clone(),
                database_url: options.database_url.clone(),
                redis_url: options.redis_url.clone(),
                amqp_url: options.amqp_url.clone(),
                token_secret: "t".repeat(64),
                internal_key: "k".repeat(64),
                started_at: chrono::Utc::now(),
                processes: Vec::new(),
                nginx: None,
                users: options.users,
                password: options.password.clone(),
                products: Vec::new(),
                options: SuiteOptions { run_dir, ..options },
            },
            children: HashMap::new(),
            owned: false,
            http: http_client().expect("client"),
        }
    }

    fn value<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_replica_gets_its_own_trace_file_and_the_suites_ratio() {
        let s = suite(SuiteOptions {
            trace_sample_ratio: 0.25,
            ..SuiteOptions::default()
        });

        let env = s.replica_env("order", 1, None);

        assert_eq!(value(&env, "TRACE_SAMPLE_RATIO"), Some("0.25"));
        assert_eq!(
            value(&env, "TRACE_FILE"),
            Some("/tmp/flashsale-suite-env/traces/order-1.jsonl")
        );
        assert_eq!(
            value(&env, "METRICS_FILE"),
            Some("/tmp/flashsale-suite-env/metrics/order-1.lp")
        );
    }

    #[test]
    fn tracing_is_off_by_default_and_extra_env_still_wins() {
        let off = suite(SuiteOptions::default());
        assert_eq!(
            value(&off.replica_env("gateway", 0, None), "TRACE_SAMPLE_RATIO"),
            Some("0")
        );
        let overridden = suite(SuiteOptions {
            extra_env: vec![("TRACE_SAMPLE_RATIO".into(), "1".into())],
            ..SuiteOptions::default()
        });
        let env = overridden.replica_env("gateway", 0, None);
        assert_eq!(value(&env, "TRACE_SAMPLE_RATIO"), Some("1"));
        assert_eq!(
            env.iter()
                .filter(|(k, _)| k == "TRACE_SAMPLE_RATIO")
                .count(),
            2,
            "the suite's value first, the extra one after it"
        );
    }

    #[test]
    fn a_ratio_outside_0_to_1_is_refused() {
        for ratio in [-0.1, 1.5, f64::NAN] {
            let opts = SuiteOptions {
                trace_sample_ratio: ratio,
                ..SuiteOptions::default()
            };
            assert!(validate(&opts).is_err(), "{ratio}");
        }
        assert!(validate(&SuiteOptions {
            trace_sample_ratio: 1.0,
            ..SuiteOptions::default()
        })
        .is_ok());
    }
}
