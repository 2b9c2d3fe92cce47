//! The sale's invariants (ARCHITECTURE.md), checked by reading the five services' databases
//! directly. The harness is the operator's tool: services never read each other's tables,
//! but an audit has to see all of them at once.
//!
//! 1. Stock is conserved: initial = available + reserved + sold, all ≥ 0; reserved = units of
//!    HELD holds.
//! 2. No oversell: sold ≤ initial; sold = units of SOLD holds = units in CONFIRMED orders.
//! 3. Exactly once: a CONFIRMED order has exactly one SUCCEEDED payment and one SUCCEEDED
//!    provider charge not refunded; a DECLINED, CANCELLED or FAILED order has no SUCCEEDED
//!    charge that was not refunded; no reservation has two orders.
//! 4. Nothing stuck past `grace`: reservations PENDING/RESERVED past their expiry with no
//!    order, releases still pending, orders and payments still PENDING, outbox rows still
//!    unpublished; with the broker checked ([`run_with_broker`], async mode), no message
//!    still waiting in a service queue and no dead letter.
//! 5. Fairness: no user holds or bought more than the per-user limit of a product.

use crate::nginx::SERVICES;
use crate::store::{connect, database_exists, database_name};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use uuid::Uuid;

/// How many ids a violation lists before it says "and N more".
const SAMPLE: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProductRow {
    pub product_id: Uuid,
    /// The catalog name (from the gateway's database), when it has the product.
    pub name: Option<String>,
    pub initial: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub per_user_limit: i64,
    /// Units of this product in CONFIRMED orders.
    pub confirmed_units: i64,
    /// Units in HELD holds.
    pub held_units: i64,
    /// Units in SOLD holds.
    pub sold_hold_units: i64,
    /// Every per-product invariant holds.
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's number in ARCHITECTURE.md's list.
    pub invariant: u8,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub db_prefix: String,
    pub checked_at: chrono::DateTime<chrono::Utc>,
    pub grace_secs: f64,
    pub ok: bool,
    pub products: Vec<ProductRow>,
    /// Orders by status.
    pub orders: BTreeMap<String, i64>,
    /// Reservations by status.
    pub reservations: BTreeMap<String, i64>,
    /// Payments by status.
    pub payments: BTreeMap<String, i64>,
    /// Provider charges by outcome.
    pub charges: BTreeMap<String, i64>,
    /// Unpublished outbox rows per service (any age).
    #[serde(default)]
    pub outbox_backlog: BTreeMap<String, i64>,
    /// Reservations whose stock is still to be given back to inventory (any age).
    #[serde(default)]
    pub releases_owed: i64,
    /// Queue depths, when the broker was checked.
    #[serde(default)]
    pub queues: Vec<crate::broker::QueueDepth>,
    /// Dead-lettered messages, when the broker was checked.
    #[serde(default)]
    pub dead_letters: u32,
    pub violations: Vec<Violation>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// Violations of invariant `n`.
    pub fn violations_of(&self, n: u8) -> Vec<&Violation> {
        self.violations
            .iter()
            .filter(|v| v.invariant == n)
            .collect()
    }

    /// A table per product, the counts, and the violations, for a terminal.
    pub fn render_text(&self) -> String {
        use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
        let mut out = String::new();
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "product",
            "id",
            "initial",
            "available",
            "reserved",
            "sold",
            "held holds",
            "sold holds",
            "confirmed",
            "limit",
            "ok",
        ]);
        for p in &self.products {
            table.add_row(vec![
                p.name.clone().unwrap_or_default(),
                p.product_id.to_string(),
                p.initial.to_string(),
                p.available.to_string(),
                p.reserved.to_string(),
                p.sold.to_string(),
                p.held_units.to_string(),
                p.sold_hold_units.to_string(),
                p.confirmed_units.to_string(),
                p.per_user_limit.to_string(),
                if p.ok { "yes" } else { "NO" }.to_string(),
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        for (name, counts) in [
            ("reservations", &self.reservations),
            ("orders", &self.orders),
            ("payments", &self.payments),
            ("charges", &self.charges),
        ] {
            let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let shown = if parts.is_empty() {
                "none".to_string()
            } else {
                parts.join(", ")
            };
            out.push_str(&format!("{name}: {shown}\n"));
        }
        let backlog: Vec<String> = self
            .outbox_backlog
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !backlog.is_empty() {
            out.push_str(&format!("outbox backlog: {}\n", backlog.join(", ")));
        }
        if !self.queues.is_empty() {
            let queues: Vec<String> = self
                .queues
                .iter()
                .map(|q| format!("{} {}", q.queue, q.messages))
                .collect();
            out.push_str(&format!("queues: {}\n", queues.join(", ")));
            out.push_str(&format!("dead letters: {}\n", self.dead_letters));
        }
        if self.violations.is_empty() {
            out.push_str("invariants: all hold\n");
        } else {
            out.push_str(&format!(
                "invariants: {} violation(s)\n",
                self.violations.len()
            ));
            for v in &self.violations {
                out.push_str(&format!("  [{}] {}\n", v.invariant, v.message));
            }
        }
        out
    }
}

/// Check every invariant over the databases `<db_prefix>_<service>` on the server at
/// `database_url` (no database name). Work younger than `grace` is not called stuck.
pub async fn run(database_url: &str, db_prefix: &str, grace: Duration) -> anyhow::Result<Report> {
    for service in SERVICES {
        if !database_exists(database_url, db_prefix, service).await? {
            anyhow::bail!(
                "database {} does not exist: has a suite with prefix {db_prefix:?} been started?",
                database_name(db_prefix, service)
            );
        }
    }
    let grace_secs = grace.as_secs_f64();
    let mut v = Violations::default();
    let db = Databases::connect(database_url, db_prefix).await?;

    let orders = orders(&db.order, grace_secs, &mut v).await?;
    let ledger = payments(&db.payment, grace_secs, &mut v).await?;
    exactly_once(&orders.rows, &ledger, &mut v);
    let reservations = reservations(&db.reservation, &orders.rows, grace_secs, &mut v).await?;
    let products = stock(&db.gateway, &db.inventory, orders.confirmed_units, &mut v).await?;
    fairness(&db.inventory, &mut v).await?;
    let outbox_backlog = outboxes(&db, grace_secs, &mut v).await?;

    let violations = v.0;
    Ok(Report {
        db_prefix: db_prefix.to_string(),
        checked_at: chrono::Utc::now(),
        grace_secs,
        ok: violations.is_empty(),
        products,
        orders: orders.counts,
        reservations: reservations.counts,
        payments: ledger.payments,
        charges: ledger.charges,
        outbox_backlog,
        releases_owed: reservations.releases_owed,
        queues: Vec::new(),
        dead_letters: 0,
        violations,
    })
}

/// A connection to each service's database.
struct Databases {
    gateway: tokio_postgres::Client,
    inventory: tokio_postgres::Client,
    reservation: tokio_postgres::Client,
    order: tokio_postgres::Client,
    payment: tokio_postgres::Client,
}

impl Databases {
    async fn connect(database_url: &str, db_prefix: &str) -> anyhow::Result<Databases> {
        let url = |service| database_name(db_prefix, service);
        Ok(Databases {
            gateway: connect(database_url, &url("gateway")).await?,
            inventory: connect(database_url, &url("inventory")).await?,
            reservation: connect(database_url, &url("reservation")).await?,
            order: connect(database_url, &url("order")).await?,
            payment: connect(database_url, &url("payment")).await?,
        })
    }
}

/// What the order service's database says.
struct Orders {
    /// Orders by status.
    counts: BTreeMap<String, i64>,
    /// Units in CONFIRMED orders, per product.
    confirmed_units: HashMap<Uuid, i64>,
    /// Every order: id, reservation, status.
    rows: Vec<(Uuid, Uuid, String)>,
}

/// Orders: their counts and units, and none still PENDING past `grace` (4).
async fn orders(
    order: &tokio_postgres::Client,
    grace_secs: f64,
    v: &mut Violations,
) -> anyhow::Result<Orders> {
    let counts = counts(order, "SELECT status, count(*) FROM orders GROUP BY status").await?;
    let mut confirmed_units: HashMap<Uuid, i64> = HashMap::new();
    for row in order
        .query(
            "SELECT (line->>'product_id')::uuid, sum((line->>'quantity')::bigint)::bigint
             FROM orders o, jsonb_array_elements(o.items) AS line
             WHERE o.status = 'CONFIRMED'
             GROUP BY 1",
            &[],
        )
        .await
        .context("summing the units of confirmed orders")?
    {
        confirmed_units.insert(row.get(0), row.get(1));
    }
    let mut rows: Vec<(Uuid, Uuid, String)> = Vec::new();
    for row in order
        .query("SELECT id, reservation_id, status FROM orders", &[])
        .await
        .context("reading orders")?
    {
        rows.push((row.get(0), row.get(1), row.get(2)));
    }
    let stuck_orders = ids(
        order,
        "SELECT id FROM orders WHERE status = 'PENDING'
         AND updated_at < now() - $1::float8 * interval '1 second' ORDER BY updated_at",
        grace_secs,
    )
    .await?;
    v.list(4, &stuck_orders, |n| {
        format!("{n} order(s) still PENDING more than {grace_secs}s after their last change")
    });
    Ok(Orders {
        counts,
        confirmed_units,
        rows,
    })
}

/// What the payment service's database says: its payments and the provider's ledger.
struct Ledger {
    /// Payments by status, charges by outcome.
    payments: BTreeMap<String, i64>,
    charges: BTreeMap<String, i64>,
    /// SUCCEEDED payments per order.
    succeeded_payments: HashMap<Uuid, i64>,
    /// SUCCEEDED charges not refunded per order (the charge's idempotency key).
    succeeded_charges: HashMap<Uuid, i64>,
}

/// Payments and the provider's ledger: their counts, and no payment still PENDING past
/// `grace` (4).
async fn payments(
    payment: &tokio_postgres::Client,
    grace_secs: f64,
    v: &mut Violations,
) -> anyhow::Result<Ledger> {
    let payments = counts(
        payment,
        "SELECT status, count(*) FROM payments GROUP BY status",
    )
    .await?;
    let charges = counts(
        payment,
        "SELECT outcome, count(*) FROM provider_charges GROUP BY outcome",
    )
    .await?;
    let mut succeeded_payments: HashMap<Uuid, i64> = HashMap::new();
    for row in payment
        .query(
            "SELECT order_id, count(*) FROM payments WHERE status = 'SUCCEEDED' GROUP BY order_id",
            &[],
        )
        .await
        .context("reading payments")?
    {
        succeeded_payments.insert(row.get(0), row.get(1));
    }
    let mut succeeded_charges: HashMap<Uuid, i64> = HashMap::new();
    for row in payment
        .query(
            "SELECT idempotency_key, count(*) FROM provider_charges
             WHERE outcome = 'SUCCEEDED' AND refunded_at IS NULL GROUP BY idempotency_key",
            &[],
        )
        .await
        .context("reading provider charges")?
    {
        succeeded_charges.insert(row.get(0), row.get(1));
    }
    let stuck_payments = ids(
        payment,
        "SELECT order_id FROM payments WHERE status = 'PENDING'
         AND updated_at < now() - $1::float8 * interval '1 second' ORDER BY updated_at",
        grace_secs,
    )
    .await?;
    v.list(4, &stuck_payments, |n| {
        format!("{n} payment(s) still PENDING more than {grace_secs}s after their last change (order ids)")
    });
    Ok(Ledger {
        payments,
        charges,
        succeeded_payments,
        succeeded_charges,
    })
}

/// Exactly once (3): a CONFIRMED order has one SUCCEEDED payment and one SUCCEEDED charge
/// not refunded; a DECLINED, CANCELLED or FAILED order has no such charge.
fn exactly_once(orders: &[(Uuid, Uuid, String)], ledger: &Ledger, v: &mut Violations) {
    let mut not_one_payment = Vec::new();
    let mut not_one_charge = Vec::new();
    let mut charged_but_failed = Vec::new();
    for (id, _, status) in orders {
        match status.as_str() {
            "CONFIRMED" => {
                if ledger.succeeded_payments.get(id).copied().unwrap_or(0) != 1 {
                    not_one_payment.push(*id);
                }
                if ledger.succeeded_charges.get(id).copied().unwrap_or(0) != 1 {
                    not_one_charge.push(*id);
                }
            }
            "DECLINED" | "CANCELLED" | "FAILED" if ledger.succeeded_charges.contains_key(id) => {
                charged_but_failed.push(*id);
            }
            _ => {}
        }
    }
    v.list(3, &not_one_payment, |n| {
        format!("{n} CONFIRMED order(s) without exactly one SUCCEEDED payment")
    });
    v.list(3, &not_one_charge, |n| {
        format!("{n} CONFIRMED order(s) without exactly one SUCCEEDED provider charge")
    });
    v.list(3, &charged_but_failed, |n| {
        format!("{n} DECLINED, CANCELLED or FAILED order(s) with a SUCCEEDED provider charge not refunded")
    });
}

/// What the reservation service's database says.
struct Reservations {
    /// Reservations by status.
    counts: BTreeMap<String, i64>,
    /// Reservations whose stock is still to be given back (any age).
    releases_owed: i64,
}

/// Reservations: no reservation with two orders (3), none PENDING or RESERVED past its
/// expiry without an order, no release still pending past `grace` (4).
async fn reservations(
    reservation: &tokio_postgres::Client,
    orders: &[(Uuid, Uuid, String)],
    grace_secs: f64,
    v: &mut Violations,
) -> anyhow::Result<Reservations> {
    let counts = counts(
        reservation,
        "SELECT status, count(*) FROM reservations GROUP BY status",
    )
    .await?;
    let mut by_reservation: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (id, reservation_id, _) in orders {
        by_reservation.entry(*reservation_id).or_default().push(*id);
    }
    let mut two_orders: Vec<Uuid> = by_reservation
        .iter()
        .filter(|(_, orders)| orders.len() > 1)
        .map(|(r, _)| *r)
        .collect();
    for row in reservation
        .query(
            "SELECT id, order_id FROM reservations WHERE order_id IS NOT NULL",
            &[],
        )
        .await
        .context("reading reservations")?
    {
        let (id, bound): (Uuid, Uuid) = (row.get(0), row.get(1));
        // The reservation is bound to one order; another order claiming it is a second order.
        if by_reservation
            .get(&id)
            .is_some_and(|orders| orders.iter().any(|o| *o != bound))
        {
            two_orders.push(id);
        }
    }
    two_orders.sort();
    two_orders.dedup();
    v.list(3, &two_orders, |n| {
        format!("{n} reservation(s) with two orders")
    });
    let stuck_reservations = ids(
        reservation,
        "SELECT id FROM reservations WHERE status IN ('PENDING', 'RESERVED') AND order_id IS NULL
         AND expires_at < now() - $1::float8 * interval '1 second' ORDER BY expires_at",
        grace_secs,
    )
    .await?;
    v.list(4, &stuck_reservations, |n| {
        format!("{n} reservation(s) PENDING or RESERVED more than {grace_secs}s past expiry with no order")
    });
    let stuck_releases = ids(
        reservation,
        "SELECT id FROM reservations WHERE release_pending
         AND updated_at < now() - $1::float8 * interval '1 second' ORDER BY updated_at",
        grace_secs,
    )
    .await?;
    v.list(4, &stuck_releases, |n| {
        format!("{n} reservation(s) whose stock release is still pending after {grace_secs}s")
    });
    let releases_owed: i64 = reservation
        .query_one(
            "SELECT count(*) FROM reservations WHERE release_pending",
            &[],
        )
        .await
        .context("counting owed releases")?
        .get(0);
    Ok(Reservations {
        counts,
        releases_owed,
    })
}

/// Stock, per product in catalog order: conserved (1) and not oversold (2); and no units in
/// CONFIRMED orders of a product without stock (2).
async fn stock(
    gateway: &tokio_postgres::Client,
    inventory: &tokio_postgres::Client,
    mut confirmed_units: HashMap<Uuid, i64>,
    v: &mut Violations,
) -> anyhow::Result<Vec<ProductRow>> {
    let mut names: HashMap<Uuid, String> = HashMap::new();
    for row in gateway
        .query("SELECT id, name FROM products", &[])
        .await
        .context("reading the catalog")?
    {
        names.insert(row.get(0), row.get(1));
    }
    let mut products = Vec::new();
    for row in inventory
        .query(
            "SELECT s.product_id, s.initial::bigint, s.available::bigint, s.reserved::bigint,
                    s.sold::bigint, s.per_user_limit::bigint,
                    COALESCE(sum(h.quantity) FILTER (WHERE h.state = 'HELD'), 0)::bigint,
                    COALESCE(sum(h.quantity) FILTER (WHERE h.state = 'SOLD'), 0)::bigint
             FROM stock s LEFT JOIN holds h ON h.product_id = s.product_id
             GROUP BY s.product_id ORDER BY s.product_id",
            &[],
        )
        .await
        .context("reading stock and holds")?
    {
        let product_id: Uuid = row.get(0);
        let mut p = ProductRow {
            product_id,
            name: names.remove(&product_id),
            initial: row.get(1),
            available: row.get(2),
            reserved: row.get(3),
            sold: row.get(4),
            per_user_limit: row.get(5),
            held_units: row.get(6),
            sold_hold_units: row.get(7),
            confirmed_units: confirmed_units.remove(&product_id).unwrap_or(0),
            ok: true,
        };
        let before = v.0.len();
        stock_is_conserved(&p, v);
        no_oversell(&p, v);
        p.ok = v.0.len() == before;
        products.push(p);
    }
    // Catalog order: `Flash product 2` before `Flash product 10`.
    products.sort_by_key(|p| (p.name.as_deref().map(natural_key), p.product_id));
    for (product_id, units) in confirmed_units {
        v.push(
            2,
            format!("confirmed orders hold {units} unit(s) of product {product_id}, which has no stock row"),
        );
    }
    Ok(products)
}

/// Fairness (5): no user holds or bought more than the per-user limit of a product.
async fn fairness(inventory: &tokio_postgres::Client, v: &mut Violations) -> anyhow::Result<()> {
    let mut over_limit = Vec::new();
    for row in inventory
        .query(
            "SELECT h.user_id, h.product_id, sum(h.quantity)::bigint, max(s.per_user_limit)::bigint
             FROM holds h JOIN stock s ON s.product_id = h.product_id
             WHERE h.state IN ('HELD', 'SOLD') AND s.per_user_limit > 0
             GROUP BY h.user_id, h.product_id
             HAVING sum(h.quantity) > max(s.per_user_limit)
             ORDER BY 1, 2",
            &[],
        )
        .await
        .context("checking the per-user limit")?
    {
        let (user, product, units, limit): (Uuid, Uuid, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        over_limit.push(format!(
            "user {user} has {units} unit(s) of {product} (limit {limit})"
        ));
    }
    if !over_limit.is_empty() {
        let shown: Vec<&str> = over_limit.iter().take(SAMPLE).map(String::as_str).collect();
        let more = over_limit.len().saturating_sub(SAMPLE);
        v.push(
            5,
            format!(
                "{} user/product pair(s) over the per-user limit: {}{}",
                over_limit.len(),
                shown.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            ),
        );
    }
    Ok(())
}

/// Outboxes (async mode; the tables exist in both modes): their backlog per service, and no
/// row unpublished past `grace` (4).
async fn outboxes(
    db: &Databases,
    grace_secs: f64,
    v: &mut Violations,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let mut outbox_backlog = BTreeMap::new();
    for (service, client) in [
        ("inventory", &db.inventory),
        ("reservation", &db.reservation),
        ("order", &db.order),
        ("payment", &db.payment),
    ] {
        let Ok(row) = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE created_at < now() - $1::float8 * interval '1 second')
                 FROM outbox WHERE published_at IS NULL",
                &[&grace_secs],
            )
            .await
        else {
            continue; // no outbox table: a service without messaging
        };
        let (all, old): (i64, i64) = (row.get(0), row.get(1));
        outbox_backlog.insert(service.to_string(), all);
        if old > 0 {
            v.push(
                4,
                format!("{old} outbox row(s) of {service} unpublished past the grace period"),
            );
        }
    }
    Ok(outbox_backlog)
}

