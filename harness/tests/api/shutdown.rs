//! SIGTERM drains: a replica stops accepting, finishes what it has in flight (requests and
//! messages), and exits within its grace period; nothing it was doing is lost. Before it
//! stops accepting, a lame-duck phase (`common::web::LAME_DUCK`) closes nginx's keep-alive
//! connections to it after complete responses, so no shopper request is caught on a
//! connection closing under it.

use crate::helpers::{drained_report, spawn_suite_with};
use crate::shopper::{spawn_checkouts, Api, Outcome};
use common::Mode;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

async fn sigterm_mid_sale_drains_and_loses_nothing(mode: Mode) {
    let mut t = spawn_suite_with(|o| {
        o.mode = mode;
        o.replicas = 2;
        o.users = 100;
        o.products = 1;
        o.stock = 100;
        o.per_user_limit = 1;
        o.extra_env.push(("PAYMENT_LATENCY_MS".into(), "20".into()));
        o.extra_env.push(("SHUTDOWN_GRACE_SECS".into(), "5".into()));
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let shoppers = api.shoppers(100).await;
    let checkouts = spawn_checkouts(shoppers, &product);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut exits = Vec::new();
    for service in ["reservation", "payment", "inventory", "order"] {
        let started = Instant::now();
        t.suite
            .kill_replica(service, 0, Signal::SIGTERM)
            .await
            .expect("the replica exits after SIGTERM");
        exits.push((service, started.elapsed()));
    }
    for service in ["reservation", "payment", "inventory", "order"] {
        t.suite.restart_replica(service, 0).await.expect("restart");
    }
    let outcomes: Vec<Outcome> = futures::future::join_all(checkouts)
        .await
        .into_iter()
        .map(|r| r.expect("checkout task"))
        .collect();

    for (service, took) in &exits {
        // The grace period (5 s) plus start-up slack: a drain is bounded, not a hang.
        assert!(
            *took < Duration::from_secs(8),
            "{service} took {took:?} to exit"
        );
    }
    // Nothing in flight is lost. A reservation request nginx cannot place while a replica
    // drains is refused at the door with a JSON 503 before anything was recorded; that is a
    // known gap (counted by fault runs, not hidden here). Nothing else may fail.
    let refused_at_the_door = |o: &Outcome| matches!(o, Outcome::Failed { step: "reserve", status: 503, body } if body.contains("\"code\""));
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Confirmed { .. }))
        .filter(|o| !refused_at_the_door(o))
        .collect();
    assert!(failed.is_empty(), "lost or failed mid-checkout: {failed:?}");
    let confirmed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Confirmed { .. }))
        .count();
    let report = drained_report(&t).await;
    assert!(report.ok(), "{}", report.render_text());
    assert_eq!(report.products[0].sold as usize, confirmed);
    assert_eq!(report.products[0].reserved, 0);
    t.teardown().await;
}

crate::helpers::in_both_modes!(sigterm_mid_sale_drains_and_loses_nothing);
