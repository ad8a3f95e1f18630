//! The load generator: one thread, mio, edge-triggered. Each scenario
//! prints one `RESULT {json}` line; the server's CPU time is read from
//! `/proc/PID/stat` over the measurement window only (not at all when no
//! PID is given: `bench scale` runs several generators against one server
//! and reads the server's CPU itself, over the window they share).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::{Deserialize, Serialize};

/// What a scenario measured.
#[derive(Default, Debug, Clone)]
pub struct Outcome {
    pub ops: u64,
    pub secs: f64,
    pub server_cpu_secs: f64,
    pub bytes: u64,
    pub latencies_ns: Vec<u64>,
    pub rss_kib_per_conn: Option<f64>,
    /// Only `tls-handshake` measures it: the share of handshakes resumed.
    pub resumed: Option<f64>,
}

/// What the load generator prints after `RESULT `, and what `compare`
/// reads back: one flat JSON object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub ops: u64,
    pub secs: f64,
    pub ops_per_s: f64,
    pub server_cpu_us_per_op: f64,
    pub mb_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Only the idle scenario measures it (`null` otherwise).
    pub rss_kib_per_conn: Option<f64>,
    /// Only `tls-handshake` measures it (absent otherwise, so the plain
    /// scenarios' lines are as they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<f64>,
}

/// `x` to `places` decimals, so the line stays as short as it always was
/// (serde_json prints the shortest form of the rounded value).
fn round(x: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (x * k).round() / k
}

impl Outcome {
    pub fn summary(&self) -> Summary {
        let mut lat = self.latencies_ns.clone();
        lat.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                0.0
            } else {
                round(lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1e3, 1)
            }
        };
        Summary {
            ops: self.ops,
            secs: round(self.secs, 4),
            ops_per_s: round(self.ops as f64 / self.secs.max(1e-9), 1),
            server_cpu_us_per_op: round(self.server_cpu_secs * 1e6 / (self.ops.max(1) as f64), 3),
            mb_per_s: round(self.bytes as f64 / 1e6 / self.secs.max(1e-9), 1),
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
            rss_kib_per_conn: self.rss_kib_per_conn.map(|v| round(v, 3)),
            resumed: self.resumed.map(|v| round(v, 3)),
        }
    }

    /// The `RESULT` line's JSON.
    pub fn json(&self) -> String {
        serde_json::to_string(&self.summary()).expect("a flat struct of numbers serialises")
    }
}

/// User+system CPU seconds of a process.
pub fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Resident memory of a process, KiB.
pub fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

/// When a scenario's measured window opens.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    /// This long after the connections are set up (a warm-up).
    After(Duration),
    /// At this wall-clock time (`--start-at`), so that several load
    /// generators share one window; the time before it is the warm-up. If
    /// setting up took longer, the window opens at once (said on stderr)
    /// and still lasts its full length.
    At(SystemTime),
}

/// A scenario's timing: a warm-up, then the window in which operations
/// count and over which the server's CPU time is read (`pid` 0: not read).
pub(crate) struct Window {
    pid: u32,
    measure_from: Instant,
    end: Instant,
    length: Duration,
    cpu0: Option<f64>,
}

/// Where a scenario's loop is in its [`Window`].
#[derive(PartialEq)]
pub(crate) enum Phase {
    WarmUp,
    /// The first turn of the measured window.
    Started,
    Measuring,
    Over,
}

impl Window {
    pub(crate) fn new(pid: u32, start: Start, window: Duration) -> Window {
        let warmup = match start {
            Start::After(warmup) => warmup,
            Start::At(at) => at.duration_since(SystemTime::now()).unwrap_or_else(|late| {
                eprintln!(
                    "loadgen: the window opens {:.1} ms after --start-at (setting up took longer)",
                    late.duration().as_secs_f64() * 1e3
                );
                Duration::ZERO
            }),
        };
        let measure_from = Instant::now() + warmup;
        Window {
            pid,
            measure_from,
            end: measure_from + window,
            length: window,
            cpu0: None,
        }
    }

    /// Called at the top of each turn of the event loop.
    pub(crate) fn phase(&mut self) -> Phase {
        let now = Instant::now();
        if now >= self.end {
            Phase::Over
        } else if self.cpu0.is_some() {
            Phase::Measuring
        } else if now >= self.measure_from {
            self.cpu0 = Some(self.server_cpu());
            Phase::Started
        } else {
            Phase::WarmUp
        }
    }

