//! The suite's own nginx: the template in `nginx/nginx.conf.j2` rendered for one mode and one
//! set of replica ports, validated with `nginx -t`, and started as a child process whose every
//! file lives under `<run_dir>/nginx`.

use anyhow::{bail, Context};
use common::Mode;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The template, compiled in so the binary works from any directory.
pub const TEMPLATE: &str = include_str!("../../nginx/nginx.conf.j2");

/// The services behind nginx, in the order their upstream blocks are written. The upstream
/// names are the service names.
pub const SERVICES: [&str; 5] = ["gateway", "inventory", "reservation", "order", "payment"];

/// One upstream pool: a service and the ports of its replicas.
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    pub name: String,
    pub ports: Vec<u16>,
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    mode: &'static str,
    port: u16,
    suite: &'a str,
    prefix: String,
    upstreams: &'a [Upstream],
    user: Option<&'static str>,
}

/// What the template needs.
#[derive(Debug, Clone, Serialize)]
pub struct NginxConfig {
    pub mode: Mode,
    /// The port nginx listens on (127.0.0.1).
    pub port: u16,
    /// Which suite this nginx belongs to: `/nginx-health` answers it, so that a start-up
    /// never mistakes another suite's nginx on the same port for its own.
    pub suite: String,
    /// nginx's prefix folder, `<run_dir>/nginx`, absolute.
    pub prefix: PathBuf,
    pub upstreams: Vec<Upstream>,
}

impl NginxConfig {
    pub fn render(&self) -> anyhow::Result<String> {
        for service in SERVICES {
            let pool = self.upstreams.iter().find(|u| u.name == service);
            if pool.is_none_or(|u| u.ports.is_empty()) {
                bail!("nginx needs at least one {service} replica");
            }
        }
        let mut env = minijinja::Environment::new();
        // Block tags sit on lines of their own in the template and leave no blank lines.
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .context("building the template syntax")?,
        );
        env.add_template("nginx.conf", TEMPLATE)
            .context("parsing nginx/nginx.conf.j2")?;
        // Root's nginx workers drop to `nobody`, who cannot enter a private run folder.
        let user = nix::unistd::geteuid().is_root().then_some("root");
        let context = TemplateContext {
            mode: self.mode.as_str(),
            port: self.port,
            suite: &self.suite,
            prefix: self.prefix.to_string_lossy().into_owned(),
            upstreams: &self.upstreams,
            user,
        };
        env.get_template("nginx.conf")?
            .render(minijinja::value::Serde(&context))
            .context("rendering nginx/nginx.conf.j2")
    }

    pub fn conf_path(&self) -> PathBuf {
        self.prefix.join("nginx.conf")
    }

    /// Render into `<prefix>/nginx.conf`, create the temp folders, and check it with `nginx -t`.
    pub fn write_and_check(&self, nginx: &Path) -> anyhow::Result<PathBuf> {
        for sub in [
            "temp/client_body",
            "temp/proxy",
            "temp/fastcgi",
            "temp/uwsgi",
            "temp/scgi",
        ] {
            std::fs::create_dir_all(self.prefix.join(sub))
                .with_context(|| format!("creating {}", self.prefix.join(sub).display()))?;
        }
        let conf = self.conf_path();
        std::fs::write(&conf, self.render()?)
            .with_context(|| format!("writing {}", conf.display()))?;
        let out = Command::new(nginx)
            .args(self.args(&conf))
            .arg("-t")
            .output()
            .with_context(|| format!("running {} -t", nginx.display()))?;
        if !out.status.success() {
            bail!(
                "nginx -t rejected {}:\n{}",
                conf.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(conf)
    }

    /// `-p <prefix> -c <conf> -e <error log>`: `-e` keeps even the messages nginx writes before
    /// reading its configuration out of /var/log.
    pub fn args(&self, conf: &Path) -> Vec<String> {
        vec![
            "-p".into(),
            self.prefix.to_string_lossy().into(),
            "-c".into(),
            conf.to_string_lossy().into(),
            "-e".into(),
            self.prefix.join("error.log").to_string_lossy().into(),
        ]
    }

    /// Start nginx in the foreground (`daemon off`) as a child in its own process group.
    pub fn spawn(&self, nginx: &Path, conf: &Path) -> anyhow::Result<Child> {
        let args = self.args(conf);
        crate::process::spawn(&crate::process::Spawn {
            exe: nginx,
            args: &args,
            env: &[],
            log: &self.prefix.join("stderr.log"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: Mode) -> NginxConfig {
        NginxConfig {
            mode,
            port: 18080,
            suite: "t_0123abcd".into(),
            prefix: PathBuf::from("/tmp/run/nginx"),
            upstreams: SERVICES
                .iter()
                .enumerate()
                .map(|(i, s)| Upstream {
                    name: s.to_string(),
                    ports: vec![20000 + i as u16 * 10, 20001 + i as u16 * 10],
                })
                .collect(),
        }
    }

    fn upstream_block<'a>(conf: &'a str, name: &str) -> &'a str {
        let start = conf
            .find(&format!("upstream {name} {{"))
            .unwrap_or_else(|| panic!("no upstream {name}"));
        let end = start + conf[start..].find('}').expect("block end");
        &conf[start..end]
    }

    #[test]
    fn sync_mode_renders_round_robin_upstreams_with_every_replica() {
        let conf = config(Mode::Sync).render().expect("render");
        for (i, service) in SERVICES.iter().enumerate() {
            let block = upstream_block(&conf, service);
            assert!(!block.contains("least_conn"), "{block}");
            assert!(block.contains("keepalive 128;"), "{block}");
            for port in [20000 + i * 10, 20001 + i * 10] {
                assert!(
                    block.contains(&format!("server 127.0.0.1:{port} ")),
                    "{block}"
                );
            }
        }
        assert!(conf.contains("listen 127.0.0.1:18080"));
        assert!(conf.contains(r#"return 200 '{"status":"ok","suite":"t_0123abcd"}';"#));
        assert!(conf.contains("daemon off;"));
        assert!(conf.contains("pid /tmp/run/nginx/nginx.pid;"));
    }

    #[test]
    fn async_mode_renders_least_conn_upstreams() {
        let conf = config(Mode::Async).render().expect("render");
        for service in SERVICES {
            assert!(upstream_block(&conf, service).contains("least_conn;"));
        }
    }

    #[test]
    fn routes_follow_the_internal_api_table() {
        let conf = config(Mode::Sync).render().expect("render");
        for (path, upstream) in [
            ("/api/auth/", "gateway"),
            ("/api/products", "gateway"),
            ("/api/carts", "gateway"),
            ("/internal/gateway/", "gateway"),
            ("/api/reservations", "reservation"),
            ("/internal/reservations/", "reservation"),
            ("/api/payments", "order"),
            ("/api/orders", "order"),
            ("/internal/orders/", "order"),
            ("/internal/payments/", "payment"),
            ("/internal/inventory/", "inventory"),
        ] {
            let line = conf
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("location {path} ")))
                .unwrap_or_else(|| panic!("no location {path}"));
            assert!(
                line.contains(&format!("proxy_pass http://{upstream};")),
                "{line}"
            );
        }
    }

    #[test]
    fn a_service_without_replicas_is_refused() {
        let mut cfg = config(Mode::Sync);
        cfg.upstreams.retain(|u| u.name != "payment");
        assert!(cfg.render().is_err());
    }
}
