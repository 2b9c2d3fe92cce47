//! Order service: owns the orders (`orders`, one per reservation) and runs the Pay saga of
//! `POST /api/payments`; answers `GET /api/orders/{id}` to the order's owner.
//!
//! Sync mode: for a payment it calls, through nginx, the reservation service
//! (`GET /internal/reservations/{id}`, then `begin-payment`, then `confirm` or `cancel`) and
//! the payment service (`POST /internal/payments/charges`).
//!
//! Async mode (`MODE=async`, [`messaging`]): the reservation is still read over HTTP so the
//! payer gets 404/409 at once, then the order PENDING and `OrderPlaced` commit in one
//! transaction and the payer gets 202 with `Location: /api/orders/{id}`. Emits OrderPlaced;
//! consumes PaymentSucceeded (→ CONFIRMED), PaymentDeclined (→ DECLINED) and
//! ReservationNotPayable (→ CANCELLED). The reconciler runs in sync mode only.
//!
//! Exactly once, however often and however concurrently a reservation is paid:
//! - the order is inserted with `ON CONFLICT (reservation_id) DO NOTHING` and read back, so
//!   every payer of one reservation works on the same order id;
//! - `begin-payment` binds that order id to the reservation atomically (a replay with the same
//!   id is accepted), which also stops the reservation's sweeper from expiring it mid-payment;
//! - the charge is keyed by the order id, and the payment service charges an order at most once
//!   and answers every call with the same outcome;
//! - `confirm` / `cancel` are idempotent, and the order's final status is written only from
//!   `PENDING`, so it never flips.
//!
//! A failure mid-way (a peer away: 503) leaves the order `PENDING`; paying again replays the
//! same steps with the same order id, each of which has already happened at most once.

pub mod configuration;
pub mod db;
pub mod domain;
pub mod messaging;
pub mod routes;
pub mod startup;

pub const SERVICE: &str = "order";
