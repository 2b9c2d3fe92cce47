//! After a fault run: drain, then check that nothing was lost, charged twice, oversold or left
//! half-way. [`crate::verify`] checks the invariants; this adds the questions a fault run
//! asks on top of them, each answered with a count that must be 0:
//!
//! - **orders lost**: a promise a client was given and the databases do not keep (an order
//!   accepted but missing or not final, an order answered CONFIRMED that is not, a reservation
//!   accepted that never left PENDING);
//! - **double charges**: a provider charge (or a SUCCEEDED payment) beyond the first for one
//!   order, and SUCCEEDED charges not refunded whose order is not CONFIRMED (a charge without
//!   an order);
//! - **oversold units**: units sold beyond a product's stock, and units in CONFIRMED orders
//!   that inventory never sold;
//! - **stuck**: anything not final once the suite drained: PENDING orders and payments,
//!   unpaid reservations past their expiry, releases still owed to inventory, stock still
//!   HELD for a reservation that is over, reservations bound to an order that is over but
//!   never confirmed or cancelled, unpublished outbox rows, messages waiting or dead.

use crate::rundata::faults::Outcome;
use crate::store::{connect, database_name};
use crate::suite::Suite;
use crate::verify::{self, Report};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// Ids listed per finding before the rest are only counted.
const EXAMPLES: usize = 5;

/// What the load's clients were told. Empty for a run whose load the harness cannot see (a
/// user's k6): the audit then rests on the databases alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Promises {
    /// Orders a client was given an id for (sync 200/402, async 202): each must exist and be
    /// final.
    pub accepted_orders: Vec<Uuid>,
    /// Orders a client was told are CONFIRMED: each must be CONFIRMED with exactly one charge.
    pub confirmed_orders: Vec<Uuid>,
    /// Orders a client was told are DECLINED.
    pub declined_orders: Vec<Uuid>,
    /// Reservations a client was given an id for (201/202): each must exist and have left
    /// PENDING.
    pub accepted_reservations: Vec<Uuid>,
}

