//! Processes by pid: spawning a service detached in its own process group, and signalling
//! only what the harness itself started.
//!
//! A pid alone is not an identity: once a process exits its pid may be reused by anything.
//! Every signal therefore goes through [`is_ours`], which checks that `/proc/<pid>/exe` still
//! points at the binary the harness recorded when it spawned the process.

use anyhow::Context;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True while `pid` names a process that has not exited (a zombie counts as exited).
pub fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: comm may hold spaces and parentheses, so read after the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// The binary `pid` runs, with the ` (deleted)` mark removed: `cargo build` replaces the file
/// under a running service, and that service is still the one the harness started.
pub fn exe_of(pid: u32) -> Option<PathBuf> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let text = link.to_string_lossy();
    Some(PathBuf::from(
        text.strip_suffix(" (deleted)").unwrap_or(&text).to_string(),
    ))
}

/// True when `pid` is alive and still runs `exe`: the process the harness recorded.
pub fn is_ours(pid: u32, exe: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let expected = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    match exe_of(pid) {
        Some(actual) => actual == expected || actual == exe,
        None => false,
    }
}

/// Send `sig` to `pid` if it is still the process we recorded. Returns whether it was sent.
pub fn signal_ours(pid: u32, exe: &Path, sig: Signal) -> bool {
    if !is_ours(pid, exe) {
        return false;
    }
    signal::kill(Pid::from_raw(pid as i32), sig).is_ok()
}

/// Send `sig` to the whole process group led by `pid` (nginx and its workers), if `pid` is
/// still ours and does lead its group. Falls back to the process alone otherwise.
pub fn signal_group_ours(pid: u32, exe: &Path, sig: Signal) -> bool {
    if !is_ours(pid, exe) {
        return false;
    }
    let p = Pid::from_raw(pid as i32);
    match nix::unistd::getpgid(Some(p)) {
        Ok(pgid) if pgid == p => signal::killpg(pgid, sig).is_ok(),
        _ => signal::kill(p, sig).is_ok(),
    }
}

/// Wait until none of `pids` is alive, reaping those that are our children. Returns the pids
/// still alive at the deadline.
pub fn wait_exit(pids: &[u32], children: &mut [Child], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        for child in children.iter_mut() {
            let _ = child.try_wait();
        }
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What to start: a binary, its environment, and where its output goes.
pub struct Spawn<'a> {
    pub exe: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub log: &'a Path,
}

/// Start a process in its own process group (so it outlives the `flashsale up` that started
/// it and a Ctrl-C in that terminal does not reach it), stdout and stderr appended to its log.
pub fn spawn(spec: &Spawn<'_>) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.log)
        .with_context(|| format!("opening log file {}", spec.log.display()))?;
    let err = log.try_clone().context("duplicating the log file handle")?;
    let mut cmd = Command::new(spec.exe);
    cmd.args(spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0);
    cmd.spawn()
        .with_context(|| format!("starting {}", spec.exe.display()))
}

/// The last `lines` lines of a log file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_runs_our_binary() {
        let me = std::process::id();
        let exe = std::env::current_exe().expect("current exe");
        assert!(is_alive(me));
        assert!(is_ours(me, &exe));
        assert!(!is_ours(me, Path::new("/bin/true")));
    }

    #[test]
    fn a_reaped_child_is_not_alive() {
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(!is_alive(pid));
    }
}
