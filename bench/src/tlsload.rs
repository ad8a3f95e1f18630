//! The TLS load generator (issue 11's benchmarks): the same one-thread,
//! edge-triggered mio loop as `loadgen`, each connection a `TcpStream`
//! with a `rustls::ClientConnection`, on the same provider as the servers
//! (`tls::provider`). Scenarios, each printing one `RESULT {json}` line:
//!
//! - `tls-pingpong`: N connections (handshaken in the warm-up), each
//!   sending `size` bytes and waiting for the echo; ops are round trips.
//! - `tls-bulk`: N connections streaming a checked pattern both ways (at
//!   most 256 KiB in flight each); MB/s of echo received.
//! - `tls-handshake` / `tls-resume`: N slots, each in a loop: connect, a
//!   full (or, for `tls-resume`, a resumed: the client keeps rustls's
//!   session cache) handshake, one 64-byte echo, close_notify, close. Ops
//!   are handshakes: the server's CPU per handshake, and handshakes/s.
//!
//! [`Pki`] makes the run's certificate authority and `localhost`
//! certificate (rcgen) and writes the server's PEM files.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::loadgen::{byte_at, connect_blocking, Outcome, Phase, Start, Window};

/// At most this many echo bytes outstanding per bulk connection.
const IN_FLIGHT: u64 = 256 * 1024;

/// The run's certificates: a CA, and a `localhost` certificate it signed,
/// written as PEM for the servers (`--tls-cert`, `--tls-key`).
pub struct Pki {
    /// The server's certificate chain (leaf first).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// The CA's certificate, for the load generator (`--ca`).
    pub ca: PathBuf,
}

impl Pki {
    /// Makes the certificates and writes them into `dir`.
    pub fn make(dir: &Path) -> Result<Pki, String> {
        let e = |e: rcgen::Error| format!("certificates: {e}");
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ca_key = rcgen::KeyPair::generate().map_err(e)?;
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).map_err(e)?;
        let key = rcgen::KeyPair::generate().map_err(e)?;
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
            .map_err(e)?
            .signed_by(&key, &ca, &ca_key)
            .map_err(e)?;
        let pki = Pki {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            ca: dir.join("ca.pem"),
        };
        let write =
            |p: &Path, s: String| std::fs::write(p, s).map_err(|e| format!("{}: {e}", p.display()));
        write(&pki.cert, leaf.pem())?;
        write(&pki.key, key.serialize_pem())?;
        write(&pki.ca, ca.pem())?;
        Ok(pki)
    }
}

/// A client config trusting the CA in `ca` (PEM); without resumption
/// unless `resume`.
pub fn client_config(ca: &Path, resume: bool) -> io::Result<Arc<ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(ca)
        .map_err(|e| io::Error::other(format!("{}: {e}", ca.display())))?;
    let mut roots = RootCertStore::empty();
    roots.add(der).map_err(io::Error::other)?;
    let mut config = (*tls::client_config(roots).map_err(io::Error::other)?).clone();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// One TLS client connection.
struct Conn {
    sock: TcpStream,
    tls: ClientConnection,
    /// Echo bytes checked so far, and sent so far.
    got: u64,
    sent: u64,
    sent_at: Instant,
}

impl Conn {
    fn open(
        poll: &Poll,
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        token: usize,
    ) -> io::Result<Conn> {
        let mut sock = connect_blocking(addr)?;
        poll.registry().register(
            &mut sock,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let tls = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        Ok(Conn {
            sock,
            tls,
            got: 0,
            sent: 0,
            sent_at: Instant::now(),
        })
    }

    /// Moves records both ways as far as the socket allows, and appends
    /// the plaintext that arrived to `plain`. Errors on EOF.
    fn pump(&mut self, plain: &mut Vec<u8>) -> io::Result<()> {
        self.flush()?;
        loop {
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed",
                    ))
                }
                Ok(_) => {
                    self.tls.process_new_packets().map_err(io::Error::other)?;
                    // Taken as it comes: rustls holds only 16 KiB unread.
                    self.take_plaintext(plain)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.flush()
    }

