//! The containerised path agrees with the native one: docker-compose accepts the compose file
//! in both modes, and its services, nginx's upstreams and the workspace's binaries name the
//! same five services; every replica sends its spans to a pinned Jaeger, and one trace ratio
//! reaches the services and k6. No Docker engine runs here: `docker-compose config` only parses and
//! resolves the file (Debian's docker-compose, installed by `flashsale setup`).

use crate::helpers::ensure_infra;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn docker_compose() -> PathBuf {
    ensure_infra();
    harness::infra::find_binary("docker-compose")
        .expect("docker-compose is installed by `flashsale setup`")
}

const TOKEN_SECRET: &str = "6f0b1d2c3e4a59687f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a";
const INTERNAL_KEY: &str = "a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9";

/// `docker-compose config` with `MODE=mode` and `env`, from an empty environment (so no
/// `.env` of the developer's and no variable of the test's shell takes part).
fn compose_config(mode: &str, env: &[(&str, &str)]) -> std::process::Output {
    let empty = std::env::temp_dir().join(format!("flashsale-empty-{}.env", std::process::id()));
    std::fs::write(&empty, "").expect("an empty env file");
    Command::new(docker_compose())
        .current_dir(root())
        .arg("--env-file")
        .arg(&empty)
        .args(["--profile", "load", "--profile", "study", "config"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MODE", mode)
        .envs(env.iter().copied())
        .output()
        .expect("run docker-compose config")
}

/// `docker-compose config` with `MODE=mode` and secrets: the resolved file, as JSON (through
/// the YAML library docker-compose itself runs on).
fn resolved_config(mode: &str) -> serde_json::Value {
    resolved_config_with(mode, &[])
}

/// [`resolved_config`] with `env` set too.
fn resolved_config_with(mode: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let mut vars = vec![
        ("TOKEN_SECRET", TOKEN_SECRET),
        ("INTERNAL_KEY", INTERNAL_KEY),
    ];
    vars.extend_from_slice(env);
    let out = compose_config(mode, &vars);
    assert!(
        out.status.success(),
        "docker-compose config rejected the file with MODE={mode}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_to_json(&out.stdout)
}

fn yaml_to_json(yaml: &[u8]) -> serde_json::Value {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with PyYAML (a dependency of docker-compose)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml)
        .expect("write the YAML");
    let out = child.wait_with_output().expect("python3 exits");
    assert!(out.status.success(), "the YAML did not parse");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The `bin` targets of the workspace's packages, from `cargo metadata`.
fn workspace_binaries() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let mut bins = BTreeSet::new();
    for package in meta["packages"].as_array().expect("packages") {
        for target in package["targets"].as_array().expect("targets") {
            if target["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
            {
                bins.insert(target["name"].as_str().expect("name").to_string());
            }
        }
    }
    bins
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(str::to_string).collect()
}

/// `upstream NAME {` blocks of an nginx config, with their bodies.
fn upstreams(conf: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in conf.match_indices("upstream ") {
        let rest = &conf[i + "upstream ".len()..];
        let Some(open) = rest.find('{') else { continue };
        let name = rest[..open].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        let close = rest.find('}').expect("a closed upstream block");
        out.push((name.to_string(), rest[open + 1..close].to_string()));
    }
    out
}

/// `location PATH { proxy_pass http://X; }` lines, whitespace-normalised.
fn proxied_locations(conf: &str) -> BTreeSet<String> {
    conf.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| l.starts_with("location ") && l.contains("proxy_pass"))
        .collect()
}

#[test]
fn docker_compose_config_accepts_the_compose_file_in_both_modes() {
    for mode in ["sync", "async"] {
        let config = resolved_config(mode);
        let services = config["services"].as_object().expect("services");
        for name in harness::SERVICES {
            let service = &services[name];
            assert_eq!(service["environment"]["MODE"], mode, "{name}");
            assert_eq!(service["deploy"]["replicas"], 2, "{name}");
        }
        let nginx_volumes = services["nginx"]["volumes"].to_string();
        let upstreams = format!("upstreams-{mode}.conf");
        assert!(nginx_volumes.contains(&upstreams), "{nginx_volumes}");
        assert!(
            root().join("nginx/compose").join(&upstreams).is_file(),
            "nginx/compose/{upstreams} is missing"
        );
    }
}

#[test]
fn compose_services_nginx_upstreams_and_workspace_binaries_agree() {
    let config = resolved_config("sync");
    let services = config["services"].as_object().expect("services");
    let expected = set(harness::SERVICES);

    // Every service process in compose runs a workspace binary named after the service.
    let bins = workspace_binaries();
    let app_services: BTreeSet<String> = services
        .iter()
        .filter(|(_, s)| s["image"] == "flashsale-suite:local")
        .filter(|(_, s)| s["command"][0] != "flashsale")
        .map(|(name, s)| {
            assert_eq!(s["command"][0], name.as_str(), "{name} runs another binary");
            name.clone()
        })
        .collect();
    assert_eq!(app_services, expected);
    let service_bins: BTreeSet<String> =
        bins.iter().filter(|b| *b != "flashsale").cloned().collect();
    assert_eq!(service_bins, expected, "workspace binaries");

    // The image ships exactly the workspace's binaries.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let line = dockerfile
        .lines()
        .find_map(|l| l.split_once("for bin in").map(|(_, list)| list))
        .expect("the Dockerfile's copy loop");
    let shipped: BTreeSet<String> = line
        .split(';')
        .next()
        .expect("list")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(shipped, bins, "Dockerfile binaries");

    // nginx: native template and compose configs name the same upstreams and routes.
    let template = std::fs::read_to_string(root().join("nginx/nginx.conf.j2")).expect("template");
    let compose_conf =
        std::fs::read_to_string(root().join("nginx/compose/nginx.conf")).expect("compose conf");
    assert_eq!(
        proxied_locations(&compose_conf),
        proxied_locations(&template)
    );
    let proxied: BTreeSet<String> = proxied_locations(&compose_conf)
        .iter()
        .filter_map(|l| {
            // The upstream name ends at the directive's `;` (other directives may follow).
            let target = l.split("proxy_pass http://").nth(1)?;
            Some(target.split(';').next()?.trim().to_string())
        })
        .collect();
    assert_eq!(proxied, expected, "proxied upstreams");
    for mode in ["sync", "async"] {
        let path = root().join(format!("nginx/compose/upstreams-{mode}.conf"));
        let conf = std::fs::read_to_string(&path).expect("upstreams file");
        let blocks = upstreams(&conf);
        let names: BTreeSet<String> = blocks.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, expected, "{}", path.display());
        for (name, body) in &blocks {
            assert_eq!(
                body.contains("least_conn;"),
                mode == "async",
                "{mode} {name}"
            );
            assert!(
                body.contains(&format!("zone {name} ")),
                "{mode} {name}: no zone"
            );
            assert!(
                body.contains(&format!("server {name}:8000 resolve")),
                "{mode} {name}: not the compose service, or not re-resolved"
            );
        }
    }
    assert!(compose_conf.contains("resolver 127.0.0.11 valid=5s"));
    for name in harness::SERVICES {
        assert_eq!(services[name]["environment"]["PORT"], "8000", "{name}");
    }
}

#[test]
fn compose_refuses_to_run_without_the_secrets() {
    for (missing, given) in [
        ("TOKEN_SECRET", ("INTERNAL_KEY", INTERNAL_KEY)),
        ("INTERNAL_KEY", ("TOKEN_SECRET", TOKEN_SECRET)),
    ] {
        let out = compose_config("sync", &[given]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted without {missing}");
        assert!(
            stderr.contains(&format!("{missing} is not set"))
                && stderr.contains("scripts/compose-env.sh"),
            "{stderr}"
        );
    }
    let config = resolved_config("sync");
    for name in harness::SERVICES {
        let env = &config["services"][name]["environment"];
        assert_eq!(env["TOKEN_SECRET"], TOKEN_SECRET, "{name}");
        assert_eq!(env["INTERNAL_KEY"], INTERNAL_KEY, "{name}");
    }
}

#[test]
fn compose_publishes_on_loopback_only_and_never_the_internal_listener() {
    let config = resolved_config("async");
    let services = config["services"].as_object().expect("services");
    let mut published = Vec::new();
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            // docker-compose 1.x prints "HOST:PUBLISHED:TARGET"; later versions an object.
            let (host, target) = match port {
                serde_json::Value::String(spec) => {
                    let parts: Vec<&str> = spec.split(':').collect();
                    let target = parts.last().expect("target");
                    let target = target.split('/').next().unwrap_or(target);
                    (parts[0].to_string(), target.to_string())
                }
                other => (
                    other["host_ip"].as_str().unwrap_or_default().to_string(),
                    other["target"].to_string(),
                ),
            };
            assert_eq!(host, "127.0.0.1", "{name} publishes {port} beyond loopback");
            published.push((name.clone(), target));
        }
    }
    assert!(
        published.contains(&("nginx".into(), "8080".into())),
        "{published:?}"
    );
    assert!(
        !published.iter().any(|(_, target)| target == "8081"),
        "the internal listener is published: {published:?}"
    );
    for name in harness::SERVICES {
        assert!(
            !published.iter().any(|(n, _)| n == name),
            "{name} publishes a port"
        );
        assert_eq!(
            services[name]["environment"]["UPSTREAM_URL"], "http://nginx:8081",
            "{name} calls its peers on the public listener"
        );
    }
}

