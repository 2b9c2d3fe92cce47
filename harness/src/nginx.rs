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
    internal_port: u16,
    suite: &'a str,
    prefix: String,
    upstreams: &'a [Upstream],
    user: Option<&'static str>,
}

/// What the template needs.
#[derive(Debug, Clone, Serialize)]
pub struct NginxConfig {
    pub mode: Mode,
    /// The public port nginx listens on (127.0.0.1): `/api/...` only.
    pub port: u16,
    /// The internal port (127.0.0.1): `/internal/...` only, for the services' own calls.
    pub internal_port: u16,
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
        let context = TemplateContext {
            mode: self.mode.as_str(),
            port: self.port,
            internal_port: self.internal_port,
            suite: &self.suite,
            prefix: self.prefix.to_string_lossy().into_owned(),
            upstreams: &self.upstreams,
            user: worker_user(),
        };
        crate::templates::render("nginx/nginx.conf.j2", TEMPLATE, &context)
    }

    /// Render into `<prefix>/nginx.conf` and check it with `nginx -t` ([`write_and_check`]).
    pub fn write_and_check(&self, nginx: &Path) -> anyhow::Result<PathBuf> {
        write_and_check(&self.prefix, &self.render()?, nginx)
    }

    /// Start nginx in the foreground (`daemon off`) as a child in its own process group.
    pub fn spawn(&self, nginx: &Path, conf: &Path) -> anyhow::Result<Child> {
        spawn(&self.prefix, nginx, conf)
    }
}

/// The user nginx's workers run as: root's workers would drop to `nobody`, who cannot enter
/// a private run folder, so they keep root.
pub(crate) fn worker_user() -> Option<&'static str> {
    nix::unistd::geteuid().is_root().then_some("root")
}

/// Write `text` as `<prefix>/nginx.conf`, create the temp folders every template names, and
/// check it with `nginx -t`. Returns the config's path.
pub fn write_and_check(prefix: &Path, text: &str, nginx: &Path) -> anyhow::Result<PathBuf> {
    for sub in [
        "temp/client_body",
        "temp/proxy",
        "temp/fastcgi",
        "temp/uwsgi",
        "temp/scgi",
    ] {
        std::fs::create_dir_all(prefix.join(sub))
            .with_context(|| format!("creating {}", prefix.join(sub).display()))?;
    }
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
    let out = Command::new(nginx)
        .args(args(prefix, &conf))
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
fn args(prefix: &Path, conf: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        prefix.to_string_lossy().into(),
        "-c".into(),
        conf.to_string_lossy().into(),
        "-e".into(),
        prefix.join("error.log").to_string_lossy().into(),
    ]
}

/// Start nginx in the foreground (`daemon off`) as a child in its own process group, its
/// output in `<prefix>/stderr.log`.
pub fn spawn(prefix: &Path, nginx: &Path, conf: &Path) -> anyhow::Result<Child> {
    crate::process::spawn(&crate::process::Spawn {
        exe: nginx,
        args: &args(prefix, conf),
        env: &[],
        log: &prefix.join("stderr.log"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: Mode) -> NginxConfig {
        NginxConfig {
            mode,
            port: 18080,
            internal_port: 18081,
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

    /// The `server { ... }` block that listens on `port`.
    fn server_block(conf: &str, port: u16) -> &str {
        let listen = conf
            .find(&format!("listen 127.0.0.1:{port} "))
            .unwrap_or_else(|| panic!("no listener on {port}"));
        let start = conf[..listen].rfind("server {").expect("server block");
        let end = conf[listen..]
            .find("\n    server {")
            .map_or(conf.len(), |e| listen + e);
        &conf[start..end]
    }

    fn location<'a>(block: &'a str, path: &str) -> Option<&'a str> {
        block
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("location {path} ")))
    }

    #[test]
    fn routes_follow_the_internal_api_table() {
        let conf = config(Mode::Sync).render().expect("render");
        let public = server_block(&conf, 18080);
        let internal = server_block(&conf, 18081);
        let routes = [
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
        ];
        for (path, upstream) in routes {
            let (on, off) = if path.starts_with("/internal/") {
                (internal, public)
            } else {
                (public, internal)
            };
            let line = location(on, path).unwrap_or_else(|| panic!("no location {path}"));
            assert!(
                line.contains(&format!("proxy_pass http://{upstream};")),
                "{line}"
            );
            assert!(
                location(off, path).is_none(),
                "{path} on the wrong listener"
            );
        }
        // Neither listener proxies anything else: the rest is nginx's JSON 404.
        // Public: six prefixes, and the add to a cart once more, keyed and not.
        for (block, proxied) in [(public, 8), (internal, 5)] {
            assert_eq!(block.matches("proxy_pass").count(), proxied, "{block}");
            assert!(
                block.contains(r#"return 404 '{"code":"not_found""#),
                "{block}"
            );
        }
    }

    #[test]
    fn a_request_already_sent_may_go_to_the_other_replica_once() {
        let conf = config(Mode::Sync).render().expect("render");
        assert!(
            conf.contains("proxy_next_upstream error timeout http_502 non_idempotent;"),
            "{conf}"
        );
        assert!(conf.contains("proxy_next_upstream_tries 2;"), "{conf}");
        // An unkeyed add to a cart is the one public POST that is not safe twice.
        let public = server_block(&conf, 18080);
        let items = &public[public
            .find("location ~ ^/api/carts/[^/]+/items$ {")
            .expect("the add-to-cart location")..];
        let items = &items[..items.find("\n        }").expect("its end")];
        assert!(
            items.contains("if ($http_idempotency_key) { return 418; }"),
            "{items}"
        );
        assert!(
            items.contains("proxy_next_upstream error timeout http_502;"),
            "{items}"
        );
        assert!(!items.contains("non_idempotent"), "{items}");
    }

    #[test]
    fn a_service_without_replicas_is_refused() {
        let mut cfg = config(Mode::Sync);
        cfg.upstreams.retain(|u| u.name != "payment");
        assert!(cfg.render().is_err());
    }
}
