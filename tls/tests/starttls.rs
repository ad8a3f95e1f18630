//! STARTTLS (Kamaelia's `makessl` / `sslready`): a plaintext exchange,
//! then `makessl`, then TLS on the same connection, with nothing read
//! before the switch lost or passed to TLS.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axon::{boxes, Component, Control, Cx, Inbox, Outbox, Step};
use common::{exchange, handshake, serve, Client, Pki};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use tcpclient::TcpClient;
use testkit::{connect, read_n, Running, DEADLINE};
use tls::TlsClient;
use tls::{SslReady, TlsServer, TlsSession};

boxes! {
    /// A line protocol with a STARTTLS command.
    pub struct StartTlsBoxes {
        /// bytes from the client (plaintext, before and after the switch)
        pub inbox: Inbox<Vec<u8>>,
        /// socketShutdown: the client is done
        pub control: Inbox<Control>,
        /// bytes to the client
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished when done
        pub signal: Outbox<Control>,
        /// switch the connection to TLS
        pub makessl: Outbox<()>,
        /// the handshake has finished
        pub sslready: Inbox<SslReady>,
    }
}

/// What the handler saw.
#[derive(Default, Debug)]
struct Seen {
    /// Bytes that came after the STARTTLS line and before sslready: read
    /// before the switch, in the clear.
    before_tls: Vec<u8>,
    ready: Option<SslReady>,
}

/// The dots before `GO` in the answer to `STARTTLS-BIG`: more than
/// loopback's socket buffers hold (4 MiB to send, 6 MiB to receive).
const BIG_REPLY: usize = 32 << 20;

/// Echoes lines in the clear; on `STARTTLS` answers `GO` (on
/// `STARTTLS-BIG`, [`BIG_REPLY`] dots and `GO`), sends
/// makessl, and once sslready has come echoes bytes over TLS.
struct StartTls {
    seen: Arc<Mutex<Seen>>,
    line: Vec<u8>,
    phase: u8, // 0 plain, 1 switching, 2 tls
}

impl Component for StartTls {
    type Boxes = StartTlsBoxes;

    fn main(&mut self, cx: &mut Cx<StartTlsBoxes>) -> Step {
        if let Some(ready) = cx.sslready.recv() {
            let mut seen = self.seen.lock().unwrap();
            // Everything the client sent before its handshake has come.
            seen.before_tls.append(&mut self.line);
            seen.ready = Some(ready);
            self.phase = 2;
        }
        while let Some(bytes) = cx.inbox.recv() {
            match self.phase {
                0 => {
                    for b in bytes {
                        if self.phase != 0 {
                            self.line.push(b);
                            continue;
                        }
                        if b != b'\n' {
                            self.line.push(b);
                            continue;
                        }
                        let line = std::mem::take(&mut self.line);
                        if line == b"STARTTLS" {
                            let _ = cx.outbox.send(b"GO\n".to_vec());
                            let _ = cx.makessl.send(());
                            self.phase = 1;
                        } else if line == b"STARTTLS-BIG" {
                            // A reply far larger than the socket buffers.
                            let mut reply = vec![b'.'; BIG_REPLY];
                            reply.extend_from_slice(b"GO\n");
                            let _ = cx.outbox.send(reply);
                            let _ = cx.makessl.send(());
                            self.phase = 1;
                        } else {
                            let _ = cx.outbox.send([line, b"\n".to_vec()].concat());
                        }
                    }
                }
                1 => self.line.extend_from_slice(&bytes),
                _ => {
                    let _ = cx.outbox.send(bytes);
                }
            }
        }
        if let Some(c) = cx.control.recv() {
            if c.is_producer_finished() {
                let _ = cx.signal.send(Control::ProducerFinished);
            }
            return Step::Done;
        }
        Step::Pause
    }
}

fn starttls_server(pki: &Pki) -> (SocketAddr, Running, Arc<Mutex<Seen>>) {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (cfg, s) = (pki.server.clone(), seen.clone());
    let (addr, running) = serve(move || {
        let inner = StartTls {
            seen: s.clone(),
            line: Vec::new(),
            phase: 0,
        };
        TlsServer::starttls(cfg.clone(), inner)
    });
    (addr, running, seen)
}

