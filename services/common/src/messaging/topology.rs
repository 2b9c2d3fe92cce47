//! Exchanges, queues and bindings, declared identically by every service.

use crate::events::SUBSCRIPTIONS;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

pub fn events_exchange(prefix: &str) -> String {
    format!("{prefix}.events")
}

pub fn dead_letter_exchange(prefix: &str) -> String {
    format!("{prefix}.dlx")
}

pub fn queue_name(prefix: &str, service: &str) -> String {
    format!("{prefix}.{service}")
}

pub fn dead_letter_queue(prefix: &str, service: &str) -> String {
    format!("{prefix}.{service}.dlq")
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        // Survives a broker restart: bindings to it must not vanish mid-sale.
        durable: true,
        ..ExchangeDeclareOptions::default()
    }
}

/// Declare the whole topology (every service's queue, not only the caller's): an event
/// published before its consumer ever started still has a queue to wait in.
pub async fn declare_topology(
    channel: &Channel,
    prefix: &str,
    delivery_limit: u32,
) -> lapin::Result<()> {
    let events = events_exchange(prefix);
    let dlx = dead_letter_exchange(prefix);
    channel
        // Topic: routing key = event name, so a queue binds to exactly the events it needs.
        .exchange_declare(
            events.as_str().into(),
            ExchangeKind::Topic,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
    channel
        // Direct: a dead letter keeps the routing key of its queue (the service name).
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Direct,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
    for (service, consumed) in SUBSCRIPTIONS {
        let mut args = FieldTable::default();
        // Quorum queues replicate, survive restarts, and count deliveries themselves, which
        // is what makes a delivery limit possible.
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        // A message delivered this many times without an ack is dead-lettered, not retried
        // forever (a poison message would otherwise loop and starve the queue).
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(delivery_limit)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.as_str().into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString((*service).into()),
        );
        let queue = queue_name(prefix, service);
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    // Survives a broker restart with its messages (which are persistent).
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await?;
        for event in *consumed {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    events.as_str().into(),
                    (*event).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let dlq = dead_letter_queue(prefix, service);
        channel
            .queue_declare(
                dlq.as_str().into(),
                QueueDeclareOptions {
                    // Dead letters are evidence: they must outlive a broker restart too.
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                dlq.as_str().into(),
                dlx.as_str().into(),
                (*service).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Delete every queue (and dead-letter queue) and both exchanges of `prefix`: a suite's
/// fresh start, a test's teardown. What is not there is skipped; failures are ignored, as
/// there is nothing left to clean up once the broker is away.
pub async fn delete_topology(channel: &Channel, prefix: &str) {
    for (service, _) in SUBSCRIPTIONS {
        for queue in [
            queue_name(prefix, service),
            dead_letter_queue(prefix, service),
        ] {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in [events_exchange(prefix), dead_letter_exchange(prefix)] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
}
