//! Inventory against a real PostgreSQL: one database per test.

mod helpers;
mod holds;