/// TLS over the socket the plaintext exchange used.
fn upgrade(pki: &Pki, sock: std::net::TcpStream) -> Client {
    let name = ServerName::try_from("localhost").unwrap();
    StreamOwned::new(ClientConnection::new(pki.client(), name).unwrap(), sock)
}

#[test]
fn starttls_a_plaintext_exchange_then_makessl_then_tls_on_the_same_connection() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_server(&pki);
    let mut sock = connect(addr);
    sock.write_all(b"hello\n").unwrap();
    assert_eq!(read_n(&mut sock, 6), b"hello\n", "the plaintext echo");
    sock.write_all(b"STARTTLS\n").unwrap();
    assert_eq!(read_n(&mut sock, 3), b"GO\n", "GO, in the clear");
    let mut c = upgrade(&pki, sock);
    handshake(&mut c).unwrap();
    let (_, got) = exchange(c, b"now encrypted".to_vec());
    assert_eq!(got, b"now encrypted");
    let seen = seen.lock().unwrap();
    assert!(seen.before_tls.is_empty(), "{:?}", seen.before_tls);
    let ready = seen.ready.as_ref().expect("sslready reached the handler");
    assert!(ready.is_server && !ready.resumed);
}

#[test]
fn starttls_bytes_read_before_the_switch_reach_the_handler_in_the_clear_never_tls() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_server(&pki);
    let mut sock = connect(addr);
    // A client (or an attacker in the path) that sends bytes behind
    // STARTTLS without waiting for GO: they are read before the switch,
    // so they go to the handler as plaintext; fed to TLS they would break
    // the handshake (or be taken for the client's).
    sock.write_all(b"STARTTLS\nINJECTED").unwrap();
    assert_eq!(read_n(&mut sock, 3), b"GO\n");
    let mut c = upgrade(&pki, sock);
    handshake(&mut c).expect("the handshake, untouched by what came before");
    let (_, got) = exchange(c, b"clean".to_vec());
    assert_eq!(got, b"clean");
    assert_eq!(seen.lock().unwrap().before_tls, b"INJECTED");
}

boxes! {
    /// The client side of the STARTTLS line protocol.
    pub struct UpgraderBoxes {
        /// bytes from the server (plaintext, before and after the switch)
        pub inbox: Inbox<Vec<u8>>,
        /// the connection ended
        pub control: Inbox<Control>,
        /// bytes to the server
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished when done
        pub signal: Outbox<Control>,
        /// switch the connection to TLS
        pub makessl: Outbox<()>,
        /// the handshake has finished
        pub sslready: Inbox<SslReady>,
    }
}

/// What the [`Upgrader`] saw: the bytes, `sslready`, and how the
/// connection ended (the client's `signal`), if it ended first.
#[derive(Default, Debug)]
struct Talk {
    bytes: Vec<u8>,
    ready: Option<SslReady>,
    ended: Option<Control>,
}

/// Says `hello` in the clear, then `STARTTLS`; on `GO` sends makessl; on
/// sslready sends `secret` and, once it is echoed, finishes.
struct Upgrader {
    got: Arc<Mutex<Talk>>,
    sent: u8, // 0 nothing, 1 hello, 2 STARTTLS, 3 makessl, 4 secret
}

impl Upgrader {
    fn new() -> (Upgrader, Arc<Mutex<Talk>>) {
        let got: Arc<Mutex<Talk>> = Arc::default();
        let upgrader = Upgrader {
            got: got.clone(),
            sent: 0,
        };
        (upgrader, got)
    }
}

impl Component for Upgrader {
    type Boxes = UpgraderBoxes;

    fn main(&mut self, cx: &mut Cx<UpgraderBoxes>) -> Step {
        let mut got = self.got.lock().unwrap();
        while let Some(b) = cx.inbox.recv() {
            got.bytes.extend_from_slice(&b);
        }
        if let Some(ready) = cx.sslready.recv() {
            got.ready = Some(ready);
        }
        let step = match (self.sent, got.bytes.as_slice(), got.ready.is_some()) {
            (0, _, _) => Some(b"hello\n".to_vec()),
            (1, b"hello\n", _) => Some(b"STARTTLS\n".to_vec()),
            (2, b"hello\nGO\n", _) => {
                let _ = cx.makessl.send(());
                self.sent = 3;
                None
            }
            (3, _, true) => Some(b"secret".to_vec()),
            (4, b"hello\nGO\nsecret", _) => {
                let _ = cx.signal.send(Control::ProducerFinished);
                return Step::Done;
            }
            _ => None,
        };
        if let Some(bytes) = step {
            let _ = cx.outbox.send(bytes);
            self.sent += 1;
        }
        if let Some(end) = cx.control.recv() {
            got.ended = Some(end);
            return Step::Done; // the connection ended first
        }
        Step::Pause
    }
}

