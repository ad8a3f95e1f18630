//! `bench soak [--seconds N] [--clients M] [--quick] [--seed S]`: a mixed
//! client workload against `selector-demo --protocol echo`, checking every
//! echoed byte, then checking the server gives back every descriptor.
//!
//! Each client thread loops until the time is up, picking at random among
//! ping-pong, bulk, half-close, reset and churn (see [`Kind`]). A
//! well-behaved client that sees a wrong byte, an early EOF, an error or a
//! timeout fails the run. At the end the server's `/proc/PID/fd` count must
//! come back to its starting value within [`FD_SETTLE`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Read/write timeout on every client socket.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the descriptor count may take to come back at the end.
const FD_SETTLE: Duration = Duration::from_secs(30);
/// How long the whole run may overrun its time before we give up on it.
const OVERRUN: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Connect, 1..=32 round trips of 1..=4096 bytes, close.
    PingPong,
    /// Connect, stream 1–4 MiB while reading concurrently, close.
    Bulk,
    /// Send a request, shutdown(Write), read to EOF: exactly the request.
    HalfClose,
    /// Send, read a little, close with unread data (RST).
    Reset,
    /// Connect, 64 bytes there and back, close; repeated.
    Churn,
}

const KINDS: [Kind; 5] = [
    Kind::PingPong,
    Kind::Bulk,
    Kind::HalfClose,
    Kind::Reset,
    Kind::Churn,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PingPong => "ping-pong",
            Kind::Bulk => "bulk",
            Kind::HalfClose => "half-close",
            Kind::Reset => "reset",
            Kind::Churn => "churn",
        }
    }
}

/// Counters for one kind.
#[derive(Default, Clone, Copy)]
struct KindStats {
    /// Iterations completed.
    ops: u64,
    /// Connections opened.
    conns: u64,
    /// Bytes sent.
    sent: u64,
    /// Echoed bytes received and checked.
    verified: u64,
    /// Longest iteration.
    max: Duration,
    /// All iterations together.
    total: Duration,
}

impl KindStats {
    fn add(&mut self, o: &KindStats) {
        self.ops += o.ops;
        self.conns += o.conns;
        self.sent += o.sent;
        self.verified += o.verified;
        self.max = self.max.max(o.max);
        self.total += o.total;
    }
}

type Stats = [KindStats; 5];

/// xorshift64*: small, fast, good enough to pick sizes and behaviours.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(splitmix(seed) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as u64, hi as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let w = self.next().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The bulk stream: byte `pos` of the stream keyed by `key`. Not periodic,
/// so a lost, repeated or reordered chunk shows as a mismatch.
fn pattern(key: u64, pos: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let p = pos + i as u64;
        *b =
            splitmix(key ^ (p >> 3).wrapping_mul(0x1000_0000_01B3)).to_le_bytes()[(p & 7) as usize];
    }
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    // Held open so the server never writes into a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` if the server has exited.
    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("server exited: {status}{}", self.log_tail())),
            Err(e) => Err(format!("cannot wait for the server: {e}")),
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        if log.is_empty() {
            String::new()
        } else {
            format!("\nlast server log lines:\n  {}", log.join("\n  "))
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Finds `selector-demo` next to this binary, building it if missing.
fn demo_path() -> Result<PathBuf, String> {
    let dir = bin_dir();
    let demo = dir.join("selector-demo");
    if !demo.exists() {
        eprintln!("building selector-demo …");
        let profile: &[&str] = if dir.ends_with("release") {
            &["--release"]
        } else {
            &[]
        };
        let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "examples", "--bin", "selector-demo"])
            .args(profile)
            .status()
            .is_ok_and(|s| s.success());
        if !ok || !demo.exists() {
            return Err("could not build selector-demo".into());
        }
    }
    Ok(demo)
}

