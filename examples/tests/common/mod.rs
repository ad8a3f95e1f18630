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

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[allow(unused_imports)] // not every test file uses every helper
pub use testkit::{
    drain, ensure_fd_limit, try_connect as connect, wait_with_deadline, Drained, DEADLINE,
};

/// `selector-demo` with stdin closed and stdout and stderr piped.
pub fn demo_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_selector-demo"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Byte `i` of client `client`'s endless test stream; differs between
/// clients and between offsets, so lost or misordered bytes show.
pub fn byte_at(client: usize, i: usize) -> u8 {
    ((i * 31 + client * 7 + (i >> 8)) % 251) as u8
}

/// The outcome of a run of the demo expected to exit by itself.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the demo with `args` and waits (with a deadline) for it to exit.
/// The child is killed if it does not.
pub fn run_to_exit(args: &[&str]) -> Finished {
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(
        demo_command()
            .args(args)
            .spawn()
            .expect("spawn selector-demo"),
    );
    let stdout = drain(child.0.stdout.take().unwrap());
    let stderr = drain(child.0.stderr.take().unwrap());
    let status = wait_with_deadline(&mut child.0, DEADLINE).unwrap_or_else(|| {
        panic!(
            "selector-demo {args:?} did not exit within {DEADLINE:?}; stdout: {}; stderr: {}",
            stdout.text(),
            stderr.text()
        )
    });
    // The pipes close when the child exits: collect them to their end.
    Finished {
        status,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
    }
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
    /// With the fixture parameter `KAMAELIA_SHARDS` above 1, the demo
    /// runs with `--threads` that many shards.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Demo {
        let mut args = vec!["--host", "127.0.0.1", "--port", "0"];
        let shards = testkit::shards().to_string();
        if testkit::shards() > 1 {
            args.extend(["--threads", shards.as_str()]);
        }
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
        // `listening on HOST:PORT`, or `listening on HOST:PORT (tls)`
        // with --tls-cert/--tls-key.
        demo.addr = line
            .strip_prefix("listening on ")
            .map(|a| a.strip_suffix(" (tls)").unwrap_or(a))
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "first stdout line {line:?} is not `listening on HOST:PORT[ (tls)]`; stderr: {}",
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
        testkit::sigterm(self.pid());
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

// ------------------------------------------------------------------------ chat

/// A chat connection read line by line with a deadline.
pub struct ChatPeer<S = TcpStream> {
    pub name: &'static str,
    pub stream: S,
    partial: Vec<u8>,
}

/// A byte stream a [`ChatPeer`] can read with a timeout: a plain
/// connection, or a TLS one over it.
pub trait TimedStream: Read + Write {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl TimedStream for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
}

impl<S: TimedStream> ChatPeer<S> {
    pub fn new(name: &'static str, stream: S) -> ChatPeer<S> {
        ChatPeer {
            name,
            stream,
            partial: Vec::new(),
        }
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(line.as_bytes())
            .and_then(|()| self.stream.flush())
            .unwrap_or_else(|e| panic!("{}: send {line:?}: {e}", self.name));
    }

    /// The next complete line, or `None` if none arrives within `wait`.
    /// Panics on EOF or a socket error.
    pub fn line_within(&mut self, wait: Duration) -> Option<String> {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let left = wait.checked_sub(start.elapsed())?;
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("{}: EOF from the chat server", self.name),
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => panic!("{}: read: {e}", self.name),
            }
        }
    }

    /// The next line that is not a join probe, within `DEADLINE`.
    pub fn next_message(&mut self) -> String {
        let start = Instant::now();
        loop {
            let left = DEADLINE
                .checked_sub(start.elapsed())
                .unwrap_or(Duration::ZERO);
            match self.line_within(left) {
                Some(line) if line.starts_with("probe ") => continue,
                Some(line) => return line,
                None => panic!("{}: no message within {DEADLINE:?}", self.name),
            }
        }
    }
}