/// Drain (at most `timeout`), then check. Releases and expiries still due right after the
/// drain get the rest of `timeout` to finish before they count as stuck.
pub async fn settle(
    suite: &Suite,
    promises: &Promises,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let state = suite.state();
    let amqp = (state.mode == common::Mode::Async).then_some(state.amqp_url.as_str());
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let drained =
        verify::wait_drained(&state.database_url, &state.db_prefix, amqp, timeout).await?;
    loop {
        let outcome = check(suite, promises, drained, started.elapsed()).await?;
        if outcome.passed() || tokio::time::Instant::now() >= deadline {
            return Ok(outcome);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The checks, once, as the databases (and the broker) are now.
pub async fn check(
    suite: &Suite,
    promises: &Promises,
    drained: bool,
    elapsed: Duration,
) -> anyhow::Result<Outcome> {
    let state = suite.state();
    // Right after a drain nothing should be in flight: a small grace only spares work that
    // is finishing at this very moment.
    let grace = Duration::from_secs(2);
    let report: Report = match state.mode {
        common::Mode::Async => {
            verify::run_with_broker(
                &state.database_url,
                &state.db_prefix,
                &state.amqp_url,
                grace,
            )
            .await?
        }
        common::Mode::Sync => verify::run(&state.database_url, &state.db_prefix, grace).await?,
    };
    let db = |service: &'static str| {
        let name = database_name(&state.db_prefix, service);
        let url = state.database_url.clone();
        async move { connect(&url, &name).await }
    };
    let (order_db, payment_db, reservation_db, inventory_db) = (
        db("order").await?,
        db("payment").await?,
        db("reservation").await?,
        db("inventory").await?,
    );

    let mut findings = Vec::new();
    let mut note = |what: &str, ids: &[Uuid]| {
        if !ids.is_empty() {
            let shown: Vec<String> = ids.iter().take(EXAMPLES).map(Uuid::to_string).collect();
            let more = ids.len().saturating_sub(EXAMPLES);
            findings.push(format!(
                "{} {what}: {}{}",
                ids.len(),
                shown.join(", "),
                if more > 0 {
                    format!(", and {more} more")
                } else {
                    String::new()
                }
            ));
        }
    };

    // --- what each order, payment, charge and reservation is now ------------------------
    let orders: HashMap<Uuid, (Uuid, String)> = order_db
        .query("SELECT id, reservation_id, status FROM orders", &[])
        .await
        .context("reading orders")?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut ledger: HashMap<Uuid, (i64, i64)> = HashMap::new(); // order → (charges, succeeded)
    for r in payment_db
        .query(
            "SELECT idempotency_key, count(*),
                    count(*) FILTER (WHERE outcome = 'SUCCEEDED' AND refunded_at IS NULL)
             FROM provider_charges GROUP BY idempotency_key",
            &[],
        )
        .await
        .context("reading the provider's ledger")?
    {
        ledger.insert(r.get(0), (r.get(1), r.get(2)));
    }
    let mut payments: HashMap<Uuid, (i64, i64, i64)> = HashMap::new(); // order → (all, succeeded, pending)
    for r in payment_db
        .query(
            "SELECT order_id, count(*),
                    count(*) FILTER (WHERE status = 'SUCCEEDED'),
                    count(*) FILTER (WHERE status = 'PENDING')
             FROM payments GROUP BY order_id",
            &[],
        )
        .await
        .context("reading payments")?
    {
        payments.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
    }
    let reservations: HashMap<Uuid, (String, Option<Uuid>, bool, bool)> = reservation_db
        .query(
            "SELECT id, status, order_id, release_pending, expires_at < now() FROM reservations",
            &[],
        )
        .await
        .context("reading reservations")?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect();
    let held: Vec<Uuid> = inventory_db
        .query(
            "SELECT DISTINCT reservation_id FROM holds WHERE state = 'HELD'",
            &[],
        )
        .await
        .context("reading holds")?
        .iter()
        .map(|r| r.get(0))
        .collect();

    let final_order =
        |status: &str| matches!(status, "CONFIRMED" | "DECLINED" | "CANCELLED" | "FAILED");

    // --- orders lost: promises the databases do not keep ---------------------------------
    let mut lost: Vec<Uuid> = Vec::new();
    for id in &promises.accepted_orders {
        if !orders.get(id).is_some_and(|(_, s)| final_order(s)) {
            lost.push(*id);
        }
    }
    for id in &promises.confirmed_orders {
        let confirmed = orders.get(id).is_some_and(|(_, s)| s == "CONFIRMED");
        let charged_once = ledger.get(id).is_some_and(|(_, ok)| *ok == 1);
        if !(confirmed && charged_once) {
            lost.push(*id);
        }
    }
    for id in &promises.declined_orders {
        if orders.get(id).is_none_or(|(_, s)| s != "DECLINED") {
            lost.push(*id);
        }
    }
    let mut lost_reservations = Vec::new();
    for id in &promises.accepted_reservations {
        if reservations.get(id).is_none_or(|(s, ..)| s == "PENDING") {
            lost_reservations.push(*id);
        }
    }
    lost.sort();
    lost.dedup();
    note(
        "order promise(s) broken (accepted but not final, or told CONFIRMED/DECLINED but not so)",
        &lost,
    );
    note(
        "accepted reservation(s) missing or still PENDING",
        &lost_reservations,
    );
    let orders_lost = (lost.len() + lost_reservations.len()) as u64;

    // --- double charges ------------------------------------------------------------------
    let mut twice: Vec<Uuid> = ledger
        .iter()
        .filter(|(_, (all, _))| *all > 1)
        .map(|(id, _)| *id)
        .chain(
            payments
                .iter()
                .filter(|(_, (_, ok, _))| *ok > 1)
                .map(|(id, _)| *id),
        )
        .collect();
    twice.sort();
    twice.dedup();
    let without_order: Vec<Uuid> = ledger
        .iter()
        .filter(|(id, (_, ok))| *ok > 0 && orders.get(*id).is_none_or(|(_, s)| s != "CONFIRMED"))
        .map(|(id, _)| *id)
        .collect();
    note("order(s) charged more than once", &twice);
    note(
        "SUCCEEDED charge(s) whose order is not CONFIRMED",
        &without_order,
    );
    let double_charges = (twice.len() + without_order.len()) as u64;

    // --- oversold ------------------------------------------------------------------------
    let mut oversold_units = 0u64;
    for p in &report.products {
        let beyond_stock = (p.sold - p.initial).max(0);
        let never_sold = (p.confirmed_units - p.sold).max(0);
        if beyond_stock + never_sold > 0 {
            findings.push(format!(
                "product {}: sold {} of {} initial, {} unit(s) in confirmed orders",
                p.product_id, p.sold, p.initial, p.confirmed_units
            ));
        }
        oversold_units += (beyond_stock + never_sold) as u64;
    }

    // --- stuck ---------------------------------------------------------------------------
    let mut stuck_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut stuck = |kind: &str, ids: Vec<Uuid>, findings: &mut Vec<String>| {
        stuck_by_kind.insert(kind.to_string(), ids.len() as u64);
        if !ids.is_empty() {
            let shown: Vec<String> = ids.iter().take(EXAMPLES).map(Uuid::to_string).collect();
            findings.push(format!("{} {kind}: {}", ids.len(), shown.join(", ")));
        }
    };
    let pending_orders: Vec<Uuid> = orders
        .iter()
        .filter(|(_, (_, s))| s == "PENDING")
        .map(|(id, _)| *id)
        .collect();
    stuck("orders PENDING", pending_orders, &mut findings);
    let pending_payments: Vec<Uuid> = payments
        .iter()
        .filter(|(_, (_, _, pending))| *pending > 0)
        .map(|(id, _)| *id)
        .collect();
    stuck("payments PENDING", pending_payments, &mut findings);
    let unpaid_past_expiry: Vec<Uuid> = reservations
        .iter()
        .filter(|(_, (s, order, _, past))| {
            matches!(s.as_str(), "PENDING" | "RESERVED") && order.is_none() && *past
        })
        .map(|(id, _)| *id)
        .collect();
    stuck(
        "reservations unpaid past expiry",
        unpaid_past_expiry,
        &mut findings,
    );
    let releases_owed: Vec<Uuid> = reservations
        .iter()
        .filter(|(_, (_, _, release_pending, _))| *release_pending)
        .map(|(id, _)| *id)
        .collect();
    stuck("releases owed to inventory", releases_owed, &mut findings);
    let held_for_nothing: Vec<Uuid> = held
        .iter()
        .filter(|id| match reservations.get(*id) {
            // A release on its way is counted above; a live reservation may hold stock.
            Some((s, _, release_pending, _)) => {
                !matches!(s.as_str(), "PENDING" | "RESERVED") && !release_pending
            }
            None => true,
        })
        .copied()
        .collect();
    stuck(
        "reservations over whose stock is still HELD",
        held_for_nothing,
        &mut findings,
    );
    let bound_to_finished: Vec<Uuid> = reservations
        .iter()
        .filter(|(_, (s, order, ..))| {
            matches!(s.as_str(), "PENDING" | "RESERVED")
                && order.is_some_and(|o| orders.get(&o).is_none_or(|(_, os)| final_order(os)))
        })
        .map(|(id, _)| *id)
        .collect();
    stuck(
        "reservations bound to an order that is over (or missing) but not settled",
        bound_to_finished,
        &mut findings,
    );
    let backlog: i64 = report.outbox_backlog.values().sum();
    stuck_by_kind.insert("outbox rows unpublished".into(), backlog.max(0) as u64);
    let waiting: u32 = report
        .queues
        .iter()
        .filter(|q| !q.dead_letter)
        .map(|q| q.messages)
        .sum();
    stuck_by_kind.insert("messages waiting".into(), u64::from(waiting));
    stuck_by_kind.insert("dead letters".into(), u64::from(report.dead_letters));
    let stuck_total = stuck_by_kind.values().sum();

    Ok(Outcome {
        drained,
        settle_secs: elapsed.as_secs_f64(),
        orders_lost,
        double_charges,
        oversold_units,
        stuck_by_kind,
        stuck: stuck_total,
        findings,
        orders: report.orders.clone(),
        charges: report.charges.clone(),
        verify_ok: report.ok(),
        violations: report
            .violations
            .iter()
            .map(|v| format!("[{}] {}", v.invariant, v.message))
            .collect(),
    })
}