/// [`run`], plus the broker: messages still waiting in a service queue and dead letters are
/// violations of invariant 4 (call it after the system drained, see [`wait_drained`]).
pub async fn run_with_broker(
    database_url: &str,
    db_prefix: &str,
    amqp_url: &str,
    grace: Duration,
) -> anyhow::Result<Report> {
    let mut report = run(database_url, db_prefix, grace).await?;
    let queues = crate::broker::queue_depths(amqp_url, db_prefix).await?;
    for q in &queues {
        if q.dead_letter && q.messages > 0 {
            report.violations.push(Violation {
                invariant: 4,
                message: format!(
                    "{} dead-lettered message(s) in {} (see `flashsale dlq list`)",
                    q.messages, q.queue
                ),
            });
        } else if !q.dead_letter && q.messages > 0 {
            report.violations.push(Violation {
                invariant: 4,
                message: format!("{} message(s) still waiting in {}", q.messages, q.queue),
            });
        }
    }
    report.dead_letters = queues
        .iter()
        .filter(|q| q.dead_letter)
        .map(|q| q.messages)
        .sum();
    report.queues = queues;
    report.ok = report.violations.is_empty();
    Ok(report)
}

/// Wait (at most `timeout`) until the suite has drained: no unpublished outbox row, no
/// message waiting in a service queue (when `amqp_url` is given), no reservation or order
/// PENDING, no release owed to inventory. Answers whether it drained.
pub async fn wait_drained(
    database_url: &str,
    db_prefix: &str,
    amqp_url: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let report = run(database_url, db_prefix, Duration::from_secs(3600)).await?;
        let backlog: i64 = report.outbox_backlog.values().sum();
        let pending = report.reservations.get("PENDING").copied().unwrap_or(0)
            + report.orders.get("PENDING").copied().unwrap_or(0);
        let waiting: u32 = match amqp_url {
            Some(url) => crate::broker::queue_depths(url, db_prefix)
                .await?
                .iter()
                .filter(|q| !q.dead_letter)
                .map(|q| q.messages)
                .sum(),
            None => 0,
        };
        if backlog == 0 && pending == 0 && waiting == 0 && report.releases_owed == 0 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Stock is conserved (1): initial = available + reserved + sold, all ≥ 0; reserved = units
/// of HELD holds.
fn stock_is_conserved(p: &ProductRow, v: &mut Violations) {
    let id = p.product_id;
    if p.initial < 0 || p.available < 0 || p.reserved < 0 || p.sold < 0 {
        v.push(
            1,
            format!(
                "product {id}: negative stock (initial {}, available {}, reserved {}, sold {})",
                p.initial, p.available, p.reserved, p.sold
            ),
        );
    }
    if p.available + p.reserved + p.sold != p.initial {
        v.push(
            1,
            format!(
                "product {id}: available {} + reserved {} + sold {} = {} ≠ initial {}",
                p.available,
                p.reserved,
                p.sold,
                p.available + p.reserved + p.sold,
                p.initial
            ),
        );
    }
    if p.reserved != p.held_units {
        v.push(
            1,
            format!(
                "product {id}: reserved {} ≠ {} unit(s) in HELD holds",
                p.reserved, p.held_units
            ),
        );
    }
}

/// No oversell (2): sold ≤ initial; sold = units of SOLD holds = units in CONFIRMED orders.
fn no_oversell(p: &ProductRow, v: &mut Violations) {
    let id = p.product_id;
    if p.sold > p.initial {
        v.push(
            2,
            format!(
                "product {id}: oversold, sold {} > initial {}",
                p.sold, p.initial
            ),
        );
    }
    if p.sold != p.sold_hold_units {
        v.push(
            2,
            format!(
                "product {id}: sold {} ≠ {} unit(s) in SOLD holds",
                p.sold, p.sold_hold_units
            ),
        );
    }
    if p.sold != p.confirmed_units {
        v.push(
            2,
            format!(
                "product {id}: sold {} ≠ {} unit(s) in CONFIRMED orders",
                p.sold, p.confirmed_units
            ),
        );
    }
}

/// A name's text with its trailing number apart, so names sort the way people count.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (text, number) = name.split_at(name.len() - digits);
    (text.to_string(), number.parse().unwrap_or(0))
}

#[derive(Default)]
struct Violations(Vec<Violation>);

impl Violations {
    fn push(&mut self, invariant: u8, message: String) {
        self.0.push(Violation { invariant, message });
    }

    /// One violation for a list of offending ids, naming a few of them.
    fn list(&mut self, invariant: u8, ids: &[Uuid], what: impl FnOnce(usize) -> String) {
        if ids.is_empty() {
            return;
        }
        let shown: Vec<String> = ids.iter().take(SAMPLE).map(Uuid::to_string).collect();
        let more = ids.len().saturating_sub(SAMPLE);
        let tail = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        self.push(
            invariant,
            format!("{}: {}{tail}", what(ids.len()), shown.join(", ")),
        );
    }
}

async fn counts(
    client: &tokio_postgres::Client,
    sql: &str,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows = client
        .query(sql, &[])
        .await
        .with_context(|| format!("running {sql}"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn ids(
    client: &tokio_postgres::Client,
    sql: &str,
    grace_secs: f64,
) -> anyhow::Result<Vec<Uuid>> {
    let rows = client
        .query(sql, &[&grace_secs])
        .await
        .with_context(|| format!("running {sql}"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