    fn take_plaintext(&mut self, plain: &mut Vec<u8>) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.tls.reader().read(&mut buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "close_notify")),
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Checks `plain` against connection `i`'s pattern from `self.got`.
    fn check(&mut self, i: usize, plain: &[u8]) -> io::Result<()> {
        for (k, &b) in plain.iter().enumerate() {
            if b != byte_at(i, self.got + k as u64) {
                return Err(io::Error::other("echo mismatch"));
            }
        }
        self.got += plain.len() as u64;
        Ok(())
    }

    /// Queues `n` more bytes of connection `i`'s pattern.
    fn send(&mut self, i: usize, n: u64) -> io::Result<()> {
        let bytes: Vec<u8> = (self.sent..self.sent + n).map(|p| byte_at(i, p)).collect();
        self.tls.writer().write_all(&bytes)?;
        self.sent += n;
        Ok(())
    }
}

/// One turn of a scenario's loop: waits (50 ms at most) for events, moves
/// each ready connection's records and checks the echo that came; yields
/// each connection that had an event, with how many echo bytes it got.
fn turn<'a>(
    poll: &mut Poll,
    events: &mut Events,
    all: &'a mut [Conn],
) -> io::Result<impl Iterator<Item = (usize, &'a mut Conn, u64)>> {
    poll.poll(events, Some(Duration::from_millis(50)))?;
    let mut ready: Vec<usize> = events.iter().map(|ev| ev.token().0).collect();
    ready.sort_unstable();
    ready.dedup();
    let mut plain = Vec::new();
    let mut moved = Vec::with_capacity(ready.len());
    for &i in &ready {
        let c = &mut all[i];
        plain.clear();
        c.pump(&mut plain)?;
        c.check(i, &plain)?;
        moved.push(plain.len() as u64);
    }
    let mut got = ready.into_iter().zip(moved).peekable();
    Ok(all.iter_mut().enumerate().filter_map(move |(i, c)| {
        let (_, n) = got.next_if(|&(j, _)| j == i)?;
        Some((i, c, n))
    }))
}

/// `tls-pingpong`: N connections, `size` bytes each way per round trip.
pub fn pingpong(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    size: usize,
    config: Arc<ClientConfig>,
    warmup: Start,
    window: Duration,
) -> io::Result<Outcome> {
    let mut poll = Poll::new()?;
    let mut all: Vec<Conn> = (0..conns)
        .map(|i| Conn::open(&poll, addr, &config, i))
        .collect::<io::Result<_>>()?;
    for (i, c) in all.iter_mut().enumerate() {
        c.send(i, size as u64)?;
        c.sent_at = Instant::now();
        c.flush()?;
    }
    let mut events = Events::with_capacity(1024);
    let mut w = Window::new(pid, warmup, window);
    let mut out = Outcome::default();
    while w.phase() != Phase::Over {
        for (i, c, _) in turn(&mut poll, &mut events, &mut all)? {
            if c.got == c.sent {
                if w.measuring() {
                    out.ops += 1;
                    out.latencies_ns.push(c.sent_at.elapsed().as_nanos() as u64);
                }
                c.send(i, size as u64)?;
                c.sent_at = Instant::now();
                c.flush()?;
            }
        }
    }
    w.finish(&mut out);
    Ok(out)
}

/// `tls-bulk`: N connections streaming both ways.
pub fn bulk(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    config: Arc<ClientConfig>,
    warmup: Start,
    window: Duration,
) -> io::Result<Outcome> {
    let mut poll = Poll::new()?;
    let mut all: Vec<Conn> = (0..conns)
        .map(|i| Conn::open(&poll, addr, &config, i))
        .collect::<io::Result<_>>()?;
    for (i, c) in all.iter_mut().enumerate() {
        // What is outstanding is bounded here (IN_FLIGHT), not by rustls's
        // 64 KiB default for plaintext waiting to be encrypted.
        c.tls.set_buffer_limit(None);
        c.send(i, IN_FLIGHT)?;
        c.flush()?;
    }
    let mut events = Events::with_capacity(1024);
    let mut w = Window::new(pid, warmup, window);
    let mut out = Outcome::default();
    while w.phase() != Phase::Over {
        for (i, c, got) in turn(&mut poll, &mut events, &mut all)? {
            if w.measuring() {
                out.bytes += got;
            }
            // Keep IN_FLIGHT outstanding, in 64 KiB steps.
            while c.sent - c.got <= IN_FLIGHT - 64 * 1024 {
                c.send(i, 64 * 1024)?;
            }
            c.flush()?;
        }
    }
    w.finish(&mut out);
    // Ops are MB here, so that CPU per op is per MB.
    out.ops = (out.bytes / 1_000_000).max(1);
    Ok(out)
}

