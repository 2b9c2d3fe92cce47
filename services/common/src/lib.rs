//! Shared library of the flash-sale services.
//!
//! It owns what every service must do the same way, so that a reader who knows one service
//! knows them all: configuration ([`config`]), the JSON error contract ([`error`]), database and
//! Redis pools with migrations ([`db`], [`cache`]), long-polled status URLs ([`changes`]), bearer tokens and the internal key
//! ([`auth`]), validated domain values ([`domain`]), the service-to-service HTTP client
//! ([`client`]), and the serving skeleton with health checks and graceful shutdown ([`web`],
//! [`shutdown`], [`telemetry`]).
//!
//! It never knows any one service's tables or routes.

pub mod auth;
pub mod cache;
pub mod changes;
pub mod client;
pub mod config;
pub mod db;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod events;
pub mod messaging;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
pub mod web;

pub use config::{CommonConfig, Mode};

pub use error::{ApiError, ApiResult};
