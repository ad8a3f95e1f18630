//! The TLS load generator: rustls clients (ring) over mio, one thread,
//! edge-triggered, trusting the CA `compare --tls` generates. The same
//! windows and CPU reading as the plain scenarios ([`crate::loadgen`]).
//!
//! - `tls-handshake`: N slots, each connecting, handshaking, echoing 64
//!   bytes and closing (close_notify both ways), then again. Full handshakes, or
//!   with `--resume` resumed ones: each slot keeps its own session cache,
//!   and the share resumed is reported (`resumed`, of the handshakes after
//!   each slot's first; the scenario fails below half).
//! - `tls-pingpong`: N connections, handshaken before the window, each
//!   echoing `size` bytes at a time.
//! - `tls-bulk`: N connections streaming a checked pattern both ways.
//! - `tls-idle`: N connections, each with its handshake complete and one
//!   echo answered; the server's RSS growth per connection.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore};

use crate::loadgen::{byte_at, idle_window, over_limit, rss_kib, Outcome, Phase, Start, Window};

/// How long `tls-handshake` and `tls-bulk` run: a timed window, as the
/// other scenarios, or a fixed amount of work (`--rounds N`), for `bench
/// callgrind`, which counts the server's instructions: N handshakes in
/// all, or N × 64 KiB streamed (and echoed) on each connection.
#[derive(Clone, Copy, Debug)]
pub enum Run {
    /// The server's CPU over a window opening at `warmup`.
    Timed {
        pid: u32,
        warmup: Start,
        window: Duration,
    },
    /// Exactly this much work, then every connection closed.
    Fixed(u64),
}

impl Run {
    /// The window to run in: for fixed work, one that is open from the
    /// start and never ends by itself (the loops end when the work is
    /// done, or after `FIXED_LIMIT`).
    fn window(self) -> Window {
        match self {
            Run::Timed {
                pid,
                warmup,
                window,
            } => Window::new(pid, warmup, window),
            Run::Fixed(_) => {
                Window::new(0, Start::After(Duration::ZERO), Duration::from_secs(86_400))
            }
        }
    }

    /// Ends `w` into `out`: a fixed run's length is the time it took.
    fn finish(self, w: &Window, started: Instant, out: &mut Outcome) {
        w.finish(out);
        if let Run::Fixed(_) = self {
            out.secs = started.elapsed().as_secs_f64();
        }
    }

    /// The work asked for; `u64::MAX` for a timed run.
    fn work(self) -> u64 {
        match self {
            Run::Timed { .. } => u64::MAX,
            Run::Fixed(n) => n,
        }
    }
}

/// The files `compare --tls` hands the servers and the load generator.
pub struct Certs {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A CA and a `localhost` server certificate signed by it (ECDSA P-256,
/// rcgen's default), written as PEM into `dir`.
pub fn write_certs(dir: &Path) -> Result<Certs, String> {
    let e = |e: &dyn std::fmt::Display| format!("certificates: {e}");
    std::fs::create_dir_all(dir).map_err(|x| e(&x))?;
    let ca_key = rcgen::KeyPair::generate().map_err(|x| e(&x))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|x| e(&x))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).map_err(|x| e(&x))?;
    let key = rcgen::KeyPair::generate().map_err(|x| e(&x))?;
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).map_err(|x| e(&x))?;
    let leaf = params.signed_by(&key, &ca, &ca_key).map_err(|x| e(&x))?;
    let certs = Certs {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca: dir.join("ca.pem"),
    };
    std::fs::write(&certs.cert, leaf.pem()).map_err(|x| e(&x))?;
    std::fs::write(&certs.key, key.serialize_pem()).map_err(|x| e(&x))?;
    std::fs::write(&certs.ca, ca.pem()).map_err(|x| e(&x))?;
    Ok(certs)
}