fn start_server(bin: &Path) -> Result<(Server, SocketAddr), String> {
    let mut child = Command::new(bin)
        .args(["--protocol", "echo", "--port", "0", "--host", "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "warn")
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    // Keep the last lines of the server's log for failure reports; reading
    // them also keeps the server from blocking on a full pipe.
    let log = Arc::new(Mutex::new(Vec::new()));
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = log.lock().unwrap();
                if log.len() >= 40 {
                    log.remove(0);
                }
                log.push(line);
            }
        });
    }
    let mut server = Server {
        child,
        _stdout: BufReader::new(stdout),
        log,
    };
    let mut line = String::new();
    server
        ._stdout
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .ok_or_else(|| {
            format!(
                "{}: unexpected first line {line:?}{}",
                bin.display(),
                server.log_tail()
            )
        })?;
    if !addr.ip().is_loopback() {
        return Err(format!("server listens on {addr}, not loopback"));
    }
    Ok((server, addr))
}

fn fd_count(pid: u32) -> Result<usize, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .map_err(|e| format!("cannot read /proc/{pid}/fd: {e}"))
}

/// Thread count of a process (from `/proc/PID/status`).
fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A failure, with what the client was doing.
type Fail = String;

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("timeout after {IO_TIMEOUT:?} ({e})")
        }
        _ => format!("{:?}: {e}", e.kind()),
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, Fail> {
    let s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("connect: {}", describe(&e)))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| s.set_nodelay(true))
        .map_err(|e| format!("socket options: {e}"))?;
    Ok(s)
}

/// Reads exactly `want.len()` bytes and checks them against `want`.
/// `what` names the exchange in failure messages.
fn read_expect(s: &mut TcpStream, want: &[u8], buf: &mut Vec<u8>, what: &str) -> Result<(), Fail> {
    buf.resize(want.len(), 0);
    let mut got = 0;
    while got < want.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(format!(
                    "{what}: unexpected EOF after {got} of {} bytes",
                    want.len()
                ))
            }
            Ok(n) => {
                if let Some(k) = (got..got + n).find(|&k| buf[k] != want[k]) {
                    return Err(format!(
                        "{what}: mismatch at byte {k} of {}: got {:#04x}, want {:#04x}",
                        want.len(),
                        buf[k],
                        want[k]
                    ));
                }
                got += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(format!(
                    "{what}: read after {got} of {} bytes: {}",
                    want.len(),
                    describe(&e)
                ))
            }
        }
    }
    Ok(())
}

/// After everything was echoed: expects no further bytes, just EOF.
fn expect_eof(s: &mut TcpStream, what: &str) -> Result<(), Fail> {
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Ok(()),
            Ok(n) => return Err(format!("{what}: {n} unexpected bytes after the echo")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{what}: waiting for EOF: {}", describe(&e))),
        }
    }
}

/// Closes a well-behaved connection: either just drops it, or (half the
/// time) half-closes and checks the server sends nothing more and closes.
fn close_politely(mut s: TcpStream, rng: &mut Rng, what: &str) -> Result<(), Fail> {
    if rng.chance(50) {
        s.shutdown(Shutdown::Write)
            .map_err(|e| format!("{what}: shutdown(Write): {e}"))?;
        expect_eof(&mut s, what)?;
    }
    Ok(())
}

struct Client {
    addr: SocketAddr,
    rng: Rng,
    buf: Vec<u8>,
    stop: Arc<AtomicBool>,
}

impl Client {
    fn ping_pong(&mut self, st: &mut KindStats) -> Result<(), Fail> {
        let mut s = connect(self.addr)?;
        st.conns += 1;
        let rounds = self.rng.usize(1, 32);
        let mut msg = Vec::new();
        let mut buf = std::mem::take(&mut self.buf);
        for r in 0..rounds {
            msg.resize(self.rng.usize(1, 4096), 0);
            self.rng.fill(&mut msg);
            s.write_all(&msg).map_err(|e| {
                format!(
                    "round {r}/{rounds}: write {} bytes: {}",
                    msg.len(),
                    describe(&e)
                )
            })?;
            st.sent += msg.len() as u64;
            read_expect(&mut s, &msg, &mut buf, &format!("round {r}/{rounds}"))?;
            st.verified += msg.len() as u64;
        }
        self.buf = buf;
        close_politely(s, &mut self.rng, "close")
    }

