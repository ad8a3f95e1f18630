//! Readings of a process's resources from Linux's `/proc`: resident size,
//! open descriptors, CPU time; and raising the descriptor limit.

use std::fs::File;
use std::io::{Read, Seek};
use std::process::Command;
use std::sync::OnceLock;

/// A process whose resources a test measures: this one ([`Proc::me`]) or a
/// child ([`Proc::of`]).
#[derive(Clone, Copy, Debug)]
pub struct Proc {
    pid: u32,
}

impl Proc {
    /// This process.
    pub fn me() -> Proc {
        Proc {
            pid: std::process::id(),
        }
    }

    /// The process with this id (a child the test spawned).
    pub fn of(pid: u32) -> Proc {
        Proc { pid }
    }

    /// Its resident set size, in bytes (`VmRSS` of `/proc/PID/status`).
    #[track_caller]
    pub fn rss_bytes(self) -> u64 {
        let pid = self.pid;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("unreadable {line:?}"));
        kib * 1024
    }

    /// How many descriptors it has open (entries of `/proc/PID/fd`).
    #[track_caller]
    pub fn fd_count(self) -> usize {
        let pid = self.pid;
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
            .count()
    }

    /// CPU time it has used, all threads, user plus system, in seconds.
    #[track_caller]
    pub fn cpu_seconds(self) -> f64 {
        let pid = self.pid;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
        ticks_in(&stat) as f64 / ticks_per_second() as f64
    }
}

/// This process's open descriptors (`/proc/self/fd`).
pub fn open_fds() -> usize {
    Proc::me().fd_count()
}

/// This process's CPU clock, read from a `/proc/self/stat` opened in
/// advance: a test that starves the process of descriptors can still read
/// it.
pub struct CpuClock {
    stat: File,
}

impl CpuClock {
    /// Opens `/proc/self/stat`.
    pub fn open() -> std::io::Result<CpuClock> {
        Ok(CpuClock {
            stat: File::open("/proc/self/stat")?,
        })
    }

    /// CPU seconds this process has used so far.
    #[track_caller]
    pub fn seconds(&mut self) -> f64 {
        let mut text = String::new();
        self.stat.rewind().expect("rewind /proc/self/stat");
        self.stat
            .read_to_string(&mut text)
            .expect("read /proc/self/stat");
        ticks_in(&text) as f64 / ticks_per_second() as f64
    }
}

/// utime + stime, fields 14 and 15 of a `/proc/PID/stat` line.
fn ticks_in(stat: &str) -> u64 {
    // The command name (field 2) is in parentheses and may hold spaces; the
    // fields after it start at field 3.
    let rest = &stat[stat.rfind(')').expect("`)` in stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[14 - 3].parse().expect("utime");
    let stime: u64 = fields[15 - 3].parse().expect("stime");
    utime + stime
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux), asked once
/// (a test starved of descriptors could not run `getconf`).
fn ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// Makes sure this process (and the children it spawns afterwards, which
/// inherit the limit) may open at least `needed` descriptors, raising the
/// soft limit to the hard one with util-linux `prlimit` if it is lower.
/// Panics with the reason if the hard limit is too low.
#[track_caller]
pub fn ensure_fd_limit(needed: u64) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return; // not Linux: nothing to check
    };
    let Some(nums) = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect::<Vec<u64>>()
        })
    else {
        return;
    };
    let (soft, hard) = (nums[0], *nums.get(1).unwrap_or(&u64::MAX));
    if soft >= needed {
        return;
    }
    assert!(
        hard >= needed,
        "this test needs {needed} descriptors but the hard limit is {hard} (ulimit -Hn)"
    );
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={hard}:{hard}"),
        ])
        .status()
        .expect("prlimit (util-linux) is needed to raise the descriptor limit");
    assert!(status.success(), "prlimit --nofile={hard}:{hard} failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_size_descriptors_and_a_clock() {
        let me = Proc::me();
        assert!(me.rss_bytes() > 0);
        let before = me.fd_count();
        let f = File::open("/proc/self/stat").unwrap();
        assert_eq!(me.fd_count(), before + 1);
        drop(f);
        let mut clock = CpuClock::open().unwrap();
        let t0 = clock.seconds();
        assert!(t0 >= 0.0 && me.cpu_seconds() >= t0);
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_parses() {
        let line = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0";
        assert_eq!(ticks_in(line), 333);
    }
}
