//! Payment service: owns the payments (`payments`, one per order) and the fictitious payment
//! provider with its ledger (`provider_charges`), which charges with a configurable latency
//! and decline rate.
//!
//! Sync mode: the order service calls `POST /internal/payments/charges` through nginx; this
//! service calls no one. Async mode ([`messaging`]): consumes ReservationBound; emits
//! PaymentSucceeded or PaymentDeclined, after the same exactly-once charge.
//!
//! Exactly once, whatever the number of calls for one order: the payment row is created with
//! `ON CONFLICT (order_id) DO NOTHING`, so every caller shares one row; a final row is answered
//! as it is; a pending one is charged at the provider with the order id as idempotency key, and
//! the provider's ledger (`UNIQUE (idempotency_key)`, `ON CONFLICT DO NOTHING`) keeps the first
//! decision and hands it to every later or concurrent charge, so no order is charged twice and
//! every caller sees the same outcome. The outcome is stored with a guard on `PENDING`, so it
//! is written once and never flips. A caller that dies mid-way leaves the row `PENDING`; the
//! next retry asks the provider again and gets the ledger's recorded decision.

pub mod configuration;
pub mod db;
pub mod domain;
pub mod messaging;
pub mod routes;
pub mod startup;

pub const SERVICE: &str = "payment";
