//! CPU and memory of processes and of the machine, from /proc: the harness's own view of a
//! run, beside what the services report about themselves.

use std::collections::BTreeMap;

/// Clock ticks per second of /proc's CPU times.
pub fn ticks_per_sec() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .map_or(100.0, |t| t as f64)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .map_or(4096, |t| t as u64)
}

/// User + system CPU ticks `pid` has used (all its threads), or `None` when it is gone.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ...`: comm may hold spaces; fields after it start at `state` (3).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of `pid` in bytes.
pub fn process_rss(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The machine's CPU time so far, as (not idle, total) ticks over all cores.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are inside user/nice).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// CPU model, cores and memory of this machine.
pub fn machine() -> (String, usize, u64) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024);
    (model, cores, memory)
}

/// Per-second CPU of a set of processes: remembers each one's ticks between calls.
#[derive(Default)]
pub struct CpuMeter {
    last: BTreeMap<u32, u64>,
}

impl CpuMeter {
    /// CPU of `pid` since the previous call, in cores (1.0 = one core busy for `secs`).
    pub fn cores(&mut self, pid: u32, secs: f64) -> Option<f64> {
        let now = process_ticks(pid)?;
        let before = self.last.insert(pid, now);
        let before = before?;
        (secs > 0.0).then(|| now.saturating_sub(before) as f64 / ticks_per_sec() / secs)
    }
}

/// Which of [`COMPONENTS`](crate::rundata::load::COMPONENTS) (the split `load.json` records)
/// a process named `comm` belongs to.
pub fn component(comm: &str) -> &'static str {
    match comm {
        c if c.starts_with("postgres") || c.starts_with("postmaster") => "PostgreSQL",
        // The Erlang VM and its helpers (the port spawner, the port mapper, DNS lookups).
        c if c.starts_with("beam") => "RabbitMQ",
        "erl_child_setup" | "epmd" | "inet_gethost" => "RabbitMQ",
        "gateway" | "inventory" | "order" | "payment" | "reservation" => "service replicas",
        "k6" => "k6",
        c if c.starts_with("nginx") => "nginx",
        c if c.starts_with("redis") => "Redis",
        "flashsale" => "harness",
        _ => "other",
    }
}

/// Every process's CPU between calls, summed per [`component`]: where the machine's CPU went
/// during a run, the database server, the broker and the load generator included (the
/// services' own samples cover only themselves).
#[derive(Default)]
pub struct ComponentMeter {
    last: Option<BTreeMap<u32, (&'static str, u64)>>,
}

impl ComponentMeter {
    /// Cores used per component since the previous call (`None` on the first call). A process
    /// that started since then counts from its start; one that ended is left out.
    pub fn cores(&mut self, secs: f64) -> Option<BTreeMap<&'static str, f64>> {
        let now = all_processes();
        let before = self.last.replace(now)?;
        if secs <= 0.0 {
            return None;
        }
        let now = self.last.as_ref()?;
        let mut split: BTreeMap<&'static str, f64> = BTreeMap::new();
        for (pid, (part, ticks)) in now {
            let was = before
                .get(pid)
                .filter(|(p, _)| p == part)
                .map_or(0, |(_, t)| *t);
            *split.entry(part).or_default() += ticks.saturating_sub(was) as f64;
        }
        for v in split.values_mut() {
            *v /= ticks_per_sec() * secs;
        }
        Some(split)
    }
}

/// Every process of the machine: its component and its CPU ticks so far.
fn all_processes() -> BTreeMap<u32, (&'static str, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, (component(comm.trim()), process_ticks(pid)?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundata::load::COMPONENTS;

    #[test]
    fn our_own_process_and_the_machine_can_be_measured() {
        let me = std::process::id();
        assert!(process_ticks(me).is_some());
        assert!(process_rss(me).is_some_and(|b| b > 0));
        let (busy, total) = machine_ticks().expect("/proc/stat");
        assert!(total >= busy && total > 0);
        let (_, cores, memory) = machine();
        assert!(cores >= 1 && memory > 0);
    }

    #[test]
    fn processes_are_split_into_the_components_of_the_machine() {
        for (comm, part) in [
            ("postgres", "PostgreSQL"),
            ("postmaster", "PostgreSQL"),
            ("beam.smp", "RabbitMQ"),
            ("epmd", "RabbitMQ"),
            ("reservation", "service replicas"),
            ("gateway", "service replicas"),
            ("k6", "k6"),
            ("nginx", "nginx"),
            ("redis-server", "Redis"),
            ("flashsale", "harness"),
            ("bash", "other"),
        ] {
            assert_eq!(component(comm), part, "{comm}");
            assert!(COMPONENTS.contains(&part));
        }
    }

    #[test]
    fn the_component_meter_sees_cpu_this_process_burns() {
        let mut meter = ComponentMeter::default();
        assert!(meter.cores(1.0).is_none(), "the first call only remembers");
        let me = std::process::id();
        let ticks0 = process_ticks(me).expect("own ticks");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // Burn 0.3 s of CPU (not of wall time: other tests may share the cores).
        while process_ticks(me).expect("own ticks") < ticks0 + (0.3 * ticks_per_sec()) as u64 {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        std::hint::black_box(x);
        let secs = start.elapsed().as_secs_f64();
        let split = meter.cores(secs).expect("a second call measures");
        // This test binary is none of the named components, so its CPU counts as "other".
        let other_secs = split.get("other").copied().unwrap_or(0.0) * secs;
        assert!(
            other_secs >= 0.3,
            "0.3 s burned, {other_secs:.2} s seen: {split:?}"
        );
        assert!(split.keys().all(|k| COMPONENTS.contains(k)), "{split:?}");
    }
}
