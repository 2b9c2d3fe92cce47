//! Integration tests of the order service against the real PostgreSQL; the async-mode tests
//! also against the real RabbitMQ, each on a queue prefix of its own, and (where a test needs
//! one) a real reservation service started in-process.

mod async_mode;
mod auth;
mod health;
mod helpers;
mod long_poll;
mod messaging;
mod orders;
mod payments;
