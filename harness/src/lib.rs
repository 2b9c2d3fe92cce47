//! The flash-sale harness: the `flashsale` CLI's library.
//!
//! It starts the suite natively (no containers): PostgreSQL, Redis and RabbitMQ from the
//! machine ([`infra`]), the five services' replicas from the workspace's binaries and an nginx
//! of its own in front of them ([`suite`], [`nginx`]), seeded with users and products
//! ([`seed`]). After a run it audits the sale's invariants (ARCHITECTURE.md) over all five
//! databases ([`verify`]). Its main job, `flashsale compare`, drives both architectures with
//! k6 ([`k6`], [`compare`]) and writes the comparison report from the raw data ([`report`]);
//! `flashsale ceiling` measures what the load generator alone leaves of the machine ([`ceiling`]).
//!
//! Architecture invariant: the harness never signals a process it did not start. Every pid
//! it records comes with the binary it ran, and is signalled only while it still runs it.

pub mod apt;
pub mod broker;
pub mod ceiling;
pub mod chaos;
pub mod commands;
pub mod compare;
pub mod infra;
pub mod k6;
pub mod nginx;
pub mod options;
pub mod process;
pub mod procfs;
pub mod report;
pub mod rundata;
pub mod seed;
pub mod state;
pub mod store;
pub mod suite;
pub mod templates;
pub mod verify;

pub use nginx::SERVICES;
pub use nix::sys::signal::Signal;
pub use options::{HashParams, SuiteOptions};
pub use state::{ProcessRecord, SeededProduct, SuiteState};
pub use suite::Suite;
pub use verify::Report;