fn command_of(service: &serde_json::Value) -> Vec<String> {
    service["command"]
        .as_array()
        .expect("a command list")
        .iter()
        .map(|a| a.as_str().expect("a string argument").to_string())
        .collect()
}

/// The value after `flag` in `args`.
fn value_of<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("no {flag}"));
    &args[at + 1]
}

#[test]
fn the_study_service_runs_the_protocol_on_this_modes_suite_with_flags_flashsale_knows() {
    let config = resolved_config("async");
    let study = &config["services"]["study"];
    assert_eq!(study["image"], "flashsale-suite:local");
    let args = command_of(study);
    assert_eq!(args[..2], ["flashsale", "study"]);
    assert_eq!(value_of(&args, "--mode"), "async", "the suite's MODE");
    assert_eq!(value_of(&args, "--base-url"), "http://nginx:8080");
    assert_eq!(
        value_of(&args, "--scenario"),
        "flash",
        "the seed's default SCENARIO"
    );
    assert!(value_of(&args, "--dir").starts_with("/reports/"));
    assert!(args.contains(&"--web-dashboard".to_string()));
    assert!(
        study["volumes"].to_string().contains("reports/compose"),
        "{}",
        study["volumes"]
    );
    // The services tag their metrics with RUN_ID: the study records the same one.
    assert_eq!(
        study["environment"]["RUN_ID"],
        config["services"]["order"]["environment"]["RUN_ID"]
    );
    assert_eq!(study["environment"]["THRESHOLD_FAILURE_RATE"], "0.01");
    let seed = command_of(&config["services"]["seed"]);
    assert_eq!(value_of(&seed, "--scenario"), value_of(&args, "--scenario"));

    // Every flag is one `flashsale study` takes.
    let help = Command::new(env!("CARGO_BIN_EXE_flashsale"))
        .args(["study", "--help"])
        .output()
        .expect("flashsale study --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "flashsale study has no {flag}:\n{help}"
        );
    }

    // The image carries the k6 the study runs, the pinned one.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains(&format!(
        "COPY --from=grafana/k6:{} /usr/bin/k6 /usr/local/bin/k6",
        harness::k6::K6_VERSION
    )));
}

