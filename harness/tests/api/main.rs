//! End-to-end tests of the harness: each starts a real suite (the workspace's service
//! binaries, its own nginx) on its own run folder, nginx port, database and Redis prefix, and
//! drops its databases at the end. They need `cargo build --workspace --bins` first.

mod helpers;
mod lifecycle;
mod routing;
mod seeding;
mod verify;
