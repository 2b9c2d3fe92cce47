//! Inventory service: owns the stock of every product (available, reserved, sold), the holds
//! that reservations place on it, and the per-user limit.
//!
//! Sync mode: reservation and order call its `/internal/inventory/...` routes through nginx.
//! Every route is idempotent by reservation id, so callers may retry.
//! Async mode (later): consumes ReservationRequested, PaymentSucceeded, PaymentDeclined,
//! ReservationExpired; emits StockReserved, StockRejected, StockCommitted, StockReleased.

pub mod configuration;
pub mod db;
pub mod domain;
pub mod routes;
pub mod startup;

pub const SERVICE: &str = "inventory";
