//! Integration tests of the reservation service against the real PostgreSQL (and, where a
//! test needs one, a real inventory service started in-process); the async-mode tests also
//! against the real RabbitMQ, each on a queue prefix of its own. The Reserve flow through
//! the gateway is covered end to end by the suite's tests through nginx.

mod async_mode;
mod health;
mod helpers;
mod internal;
mod long_poll;
mod messaging;
mod public;
mod sweeper;
