//! Payment against a real PostgreSQL (and in async mode a real RabbitMQ): one database and
//! one queue prefix per test.

mod charges;
mod events;
mod helpers;
mod refunds;
