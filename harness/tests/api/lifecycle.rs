use crate::helpers::{
    ensure_infra, free_port, http, json_body, spawn_suite, spawn_suite_with, test_options,
    unique_prefix,
};
use harness::process::is_alive;
use harness::{Signal, Suite, SuiteOptions, SERVICES};
use std::time::{Duration, Instant};

#[tokio::test]
async fn up_starts_every_replica_and_nginx_routes_products_to_the_gateway() {
    // Arrange / Act
    let t = spawn_suite_with(|o| o.replicas = 2).await;
    let client = http();

    // Assert: every replica answers /readyz on its own port
    for service in SERVICES {
        let replicas = t.suite.replicas(service);
        assert_eq!(replicas.len(), 2, "{service}");
        for p in replicas {
            let r = client
                .get(format!("http://127.0.0.1:{}/readyz", p.port))
                .send()
                .await
                .expect("readyz");
            assert_eq!(r.status(), 200, "{}", p.instance);
            assert!(is_alive(p.pid));
        }
    }
    // ... nginx lists both replicas of each service in its upstream
    let conf = std::fs::read_to_string(t.run_dir().join("nginx/nginx.conf")).expect("nginx.conf");
    for p in &t.suite.state().processes {
        assert!(
            conf.contains(&format!("server 127.0.0.1:{} ", p.port)),
            "{}",
            p.instance
        );
    }
    // ... and routes /api/products to the gateway, which wants a token
    let r = client
        .get(t.url("/api/products"))
        .send()
        .await
        .expect("products");
    assert_eq!(r.status(), 401);
    let body = json_body(r).await;
    assert!(body["code"].is_string(), "{body}");
    // ... and state.json records it all
    let state = harness::SuiteState::load(t.run_dir()).expect("state.json");
    assert_eq!(state.processes.len(), 10);
    assert_eq!(state.base_url, t.suite.base_url());
    assert!(state.nginx.is_some());

    t.teardown().await;
}

#[tokio::test]
async fn a_second_start_on_the_same_run_dir_is_refused_while_the_first_is_up() {
    // Arrange
    let mut t = spawn_suite().await;
    let stale_state = std::fs::read_to_string(t.run_dir().join("state.json")).expect("state");
    let mut second = test_options(t.dir.path());
    second.db_prefix = unique_prefix();
    second.redis_prefix = second.db_prefix.clone();

    // Act
    let err = match Suite::start(second.clone()).await {
        Ok(_) => panic!("a second suite started over a running one"),
        Err(e) => format!("{e:#}"),
    };

    // Assert: refused, naming the run folder and the live pids; the first suite is untouched
    assert!(err.contains(&t.run_dir().display().to_string()), "{err}");
    let first_pid = t.suite.state().processes[0].pid;
    assert!(err.contains(&first_pid.to_string()), "{err}");
    assert_eq!(
        t.suite.state().live_pids().len(),
        6,
        "the first suite lost processes"
    );
    let r = http()
        .get(t.url("/nginx-health"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), 200);

    // Once it is stopped, its left-over state file no longer blocks a start
    let run_dir = t.run_dir().to_path_buf();
    t.suite.stop().await.expect("stop");
    t.suite.drop_databases().await.expect("drop");
    std::fs::write(run_dir.join("state.json"), stale_state).expect("write stale state");
    t.suite = Suite::start(second)
        .await
        .expect("start over a stale state file");
    t.teardown().await;
}

#[tokio::test]
async fn stop_kills_exactly_the_recorded_pids() {
    // Arrange: an unrelated process, and a suite
    let mut bystander = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("spawn sleep");
    let t = spawn_suite().await;
    let mut pids: Vec<u32> = t.suite.state().processes.iter().map(|p| p.pid).collect();
    pids.push(t.suite.state().nginx.as_ref().expect("nginx").pid);
    let run_dir = t.run_dir().to_path_buf();

    // Act
    t.teardown().await;

    // Assert
    for pid in pids {
        assert!(!is_alive(pid), "pid {pid} survived stop");
    }
    assert!(is_alive(bystander.id()), "stop killed an unrelated process");
    assert!(!run_dir.join("state.json").exists());
    bystander.kill().expect("kill sleep");
    bystander.wait().expect("reap sleep");
}

#[tokio::test]
async fn a_recorded_pid_now_running_another_binary_is_never_signalled() {
    // Arrange: a replica dies and its pid is "reused" by an unrelated process
    let mut t = spawn_suite().await;
    t.suite
        .kill_replica("payment", 0, Signal::SIGKILL)
        .await
        .expect("kill payment-0");
    let mut bystander = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("spawn sleep");
    let path = t.run_dir().join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("parse");
    for p in state["processes"].as_array_mut().expect("processes") {
        if p["instance"] == "payment-0" {
            p["pid"] = bystander.id().into();
        }
    }
    std::fs::write(&path, state.to_string()).expect("write");

    // Act: `flashsale down` does this
    let mut attached = Suite::attach(t.run_dir()).expect("attach");
    attached.stop().await.expect("stop");

    // Assert
    assert!(
        is_alive(bystander.id()),
        "stop signalled a pid running another binary"
    );
    for p in &t.suite.state().processes {
        assert!(!is_alive(p.pid), "{} survived", p.instance);
    }
    bystander.kill().expect("kill sleep");
    bystander.wait().expect("reap sleep");
    t.suite.drop_databases().await.expect("drop");
}

#[tokio::test]
async fn a_killed_replica_restarts_on_its_port_and_nginx_routes_to_it_again() {
    // Arrange
    let mut t = spawn_suite().await;
    let client = http();
    let before = t.suite.replica("gateway", 0).expect("gateway-0").clone();

    // Act: kill the only gateway
    t.suite
        .kill_replica("gateway", 0, Signal::SIGKILL)
        .await
        .expect("kill gateway-0");

    // Assert: nginx answers its own JSON 503 while no gateway is up
    let r = client
        .get(t.url("/api/products"))
        .send()
        .await
        .expect("products");
    assert_eq!(r.status(), 503);
    assert_eq!(json_body(r).await["code"], "upstream_unavailable");

    // Act: restart it
    t.suite
        .restart_replica("gateway", 0)
        .await
        .expect("restart");

    // Assert: same port, new pid, recorded in state.json, and routed to again
    let after = t.suite.replica("gateway", 0).expect("gateway-0").clone();
    assert_eq!(after.port, before.port);
    assert_ne!(after.pid, before.pid);
    let saved = harness::SuiteState::load(t.run_dir()).expect("state");
    assert_eq!(
        saved.replica("gateway", 0).expect("recorded").pid,
        after.pid
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = client
            .get(t.url("/api/products"))
            .send()
            .await
            .expect("products")
            .status();
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.teardown().await;
}

#[tokio::test]
async fn a_missing_service_binary_is_a_clear_error() {
    ensure_infra();
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = tempfile::tempdir().expect("empty bin dir");
    let opts = SuiteOptions {
        bin_dir: Some(empty.path().to_path_buf()),
        port: free_port(),
        ..test_options(dir.path())
    };
    let err = match Suite::start(opts).await {
        Ok(_) => panic!("started without binaries"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("cargo build --workspace --bins"), "{err}");
}
