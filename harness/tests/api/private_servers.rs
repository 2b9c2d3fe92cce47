//! Private PostgreSQL and Redis servers that a test may stop and start again without
//! disturbing the shared ones every other test uses.

use crate::helpers::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for_port(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness::infra::port_answers(port) != up {
        assert!(
            Instant::now() < deadline,
            "port {port} never became {}",
            if up { "open" } else { "closed" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `redis-server` child on a free port, stopped and restarted on that same port.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.start_again();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_for_port(self.port, true);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_for_port(self.port, false);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A PostgreSQL cluster of the test's own (initdb in a temp folder, trust auth), run by the
/// `postgres` user when the test runs as root, as PostgreSQL refuses to run as root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    let versions = std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL is installed");
    let mut dirs: Vec<PathBuf> = versions.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL version").join("bin")
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> Command {
    let running_as_root = nix::unistd::Uid::effective().is_root();
    let mut cmd = if running_as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fs-pg-")
            .tempdir()
            .expect("temp dir");
        if nix::unistd::Uid::effective().is_root() {
            let pg = nix::unistd::User::from_name("postgres")
                .expect("user lookup")
                .expect("a postgres user");
            std::os::unix::fs::chown(dir.path(), Some(pg.uid.as_raw()), Some(pg.gid.as_raw()))
                .expect("chown");
        }
        let bin = pg_bin();
        let data = dir.path().join("data");
        let status = as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )
        .status()
        .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        let pg = Self {
            port: free_port(),
            dir,
            bin,
        };
        pg.start_again();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("pg.log");
        let mut all = vec![
            "-D",
            data.to_str().expect("utf-8"),
            "-l",
            log.to_str().expect("utf-8"),
        ];
        all.extend_from_slice(args);
        let status = as_postgres(&self.bin, "pg_ctl", &all)
            .status()
            .expect("pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    pub fn start_again(&self) {
        let socket_dir = self.dir.path().to_str().expect("utf-8").to_string();
        let opts = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port
        );
        self.ctl(&["-w", "-o", &opts, "start"]);
        wait_for_port(self.port, true);
    }

    pub fn stop(&self) {
        self.ctl(&["-w", "-m", "immediate", "stop"]);
        wait_for_port(self.port, false);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ],
        )
        .status();
    }
}

/// A TCP proxy on a port of its own to another local port, that a test can take down (every
/// connection dropped, new ones refused) and bring back on the same port: to the services
/// behind it, the server is away and then back.
pub struct TcpProxy {
    pub port: u16,
    target: u16,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl TcpProxy {
    /// A proxy to `target`, not yet listening.
    pub fn down_to(target: u16) -> Self {
        Self {
            port: free_port(),
            target,
            tasks: Default::default(),
        }
    }

    pub async fn start(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy port is free again");
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("lock").push(conn.abort_handle());
            }
        });
        self.tasks.lock().expect("lock").push(accept.abort_handle());
    }

    pub fn stop(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
