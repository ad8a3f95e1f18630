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

/// One IPv4 TCP socket as the kernel lists it in `/proc/net/tcp`: its
/// state and its queues. What a test waits on where a socket's own end
/// shows no event: all of a client's bytes acknowledged by the server's
/// kernel, bytes left unread in a server's socket, a socket gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    /// The TCP state, as the kernel numbers it (1 ESTABLISHED, 4
    /// FIN_WAIT1, 5 FIN_WAIT2, 6 TIME_WAIT, 8 CLOSE_WAIT, 9 LAST_ACK).
    pub state: u8,
    /// Bytes sent and not yet acknowledged (for a listening socket, other
    /// things).
    pub tx_queue: u32,
    /// Bytes received and not yet read by the application.
    pub rx_queue: u32,
    /// No descriptor refers to it any more (the kernel lists inode 0): the
    /// application has closed it, and the kernel finishes the connection
    /// alone (FIN_WAIT2, TIME_WAIT).
    pub orphan: bool,
}

/// The socket from `local` to `remote` in this network namespace's
/// `/proc/net/tcp`, if the kernel still lists it (a socket closed for good
/// is no longer listed; one in TIME_WAIT still is). IPv4 only.
pub fn tcp_socket(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> Option<TcpSocket> {
    let table = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_else(|e| panic!("read /proc/net/tcp: {e}"));
    let (local, remote) = (proc_net_addr(local), proc_net_addr(remote));
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[1] != local || f[2] != remote {
            return None;
        }
        let (tx, rx) = f[4].split_once(':')?;
        Some(TcpSocket {
            state: u8::from_str_radix(f[3], 16).ok()?,
            tx_queue: u32::from_str_radix(tx, 16).ok()?,
            rx_queue: u32::from_str_radix(rx, 16).ok()?,
            orphan: f[9] == "0",
        })
    })
}

/// An address as `/proc/net/tcp` writes it: the IPv4 address's 32 bits in
/// the machine's byte order, then the port, both in upper-case hex.
fn proc_net_addr(addr: std::net::SocketAddr) -> String {
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("tcp_socket: {addr} is not IPv4");
    };
    let ip = u32::from_ne_bytes(v4.ip().octets());
    format!("{ip:08X}:{:04X}", v4.port())
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

    /// The calling thread's own CPU clock (`/proc/thread-self/stat`,
    /// which names this thread whichever thread reads it later).
    pub fn of_this_thread() -> std::io::Result<CpuClock> {
        Ok(CpuClock {
            stat: File::open("/proc/thread-self/stat")?,
        })
    }

    /// CPU seconds this process (or, from
    /// [`of_this_thread`](Self::of_this_thread), the thread) has used so
    /// far.
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

    /// A thread's clock counts that thread's CPU, not the process's: one
    /// parked while another works stays still.
    #[test]
    fn a_threads_clock_counts_that_thread_only() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let parked = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                tx.send(CpuClock::of_this_thread().unwrap()).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::park(); // no CPU until unparked
                }
            })
        };
        let mut theirs = rx.recv().unwrap();
        let mut mine = CpuClock::of_this_thread().unwrap();
        let (t0, p0) = (mine.seconds(), theirs.seconds());
        let deadline = Instant::now() + Duration::from_secs(10);
        while mine.seconds() - t0 < 0.05 && Instant::now() < deadline {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
        assert!(
            mine.seconds() - t0 >= 0.05,
            "this thread's clock stood still"
        );
        assert!(
            theirs.seconds() - p0 < 0.02,
            "the parked thread's clock moved"
        );
        stop.store(true, Ordering::SeqCst);
        parked.thread().unpark();
        parked.join().unwrap();
    }

    #[test]
    fn a_connection_shows_in_proc_net_tcp_with_its_unread_bytes_then_goes() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (c, s) = (client.local_addr().unwrap(), server.local_addr().unwrap());
        let at_server = || tcp_socket(s, c);
        assert_eq!(at_server().map(|t| (t.state, t.orphan)), Some((1, false))); // ESTABLISHED
        client.write_all(&[7; 1000]).unwrap();
        crate::wait_until("the bytes to arrive", || {
            at_server().is_some_and(|t| t.rx_queue == 1000)
        });
        crate::wait_until("the client's bytes to be acknowledged", || {
            tcp_socket(c, s).is_some_and(|t| t.tx_queue == 0)
        });
        server.shutdown(std::net::Shutdown::Write).unwrap();
        crate::wait_until("the server's FIN to be acknowledged", || {
            at_server().is_some_and(|t| t.state == 5) // FIN_WAIT2
        });
        assert!(!at_server().unwrap().orphan);
        drop(server); // unread bytes: a reset, and both are gone
        crate::wait_until("the client's socket to go", || tcp_socket(c, s).is_none());
        assert!(
            client.take_error().unwrap().is_some(),
            "no reset over unread bytes"
        );
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_parses() {
        let line = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 111 222 0 0";
        assert_eq!(ticks_in(line), 333);
    }
}
