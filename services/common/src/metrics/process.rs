//! The process's own CPU and resident memory, through sysinfo, refreshing only this process
//! (one read of `/proc/self/stat`-like files and of `/proc/stat` per sample).

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

pub(crate) struct ProcessSampler {
    system: System,
    pid: Option<Pid>,
    cores: f64,
}

/// One sample.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessSample {
    /// Since the previous sample; 100 = one core busy. 0 on the first sample.
    pub cpu_percent: f64,
    /// `cpu_percent` divided by the machine's logical cores.
    pub cpu_percent_normalized: f64,
    pub rss_bytes: u64,
}

impl ProcessSampler {
    pub(crate) fn new() -> Self {
        let mut sampler = Self {
            system: System::new(),
            pid: sysinfo::get_current_pid().ok(),
            cores: 1.0,
        };
        // The first refresh only sets the reference point of the CPU time.
        sampler.refresh();
        let cores = sampler.system.cpus().len();
        sampler.cores = if cores > 0 {
            cores as f64
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
        };
        sampler
    }

    fn refresh(&mut self) {
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                // Threads are left out: listing them is the expensive part and adds nothing.
                ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .without_tasks(),
            );
        }
    }

    pub(crate) fn sample(&mut self) -> ProcessSample {
        self.refresh();
        let (cpu, rss) = self
            .pid
            .and_then(|pid| self.system.process(pid))
            .map_or((0.0, 0), |p| (f64::from(p.cpu_usage()), p.memory()));
        ProcessSample {
            cpu_percent: cpu,
            cpu_percent_normalized: cpu / self.cores,
            rss_bytes: rss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_process_reports_cpu_and_its_resident_memory() {
        fn burn(ms: u64) {
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed() < std::time::Duration::from_millis(ms) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        // sysinfo reports 0 % until the process has a CPU time of at least one clock tick
        // at the reference sample.
        burn(50);
        let mut sampler = ProcessSampler::new();
        burn(300);
        let s = sampler.sample();
        assert!(s.cpu_percent > 20.0, "{s:?}");
        assert!(s.cpu_percent <= 100.0 * sampler.cores + 1.0, "{s:?}");
        assert!((s.cpu_percent_normalized * sampler.cores - s.cpu_percent).abs() < 1e-6);
        assert!(s.rss_bytes > 1 << 20, "{s:?}");
    }
}