/// `tls-handshake` (`resume` false) and `tls-resume`: N slots, each a
/// loop of connect, handshake, one 64-byte echo, close.
pub fn handshakes(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    config: Arc<ClientConfig>,
    warmup: Start,
    window: Duration,
) -> io::Result<Outcome> {
    const SIZE: u64 = 64;
    let mut poll = Poll::new()?;
    let open = |poll: &Poll, i: usize| -> io::Result<Conn> {
        let mut c = Conn::open(poll, addr, &config, i)?;
        c.send(i, SIZE)?;
        c.flush()?;
        Ok(c)
    };
    let mut all: Vec<Conn> = (0..conns)
        .map(|i| open(&poll, i))
        .collect::<io::Result<_>>()?;
    let mut events = Events::with_capacity(1024);
    let mut w = Window::new(pid, warmup, window);
    let mut out = Outcome::default();
    let mut resumed = 0u64;
    while w.phase() != Phase::Over {
        let done: Vec<usize> = turn(&mut poll, &mut events, &mut all)?
            .filter(|(_, c, _)| c.got >= SIZE)
            .map(|(i, _, _)| i)
            .collect();
        for i in done {
            let c = &mut all[i];
            if w.measuring() {
                out.ops += 1;
                out.latencies_ns.push(c.sent_at.elapsed().as_nanos() as u64);
                if c.tls.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                    resumed += 1;
                }
            }
            c.tls.send_close_notify();
            c.flush()?;
            let _ = poll.registry().deregister(&mut c.sock);
            *c = open(&poll, i)?;
        }
    }
    w.finish(&mut out);
    if out.ops > 0 {
        eprintln!("tlsload: {resumed} of {} handshakes resumed", out.ops);
    }
    Ok(out)
}

/// `tls-idle`: N connections, each handshaken and one 64-byte echo done,
/// then left idle for `window`: the server's RSS growth per connection
/// (ops are connections), and its CPU while they idle. At most 64
/// handshakes are in flight at once; the whole set-up is bounded in time.
pub fn idle(
    addr: SocketAddr,
    pid: u32,
    conns: usize,
    config: Arc<ClientConfig>,
    window: Duration,
) -> io::Result<Outcome> {
    const SIZE: u64 = 64;
    const AT_ONCE: usize = 64;
    let limit = Instant::now() + Duration::from_secs(120);
    let rss0 = crate::loadgen::rss_kib(pid);
    let mut poll = Poll::new()?;
    let mut all: Vec<Conn> = Vec::with_capacity(conns);
    let mut done = 0;
    let mut events = Events::with_capacity(1024);
    while done < conns {
        if Instant::now() > limit {
            return Err(io::Error::other(format!(
                "only {done} of {conns} connections in 120 s"
            )));
        }
        while all.len() < conns && all.len() - done < AT_ONCE {
            let i = all.len();
            let mut c = Conn::open(&poll, addr, &config, i)?;
            c.send(i, SIZE)?;
            c.flush()?;
            all.push(c);
        }
        for (_, c, got) in turn(&mut poll, &mut events, &mut all)? {
            if got > 0 && c.got == SIZE {
                done += 1;
            }
        }
    }
    let cpu0 = crate::loadgen::cpu_secs(pid);
    std::thread::sleep(window); // the idle window being measured
    let mut out = Outcome {
        ops: conns as u64,
        secs: window.as_secs_f64(),
        server_cpu_secs: crate::loadgen::cpu_secs(pid) - cpu0,
        ..Outcome::default()
    };
    out.rss_kib_per_conn = Some((crate::loadgen::rss_kib(pid) - rss0) / conns as f64);
    drop(all);
    Ok(out)
}