#[test]
fn starttls_a_tls_client_upgrades_a_live_connection_on_makessl() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_server(&pki);
    let (upgrader, got) = Upgrader::new();
    let client = TlsClient::starttls(pki.client(), "localhost", upgrader)
        .unwrap()
        .over(TcpClient::new(addr))
        .unwrap();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(client).unwrap();
    Running::to_completion(scheduler);
    let got = got.lock().unwrap();
    assert_eq!(got.bytes, b"hello\nGO\nsecret");
    let ready = got
        .ready
        .as_ref()
        .expect("sslready reached the client's handler");
    assert!(!ready.is_server);
    // The server's side: TLS came after GO, nothing before it.
    let seen = seen.lock().unwrap();
    assert!(seen.ready.is_some());
    assert!(seen.before_tls.is_empty(), "{:?}", seen.before_tls);
}

// STARTTLS inside the CSA (`ServerOptions::starttls`): the same handler,
// linked by ServerCore straight to the CSA's `makessl` and `sslready`; no
// layer component.

/// A SimpleServer whose CSAs may switch to TLS on `makessl`, serving
/// [`StartTls`]; `sessions` tunes the factory.
fn starttls_in_csa(
    pki: &Pki,
    sessions: impl FnOnce(tls::ServerSessions) -> tls::ServerSessions,
) -> (SocketAddr, Running, Arc<Mutex<Seen>>) {
    starttls_in_csa_with(pki, sessions, chassis::ServerOptions::default())
}

/// [`starttls_in_csa`] on `options`.
fn starttls_in_csa_with(
    pki: &Pki,
    sessions: impl FnOnce(tls::ServerSessions) -> tls::ServerSessions,
    options: chassis::ServerOptions,
) -> (SocketAddr, Running, Arc<Mutex<Seen>>) {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    let options = chassis::ServerOptions {
        starttls: Some(sessions(tls::ServerSessions::new(pki.server.clone())).factory()),
        ..options
    };
    let handler = move || StartTls {
        seen: s.clone(),
        line: Vec::new(),
        phase: 0,
    };
    let server =
        chassis::SimpleServer::new(handler, "127.0.0.1:0".parse().unwrap(), options).unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    (addr, Running::start(scheduler), seen)
}

#[test]
fn starttls_in_csa_a_plaintext_exchange_then_makessl_then_tls_on_the_same_connection() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_in_csa(&pki, |s| s);
    let mut sock = connect(addr);
    sock.write_all(b"hello\n").unwrap();
    assert_eq!(read_n(&mut sock, 6), b"hello\n", "the plaintext echo");
    sock.write_all(b"STARTTLS\n").unwrap();
    assert_eq!(read_n(&mut sock, 3), b"GO\n", "GO, in the clear");
    let mut c = upgrade(&pki, sock);
    handshake(&mut c).unwrap();
    let big = testkit::pattern(11, 300_000);
    let (_, got) = exchange(c, big.clone());
    assert!(got == big, "the echo over TLS, byte-exact");
    let seen = seen.lock().unwrap();
    assert!(seen.before_tls.is_empty(), "{:?}", seen.before_tls);
    let ready = seen.ready.as_ref().expect("sslready from the CSA");
    assert!(ready.is_server && !ready.resumed);
    assert!(ready.protocol.starts_with("TLS"), "{ready:?}");
}

