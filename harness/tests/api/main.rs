//! End-to-end tests of the harness: each starts a real suite (the workspace's service
//! binaries, its own nginx) on its own run folder, nginx port, database and Redis prefix, and
//! drops its databases at the end. They need `cargo build --workspace --bins` first.

mod async_reliability;
mod bad_input;
mod ceiling;
mod compare;
mod compose;
mod compose_report;
mod concurrency;
mod decline;
mod dependencies;
mod expiry;
mod helpers;
mod journey;
mod k6_thresholds;
mod lifecycle;
mod long_poll;
mod metrics;
mod private_servers;
mod refunds;
mod report;
mod resend;
mod routing;
mod seeding;
mod shopper;
mod shutdown;
mod study;
mod traces;
mod verify;