    pub(crate) fn measuring(&self) -> bool {
        self.cpu0.is_some()
    }

    pub(crate) fn finish(&self, out: &mut Outcome) {
        out.secs = self.length.as_secs_f64();
        let now = self.server_cpu();
        out.server_cpu_secs = now - self.cpu0.unwrap_or(now);
    }

    /// The server's CPU seconds so far; 0 when there is no PID to read.
    fn server_cpu(&self) -> f64 {
        if self.pid == 0 {
            0.0
        } else {
            cpu_secs(self.pid)
        }
    }
}

/// `conns` connections, registered with `poll` as tokens 0..conns.
fn connect_all(
    poll: &Poll,
    addr: SocketAddr,
    conns: usize,
    interest: Interest,
) -> io::Result<Vec<TcpStream>> {
    (0..conns)
        .map(|i| {
            let mut s = connect_blocking(addr)?;
            poll.registry().register(&mut s, Token(i), interest)?;
            Ok(s)
        })
        .collect()
}

fn connect_blocking(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(TcpStream::from_std(s))
}

pub(crate) fn byte_at(conn: usize, pos: u64) -> u8 {
    (pos.wrapping_mul(31).wrapping_add(conn as u64 * 7) % 251) as u8
}

/// N connections, each sending `size` bytes and waiting for the echo.
pub fn pingpong(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    size: usize,
    warmup: Start,
    window: Duration,
) -> io::Result<Outcome> {
    let mut poll = Poll::new()?;
    let mut streams = connect_all(&poll, addr, conns, Interest::READABLE)?;
    let mut sent_at = vec![Instant::now(); conns];
    let mut got = vec![0usize; conns];
    let mut seq = vec![0u64; conns];
    let msg = |i: usize, n: u64| -> Vec<u8> {
        (0..size as u64)
            .map(|k| byte_at(i, n * size as u64 + k))
            .collect()
    };
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&msg(i, 0))?;
        sent_at[i] = Instant::now();
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = Window::new(pid, warmup, window);
    let mut out = Outcome::default();
    while w.phase() != Phase::Over {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            loop {
                match streams[i].read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("server closed a ping-pong connection")),
                    Ok(n) => {
                        let expect_base = seq[i] * size as u64 + got[i] as u64;
                        for (k, &b) in buf[..n].iter().enumerate() {
                            if b != byte_at(i, expect_base + k as u64) {
                                return Err(io::Error::other("echo mismatch"));
                            }
                        }
                        got[i] += n;
                        if got[i] == size {
                            let now = Instant::now();
                            if w.measuring() {
                                out.ops += 1;
                                out.latencies_ns.push((now - sent_at[i]).as_nanos() as u64);
                            }
                            got[i] = 0;
                            seq[i] += 1;
                            streams[i].write_all(&msg(i, seq[i]))?;
                            sent_at[i] = Instant::now();
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    w.finish(&mut out);
    Ok(out)
}

/// N connections streaming a checked pattern both ways.
pub fn bulk(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    warmup: Start,
    window: Duration,
) -> io::Result<Outcome> {
    const IN_FLIGHT: u64 = 4 << 20;
    let mut poll = Poll::new()?;
    let mut streams = connect_all(&poll, addr, conns, Interest::READABLE | Interest::WRITABLE)?;
    let mut sent = vec![0u64; conns];
    let mut recvd = vec![0u64; conns];
    let block: Vec<u8> = (0..251 * 256).map(|k| (k % 251) as u8).collect();
    let mut buf = vec![0u8; 256 * 1024];
    let mut events = Events::with_capacity(1024);
    let mut w = Window::new(pid, warmup, window);
    let mut out = Outcome::default();
    let mut base = 0u64;
    loop {
        match w.phase() {
            Phase::Over => break,
            Phase::Started => base = recvd.iter().sum(),
            _ => {}
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            // Read all that is there, verifying.
            loop {
                match streams[i].read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("server closed a bulk connection")),
                    Ok(n) => {
                        // The pattern repeats every 251 bytes: compare
                        // slices of the block (memcmp), not byte by byte.
                        let mut k = 0;
                        while k < n {
                            let off = ((recvd[i] + k as u64) % 251) as usize;
                            let len = (n - k).min(block.len() - off);
                            if buf[k..k + len] != block[off..off + len] {
                                return Err(io::Error::other("bulk echo mismatch"));
                            }
                            k += len;
                        }
                        recvd[i] += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            // Write while the window allows.
            while sent[i] - recvd[i] < IN_FLIGHT {
                let off = (sent[i] % 251) as usize;
                let len = (block.len() - off).min((IN_FLIGHT - (sent[i] - recvd[i])) as usize);
                match streams[i].write(&block[off..off + len]) {
                    Ok(n) => sent[i] += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    w.finish(&mut out);
    out.bytes = recvd.iter().sum::<u64>() - base;
    // One "op" is one MB echoed, so CPU per op reads as µs per MB.
    out.ops = out.bytes / 1_000_000;
    Ok(out)
}

/// `workers` parallel loops of connect, echo 64 bytes, close; client
/// source addresses rotate over 127.0.0.1–127.0.0.16.
pub fn churn(
    addr: SocketAddr,
    pid: u32,
    workers: usize,
    warmup: Start,
    window: Duration,
) -> io::Result<Outcome> {
    enum St {
        Connecting,
        Waiting(usize),
    }
    let mut poll = Poll::new()?;
    let mut slots: Vec<Option<(TcpStream, St)>> = (0..workers).map(|_| None).collect();
    let mut next_src = 0u8;
    let mut open = |poll: &mut Poll, i: usize| -> io::Result<(TcpStream, St)> {
        let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + next_src % 16)), 0);
        next_src = next_src.wrapping_add(1);
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        sock.set_nonblocking(true)?;
        sock.set_tcp_nodelay(true)?;
        sock.bind(&src.into())?;
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let mut s = TcpStream::from_std(sock.into());
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        Ok((s, St::Connecting))
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        *slot = Some(open(&mut poll, i)?);
    }
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let mut events = Events::with_capacity(1024);
    let mut w = Window::new(pid, warmup, window);
    let mut out = Outcome::default();
    while w.phase() != Phase::Over {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let Some((s, st)) = slots[i].as_mut() else {
                continue;
            };
            let mut finished = false;
            if let St::Connecting = st {
                if ev.is_writable() || ev.is_error() {
                    if let Some(e) = s.take_error()? {
                        return Err(e);
                    }
                    if s.peer_addr().is_err() {
                        continue;
                    }
                    s.write_all(&msg)?;
                    *st = St::Waiting(0);
                }
            }
            if let St::Waiting(got) = st {
                loop {
                    match s.read(&mut buf[*got..]) {
                        Ok(0) => return Err(io::Error::other("server closed before echoing")),
                        Ok(n) => {
                            *got += n;
                            if *got == 64 {
                                finished = true;
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            if finished {
                if w.measuring() {
                    out.ops += 1;
                }
                if let Some((mut s, _)) = slots[i].take() {
                    let _ = poll.registry().deregister(&mut s);
                }
                slots[i] = Some(open(&mut poll, i)?);
            }
        }
    }
    w.finish(&mut out);
    Ok(out)
}

/// N connections held open after one echo each: server memory per
/// connection and CPU while idle.
pub fn idle(addr: SocketAddr, pid: u32, conns: usize, window: Duration) -> io::Result<Outcome> {
    let rss0 = rss_kib(pid);
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"ping")?;
        streams.push(s);
    }
    for s in &mut streams {
        let mut b = [0u8; 4];
        s.read_exact(&mut b)?;
    }
    Ok(idle_window(pid, conns, rss0, window))
}

/// The idle scenario's measurement, once `conns` connections are open
/// (the server's RSS was `rss0` before them): the server's CPU over
/// `window` and its RSS growth per connection.
pub fn idle_window(pid: u32, conns: usize, rss0: f64, window: Duration) -> Outcome {
    let cpu0 = cpu_secs(pid);
    std::thread::sleep(window); // the idle window being measured
    Outcome {
        ops: conns as u64,
        secs: window.as_secs_f64(),
        server_cpu_secs: cpu_secs(pid) - cpu0,
        rss_kib_per_conn: Some((rss_kib(pid) - rss0) / conns as f64),
        ..Outcome::default()
    }
}

/// How long a fixed-count workload may take before it is an error: the
/// loops are bounded in time as well as in count.
const FIXED_LIMIT: Duration = Duration::from_secs(60);

pub(crate) fn over_limit(start: Instant, what: &str) -> io::Result<()> {
    if start.elapsed() > FIXED_LIMIT {
        return Err(io::Error::other(format!(
            "{what}: not done after {}s",
            FIXED_LIMIT.as_secs()
        )));
    }
    Ok(())
}

/// Exactly `rounds` round trips of `size` bytes on each of `conns`
/// connections, every echo verified; then every connection is closed.
/// For `bench callgrind`, which counts the server's instructions, so the
/// work must not depend on time.
pub fn pingpong_fixed(
    addr: SocketAddr,
    conns: usize,
    size: usize,
    rounds: u64,
) -> io::Result<Outcome> {
    let start = Instant::now();
    let mut poll = Poll::new()?;
    let mut streams = connect_all(&poll, addr, conns, Interest::READABLE)?;
    let mut got = vec![0usize; conns];
    let mut seq = vec![0u64; conns];
    let msg = |i: usize, n: u64| -> Vec<u8> {
        (0..size as u64)
            .map(|k| byte_at(i, n * size as u64 + k))
            .collect()
    };
    for (i, s) in streams.iter_mut().enumerate() {
        s.write_all(&msg(i, 0))?;
    }
    let mut done = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    while done < conns {
        over_limit(start, "pingpong")?;
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            while seq[i] < rounds {
                match streams[i].read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("server closed a ping-pong connection")),
                    Ok(n) => {
                        let expect_base = seq[i] * size as u64 + got[i] as u64;
                        if n > size - got[i] {
                            return Err(io::Error::other("echo longer than the request"));
                        }
                        for (k, &b) in buf[..n].iter().enumerate() {
                            if b != byte_at(i, expect_base + k as u64) {
                                return Err(io::Error::other("echo mismatch"));
                            }
                        }
                        got[i] += n;
                        if got[i] == size {
                            got[i] = 0;
                            seq[i] += 1;
                            if seq[i] == rounds {
                                done += 1;
                            } else {
                                streams[i].write_all(&msg(i, seq[i]))?;
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    drop(streams);
    Ok(Outcome {
        ops: conns as u64 * rounds,
        secs: start.elapsed().as_secs_f64(),
        ..Outcome::default()
    })
}

/// Exactly `total` connections, at most `workers` at a time, each
/// connect, echo 64 bytes, close (source addresses as in [`churn`]).
pub fn churn_fixed(addr: SocketAddr, workers: usize, total: u64) -> io::Result<Outcome> {
    let start = Instant::now();
    let mut poll = Poll::new()?;
    let mut slots: Vec<Option<(TcpStream, usize, bool)>> = (0..workers).map(|_| None).collect();
    let (mut opened, mut finished) = (0u64, 0u64);
    let open = |poll: &Poll, i: usize, n: u64| -> io::Result<TcpStream> {
        let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (n % 16) as u8)), 0);
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        sock.set_nonblocking(true)?;
        sock.set_tcp_nodelay(true)?;
        sock.bind(&src.into())?;
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let mut s = TcpStream::from_std(sock.into());
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        Ok(s)
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        if opened < total {
            *slot = Some((open(&poll, i, opened)?, 0, false));
            opened += 1;
        }
    }
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let mut events = Events::with_capacity(1024);
    while finished < total {
        over_limit(start, "churn")?;
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let Some((s, got, sent)) = slots[i].as_mut() else {
                continue;
            };
            if !*sent && (ev.is_writable() || ev.is_error()) {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                if s.peer_addr().is_err() {
                    continue;
                }
                s.write_all(&msg)?;
                *sent = true;
            }
            if !*sent {
                continue;
            }
            loop {
                match s.read(&mut buf[*got..]) {
                    Ok(0) => return Err(io::Error::other("server closed before echoing")),
                    Ok(n) => {
                        *got += n;
                        if *got == 64 {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if *got == 64 {
                finished += 1;
                if let Some((mut s, _, _)) = slots[i].take() {
                    let _ = poll.registry().deregister(&mut s);
                }
                if opened < total {
                    slots[i] = Some((open(&poll, i, opened)?, 0, false));
                    opened += 1;
                }
            }
        }
    }
    Ok(Outcome {
        ops: total,
        secs: start.elapsed().as_secs_f64(),
        ..Outcome::default()
    })
}