#[test]
fn starttls_in_csa_bytes_read_before_the_switch_reach_the_handler_in_the_clear_never_tls() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_in_csa(&pki, |s| s);
    let mut sock = connect(addr);
    sock.write_all(b"STARTTLS\nINJECTED").unwrap();
    assert_eq!(read_n(&mut sock, 3), b"GO\n");
    let mut c = upgrade(&pki, sock);
    handshake(&mut c).expect("the handshake, untouched by what came before");
    let (_, got) = exchange(c, b"clean".to_vec());
    assert_eq!(got, b"clean");
    assert_eq!(seen.lock().unwrap().before_tls, b"INJECTED");
}

#[test]
fn starttls_in_csa_a_client_silent_after_the_switch_is_closed_at_the_handshake_deadline() {
    let pki = Pki::new();
    // With an idle timeout too, so that the CSA's clocks run from its
    // first step: the handshake's must start at the switch, and be armed.
    let options = chassis::ServerOptions {
        idle_timeout: Some(std::time::Duration::from_secs(60)),
        ..chassis::ServerOptions::default()
    };
    let (addr, _running, seen) = starttls_in_csa_with(
        &pki,
        |s| s.with_handshake_timeout(common::short(300)),
        options,
    );
    let mut sock = connect(addr);
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    sock.write_all(b"STARTTLS\n").unwrap();
    assert_eq!(read_n(&mut sock, 3), b"GO\n");
    // No ClientHello: the CSA's own timer (counted from the switch, not
    // from the connection's start) closes it.
    assert!(testkit::sees_eof(&mut sock), "closed at the deadline");
    assert!(seen.lock().unwrap().ready.is_none());
}

#[test]
fn starttls_in_csa_makessl_on_a_server_without_starttls_closes_the_connection() {
    // The handler asks for TLS that nobody can do: the CSA closes at once
    // (a clear `how_died`), rather than leave the client waiting.
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    let (addr, _running) = serve(move || StartTls {
        seen: s.clone(),
        line: Vec::new(),
        phase: 0,
    });
    let mut sock = connect(addr);
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    sock.write_all(b"STARTTLS\n").unwrap();
    let mut got = Vec::new();
    match std::io::Read::read_to_end(&mut sock, &mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection was left open: {e}"),
    }
    assert!(seen.lock().unwrap().ready.is_none());
}

#[test]
fn starttls_in_csa_the_handshake_deadline_counts_from_makessl_not_from_the_connections_start() {
    let pki = Pki::new();
    let limit = std::time::Duration::from_secs(1);
    // An idle timeout keeps the CSA's clocks running from its first step
    // (and is never reached: the client talks all along).
    let options = chassis::ServerOptions {
        idle_timeout: Some(std::time::Duration::from_secs(60)),
        ..chassis::ServerOptions::default()
    };
    let (addr, _running, seen) =
        starttls_in_csa_with(&pki, |s| s.with_handshake_timeout(limit), options);
    let mut sock = connect(addr);
    // Plaintext for longer than the handshake may take (bounded: round
    // trips until 1.5 limits have passed).
    let started = std::time::Instant::now();
    while started.elapsed() < limit * 3 / 2 {
        sock.write_all(b"ping\n").unwrap();
        assert_eq!(read_n(&mut sock, 5), b"ping\n");
    }
    sock.write_all(b"STARTTLS\n").unwrap();
    assert_eq!(read_n(&mut sock, 3), b"GO\n");
    let mut c = upgrade(&pki, sock);
    handshake(&mut c).expect("a handshake within its own deadline");
    let (_, got) = exchange(c, b"late".to_vec());
    assert_eq!(got, b"late");
    assert!(seen.lock().unwrap().ready.is_some());
}

#[test]
fn starttls_in_csa_bytes_that_are_not_tls_after_the_switch_close_the_connection() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_in_csa(&pki, |s| s);
    let mut sock = connect(addr);
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    sock.write_all(b"STARTTLS\n").unwrap();
    assert_eq!(read_n(&mut sock, 3), b"GO\n");
    // Plaintext where a ClientHello should be: an alert, then the close.
    sock.write_all(b"HELO not tls at all\r\n").unwrap();
    let mut rest = Vec::new();
    match std::io::Read::read_to_end(&mut sock, &mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection was left open: {e}"),
    }
    assert!(rest.len() < 64, "at most an alert: {rest:?}");
    let seen = seen.lock().unwrap();
    assert!(seen.ready.is_none());
    assert!(seen.before_tls.is_empty(), "nothing reached the handler");
}

