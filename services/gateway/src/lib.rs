//! Gateway service: the suite's front door for everything before a reservation. It owns the
//! users and their login, the catalog's fixed part (product names and prices), and carts.
//!
//! - **Login** checks an argon2id password hash and issues the bearer token every service
//!   verifies locally. Argon2 is deliberately slow and memory-hungry (tens of milliseconds,
//!   ~19 MiB each), so the check runs on the blocking pool, never on an actix worker: a worker
//!   busy hashing would stall every other request it serves. A semaphore caps checks in flight
//!   at the number of CPUs, so a login storm queues instead of exhausting memory.
//! - **Catalog** reads join the `products` table (immutable during a run, kept in process
//!   memory) with the stock the inventory reports over HTTP, cached in Redis for
//!   `CATALOG_CACHE_MS` so a flash crowd does not turn every page view into an inventory query.
//! - **Carts live only in Redis** (one hash per cart, expiring after `CART_TTL_SECS`): they are
//!   short-lived, written on every click, and losing one costs a shopper a click, not money.
//!   Nothing about a cart is ever written to PostgreSQL.
//!
//! Sync mode: the reservation service reads a cart through `/internal/gateway/carts/{id}`.
//! The gateway consumes and emits no events.

pub mod cache;
pub mod catalog;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod routes;
pub mod startup;

pub const SERVICE: &str = "gateway";
