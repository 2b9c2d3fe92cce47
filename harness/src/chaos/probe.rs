//! A light probe through nginx during a fault run: a few cheap internal reads per second to
//! each service, so the log sees what a caller sees while a replica is down, including the
//! 503s nginx answers itself (a service's own metrics cannot count a request that died with
//! it). Every probe route is `/internal/...` with the internal key, so the probe never counts
//! as load in the public-route series.

use crate::nginx::SERVICES;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Pause between two probes of one service.
const EVERY: Duration = Duration::from_millis(250);
/// A probe slower than this counts as failed.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Per service, per Unix second: probes sent and probes failed.
pub type ProbeCounts = BTreeMap<String, BTreeMap<i64, (u64, u64)>>;

pub struct Probe {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    counts: Arc<Mutex<ProbeCounts>>,
}

/// The read each service answers without a side effect: a 404 for an unknown id is an
/// answer from the service, which is all the probe asks.
fn path(service: &str) -> String {
    let nil = uuid::Uuid::nil();
    match service {
        "gateway" => format!("/internal/gateway/carts/{nil}?user_id={nil}"),
        "reservation" => format!("/internal/reservations/{nil}"),
        "order" => format!("/internal/orders/{nil}"),
        "payment" => format!("/internal/payments/by-order/{nil}"),
        "inventory" => format!("/internal/inventory/stock/{nil}"),
        other => format!("/internal/{other}/"),
    }
}

impl Probe {
    pub fn start(base_url: &str, internal_key: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .no_proxy()
            .build()?;
        let (stop, watcher) = watch::channel(false);
        let counts: Arc<Mutex<ProbeCounts>> = Arc::default();
        let tasks = SERVICES
            .iter()
            .map(|service| {
                let url = format!("{}{}", base_url.trim_end_matches('/'), path(service));
                let (http, key, counts) = (http.clone(), internal_key.to_string(), counts.clone());
                let mut watcher = watcher.clone();
                let service = service.to_string();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(EVERY);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    loop {
                        tokio::select! {
                            _ = watcher.changed() => break,
                            _ = tick.tick() => {}
                        }
                        let ok = match http
                            .get(&url)
                            .header(common::auth::INTERNAL_KEY_HEADER, &key)
                            .send()
                            .await
                        {
                            Ok(r) => !r.status().is_server_error(),
                            Err(_) => false,
                        };
                        let t = chrono::Utc::now().timestamp();
                        let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
                        let entry = counts
                            .entry(service.clone())
                            .or_default()
                            .entry(t)
                            .or_default();
                        entry.0 += 1;
                        entry.1 += u64::from(!ok);
                    }
                })
            })
            .collect();
        Ok(Self {
            stop,
            tasks,
            counts,
        })
    }

    pub async fn stop(self) -> ProbeCounts {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.clone()
    }
}

/// Probes sent and failed for `service` (all services when `None`) over Unix seconds
/// `from..to`.
pub fn sum(counts: &ProbeCounts, service: Option<&str>, from: i64, to: i64) -> (u64, u64) {
    let mut total = (0, 0);
    for (name, seconds) in counts {
        if service.is_some_and(|s| s != name) || from >= to {
            continue;
        }
        for (_, (sent, failed)) in seconds.range(from..to) {
            total.0 += sent;
            total.1 += failed;
        }
    }
    total
}
