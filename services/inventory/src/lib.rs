//! Inventory service: owns the stock of every product (available, reserved, sold), the holds
//! that reservations place on it, and the per-user limit.
//!
//! Sync mode: reservation and order call its `/internal/inventory/...` routes through nginx.
//! Every route is idempotent by reservation id, so callers may retry.
//! Async mode ([`messaging`]): consumes ReservationRequested, ReservationExpired,
//! PaymentSucceeded, PaymentDeclined; emits StockReserved, StockRejected.
//! The same hold, commit and release as sync, each inside the handler's transaction.

pub mod configuration;
pub mod db;
pub mod domain;
pub mod messaging;
pub mod routes;
pub mod startup;

pub const SERVICE: &str = "inventory";
