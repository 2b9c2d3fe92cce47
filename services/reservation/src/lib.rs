//! Reservation service: owns the reservations (`reservations` table) — which cart a user
//! reserved, at what total, until when the stock is held — and their expiry.
//!
//! **Reserve** (`POST /api/reservations`, sync mode): read the cart from the gateway
//! (`GET /internal/gateway/carts/{id}?user_id=`), insert the reservation PENDING with
//! `expires_at = now + RESERVATION_TTL_SECS`, ask inventory to hold its lines
//! (`POST /internal/inventory/holds`, idempotent by reservation id). A hold answers RESERVED
//! (201); a rejection is final (SOLD_OUT / LIMIT_REACHED 409, CANCELLED for an unknown
//! product 422); any other failure leaves the row PENDING and answers the error (503 when a
//! peer is away) — the sweeper then expires it and releases at inventory, which is right
//! whether or not the hold landed, because a release before a hold leaves a tombstone.
//!
//! **Pay** (driven by the order service over `/internal/reservations/{id}/...`):
//! `begin-payment` binds one order to a RESERVED, unexpired reservation in one guarded UPDATE;
//! from then on the sweeper leaves it alone and only that order may `confirm` (commit at
//! inventory, then CONFIRMED) or `cancel` (CANCELLED, then release at inventory). Every route
//! is idempotent, so the order service's saga may retry or resume any step.
//!
//! **Expire** ([`sweeper`], in every replica, every `SWEEP_INTERVAL_MS`): what it guarantees
//! is that every reservation nobody began paying before `expires_at` ends EXPIRED and its
//! stock goes back on sale, exactly once in effect: rows are expired under
//! `FOR UPDATE SKIP LOCKED` so replicas share them and none is expired twice; releases are
//! recorded (`release_pending`) in the same statement and retried under a short lease until
//! inventory confirms, so a crash or an inventory outage delays a release, never loses it.
//!
//! **Async mode** (`MODE=async`, [`messaging`]): the same outcomes with the commands as events
//! on RabbitMQ. Reserve reads the cart over HTTP as in sync, then records the reservation
//! PENDING and `ReservationRequested` in one transaction and answers 202; inventory answers
//! `StockReserved` / `StockRejected`. The order's `OrderPlaced` is the begin-payment binding,
//! answered with `ReservationBound` or `ReservationNotPayable`; `PaymentSucceeded` confirms and
//! `PaymentDeclined` cancels. The sweeper expires as in sync but appends `ReservationExpired`
//! instead of calling inventory. Emits: ReservationRequested, ReservationExpired,
//! ReservationBound, ReservationNotPayable. Consumes: StockReserved, StockRejected,
//! OrderPlaced, PaymentSucceeded, PaymentDeclined. The internal routes stay for sync mode.

pub mod configuration;
pub mod db;
pub mod domain;
pub mod messaging;
pub mod peers;
pub mod routes;
pub mod startup;
pub mod sweeper;

pub const SERVICE: &str = "reservation";

pub use sweeper::{expire_with_events, sweep_once, SweepStats};
