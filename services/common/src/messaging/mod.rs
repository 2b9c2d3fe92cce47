//! RabbitMQ, wrapped once (lapin). Async mode only.
//!
//! Topology, per suite prefix `P` (`AMQP_PREFIX`):
//! - `P.events`: a durable topic exchange; the routing key of a message is its event name;
//! - `P.<service>`: one durable quorum queue per service, bound to the events it consumes
//!   ([`crate::events::SUBSCRIPTIONS`]), with a delivery limit and dead-lettering to
//! - `P.dlx` → `P.<service>.dlq`: the service's dead-letter queue, where a poison message ends
//!   instead of looping. `flashsale dlq replay` publishes it back to `P.events`.
//!
//! [`Broker`] keeps one connection per replica alive: it connects with backoff, declares the
//! topology, opens a confirm-mode publishing channel, runs the consumer, and starts over when
//! the connection is lost, so publishers and consumers resume by themselves.

mod acks;
mod broker;
mod consumer;
pub mod outbox;
mod pipeline;
mod topology;

pub use broker::{amqp_uri, message_properties, Broker, BrokerOptions, Outgoing};
pub use consumer::{HandleError, Incoming};
pub use pipeline::{Consume, Effect, Handler};
pub use topology::{
    dead_letter_queue, declare_topology, delete_topology, events_exchange, queue_name,
};

use crate::config::CommonConfig;
use crate::web::Readiness;
use deadpool_postgres::Pool;
use outbox::RelaySignal;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a service runs in async mode: its broker connection (consuming its queue with
/// `handler`) and its outbox relay.
pub struct AsyncRuntime {
    pub broker: Broker,
    pub relay: RelaySignal,
    pub tasks: Vec<JoinHandle<()>>,
}

impl AsyncRuntime {
    /// Connect (in the background, with backoff), consume `service`'s queue with `handler`,
    /// and relay the service's outbox. Everything stops, drained, on `cancel`.
    pub fn start(
        config: &CommonConfig,
        service: &'static str,
        pool: Pool,
        handler: Option<Handler>,
        cancel: CancellationToken,
    ) -> Self {
        Self::start_with_signal(
            config,
            service,
            pool,
            RelaySignal::default(),
            handler,
            cancel,
        )
    }

    /// As [`AsyncRuntime::start`], with a relay signal made beforehand, so the handler (built
    /// before the runtime) can wake the relay after its commits.
    pub fn start_with_signal(
        config: &CommonConfig,
        service: &'static str,
        pool: Pool,
        relay: RelaySignal,
        handler: Option<Handler>,
        cancel: CancellationToken,
    ) -> Self {
        let (broker, broker_task) = Broker::start(
            BrokerOptions {
                url: config.amqp_url.clone(),
                prefix: config.amqp_prefix.clone(),
                service,
                instance: config.instance_name(service),
                prefetch: config.amqp_prefetch,
                delivery_limit: config.amqp_delivery_limit,
                frame_max: config.amqp_frame_max,
            },
            handler,
            cancel.clone(),
        );
        let relay_task = outbox::relay(
            pool,
            broker.clone(),
            relay.clone(),
            Duration::from_millis(config.outbox_poll_ms.max(1)),
            cancel,
        );
        Self {
            broker,
            relay,
            tasks: vec![broker_task, relay_task],
        }
    }

    /// `/readyz` also reports RabbitMQ.
    pub fn readiness(&self, readiness: Readiness) -> Readiness {
        let broker = self.broker.clone();
        readiness.with_check(
            "rabbitmq",
            Arc::new(move || {
                let connected = broker.is_connected();
                Box::pin(async move {
                    anyhow::ensure!(connected, "not connected to RabbitMQ");
                    Ok(())
                })
            }),
        )
    }
}
