//! The harness shared by the end-to-end tests of the `selector-demo` binary
//! (`demo.rs`, `robustness.rs`, `stress.rs`): spawning the real executable
//! with a guard that kills it even when a test fails, reading its
//! `listening on HOST:PORT` line with a deadline, draining its pipes so it
//! can never block on them, and loopback clients with deadlines.
//!
//! Nothing here sleeps to synchronise: every wait is a read or a channel
//! receive with a deadline; the only polling is the bounded `try_wait` loop
//! for a process exit, which std offers no event for.
#![allow(dead_code)] // not every test file uses every helper

use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single wait (start-up, a reply, an exit) may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// `selector-demo` with stdin closed and stdout and stderr piped.
pub fn demo_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_selector-demo"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Everything a child's pipe has produced so far, collected on a background
/// thread so the child can never block on a full pipe.
pub struct Drained {
    state: Arc<(Mutex<Pipe>, Condvar)>,
}

/// What a pipe has produced, and whether it has ended.
#[derive(Default)]
struct Pipe {
    buf: Vec<u8>,
    eof: bool,
}

impl Drained {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.state.0.lock().unwrap().buf).into_owned()
    }

    /// Waits (at most `limit`) until what the pipe has produced so far
    /// satisfies `done`, or the pipe ends; returns the text then. Woken by
    /// each chunk read, not by polling.
    pub fn wait_until(&self, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let (lock, more) = &*self.state;
        let deadline = Instant::now() + limit;
        let mut pipe = lock.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&pipe.buf).into_owned();
            let now = Instant::now();
            if pipe.eof || done(&text) || now >= deadline {
                return text;
            }
            pipe = more.wait_timeout(pipe, deadline - now).unwrap().0;
        }
    }

    /// Waits (at most `DEADLINE`) until `needle` has appeared; true if it
    /// has.
    pub fn wait_for(&self, needle: &str) -> bool {
        self.wait_until(DEADLINE, |t| t.contains(needle))
            .contains(needle)
    }

    /// Waits (at most `DEADLINE`) until the pipe has been read to its end,
    /// then returns all of it.
    pub fn finish(self) -> String {
        self.wait_until(DEADLINE, |_| false)
    }
}

pub fn drain<R: Read + Send + 'static>(mut pipe: R) -> Drained {
    let state = Arc::new((Mutex::new(Pipe::default()), Condvar::new()));
    let sink = Arc::clone(&state);
    thread::spawn(move || {
        let (lock, more) = &*sink;
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    lock.lock().unwrap().buf.extend_from_slice(&chunk[..n]);
                    more.notify_all();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        lock.lock().unwrap().eof = true;
        more.notify_all();
    });
    Drained { state }
}

/// Polls `try_wait` for at most `limit` (and at most 10,000 times): there
/// is no other event to wait on for a process exit with only std.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    for _ in 0..10_000 {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// A blocking client socket with connect, read and write deadlines.
pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, DEADLINE)?;
    s.set_read_timeout(Some(DEADLINE))?;
    s.set_write_timeout(Some(DEADLINE))?;
    Ok(s)
}

/// Byte `i` of client `client`'s endless test stream; differs between
/// clients and between offsets, so lost or misordered bytes show.
pub fn byte_at(client: usize, i: usize) -> u8 {
    ((i * 31 + client * 7 + (i >> 8)) % 251) as u8
}

/// A running demo. Dropping it kills and reaps the child.
pub struct Demo {
    pub child: Child,
    /// The first stdout line, without its newline.
    pub first_line: String,
    pub addr: SocketAddr,
    pub stderr: Drained,
}

impl Demo {
    /// Starts `selector-demo --host 127.0.0.1 --port 0 <extra>` and waits
    /// (with a deadline) for its `listening on` line.
    pub fn start(extra: &[&str]) -> Demo {
        Demo::start_with_env(extra, &[])
    }

    /// As [`Demo::start`], with these environment variables set for the
    /// child (on top of this process's environment).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Demo {
        let mut args = vec!["--host", "127.0.0.1", "--port", "0"];
        args.extend_from_slice(extra);
        Demo::start_exactly(&args, env)
    }

    /// Starts `selector-demo <args>` (nothing added: `args` must choose a
    /// free port, `--port 0` or `--port=0`) with `env` set for the child,
    /// and waits (with a deadline) for its `listening on` line. `addr` is
    /// the address that line reports.
    pub fn start_exactly(args: &[&str], env: &[(&str, &str)]) -> Demo {
        let mut child = demo_command()
            .args(args)
            .envs(env.iter().copied())
            .spawn()
            .expect("spawn selector-demo");
        let stdout = child.stdout.take().expect("child stdout");
        let stderr = drain(child.stderr.take().expect("child stderr"));
        // Read the first line on a thread so a silent child cannot hang us;
        // the thread then keeps draining stdout.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let res = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(res);
            let _ = io::copy(&mut reader, &mut io::sink());
        });
        // Build the guard first so the child dies if anything below panics.
        let mut demo = Demo {
            child,
            first_line: String::new(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr,
        };
        let line = match rx.recv_timeout(DEADLINE) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => panic!("reading the demo's stdout: {e}"),
            Err(_) => panic!(
                "no first stdout line within {DEADLINE:?}; stderr: {}",
                demo.stderr.text()
            ),
        };
        assert!(
            line.ends_with('\n'),
            "first stdout line {line:?} is incomplete (child exited?); stderr: {}",
            demo.stderr.text()
        );
        let line = line.trim_end_matches('\n').to_string();
        demo.addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "first stdout line {line:?} is not `listening on HOST:PORT`; stderr: {}",
                    demo.stderr.text()
                )
            });
        demo.first_line = line;
        demo
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client connected to the demo (see [`connect`]); panics if it
    /// cannot connect.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr).unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr))
    }

    /// Panics, with the child's stderr, if the child has exited.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "selector-demo exited: {status:?}; stderr: {}",
                self.stderr.text()
            );
        }
    }

    /// Sends the child SIGTERM (with `kill`, so no unsafe code).
    pub fn sigterm(&self) {
        let pid = self.pid().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM {pid} failed: {kill:?}");
    }

    /// Waits for the child to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_with_deadline(&mut self.child, limit)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes sure this process (and so the children it spawns afterwards, which
/// inherit the limit) may open at least `needed` descriptors, raising the
/// soft limit to the hard one with util-linux `prlimit` if it is lower.
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