#[test]
fn starttls_in_csa_bytes_that_come_while_the_reply_is_written_are_taken_as_tls_never_passed_on_in_the_clear(
) {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_in_csa(&pki, |s| s);
    let mut sock = connect(addr);
    sock.write_all(b"STARTTLS-BIG\n").unwrap();
    // The reply's first byte: makessl has been taken (it came with the
    // reply), and most of the reply is still to be written.
    assert_eq!(read_n(&mut sock, 1), b".");
    sock.write_all(b"INJECTED").unwrap();
    let rest = read_n(&mut sock, BIG_REPLY + 2);
    assert!(rest.ends_with(b".GO\n"));
    // The CSA read nothing while it wrote the reply: INJECTED is the
    // first of the session's bytes, not a TLS record, so the handshake
    // fails; it never reaches the handler as if sent in the clear.
    let mut c = upgrade(&pki, sock);
    assert!(handshake(&mut c).is_err(), "INJECTED was not taken for TLS");
    let seen = seen.lock().unwrap();
    assert!(seen.before_tls.is_empty(), "{:?}", seen.before_tls);
    assert!(seen.ready.is_none());
}

// STARTTLS in a client's CSA (`TcpClient::with_starttls`): the same
// Upgrader, linked straight to the client's `makessl` and `sslready`.

/// The [`Upgrader`] over `client`, linked as a protocol component is to a
/// TCPClient for STARTTLS: the usual four linkages, `makessl` and
/// `sslready`.
fn upgrading(client: TcpClient) -> (axon::Graphline, Arc<Mutex<Talk>>) {
    let (upgrader, got) = Upgrader::new();
    let line = axon::Graphline::new(
        vec![("tcp", client.into()), ("app", axon::Handle::new(upgrader))],
        &[
            (("app", "outbox"), ("tcp", "inbox")),
            (("app", "signal"), ("tcp", "control")),
            (("app", "makessl"), ("tcp", "makessl")),
            (("tcp", "outbox"), ("app", "inbox")),
            (("tcp", "signal"), ("app", "control")),
            (("tcp", "sslready"), ("app", "sslready")),
        ],
    )
    .unwrap();
    (line, got)
}

/// A client's TLS session for the test server, `localhost`.
fn client_session(pki: &Pki) -> TlsSession {
    TlsSession::client(pki.client(), "localhost").unwrap()
}

/// Runs `line` on a scheduler of its own until it ends (at most
/// [`DEADLINE`]).
fn run(line: axon::Graphline) {
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(line).unwrap();
    Running::to_completion(scheduler);
}

/// Reads `want` off `sock`, or says what came instead.
fn in_the_clear(sock: &mut std::net::TcpStream, want: &[u8]) -> io::Result<()> {
    let mut got = vec![0; want.len()];
    sock.read_exact(&mut got)?;
    if got != want {
        let got = String::from_utf8_lossy(&got).into_owned();
        return Err(io::Error::other(format!("in the clear: {got:?}")));
    }
    Ok(())
}

/// A STARTTLS server written with std and rustls alone, to see what the
/// client puts on the wire: `hello\n` echoed and `STARTTLS\n` answered
/// `GO\n` in the clear (after `go_after`: a slow server), then TLS on the
/// same socket, echoing six bytes and closing in order once the client
/// has. Returns the six bytes and what followed them over TLS.
fn raw_starttls_server(
    pki: &Pki,
    go_after: Duration,
) -> (SocketAddr, JoinHandle<io::Result<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = pki.server.clone();
    let thread = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(DEADLINE))?;
        in_the_clear(&mut sock, b"hello\n")?;
        sock.write_all(b"hello\n")?;
        in_the_clear(&mut sock, b"STARTTLS\n")?;
        std::thread::sleep(go_after); // the slow server, not a synchronisation
        sock.write_all(b"GO\n")?;
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, sock);
        let mut secret = vec![0; 6];
        tls.read_exact(&mut secret)?;
        tls.write_all(&secret)?;
        tls.flush()?;
        // The client's producerFinished: its close_notify reads as EOF (a
        // FIN without it would be an error here).
        tls.read_to_end(&mut secret)?;
        tls.conn.send_close_notify();
        tls.flush()?;
        Ok(secret)
    });
    (addr, thread)
}

