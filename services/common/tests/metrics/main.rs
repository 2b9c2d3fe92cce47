//! The metrics module against real servers: a fake InfluxDB 2 that enforces the write API,
//! the local RabbitMQ, the file sink, and the Grafana dashboard's queries.

mod dashboard;
mod file_sink;
mod helpers;
mod influx;
mod queue;
