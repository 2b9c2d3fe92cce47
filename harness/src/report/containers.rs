//! The machine's CPU split by component in the compose path, from Telegraf's points about
//! every container (`docker_container_cpu`, `usage_percent` of the `cpu-total` point, 100 % =
//! one core), for the load samples a study took inside its own container, which sees only
//! its own processes.

use super::lineproto::Point;
use crate::rundata::load::LoadSample;
use common::metrics::schema::containers as schema;
use std::collections::BTreeMap;

/// The report's component (`rundata::load::COMPONENTS`) a compose service's CPU counts to.
pub fn component(compose_service: &str) -> &'static str {
    match compose_service {
        "postgres" => "PostgreSQL",
        "rabbitmq" => "RabbitMQ",
        s if crate::nginx::SERVICES.contains(&s) => "service replicas",
        "study" | "k6" => "k6",
        "nginx" => "nginx",
        "redis" => "Redis",
        _ => "other",
    }
}

/// One container's CPU over time: (ns, cores), in time order.
struct Series {
    component: &'static str,
    samples: Vec<(i64, f64)>,
    /// Telegraf's interval, as the series' own median gap (1 s at least).
    interval_ns: i64,
}

impl Series {
    /// Cores at `t`: the sample of the interval that holds `t` (the first at or after it,
    /// an interval away at most), else the nearest one within an interval.
    fn at(&self, t: i64) -> Option<f64> {
        let i = self.samples.partition_point(|(at, _)| *at < t);
        if let Some((at, v)) = self.samples.get(i) {
            if at - t <= self.interval_ns {
                return Some(*v);
            }
        }
        let (at, v) = self.samples.get(i.checked_sub(1)?)?;
        (t - at <= self.interval_ns).then_some(*v)
    }
}

/// The container CPU among `points`, one series per container (its tags).
pub struct Split {
    series: Vec<Series>,
}

impl Split {
    pub fn new(points: &[Point]) -> Split {
        let mut by_container: BTreeMap<&BTreeMap<String, String>, Vec<(i64, f64)>> =
            BTreeMap::new();
        for p in points {
            let total = p.tag(schema::TAG_CPU) == Some(schema::CPU_TOTAL);
            if p.measurement != schema::CPU || !total {
                continue;
            }
            if let (Some(t), Some(v)) = (p.timestamp, p.number(schema::USAGE_PERCENT)) {
                by_container
                    .entry(&p.tags)
                    .or_default()
                    .push((t, v / 100.0));
            }
        }
        let series = by_container
            .into_iter()
            .map(|(tags, mut samples)| {
                samples.sort_by_key(|(t, _)| *t);
                let mut gaps: Vec<i64> = samples.windows(2).map(|w| w[1].0 - w[0].0).collect();
                gaps.sort_unstable();
                let service = tags
                    .get(schema::TAG_COMPOSE_SERVICE)
                    .map_or("", String::as_str);
                Series {
                    component: component(service),
                    interval_ns: gaps
                        .get(gaps.len() / 2)
                        .copied()
                        .unwrap_or(0)
                        .max(1_000_000_000),
                    samples,
                }
            })
            .collect();
        Split { series }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Cores per component at `t` (ns); empty when no container has a sample near it.
    pub fn at(&self, t: i64) -> BTreeMap<String, f64> {
        let mut split = BTreeMap::new();
        for s in &self.series {
            if let Some(cores) = s.at(t) {
                *split.entry(s.component.to_string()).or_default() += cores;
            }
        }
        split
    }

    /// Replace every sample's components with the containers' CPU at its time; how many got
    /// a split.
    pub fn apply(&self, samples: &mut [LoadSample]) -> usize {
        let mut split = 0;
        for s in samples {
            s.components = self.at((s.t * 1e9) as i64);
            split += usize::from(!s.components.is_empty());
        }
        split
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::lineproto::parse;

    fn sample(t: f64) -> LoadSample {
        LoadSample {
            t,
            k6_cores: 0.5,
            machine_busy: 0.5,
            requests_per_sec: 10.0,
            components: BTreeMap::from([("harness".to_string(), 9.0)]),
        }
    }

    #[test]
    fn every_compose_service_counts_to_its_component() {
        for (service, part) in [
            ("postgres", "PostgreSQL"),
            ("rabbitmq", "RabbitMQ"),
            ("gateway", "service replicas"),
            ("payment", "service replicas"),
            ("study", "k6"),
            ("k6", "k6"),
            ("nginx", "nginx"),
            ("redis", "Redis"),
            ("influxdb", "other"),
            ("telegraf", "other"),
            ("", "other"),
        ] {
            assert_eq!(component(service), part, "{service}");
            assert!(crate::rundata::load::COMPONENTS.contains(&part));
        }
    }

    #[test]
    fn each_sample_takes_every_containers_interval_at_its_time() {
        // Two order replicas and PostgreSQL, every 2 s, their stats read a little apart; a
        // per-core point and a memory point that are not the total.
        let points = parse(
            "docker_container_cpu,com.docker.compose.service=order,container_name=o-1,cpu=cpu-total usage_percent=50 10000000000\n\
docker_container_cpu,com.docker.compose.service=order,container_name=o-1,cpu=cpu-total usage_percent=70 12000000000\n\
docker_container_cpu,com.docker.compose.service=order,container_name=o-1,cpu=cpu-total usage_percent=90 14000000000\n\
docker_container_cpu,com.docker.compose.service=order,container_name=o-2,cpu=cpu-total usage_percent=10 10300000000\n\
docker_container_cpu,com.docker.compose.service=order,container_name=o-2,cpu=cpu-total usage_percent=30 12300000000\n\
docker_container_cpu,com.docker.compose.service=postgres,container_name=pg,cpu=cpu-total usage_percent=120 10100000000\n\
docker_container_cpu,com.docker.compose.service=postgres,container_name=pg,cpu=cpu-total usage_percent=140 12100000000\n\
docker_container_cpu,com.docker.compose.service=postgres,container_name=pg,cpu=cpu0 usage_percent=999 12100000000\n\
docker_container_mem,com.docker.compose.service=postgres,container_name=pg usage=5i 12100000000\n",
        )
        .expect("parses");
        let split = Split::new(&points);
        let mut samples = vec![sample(11.0), sample(12.0), sample(13.5), sample(30.0)];
        assert_eq!(split.apply(&mut samples), 3);
        let close = |got: &BTreeMap<String, f64>, want: &[(&str, f64)]| {
            assert_eq!(got.len(), want.len(), "{got:?}");
            for (part, cores) in want {
                assert!((got[*part] - cores).abs() < 1e-9, "{part}: {got:?}");
            }
        };
        // t = 11 s: the intervals ending at 12, 12.3 and 12.1 s.
        close(
            &samples[0].components,
            &[("service replicas", 1.0), ("PostgreSQL", 1.4)],
        );
        close(
            &samples[1].components,
            &[("service replicas", 1.0), ("PostgreSQL", 1.4)],
        );
        // t = 13.5 s: o-1's 14 s; o-2 and PostgreSQL ended their last interval within 2 s.
        close(
            &samples[2].components,
            &[("service replicas", 1.2), ("PostgreSQL", 1.4)],
        );
        assert!(samples[3].components.is_empty(), "{:?}", samples[3]);
        assert_eq!(samples[3].k6_cores, 0.5, "only the split changes");
        assert!(Split::new(&points[7..]).is_empty());
    }
}