#[test]
fn starttls_in_a_clients_csa_upgrades_a_live_connection_on_makessl() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_in_csa(&pki, |s| s);
    let client = TcpClient::new(addr).with_starttls(Box::new(client_session(&pki)));
    let (line, got) = upgrading(client);
    run(line);
    let got = got.lock().unwrap();
    assert_eq!(got.bytes, b"hello\nGO\nsecret");
    let ready = got.ready.as_ref().expect("sslready from the client's CSA");
    assert!(
        !ready.is_server && ready.protocol.starts_with("TLS"),
        "{ready:?}"
    );
    // The server's side: TLS came after GO, nothing before it.
    let seen = seen.lock().unwrap();
    assert!(seen.ready.is_some());
    assert!(seen.before_tls.is_empty(), "{:?}", seen.before_tls);
}

#[test]
fn starttls_in_a_clients_csa_the_wire_is_plaintext_until_makessl_then_tls_closed_in_order() {
    let pki = Pki::new();
    let (addr, server) = raw_starttls_server(&pki, Duration::ZERO);
    let client = TcpClient::new(addr).with_starttls(Box::new(client_session(&pki)));
    let (line, got) = upgrading(client);
    run(line);
    assert_eq!(
        server.join().unwrap().unwrap(),
        b"secret",
        "the server's TLS side"
    );
    let got = got.lock().unwrap();
    assert_eq!(got.bytes, b"hello\nGO\nsecret");
    assert!(got.ready.is_some());
}

#[test]
fn starttls_in_a_clients_csa_the_handshake_deadline_counts_from_makessl() {
    let pki = Pki::new();
    let limit = Duration::from_secs(1);
    // GO comes after one and a half handshake deadlines of plaintext.
    let (addr, server) = raw_starttls_server(&pki, limit * 3 / 2);
    let session = client_session(&pki).with_handshake_timeout(limit);
    let client = TcpClient::new(addr).with_starttls(Box::new(session));
    let (line, got) = upgrading(client);
    run(line);
    assert_eq!(server.join().unwrap().unwrap(), b"secret");
    assert!(got.lock().unwrap().ready.is_some());
}

#[test]
fn starttls_in_a_clients_csa_a_server_silent_after_go_ends_the_client_at_the_deadline() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Answers in the clear, then reads (the ClientHello) and never answers
    // until the client closes.
    let server = std::thread::spawn(move || -> io::Result<Vec<u8>> {
        let (mut sock, _) = listener.accept()?;
        sock.set_read_timeout(Some(DEADLINE))?;
        let mut line = [0; 6];
        sock.read_exact(&mut line)?;
        sock.write_all(b"hello\n")?;
        let mut line = [0; 9];
        sock.read_exact(&mut line)?;
        sock.write_all(b"GO\n")?;
        let mut rest = Vec::new();
        sock.read_to_end(&mut rest)?;
        Ok(rest)
    });
    let session = client_session(&pki).with_handshake_timeout(common::short(300));
    let client = TcpClient::new(addr).with_starttls(Box::new(session));
    let (line, got) = upgrading(client);
    run(line);
    let hello = server.join().unwrap().unwrap();
    assert_eq!(hello.first(), Some(&22), "a TLS handshake record came");
    let got = got.lock().unwrap();
    assert_eq!(got.bytes, b"hello\nGO\n");
    assert!(got.ready.is_none());
    assert!(
        matches!(got.ended, Some(Control::ShutdownMicroprocess)),
        "an end out of order: {:?}",
        got.ended
    );
}

#[test]
fn starttls_in_a_clients_csa_makessl_on_a_client_without_starttls_closes_the_connection() {
    let pki = Pki::new();
    let (addr, server) = raw_starttls_server(&pki, Duration::ZERO);
    let (line, got) = upgrading(TcpClient::new(addr));
    run(line);
    // The client closed instead of leaving the server waiting for TLS.
    assert!(server.join().unwrap().is_err(), "no TLS came");
    let got = got.lock().unwrap();
    assert_eq!(got.bytes, b"hello\nGO\n");
    assert!(got.ready.is_none() && got.ended.is_some(), "{got:?}");
}
