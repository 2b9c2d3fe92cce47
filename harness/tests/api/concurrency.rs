//! A flash sale in miniature: many shoppers, little stock, the same second.

use crate::helpers::{drained_report, spawn_suite_with, TestSuite};
use crate::shopper::{Api, Outcome};
use common::Mode;

async fn assert_invariants(t: &TestSuite) -> harness::verify::Report {
    let report = drained_report(t).await;
    assert!(report.ok(), "{}", report.render_text());
    report
}

async fn two_hundred_shoppers_for_fifty_units_confirm_exactly_fifty(mode: Mode) {
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.replicas = 2;
        o.users = 200;
        o.products = 1;
        o.stock = 50;
        o.per_user_limit = 1;
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let shoppers = api.shoppers(200).await;

    let outcomes = futures::future::join_all(shoppers.iter().map(|s| s.checkout(&product))).await;

    let confirmed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Confirmed { .. }))
        .count();
    let sold_out = outcomes.iter().filter(|o| **o == Outcome::SoldOut).count();
    let others: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Confirmed { .. } | Outcome::SoldOut))
        .collect();
    assert!(others.is_empty(), "unexpected outcomes: {others:?}");
    assert_eq!((confirmed, sold_out), (50, 150));
    let report = assert_invariants(&t).await;
    assert_eq!(
        (report.products[0].sold, report.products[0].available),
        (50, 0)
    );
    t.teardown().await;
}

async fn one_user_racing_itself_from_twenty_connections_never_exceeds_the_limit(mode: Mode) {
    let t = spawn_suite_with(|o| {
        o.mode = mode;
        o.replicas = 2;
        o.products = 1;
        o.stock = 100;
        o.per_user_limit = 2;
    })
    .await;
    let api = Api::new(t.suite.base_url());
    let product = t.suite.products()[0].id.to_string();
    let shopper = api.shopper(1).await;

    let outcomes = futures::future::join_all((0..20).map(|_| {
        let shopper = shopper.clone();
        let product = product.clone();
        async move { shopper.checkout(&product).await }
    }))
    .await;

    let confirmed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Confirmed { .. }))
        .count();
    let limited = outcomes
        .iter()
        .filter(|o| **o == Outcome::LimitReached)
        .count();
    assert_eq!((confirmed, limited), (2, 18), "{outcomes:?}");
    let report = assert_invariants(&t).await;
    assert_eq!(report.products[0].sold, 2);
    t.teardown().await;
}

crate::helpers::in_both_modes!(
    two_hundred_shoppers_for_fifty_units_confirm_exactly_fifty,
    one_user_racing_itself_from_twenty_connections_never_exceeds_the_limit
);
