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

#[cfg(test)]
mod tests {
    use super::*;

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
}
