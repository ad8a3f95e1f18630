//! Helpers shared by the integration tests: a server on its own scheduler
//! thread, a bare TCPServer with a probe on its protocolHandlerSignal,
//! blocking loopback clients with deadlines, and an endpoint that records
//! what a component sends.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axon::{link, Boxes, Control, Endpoint, Handle, Scheduler, SchedulerHandle};
use chassis::{ServerCore, ServerOptions, SimpleServer};
use tcpserver::{NewCsa, ServerEvent, TcpServer};

/// How long any test waits for one event before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A scheduler running on a background thread.
pub struct Running {
    pub handle: SchedulerHandle,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    pub fn start(s: Scheduler) -> Running {
        let handle = s.handle();
        let (tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            s.run();
            let _ = tx.send(());
        });
        Running {
            handle,
            done,
            thread: Some(thread),
        }
    }

    /// Waits for the scheduler to finish by itself, with the deadline.
    pub fn join(mut self) {
        self.done
            .recv_timeout(DEADLINE)
            .expect("scheduler did not finish before the deadline");
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.stop();
            let _ = self.done.recv_timeout(DEADLINE);
            let _ = t.join();
        }
    }
}

/// An echo server (SimpleServer + examples::Echo) on 127.0.0.1, port 0.
pub fn echo_server() -> (SocketAddr, Handle, Running) {
    server_with(
        || Handle::new(examples::Echo::new()),
        ServerOptions::default(),
    )
}

/// A SimpleServer with this protocol on 127.0.0.1, port 0.
pub fn server_with<F>(protocol: F, options: ServerOptions) -> (SocketAddr, Handle, Running)
where
    F: FnMut() -> Handle + Send + 'static,
{
    let (addr, core, scheduler) = activate_on_new_scheduler(
        SimpleServer::new(protocol, any_loopback_port(), options).unwrap(),
    );
    (addr, core, Running::start(scheduler))
}

/// 127.0.0.1, port 0: the kernel picks a free port.
pub fn any_loopback_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Activates `core` on a new Selector scheduler that is not running yet:
/// the caller starts it (`Running::start`) when the test is ready, e.g.
/// once clients wait in the backlog.
pub fn activate_on_new_scheduler(core: ServerCore) -> (SocketAddr, Handle, Scheduler) {
    let scheduler = selector::scheduler().unwrap();
    let addr = core.local_addr();
    let core = Handle::new(core);
    scheduler.activate(&core).unwrap();
    (addr, core, scheduler)
}

/// An endpoint with an inbox for each thing a TCPServer and its CSAs send:
/// `events` (protocolHandlerSignal), `data` (a CSA's outbox), `csaSignal`
/// (a CSA's signal) and `serverSignal` (the server's signal).
pub fn server_probe() -> Endpoint {
    Endpoint::new(
        "probe",
        Boxes::new()
            .inbox::<ServerEvent>("events", "protocolHandlerSignal")
            .inbox::<Vec<u8>>("data", "a CSA's outbox")
            .inbox::<csa::ShutdownCsa>("csaSignal", "a CSA's signal")
            .inbox::<Control>("serverSignal", "the server's signal"),
    )
}

/// A bare TCPServer (no ServerCore) on 127.0.0.1, port 0, its
/// protocolHandlerSignal linked to a [`server_probe`]'s `events`, activated
/// on a new Selector scheduler that is not running yet: link more or queue
/// clients in the backlog first, then `Running::start` it.
pub fn tcp_server_with_probe_unstarted(
    options: ServerOptions,
) -> (SocketAddr, Handle, Endpoint, Scheduler) {
    let scheduler = selector::scheduler().unwrap();
    let server = TcpServer::bind(any_loopback_port(), options).unwrap();
    let addr = server.local_addr();
    let server = Handle::new(server);
    let probe = server_probe();
    link(
        (&server, "protocolHandlerSignal"),
        (probe.handle(), "events"),
    )
    .unwrap();
    scheduler.activate(&server).unwrap();
    (addr, server, probe, scheduler)
}

/// Waits (with the deadline) for the next event on a [`server_probe`]'s
/// `events` and checks it is newCSA.
pub fn expect_new_csa(probe: &Endpoint) -> NewCsa {
    match probe
        .recv_timeout::<ServerEvent>("events", DEADLINE)
        .unwrap()
    {
        Some(ServerEvent::NewCsa(new)) => new,
        other => panic!("expected newCSA, got {other:?}"),
    }
}

/// [`tcp_server_with_probe_unstarted`], with its scheduler running.
pub fn tcp_server_with_probe(options: ServerOptions) -> (SocketAddr, Handle, Endpoint, Running) {
    let (addr, server, probe, scheduler) = tcp_server_with_probe_unstarted(options);
    (addr, server, probe, Running::start(scheduler))
}

/// A blocking client whose reads fail after the deadline.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_write_timeout(Some(DEADLINE)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads exactly `n` bytes (deadline per read).
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    buf
}

/// Reads until EOF (deadline per read).
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("reading to EOF");
    out
}

/// True if the peer closed: a read returns 0 (or a reset) within the
/// deadline.
pub fn sees_eof(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
        Err(e) => panic!("waiting for EOF: {e}"),
    }
}

/// A pattern that makes misordered or lost bytes visible.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One echo round trip of `msg`.
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    assert_eq!(read_n(s, msg.len()), msg);
}

/// Waits until `f` holds, failing at the deadline. For conditions with no
/// event to wait on (another process's state).
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}
