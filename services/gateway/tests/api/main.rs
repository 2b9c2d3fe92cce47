//! The gateway's integration tests: one binary, real PostgreSQL and Redis, the real inventory.

mod carts;
mod dependencies;
mod health;
mod helpers;
mod internal;
mod login;
mod products;
mod tokens;
