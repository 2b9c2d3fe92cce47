//! Queue depth (async mode): messages ready, unacknowledged, and consumers per queue.
//!
//! Two sources. RabbitMQ's management API (`/api/queues/<vhost>/<name>`) knows all three; it
//! is used when `RABBITMQ_MANAGEMENT_URL` is set and answers (docker-compose enables it). A
//! passive `queue.declare` needs nothing but AMQP and returns ready messages and consumers
//! only, so `unacked` is left out of those points.

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use std::time::Duration;

/// One queue at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: String,
    pub ready: u64,
    /// Known only through the management API.
    pub unacked: Option<u64>,
    pub consumers: u64,
}

/// Depth of `queue` by a passive declare on `channel`. A missing queue is an error, and the
/// broker closes the channel with it (open a new one).
pub async fn passive_depth(channel: &Channel, queue: &str) -> lapin::Result<QueueDepth> {
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                // Only ask: never create the queue, nor clash with its real arguments.
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(QueueDepth {
        queue: queue.to_string(),
        ready: u64::from(q.message_count()),
        unacked: None,
        consumers: u64::from(q.consumer_count()),
    })
}

/// Depth of `queue` in `vhost` from the management API at `base`
/// (e.g. `http://guest:guest@rabbitmq:15672`; credentials in the URL become basic auth).
pub async fn management_depth(
    http: &reqwest::Client,
    base: &str,
    vhost: &str,
    queue: &str,
) -> anyhow::Result<QueueDepth> {
    let mut url = reqwest::Url::parse(base)?;
    let user = url.username().to_string();
    let password = url.password().map(str::to_string);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base} cannot be a base URL"))?
        .pop_if_empty()
        .extend(["api", "queues", vhost, queue]);
    let mut request = http.get(url);
    if !user.is_empty() {
        request = request.basic_auth(user, password);
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        messages_ready: u64,
        #[serde(default)]
        messages_unacknowledged: u64,
        #[serde(default)]
        consumers: u64,
    }
    let answer: Answer = request.send().await?.error_for_status()?.json().await?;
    Ok(QueueDepth {
        queue: queue.to_string(),
        ready: answer.messages_ready,
        unacked: Some(answer.messages_unacknowledged),
        consumers: answer.consumers,
    })
}

/// The virtual host of an AMQP URL (`amqp://u:p@h:5672/%2f` → `/`; none → `/`).
pub fn vhost_of(amqp_url: &str) -> String {
    reqwest::Url::parse(amqp_url)
        .ok()
        .and_then(|u| {
            let path = u.path().trim_start_matches('/').to_string();
            (!path.is_empty()).then(|| percent_decode(&path))
        })
        .unwrap_or_else(|| "/".to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Samples a fixed set of queues, keeping its own AMQP connection (reconnecting after a
/// failure) or asking the management API.
pub(crate) struct QueueSampler {
    amqp_url: String,
    management_url: Option<String>,
    vhost: String,
    queues: Vec<String>,
    http: reqwest::Client,
    connection: Option<Connection>,
    channel: Option<Channel>,
}

impl QueueSampler {
    pub(crate) fn new(
        amqp_url: String,
        management_url: Option<String>,
        queues: Vec<String>,
    ) -> Self {
        let vhost = vhost_of(&amqp_url);
        Self {
            amqp_url,
            management_url,
            vhost,
            queues,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
            connection: None,
            channel: None,
        }
    }

    /// Depth of every queue it can read now, and the first error met (to log).
    pub(crate) async fn sample(&mut self) -> (Vec<QueueDepth>, Option<String>) {
        if let Some(base) = &self.management_url {
            let mut out = Vec::new();
            let mut error = None;
            for queue in &self.queues {
                match management_depth(&self.http, base, &self.vhost, queue).await {
                    Ok(depth) => out.push(depth),
                    Err(e) => {
                        error.get_or_insert(format!("management API: {e:#}"));
                    }
                }
            }
            // An unreachable management API falls back to AMQP for this round.
            if error.is_none() || !out.is_empty() {
                return (out, error);
            }
        }
        self.sample_passive().await
    }

    async fn sample_passive(&mut self) -> (Vec<QueueDepth>, Option<String>) {
        let mut out = Vec::new();
        let mut error = None;
        for i in 0..self.queues.len() {
            let channel = match self.channel().await {
                Ok(channel) => channel,
                Err(e) => return (out, Some(format!("connecting to RabbitMQ: {e}"))),
            };
            match tokio::time::timeout(
                Duration::from_secs(2),
                passive_depth(&channel, &self.queues[i]),
            )
            .await
            {
                Ok(Ok(depth)) => out.push(depth),
                Ok(Err(e)) => {
                    // The broker closed the channel (404 on a queue not declared yet).
                    self.channel = None;
                    error.get_or_insert(format!("queue {}: {e}", self.queues[i]));
                }
                Err(_) => {
                    self.channel = None;
                    self.connection = None;
                    error.get_or_insert(format!("queue {}: no answer within 2s", self.queues[i]));
                }
            }
        }
        (out, error)
    }

    async fn channel(&mut self) -> lapin::Result<Channel> {
        if let Some(channel) = self.channel.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        if !self
            .connection
            .as_ref()
            .is_some_and(|c| c.status().connected())
        {
            let properties =
                ConnectionProperties::default().with_connection_name("flashsale-metrics".into());
            // Passive declares only: lapin's smallest frame, below which it never buffers.
            let smallest = lapin::protocol::constants::FRAME_MIN_SIZE;
            let uri = crate::messaging::amqp_uri(&self.amqp_url, smallest).map_err(|e| {
                lapin::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
            })?;
            let connect = Connection::connect_uri(uri, properties);
            self.connection = Some(
                tokio::time::timeout(Duration::from_secs(5), connect)
                    .await
                    .map_err(|_| {
                        lapin::Error::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
                    })??,
            );
        }
        let Some(connection) = self.connection.as_ref() else {
            unreachable!("connected above")
        };
        let channel = connection.create_channel().await?;
        self.channel = Some(channel.clone());
        Ok(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vhost_comes_from_the_amqp_url() {
        assert_eq!(vhost_of("amqp://guest:guest@127.0.0.1:5672/%2f"), "/");
        assert_eq!(vhost_of("amqp://guest:guest@rabbitmq:5672"), "/");
        assert_eq!(vhost_of("amqp://h/sale%2Fone"), "sale/one");
    }
}
