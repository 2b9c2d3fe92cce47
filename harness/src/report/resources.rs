//! CPU and memory of a mode's services during one run, from their `process` points
//! (docs/metrics.md): per instance the mean `cpu_percent` and mean `rss_bytes` over the run's
//! window, summed over the instances. 100 % = one core busy.

use super::lineproto::Point;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceUsage {
    /// Sum over the service's instances of their mean CPU, in % of one core.
    pub cpu_percent: f64,
    /// Sum over the service's instances of their mean resident memory, in bytes.
    pub rss_bytes: f64,
    pub instances: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub cpu_percent: f64,
    pub rss_bytes: f64,
    pub per_service: BTreeMap<String, ServiceUsage>,
}

/// Which points belong to a run: this mode, this suite's run id (when the points carry one),
/// inside `[start_ns, end_ns]`.
pub struct Window<'a> {
    pub mode: &'a str,
    pub run_id: Option<&'a str>,
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Window<'_> {
    fn contains(&self, p: &Point) -> bool {
        let Some(t) = p.timestamp else { return false };
        if t < self.start_ns || t > self.end_ns {
            return false;
        }
        if p.tag("mode").is_some_and(|m| m != self.mode) {
            return false;
        }
        match (self.run_id, p.tag("run_id")) {
            (Some(want), Some(have)) if have != "none" => want == have,
            _ => true,
        }
    }
}

/// The usage in `window`, or `None` when no `process` point falls in it.
pub fn usage(points: &[Point], window: &Window<'_>) -> Option<Usage> {
    // instance → (service, cpu samples, rss samples)
    let mut by_instance: BTreeMap<String, (String, Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for p in points
        .iter()
        .filter(|p| p.measurement == "process" && window.contains(p))
    {
        let service = p.tag("service").unwrap_or("unknown").to_string();
        let instance = p.tag("instance").unwrap_or(&service).to_string();
        let entry = by_instance
            .entry(instance)
            .or_insert_with(|| (service, Vec::new(), Vec::new()));
        if let Some(cpu) = p.number("cpu_percent") {
            entry.1.push(cpu);
        }
        if let Some(rss) = p.number("rss_bytes") {
            entry.2.push(rss);
        }
    }
    if by_instance.is_empty() {
        return None;
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let mut usage = Usage::default();
    for (service, cpu, rss) in by_instance.values() {
        let s = usage.per_service.entry(service.clone()).or_default();
        s.cpu_percent += mean(cpu);
        s.rss_bytes += mean(rss);
        s.instances += 1;
        usage.cpu_percent += mean(cpu);
        usage.rss_bytes += mean(rss);
    }
    Some(usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::lineproto::parse;

    #[test]
    fn usage_sums_the_instances_means_inside_the_window() {
        let points = parse(
            "process,service=gateway,instance=gateway-0,mode=sync,run_id=r1 cpu_percent=10,rss_bytes=100i 1000\n\
process,service=gateway,instance=gateway-0,mode=sync,run_id=r1 cpu_percent=30,rss_bytes=300i 2000\n\
process,service=gateway,instance=gateway-1,mode=sync,run_id=r1 cpu_percent=50,rss_bytes=500i 2000\n\
process,service=order,instance=order-0,mode=sync,run_id=r1 cpu_percent=5,rss_bytes=50i 2000\n\
process,service=order,instance=order-0,mode=sync,run_id=r1 cpu_percent=99,rss_bytes=99i 9000\n\
process,service=order,instance=order-0,mode=sync,run_id=other cpu_percent=99,rss_bytes=99i 2000\n\
process,service=order,instance=order-0,mode=async,run_id=r1 cpu_percent=99,rss_bytes=99i 2000\n\
http,service=order,instance=order-0,mode=sync,run_id=r1 requests=5i 2000\n",
        )
        .expect("parses");
        let window = Window {
            mode: "sync",
            run_id: Some("r1"),
            start_ns: 1000,
            end_ns: 3000,
        };
        let u = usage(&points, &window).expect("points in the window");
        assert_eq!(u.cpu_percent, 20.0 + 50.0 + 5.0);
        assert_eq!(u.rss_bytes, 200.0 + 500.0 + 50.0);
        assert_eq!(u.per_service["gateway"].instances, 2);
        assert_eq!(u.per_service["gateway"].cpu_percent, 70.0);
        assert_eq!(u.per_service["order"].rss_bytes, 50.0);
        let empty = Window {
            start_ns: 5000,
            end_ns: 6000,
            ..window
        };
        assert_eq!(usage(&points, &empty), None);
    }
}
