//! Helpers shared by the TCPClient tests: a user endpoint wired to a
//! client, collecting until the client's signal, and a loopback listener
//! whose connects never complete.

// Each test file uses its own share of these.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use axon::{link, Handle};
use socket2::{Domain, Socket, Type};
use tcpclient::TcpClient;
use testkit::{any_loopback_port, connect, wait_until, Running, DEADLINE};

/// The user's side of a TCPClient: bytes and control out, bytes and the
/// client's signal in.
pub use testkit::User;

/// `client` activated on a new Selector scheduler (not yet running), its
/// four public boxes linked to a [`User`] endpoint.
pub fn wire(client: TcpClient) -> (User, Handle, axon::Scheduler) {
    let scheduler = selector::scheduler().unwrap();
    let client = scheduler.activate(client).unwrap();
    let user = User::new("user");
    link((user.handle(), "outbox"), (&client, "inbox")).unwrap();
    link((user.handle(), "signal"), (&client, "control")).unwrap();
    link((&client, "outbox"), (user.handle(), "inbox")).unwrap();
    link((&client, "signal"), (user.handle(), "control")).unwrap();
    (user, client, scheduler)
}

/// [`wire`], with the scheduler started.
pub fn start(client: TcpClient) -> (User, Running) {
    let (user, _, scheduler) = wire(client);
    (user, Running::start(scheduler))
}

pub use testkit::collect_until_signal;

/// Reads from the client's `outbox` until `n` bytes have come; panics at
/// the deadline or if the client ends first.
#[track_caller]
pub fn read_n_from(user: &User, n: usize) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    while got.len() < n {
        if let Some(b) = user.inbox.recv() {
            got.extend_from_slice(&b);
            continue;
        }
        if let Some(c) = user.control.recv() {
            panic!("the client ended ({c:?}) after {} of {n} bytes", got.len());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            user.wait(left),
            "only {} of {n} bytes within {DEADLINE:?}",
            got.len()
        );
    }
    got
}

/// A loopback listener that never accepts, with its accept queue full:
/// a further connect to it hangs, its SYN dropped, until the client gives
/// up.
///
/// Linux takes a listen backlog of 0 to mean one queued connection (a
/// listener is full once it holds more than its backlog). One connect
/// fills it; the kernel then drops every SYN it is sent (no RST, so the
/// connect stays in SYN-SENT, retransmitting). The filler is kept, and
/// the queue seen full in `/proc/net/tcp`, before the listener is handed
/// out.
pub struct Hanging {
    /// Where connects hang.
    pub addr: SocketAddr,
    _listener: Socket,
    _filler: TcpStream,
}

impl Hanging {
    #[track_caller]
    pub fn new() -> Hanging {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.bind(&any_loopback_port().into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let filler = connect(addr);
        // The server side of the filler joins the accept queue when the
        // kernel processes the filler's last ACK: usually before `connect`
        // returns, but that is not promised.
        wait_until("the accept queue to be full", || accept_queue(addr) >= 1);
        Hanging {
            addr,
            _listener: listener,
            _filler: filler,
        }
    }
}

/// Connections waiting in the accept queue of the IPv4 listener at
/// `addr` (the `rx_queue` of its LISTEN line in `/proc/net/tcp`).
#[track_caller]
fn accept_queue(addr: SocketAddr) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port = format!(":{:04X}", addr.port());
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx_queue:rx_queue ...
        if fields.len() > 4 && fields[1].ends_with(&port) && fields[3] == "0A" {
            let rx = fields[4].split(':').nth(1).unwrap_or("0");
            return usize::from_str_radix(rx, 16).unwrap_or(0);
        }
    }
    panic!("no listener on {addr} in /proc/net/tcp");
}

/// An address on loopback where a connect is refused at once: a port
/// bound (so nobody else takes it) but not listening.
pub struct Refusing {
    /// Where connects are refused.
    pub addr: SocketAddr,
    _socket: Socket,
}

impl Refusing {
    #[track_caller]
    pub fn new() -> Refusing {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.bind(&any_loopback_port().into()).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        Refusing {
            addr,
            _socket: socket,
        }
    }
}

/// True if a connect from this machine to `addr` is in SYN-SENT (a
/// `/proc/net/tcp` line with state 02 and `addr` as its remote end).
#[track_caller]
pub fn syn_sent_to(addr: SocketAddr) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port = format!(":{:04X}", addr.port());
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3 && fields[2].ends_with(&port) && fields[3] == "02"
    })
}

/// A blocking server thread on a fresh loopback port: accepts one
/// connection (read and write deadlines set) and hands it to `serve`.
pub fn serve_one(
    serve: impl FnOnce(TcpStream) + Send + 'static,
) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind(any_loopback_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.set_write_timeout(Some(DEADLINE)).unwrap();
        serve(s);
    });
    (addr, server)
}

/// A server that echoes what it reads until EOF, then closes.
pub fn echo_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
    serve_one(|mut s| {
        let mut reader = s.try_clone().unwrap();
        std::io::copy(&mut reader, &mut s).unwrap();
    })
}