/// Makes sure `receivers` have all joined the chat: `sender` sends probe
/// lines until each receiver has seen one of them. Pacing comes from the
/// receivers' read timeouts, not from sleeps.
pub fn await_joined<S: TimedStream>(sender: &mut ChatPeer<S>, receivers: &mut [&mut ChatPeer<S>]) {
    let start = Instant::now();
    let mut seen = vec![false; receivers.len()];
    let prefix = format!("probe {} ", sender.name);
    for n in 0..1_000 {
        if start.elapsed() > DEADLINE {
            break;
        }
        sender.send(&format!("{prefix}{n}\n"));
        for (r, seen) in receivers.iter_mut().zip(seen.iter_mut()) {
            // Drain whatever has arrived, waiting a little for this probe.
            while let Some(line) = r.line_within(Duration::from_millis(20)) {
                assert!(
                    line.starts_with("probe "),
                    "{}: unexpected line {line:?} during the join handshake",
                    r.name
                );
                if line.starts_with(&prefix) {
                    *seen = true;
                }
            }
        }
        if seen.iter().all(|&s| s) {
            return;
        }
    }
    let missing: Vec<_> = receivers
        .iter()
        .zip(&seen)
        .filter(|(_, &s)| !s)
        .map(|(r, _)| r.name)
        .collect();
    panic!(
        "{:?} never received a probe from {} within {DEADLINE:?}",
        missing, sender.name
    );
}

// ------------------------------------------------- many clients, /proc readings

/// Writes `msg` and reads exactly as many bytes back (each read bounded by
/// the socket's read timeout), checking they are `msg`.
pub fn echo(s: &mut TcpStream, msg: &[u8]) -> Result<(), String> {
    s.write_all(msg).map_err(|e| format!("write: {e}"))?;
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
    if back != msg {
        return Err(format!(
            "sent {:?}, echoed {:?}",
            String::from_utf8_lossy(msg),
            String::from_utf8_lossy(&back)
        ));
    }
    Ok(())
}

/// CPU time the process (all its threads) has used, in milliseconds.
pub fn cpu_ms(pid: u32) -> u64 {
    (testkit::Proc::of(pid).cpu_seconds() * 1000.0) as u64
}

/// Waits, polling at most every 20 ms and for at most `limit`, until the
/// server's descriptor count is `target`; returns the last count seen.
/// A poll is the only way: there is no event for "descriptor closed".
pub fn wait_for_fd_count(pid: u32, target: usize, limit: Duration) -> usize {
    let start = Instant::now();
    let mut count = testkit::Proc::of(pid).fd_count();
    for _ in 0..10_000 {
        if count == target || start.elapsed() > limit {
            break;
        }
        thread::sleep(Duration::from_millis(20));
        count = testkit::Proc::of(pid).fd_count();
    }
    count
}

/// Opens `total` connections from `threads` threads, echoing a unique
/// message on each (`tag` and the connection's number), and returns them all
/// still open. Panics, with every error, if any connection fails.
pub fn open_and_echo(demo: &Demo, total: usize, threads: usize, tag: &str) -> Vec<TcpStream> {
    let addr = demo.addr;
    let per = total.div_ceil(threads);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let tag = tag.to_string();
            thread::spawn(move || -> Result<Vec<TcpStream>, String> {
                let start = Instant::now();
                let range = (t * per)..((t + 1) * per).min(total);
                let mut conns = Vec::with_capacity(range.len());
                for i in range {
                    if start.elapsed() > DEADLINE * 4 {
                        return Err(format!(
                            "thread {t}: too slow, {} connections in {:?}",
                            conns.len(),
                            start.elapsed()
                        ));
                    }
                    let mut s = connect(addr)
                        .map_err(|e| format!("connection {i}: connect to {addr}: {e}"))?;
                    echo(&mut s, format!("{tag} {i:05}\n").as_bytes())
                        .map_err(|e| format!("connection {i}: {e}"))?;
                    conns.push(s);
                }
                Ok(conns)
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(total);
    let mut errors = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(mut c)) => conns.append(&mut c),
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a client thread panicked".into()),
        }
    }
    assert!(
        errors.is_empty(),
        "opening {total} echoed connections failed: {errors:#?}\nstderr: {}",
        demo.stderr.text()
    );
    assert_eq!(conns.len(), total);
    conns
}