    fn bulk(&mut self, st: &mut KindStats) -> Result<(), Fail> {
        let s = connect(self.addr)?;
        st.conns += 1;
        let total = self.rng.range(1 << 20, 4 << 20);
        let key = self.rng.next();
        let chunk = self.rng.usize(512, 256 * 1024);
        let mut w = s.try_clone().map_err(|e| format!("try_clone: {e}"))?;
        let writer = std::thread::spawn(move || -> Result<u64, Fail> {
            let mut out = vec![0u8; chunk];
            let mut pos = 0u64;
            while pos < total {
                let n = (total - pos).min(chunk as u64) as usize;
                pattern(key, pos, &mut out[..n]);
                w.write_all(&out[..n])
                    .map_err(|e| format!("write at {pos} of {total}: {}", describe(&e)))?;
                pos += n as u64;
            }
            Ok(pos)
        });
        let mut r = s;
        let read = (|| -> Result<u64, Fail> {
            let mut buf = vec![0u8; 64 * 1024];
            let mut want = vec![0u8; 64 * 1024];
            let mut pos = 0u64;
            while pos < total {
                let max = (total - pos).min(buf.len() as u64) as usize;
                let n = match r.read(&mut buf[..max]) {
                    Ok(0) => return Err(format!("unexpected EOF after {pos} of {total} bytes")),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("read at {pos} of {total}: {}", describe(&e))),
                };
                pattern(key, pos, &mut want[..n]);
                if let Some(k) = (0..n).find(|&k| buf[k] != want[k]) {
                    return Err(format!(
                        "mismatch at byte {} of {total}: got {:#04x}, want {:#04x}",
                        pos + k as u64,
                        buf[k],
                        want[k]
                    ));
                }
                pos += n as u64;
            }
            Ok(pos)
        })();
        if read.is_err() {
            // Unblock the writer.
            let _ = r.shutdown(Shutdown::Both);
        }
        let wrote = writer
            .join()
            .map_err(|_| "bulk writer panicked".to_string())?;
        let got = read.map_err(|e| format!("{total} bytes in {chunk}-byte writes: {e}"))?;
        let sent = wrote.map_err(|e| format!("{total} bytes in {chunk}-byte writes: {e}"))?;
        st.sent += sent;
        st.verified += got;
        close_politely(r, &mut self.rng, "close")
    }

    fn half_close(&mut self, st: &mut KindStats) -> Result<(), Fail> {
        let mut s = connect(self.addr)?;
        st.conns += 1;
        // Mostly small; sometimes empty; sometimes bigger than the socket
        // buffers, when we must read while we write.
        let size = match self.rng.next() % 10 {
            0 => 0,
            1..=6 => self.rng.usize(1, 16 * 1024),
            _ => self.rng.usize(16 * 1024, 1 << 20),
        };
        let mut req = vec![0u8; size];
        self.rng.fill(&mut req);
        let req = Arc::new(req);
        let mut buf = std::mem::take(&mut self.buf);
        if size <= 16 * 1024 {
            s.write_all(&req)
                .map_err(|e| format!("write {size} bytes: {}", describe(&e)))?;
            s.shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown(Write): {e}"))?;
            read_expect(&mut s, &req, &mut buf, &format!("{size}-byte request"))?;
        } else {
            let mut w = s.try_clone().map_err(|e| format!("try_clone: {e}"))?;
            let req2 = Arc::clone(&req);
            let writer = std::thread::spawn(move || -> Result<(), Fail> {
                w.write_all(&req2)
                    .map_err(|e| format!("write {size} bytes: {}", describe(&e)))?;
                w.shutdown(Shutdown::Write)
                    .map_err(|e| format!("shutdown(Write): {e}"))
            });
            let read = read_expect(&mut s, &req, &mut buf, &format!("{size}-byte request"));
            if read.is_err() {
                let _ = s.shutdown(Shutdown::Both);
            }
            let wrote = writer
                .join()
                .map_err(|_| "half-close writer panicked".to_string())?;
            read?;
            wrote?;
        }
        self.buf = buf;
        st.sent += size as u64;
        expect_eof(&mut s, &format!("{size}-byte request"))?;
        st.verified += size as u64;
        Ok(())
    }

    /// Send, read a little, then close with data unread (or with
    /// SO_LINGER 0): the server sees a reset. Only what we do read is
    /// checked, and errors are expected.
    fn reset(&mut self, st: &mut KindStats) -> Result<(), Fail> {
        let mut s = connect(self.addr)?;
        st.conns += 1;
        // We do not read while writing, so the server may stop reading:
        // give up writing quickly then.
        let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
        let size = self.rng.usize(1, 256 * 1024);
        let mut req = vec![0u8; size];
        self.rng.fill(&mut req);
        // Small writes at a time: a big blocking write might not finish if
        // the server stops reading because we do not read.
        let mut sent = 0;
        while sent < size {
            let n = (size - sent).min(16 * 1024);
            match s.write(&req[sent..sent + n]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
            if sent >= 64 * 1024 && self.rng.chance(30) {
                break;
            }
        }
        st.sent += sent as u64;
        let little = self.rng.usize(0, sent.min(2048));
        let mut got = 0;
        let mut b = vec![0u8; little];
        while got < little {
            match s.read(&mut b[got..]) {
                Ok(0) => return Err(format!("EOF after {got} of {sent} bytes")),
                Ok(n) => {
                    if let Some(k) = (got..got + n).find(|&k| b[k] != req[k]) {
                        return Err(format!(
                            "mismatch at byte {k}: got {:#04x}, want {:#04x}",
                            b[k], req[k]
                        ));
                    }
                    got += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read after {got} of {sent}: {}", describe(&e))),
            }
        }
        st.verified += got as u64;
        if self.rng.chance(30) {
            // Force RST even if nothing is pending yet.
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        } else if self.rng.chance(50) {
            // Give the echo time to arrive so it is pending when we close.
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(s);
        Ok(())
    }

    fn churn(&mut self, st: &mut KindStats) -> Result<(), Fail> {
        let n = self.rng.usize(1, 50);
        let mut msg = [0u8; 64];
        let mut buf = std::mem::take(&mut self.buf);
        for i in 0..n {
            if i > 0 && self.stop.load(Ordering::Relaxed) {
                break;
            }
            let mut s = connect(self.addr).map_err(|e| format!("conn {i}/{n}: {e}"))?;
            st.conns += 1;
            self.rng.fill(&mut msg);
            s.write_all(&msg)
                .map_err(|e| format!("conn {i}/{n}: write: {}", describe(&e)))?;
            st.sent += 64;
            read_expect(&mut s, &msg, &mut buf, &format!("conn {i}/{n}"))?;
            st.verified += 64;
            // Mostly a plain close; sometimes a half-close with EOF check.
            if self.rng.chance(20) {
                close_politely(s, &mut self.rng, &format!("conn {i}/{n}"))?;
            }
        }
        self.buf = buf;
        Ok(())
    }
}

/// One client thread: random kinds until `deadline` or `stop`.
fn client(
    id: usize,
    addr: SocketAddr,
    seed: u64,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> (Stats, Result<(), Fail>) {
    let mut stats: Stats = Default::default();
    let mut c = Client {
        addr,
        rng: Rng::new(seed ^ (id as u64).wrapping_mul(0x9E37_79B9)),
        buf: Vec::new(),
        stop: Arc::clone(&stop),
    };
    let mut iter = 0u64;
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        // Weights: ping-pong 30, bulk 10, half-close 25, reset 15, churn 20.
        let kind = match c.rng.next() % 100 {
            0..=29 => Kind::PingPong,
            30..=39 => Kind::Bulk,
            40..=64 => Kind::HalfClose,
            65..=79 => Kind::Reset,
            _ => Kind::Churn,
        };
        let mut st = KindStats::default();
        let t0 = Instant::now();
        let r = match kind {
            Kind::PingPong => c.ping_pong(&mut st),
            Kind::Bulk => c.bulk(&mut st),
            Kind::HalfClose => c.half_close(&mut st),
            Kind::Reset => c.reset(&mut st),
            Kind::Churn => c.churn(&mut st),
        };
        let took = t0.elapsed();
        st.ops = 1;
        st.max = took;
        st.total = took;
        if let Err(e) = r {
            stop.store(true, Ordering::Relaxed);
            let msg = format!(
                "client {id} iteration {iter} ({}, after {:.3}s): {e}",
                kind.name(),
                took.as_secs_f64()
            );
            return (stats, Err(msg));
        }
        stats[kind as usize].add(&st);
        ops.fetch_add(1, Ordering::Relaxed);
        iter += 1;
    }
    (stats, Ok(()))
}

/// `soak`'s options: seconds, clients, seed.
fn parse_args(mut parser: lexopt::Parser) -> Result<(f64, usize, u64), lexopt::Error> {
    use lexopt::prelude::*;
    let mut quick = false;
    let (mut seconds, mut clients, mut seed) = (None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            // `--quick` sets the defaults, wherever it stands: an explicit
            // `--seconds` or `--clients` still wins.
            Long("quick") => quick = true,
            Long("seconds") => {
                let s: f64 = crate::value(&mut parser, "--seconds")?;
                if !(s.is_finite() && s > 0.0) {
                    return Err(format!("--seconds: {s} is not a positive number").into());
                }
                seconds = Some(s);
            }
            Long("clients") => {
                let c: usize = crate::value(&mut parser, "--clients")?;
                if !(1..=1024).contains(&c) {
                    return Err(format!("--clients: {c} is not in 1..=1024").into());
                }
                clients = Some(c);
            }
            Long("seed") => seed = Some(crate::value(&mut parser, "--seed")?),
            _ => return Err(arg.unexpected()),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    Ok((
        seconds.unwrap_or(if quick { 3.0 } else { 20.0 }),
        clients.unwrap_or(if quick { 16 } else { 64 }),
        seed,
    ))
}

/// Runs the soak test. Returns an error message on any failure.
pub fn soak(parser: lexopt::Parser) -> Result<(), String> {
    let (seconds, clients, seed) = parse_args(parser).map_err(|e| format!("soak: {e}"))?;
    let demo = demo_path()?;
    let (mut server, addr) = start_server(&demo)?;
    let pid = server.pid();
    // Let start-up settle: the same descriptor count twice in a row.
    let mut fd0 = fd_count(pid)?;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(50));
        let n = fd_count(pid)?;
        if n == fd0 {
            break;
        }
        fd0 = n;
    }
    let rss0 = crate::loadgen::rss_kib(pid);
    let threads0 = threads(pid);
    println!(
        "soak: server pid {pid} on {addr}: {fd0} fds, RSS {rss0:.0} KiB, {threads0} threads; \
         {clients} clients for {seconds} s, seed {seed}"
    );

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(clients);
    for id in 0..clients {
        let stop = Arc::clone(&stop);
        let ops = Arc::clone(&ops);
        let h = std::thread::Builder::new()
            .name(format!("soak-{id}"))
            .spawn(move || client(id, addr, seed, deadline, stop, ops))
            .map_err(|e| format!("cannot spawn client thread: {e}"))?;
        handles.push(h);
    }

    // Watch the server while the clients run.
    let (mut peak_fd, mut peak_rss) = (fd0, rss0);
    let mut last_ops = 0;
    let mut last_progress = Instant::now();
    let mut problem = None;
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if let Err(e) = server.check_alive() {
            stop.store(true, Ordering::Relaxed);
            problem = Some(e);
            break;
        }
        peak_fd = peak_fd.max(fd_count(pid).unwrap_or(0));
        peak_rss = peak_rss.max(crate::loadgen::rss_kib(pid));
        let now_ops = ops.load(Ordering::Relaxed);
        if now_ops != last_ops {
            last_ops = now_ops;
            last_progress = Instant::now();
        }
        if Instant::now() > deadline + OVERRUN {
            problem = Some(format!(
                "clients still running {OVERRUN:?} after the deadline (no progress for {:.1}s): hang",
                last_progress.elapsed().as_secs_f64()
            ));
            stop.store(true, Ordering::Relaxed);
            break;
        }
    }
    if let Some(p) = problem {
        // Threads may still be blocked (bounded by IO_TIMEOUT); do not wait.
        return Err(format!("{p}{}", server.log_tail()));
    }
    let mut totals: Stats = Default::default();
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok((st, r)) => {
                for (t, s) in totals.iter_mut().zip(st.iter()) {
                    t.add(s);
                }
                if let Err(e) = r {
                    errors.push(e);
                }
            }
            Err(_) => errors.push("a client thread panicked".into()),
        }
    }
    let elapsed = start.elapsed();
    server.check_alive()?;

    for kind in KINDS {
        let s = &totals[kind as usize];
        println!(
            "soak: {:<10} {:>7} ops {:>8} conns {:>12} B sent {:>12} B verified  max {:>7.1} ms  mean {:>6.2} ms",
            kind.name(),
            s.ops,
            s.conns,
            s.sent,
            s.verified,
            s.max.as_secs_f64() * 1e3,
            if s.ops > 0 {
                s.total.as_secs_f64() * 1e3 / s.ops as f64
            } else {
                0.0
            }
        );
    }
    if !errors.is_empty() {
        let n = errors.len();
        errors.truncate(10);
        return Err(format!(
            "soak: {n} client(s) failed (seed {seed}):\n  {}{}",
            errors.join("\n  "),
            server.log_tail()
        ));
    }

    // The server must give back every descriptor.
    let settle = Instant::now();
    let mut fd1 = fd_count(pid)?;
    while fd1 > fd0 && settle.elapsed() < FD_SETTLE {
        std::thread::sleep(Duration::from_millis(50));
        server.check_alive()?;
        fd1 = fd_count(pid)?;
    }
    let settled_in = settle.elapsed();
    let rss1 = crate::loadgen::rss_kib(pid);
    let threads1 = threads(pid);
    println!(
        "soak: server fds start {fd0} peak {peak_fd} end {fd1} (settled in {:.2}s); \
         RSS start {rss0:.0} KiB peak {peak_rss:.0} KiB end {rss1:.0} KiB; threads {threads0} -> {threads1}",
        settled_in.as_secs_f64()
    );
    if fd1 > fd0 {
        let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .map(|p| p.display().to_string())
                    .take(40)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        return Err(format!(
            "descriptor leak: {} (start {fd0}, end {fd1} after {FD_SETTLE:?}); open: {open}{}",
            fd1 - fd0,
            server.log_tail()
        ));
    }

    // Still serving after all that?
    let mut s = connect(addr).map_err(|e| format!("final check: {e}"))?;
    let msg = b"still alive?";
    s.write_all(msg)
        .map_err(|e| format!("final check: write: {}", describe(&e)))?;
    read_expect(&mut s, msg, &mut Vec::new(), "final check")?;
    drop(s);

    let all = totals.iter().fold(KindStats::default(), |mut a, s| {
        a.add(s);
        a
    });
    println!(
        "soak: OK {} ops, {} conns, {:.1} MB verified in {:.1}s, {clients} clients, \
         fds {fd0} -> {fd1}, RSS {rss0:.0} -> {rss1:.0} KiB, seed {seed}",
        all.ops,
        all.conns,
        all.verified as f64 / 1e6,
        elapsed.as_secs_f64()
    );
    Ok(())
}