/// A client config trusting the CA in `ca`; resumption as asked.
pub fn client_config(ca: &Path, resume: bool) -> io::Result<Arc<ClientConfig>> {
    let bad = |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| bad(&e))? {
        roots.add(c.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// One TLS client connection over a non-blocking socket.
struct Client {
    sock: TcpStream,
    tls: ClientConnection,
    /// Plaintext received and not yet consumed.
    plain: Vec<u8>,
    started: Instant,
    /// The server has closed: its close_notify or the end of the stream.
    closed: bool,
}

impl Client {
    fn connect(
        poll: &Poll,
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        token: usize,
    ) -> io::Result<Client> {
        let mut sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        poll.registry().register(
            &mut sock,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let name = ServerName::try_from("localhost").expect("a valid name");
        let tls = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
        Ok(Client {
            sock,
            tls,
            plain: Vec::new(),
            started: Instant::now(),
            closed: false,
        })
    }

    /// Writes TLS until the socket refuses, reads it until `WouldBlock` or
    /// the server's close, processing records and collecting plaintext.
    /// Returns true when the TLS output is all written.
    fn drive(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        loop {
            let flushed = self.flush()?;
            if self.closed {
                return Ok(flushed);
            }
            match self.tls.read_tls(&mut self.sock) {
                Ok(0) => self.closed = true,
                Ok(_) => {
                    self.tls.process_new_packets().map_err(io::Error::other)?;
                    loop {
                        match self.tls.reader().read(buf) {
                            Ok(0) => {
                                self.closed = true;
                                break;
                            }
                            Ok(n) => self.plain.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(flushed),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Not yet connected: the connect's writable edge follows.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues `data` (rustls holds it until the handshake is done).
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.tls.writer().write_all(data)
    }
}

/// Checks `got` against the pattern of connection `i` from `pos`.
fn check(i: usize, pos: u64, got: &[u8]) -> io::Result<()> {
    for (k, &b) in got.iter().enumerate() {
        if b != byte_at(i, pos + k as u64) {
            return Err(io::Error::other("TLS echo mismatch"));
        }
    }
    Ok(())
}

fn message(i: usize, seq: u64, size: usize) -> Vec<u8> {
    (0..size as u64)
        .map(|k| byte_at(i, seq * size as u64 + k))
        .collect()
}

/// `conns` slots, each: connect, handshake, echo 64 bytes, close; again.
pub fn handshake(
    addr: SocketAddr,
    ca: &Path,
    conns: usize,
    resume: bool,
    run: Run,
) -> io::Result<Outcome> {
    const SIZE: usize = 64;
    let base = client_config(ca, resume)?;
    // A session cache per slot: rustls keeps at most 8 TLS 1.3 tickets
    // per server name, so one cache shared by 64 slots that reconnect
    // together runs dry; each slot resumes its own previous session.
    let configs: Vec<Arc<ClientConfig>> = (0..conns)
        .map(|_| {
            let mut c = (*base).clone();
            if resume {
                c.resumption = Resumption::in_memory_sessions(4);
            }
            Arc::new(c)
        })
        .collect();
    let mut poll = Poll::new()?;
    let mut seq = vec![0u64; conns];
    // Handshakes begun and finished (the work of a fixed run).
    let (work, mut begun, mut finished) = (run.work(), 0u64, 0u64);
    let mut slots: Vec<Option<Client>> = Vec::with_capacity(conns);
    for (i, config) in configs.iter().enumerate() {
        if begun == work {
            slots.push(None);
            continue;
        }
        let mut c = Client::connect(&poll, addr, config, i)?;
        c.send(&message(i, 0, SIZE))?;
        slots.push(Some(c));
        begun += 1;
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = run.window();
    let mut out = Outcome::default();
    let (mut resumed, mut counted) = (0u64, 0u64);
    let start = Instant::now();
    while w.phase() != Phase::Over && finished < work {
        if matches!(run, Run::Fixed(_)) {
            over_limit(start, "tls-handshake")?;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(c) = slots[i].as_mut() else {
                continue; // a fixed run's slot whose work is done
            };
            c.drive(&mut buf)?;
            if c.plain.len() < SIZE {
                if c.closed {
                    return Err(io::Error::other("server closed before the echo"));
                }
                continue;
            }
            if c.plain.len() == SIZE {
                // The echo: check it, say close_notify, and wait for the
                // server's (which comes after any session tickets).
                check(i, seq[i] * SIZE as u64, &c.plain)?;
                c.plain.push(0); // past SIZE: the echo is done
                c.tls.send_close_notify();
                c.drive(&mut buf)?;
            }
            if !c.closed {
                continue;
            }
            if w.measuring() {
                out.ops += 1;
                out.latencies_ns.push(c.started.elapsed().as_nanos() as u64);
                // A slot's first handshake has no session to resume.
                if seq[i] > 0 {
                    counted += 1;
                    if c.tls.handshake_kind() == Some(HandshakeKind::Resumed) {
                        resumed += 1;
                    }
                }
            }
            let _ = poll.registry().deregister(&mut c.sock);
            finished += 1;
            seq[i] += 1;
            if begun == work {
                slots[i] = None; // dropping it closes its socket
                continue;
            }
            let mut next = Client::connect(&poll, addr, &configs[i], i)?;
            next.send(&message(i, seq[i], SIZE))?;
            begun += 1;
            // Dropping the old one closes its socket.
            *c = next;
        }
    }
    run.finish(&w, start, &mut out);
    out.resumed = Some(resumed as f64 / counted.max(1) as f64);
    // A ticket that arrives after the echo is lost when the client closes,
    // so not every handshake can resume; most must.
    if resume && resumed * 2 < counted {
        return Err(io::Error::other(format!(
            "--resume: only {resumed} of {counted} handshakes were resumed"
        )));
    }
    if !resume && resumed > 0 {
        return Err(io::Error::other("a full-handshake run resumed sessions"));
    }
    Ok(out)
}

/// Connects `conns` clients and completes every handshake with one echo of
/// `hello` each; bounded in time.
fn established(
    poll: &mut Poll,
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    conns: usize,
) -> io::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut c = Client::connect(poll, addr, config, i)?;
        c.send(&message(i, 0, 16))?;
        clients.push(c);
    }
    let mut done = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    while done < conns {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(io::Error::other(format!(
                "only {done} of {conns} TLS connections established in 60 s"
            )));
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut clients[i];
            let before = c.plain.len();
            c.drive(&mut buf)?;
            if c.closed {
                return Err(io::Error::other("server closed a TLS connection"));
            }
            if before < 16 && c.plain.len() >= 16 {
                check(i, 0, &c.plain[..16])?;
                done += 1;
            }
        }
    }
    for c in &mut clients {
        c.plain.clear();
    }
    Ok(clients)
}

/// N handshaken connections, each echoing `size` bytes at a time.
pub fn pingpong(
    addr: SocketAddr,
    ca: &Path,
    pid: u32,
    conns: usize,
    size: usize,
    warmup: Start,
    window: Duration,
) -> io::Result<Outcome> {
    let config = client_config(ca, false)?;
    let mut poll = Poll::new()?;
    let mut clients = established(&mut poll, addr, &config, conns)?;
    // The 16-byte hello came first; messages follow on from it.
    let mut seq = vec![1u64; conns];
    let mut sent_at = vec![Instant::now(); conns];
    let mut buf = vec![0u8; 64 * 1024];
    let next = |i: usize, seq: u64| -> Vec<u8> {
        (0..size as u64)
            .map(|k| byte_at(i, 16 + (seq - 1) * size as u64 + k))
            .collect()
    };
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(&next(i, 1))?;
        c.flush()?;
        sent_at[i] = Instant::now();
    }
    let mut events = Events::with_capacity(1024);
    let mut w = Window::new(pid, warmup, window);
    let mut out = Outcome::default();
    while w.phase() != Phase::Over {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut clients[i];
            c.drive(&mut buf)?;
            if c.closed {
                return Err(io::Error::other("server closed a TLS ping-pong connection"));
            }
            if c.plain.len() < size {
                continue;
            }
            check(i, 16 + (seq[i] - 1) * size as u64, &c.plain[..size])?;
            c.plain.drain(..size);
            if w.measuring() {
                out.ops += 1;
                out.latencies_ns
                    .push(sent_at[i].elapsed().as_nanos() as u64);
            }
            seq[i] += 1;
            c.send(&next(i, seq[i]))?;
            c.flush()?;
            sent_at[i] = Instant::now();
        }
    }
    w.finish(&mut out);
    Ok(out)
}

/// N handshaken connections streaming a checked pattern both ways, at most
/// 4 MiB in flight on each.
pub fn bulk(addr: SocketAddr, ca: &Path, conns: usize, run: Run) -> io::Result<Outcome> {
    const IN_FLIGHT: u64 = 4 << 20;
    const CHUNK: usize = 64 * 1024;
    let config = client_config(ca, false)?;
    let mut poll = Poll::new()?;
    let mut clients = established(&mut poll, addr, &config, conns)?;
    let block: Vec<u8> = (0..251 * 512).map(|k| (k % 251) as u8).collect();
    let mut sent = vec![0u64; conns];
    let mut recvd = vec![0u64; conns];
    let mut buf = vec![0u8; 256 * 1024];
    let mut events = Events::with_capacity(1024);
    let mut w = run.window();
    let mut out = Outcome::default();
    let mut base = 0u64;
    // A fixed run: this many bytes each way on every connection.
    let total = run.work().saturating_mul(CHUNK as u64);
    let start = Instant::now();
    // Start every stream; events keep them going.
    let mut ready: Vec<usize> = (0..conns).collect();
    // Streams that had more to send when their turn ended.
    let mut again = Vec::new();
    loop {
        match w.phase() {
            Phase::Over => break,
            Phase::Started => base = recvd.iter().sum(),
            _ => {}
        }
        if recvd.iter().all(|&r| r >= total) {
            break; // a fixed run's work is done
        }
        if matches!(run, Run::Fixed(_)) {
            over_limit(start, "tls-bulk")?;
        }
        for i in ready.drain(..) {
            let c = &mut clients[i];
            // A turn sends at most this many chunks, so that against a fast
            // server one stream cannot keep the loop (and the window's
            // clock, and the other streams) waiting.
            let mut turn = 0;
            loop {
                let flushed = c.drive(&mut buf)?;
                if c.closed {
                    return Err(io::Error::other("server closed a TLS bulk connection"));
                }
                // Verify what came back (the pattern repeats every 251).
                let got = std::mem::take(&mut c.plain);
                let mut k = 0;
                while k < got.len() {
                    let off = ((recvd[i] + k as u64) % 251) as usize;
                    let len = (got.len() - k).min(block.len() - off);
                    if got[k..k + len] != block[off..off + len] {
                        return Err(io::Error::other("TLS bulk echo mismatch"));
                    }
                    k += len;
                }
                recvd[i] += got.len() as u64;
                // More only once rustls has handed all it holds to the socket.
                if !flushed || sent[i] - recvd[i] >= IN_FLIGHT || sent[i] >= total {
                    break;
                }
                if turn == 16 {
                    again.push(i);
                    break;
                }
                turn += 1;
                let off = (sent[i] % 251) as usize;
                c.send(&block[off..off + CHUNK])?;
                sent[i] += CHUNK as u64;
            }
        }
        let wait = if again.is_empty() { 50 } else { 0 };
        poll.poll(&mut events, Some(Duration::from_millis(wait)))?;
        ready.append(&mut again);
        ready.extend(events.iter().map(|ev| ev.token().0));
    }
    if !w.measuring() {
        // The window's start went unseen: its figures would be the whole
        // run's bytes over the window's length, and no CPU.
        return Err(io::Error::other(
            "TLS bulk: the measuring window's start was missed",
        ));
    }
    run.finish(&w, start, &mut out);
    out.bytes = recvd.iter().sum::<u64>() - base;
    // CPU per MB, as the plain bulk scenario.
    out.ops = out.bytes / 1_000_000;
    Ok(out)
}

/// N connections, each with its handshake and one echo done, then idle:
/// the server's RSS growth per connection and its CPU while idle.
pub fn idle(
    addr: SocketAddr,
    ca: &Path,
    pid: u32,
    conns: usize,
    window: Duration,
) -> io::Result<Outcome> {
    let config = client_config(ca, false)?;
    let mut poll = Poll::new()?;
    let rss0 = rss_kib(pid);
    let clients = established(&mut poll, addr, &config, conns)?;
    let out = idle_window(pid, conns, rss0, window);
    drop(clients);
    Ok(out)
}
