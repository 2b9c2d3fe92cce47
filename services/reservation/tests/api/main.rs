//! Integration tests of the reservation service against the real PostgreSQL (and, where a
//! test needs one, a real inventory service started in-process). The Reserve flow through
//! the gateway is covered end to end by the suite's tests through nginx.

mod health;
mod helpers;
mod internal;
mod public;
mod sweeper;
