//! Queue depth against the local RabbitMQ (AMQP only: its management plugin is not enabled
//! on the test machines, so `unacked` is absent, as docs/metrics.md says).

use crate::file_sink::assert_schema;
use crate::helpers::*;
use common::metrics::line::FieldValue;
use common::metrics::queue::passive_depth;
use common::metrics::{Metrics, MetricsConfig};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[tokio::test]
async fn queue_depth_is_sampled_by_passive_declares_into_the_same_sink() {
    // Arrange: a fresh queue holding 3 messages.
    let conn = Connection::connect(AMQP_URL, ConnectionProperties::default())
        .await
        .expect("the local RabbitMQ answers");
    let channel = conn.create_channel().await.expect("channel");
    // With confirms, an awaited publish is in the queue, so the counts below are exact.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm mode");
    let queue = format!("t_metrics.{}", uuid::Uuid::new_v4().simple());
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
    for _ in 0..3 {
        channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                b"x",
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("routed");
    }
    let dir = std::env::temp_dir().join(format!("metrics-queue-{}", uuid::Uuid::new_v4()));
    let file = dir.join("q.lp");
    let metrics = Metrics::new(
        MetricsConfig {
            metrics_interval_ms: 100,
            metrics_file: Some(file.to_string_lossy().into()),
            ..MetricsConfig::default()
        },
        labels("r-queue"),
    )
    .expect("metrics");
    // A queue that does not exist yet must not stop the others from being sampled.
    metrics.sample_queues(
        AMQP_URL.into(),
        None,
        vec![format!("{queue}.missing"), queue.clone()],
    );

    // Act
    let direct = passive_depth(&channel, &queue)
        .await
        .expect("passive declare");
    let cancel = CancellationToken::new();
    let task = metrics.spawn(cancel.clone());
    let sampled = eventually(Duration::from_secs(15), || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains(&format!("queue={queue} ")))
    })
    .await;
    cancel.cancel();
    task.await.expect("ends");

    // Assert
    assert!(sampled, "a queue point was written within 15 s");
    assert_eq!(
        (direct.ready, direct.consumers, direct.unacked),
        (3, 0, None)
    );
    let text = std::fs::read_to_string(&file).expect("file");
    let lines = assert_schema(&text);
    let point = lines
        .iter()
        .find(|l| l.measurement == "queue" && l.tag("queue") == Some(queue.as_str()))
        .unwrap_or_else(|| panic!("no queue point in:\n{text}"));
    assert_eq!(point.field("ready"), Some(&FieldValue::Int(3)));
    assert_eq!(point.field("consumers"), Some(&FieldValue::Int(0)));
    assert_eq!(point.field("unacked"), None);
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = std::fs::remove_dir_all(dir);
}