#[test]
fn a_plain_k6_run_keeps_its_raw_series_and_dashboard_and_can_fail() {
    let config = resolved_config("sync");
    let k6 = &config["services"]["k6"];
    assert_eq!(
        k6["image"],
        format!("grafana/k6:{}", harness::k6::K6_VERSION)
    );
    let args = command_of(k6);
    assert!(
        value_of(&args, "--out").starts_with("csv=/reports/sync-")
            && value_of(&args, "--out").ends_with("-k6.csv.gz"),
        "{args:?}"
    );
    assert!(value_of(&args, "--summary-export").starts_with("/reports/sync-"));
    let env = &k6["environment"];
    assert_eq!(env["K6_WEB_DASHBOARD"], "true");
    assert_eq!(
        env["K6_WEB_DASHBOARD_PORT"], "-1",
        "k6 must exit when the run ends"
    );
    assert!(env["K6_WEB_DASHBOARD_EXPORT"]
        .as_str()
        .is_some_and(|p| p.starts_with("/reports/sync-") && p.ends_with(".html")));
    assert_eq!(env["THRESHOLD_FAILURE_RATE"], "0.01");
    assert!(k6["volumes"].to_string().contains("reports/compose"));
}

/// telegraf/telegraf.conf as JSON, parsed by Python's TOML reader (`tomllib`).
fn telegraf_config() -> serde_json::Value {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(root().join("telegraf/telegraf.conf"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "telegraf.conf is not TOML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn telegraf_writes_the_container_points_the_report_and_dashboard_read_to_the_suites_influxdb() {
    use common::metrics::schema::{self, containers};
    let conf = telegraf_config();
    let docker = &conf["inputs"]["docker"][0];
    assert_eq!(docker["endpoint"], "unix:///var/run/docker.sock");
    assert_eq!(
        docker["namepass"],
        serde_json::json!([containers::CPU, containers::MEM])
    );
    assert_eq!(
        docker["fieldinclude"],
        serde_json::json!([containers::USAGE_PERCENT, containers::USAGE])
    );
    assert_eq!(
        docker["docker_label_include"],
        serde_json::json!([containers::TAG_COMPOSE_SERVICE])
    );
    assert_eq!(docker["total_include"], serde_json::json!(["cpu"]));
    assert_eq!(docker["perdevice_include"], serde_json::json!([]));
    // mode and run_id on every point, as on the services' own.
    assert_eq!(conf["global_tags"][schema::TAG_MODE], "${MODE}");
    assert_eq!(conf["global_tags"][schema::TAG_RUN_ID], "${RUN_ID}");
    let out = &conf["outputs"]["influxdb_v2"][0];
    assert_eq!(out["urls"], serde_json::json!(["${INFLUX_URL}"]));
    assert_eq!(out["token"], "${INFLUX_TOKEN}");
    assert_eq!(out["organization"], "${INFLUX_ORG}");
    assert_eq!(out["bucket"], "${INFLUX_BUCKET}");

    // The variables it reads are the services' values.
    let config = resolved_config("async");
    let telegraf = &config["services"]["telegraf"];
    let order = &config["services"]["order"]["environment"];
    for var in [
        "INFLUX_URL",
        "INFLUX_TOKEN",
        "INFLUX_ORG",
        "INFLUX_BUCKET",
        "MODE",
        "RUN_ID",
    ] {
        assert_eq!(telegraf["environment"][var], order[var], "{var}");
    }
    let image = telegraf["image"].as_str().expect("image");
    assert!(
        image.starts_with("telegraf:") && image != "telegraf:latest",
        "pinned: {image}"
    );
    let volumes = telegraf["volumes"].to_string();
    assert!(
        volumes.contains("telegraf.conf") && volumes.contains("docker.sock"),
        "{volumes}"
    );
}

/// The compose service running Jaeger v2 (found by its image, not its name): its name and
/// its resolved definition.
fn jaeger_service(config: &serde_json::Value) -> (String, serde_json::Value) {
    let services = config["services"].as_object().expect("services");
    let mut found = services.iter().filter(|(_, s)| {
        s["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("jaegertracing/jaeger:"))
    });
    let (name, service) = found
        .next()
        .expect("a service running jaegertracing/jaeger");
    assert!(found.next().is_none(), "more than one Jaeger");
    (name.clone(), service.clone())
}

/// A port as docker-compose prints it in `expose` (a string or a number, maybe `/tcp`).
fn port_number(port: &serde_json::Value) -> u16 {
    let text = match port {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let number = text.split('/').next().unwrap_or(&text);
    number
        .parse()
        .unwrap_or_else(|_| panic!("not a port: {port}"))
}

/// The container ports a service publishes on the host (`ports`' targets).
fn published_targets(service: &serde_json::Value) -> Vec<u16> {
    service["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|port| match port {
            // docker-compose 1.x prints "HOST:PUBLISHED:TARGET[/proto]"; later versions an object.
            serde_json::Value::String(spec) => {
                port_number(&spec.rsplit(':').next().expect("a target").into())
            }
            other => port_number(&other["target"]),
        })
        .collect()
}

#[test]
fn jaeger_is_pinned_and_every_replica_sends_its_spans_to_jaegers_otlp_http_port() {
    for mode in ["sync", "async"] {
        let config = resolved_config(mode);
        let services = config["services"].as_object().expect("services");
        let (name, jaeger) = jaeger_service(&config);

        // Pinned: a release tag M.N.P, not `latest` or a moving major.
        let image = jaeger["image"].as_str().expect("image");
        let tag = image.rsplit_once(':').expect("a tag").1;
        let parts: Vec<&str> = tag.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "{mode}: Jaeger is not pinned to a release: {image}"
        );
        assert_eq!(parts[0], "2", "Jaeger v2 (v1 is end of life): {image}");
        for (other, service) in services {
            assert!(
                !service["image"]
                    .to_string()
                    .contains("jaegertracing/all-in-one"),
                "{other} runs Jaeger v1's image"
            );
        }
        // The pin the compose guide names is the one in the file.
        let guide = std::fs::read_to_string(root().join("docs/compose.md")).expect("compose.md");
        assert!(
            guide.contains(image),
            "docs/compose.md does not name {image}"
        );

        // Its OTLP/HTTP receiver (the built-in configuration's 4318) is declared for the
        // compose network, listens beyond localhost, and is not published on the host; the
        // UI is.
        let exposed: Vec<u16> = jaeger["expose"]
            .as_array()
            .expect("jaeger declares its OTLP port in `expose`")
            .iter()
            .map(port_number)
            .collect();
        assert_eq!(exposed, [4318], "{mode}: Jaeger's OTLP/HTTP port");
        assert_eq!(jaeger["environment"]["JAEGER_LISTEN_HOST"], "0.0.0.0");
        let published = published_targets(&jaeger);
        assert_eq!(published, [16686], "{mode}: only the UI is published");

        // Every replica of every service sends OTLP/HTTP there (the services append
        // /v1/traces themselves), and none waits for Jaeger: spans are best effort.
        let endpoint = format!("http://{name}:{}", exposed[0]);
        for service in harness::SERVICES {
            let s = &services[service];
            assert_eq!(s["deploy"]["replicas"], 2, "{service}");
            assert_eq!(
                s["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"], endpoint,
                "{mode} {service}"
            );
            assert!(
                s["depends_on"].get(&name).is_none(),
                "{mode} {service} cannot start without Jaeger"
            );
        }
        for (other, service) in services {
            assert!(
                service["depends_on"].get(&name).is_none(),
                "{mode}: {other} depends on Jaeger"
            );
        }
    }
}

#[test]
fn one_trace_sample_ratio_reaches_every_service_the_study_and_k6_in_both_modes() {
    let takers: Vec<&str> = harness::SERVICES
        .iter()
        .copied()
        .chain(["study", "k6"])
        .collect();
    for mode in ["sync", "async"] {
        // By default: one share, tracing on, at most everything.
        let config = resolved_config(mode);
        let ratio = |config: &serde_json::Value, name: &str| {
            config["services"][name]["environment"]["TRACE_SAMPLE_RATIO"]
                .as_str()
                .unwrap_or_else(|| panic!("{mode}: {name} has no TRACE_SAMPLE_RATIO"))
                .to_string()
        };
        let default = ratio(&config, "order");
        let share: f64 = default.parse().expect("a number");
        assert!(share > 0.0 && share <= 1.0, "{mode}: {default}");
        for name in &takers {
            assert_eq!(ratio(&config, name), default, "{mode} {name}");
        }
        // Set once, for all of them.
        let config = resolved_config_with(mode, &[("TRACE_SAMPLE_RATIO", "0.25")]);
        for name in &takers {
            assert_eq!(ratio(&config, name), "0.25", "{mode} {name}");
        }
        let config = resolved_config_with(mode, &[("TRACE_SAMPLE_RATIO", "0")]);
        for name in &takers {
            assert_eq!(ratio(&config, name), "0", "{mode} {name}");
        }
    }
}
