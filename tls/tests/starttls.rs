//! STARTTLS (Kamaelia's `makessl` / `sslready`): a plaintext exchange,
//! then `makessl`, then TLS on the same connection, with nothing read
//! before the switch lost or passed to TLS.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axon::{boxes, Component, Control, Cx, Inbox, Outbox, Step};
use common::{exchange, handshake, serve, Client, Pki};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tcpclient::TcpClient;
use testkit::{connect, read_n, Running};
use tls::TlsClient;
use tls::{SslReady, TlsServer};

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

/// Echoes lines in the clear; on `STARTTLS` answers `GO`, sends
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

/// Says `hello` in the clear, then `STARTTLS`; on `GO` sends makessl; on
/// sslready sends `secret` and, once it is echoed, finishes.
struct Upgrader {
    got: Arc<Mutex<(Vec<u8>, Option<SslReady>)>>,
    sent: u8, // 0 nothing, 1 hello, 2 STARTTLS, 3 makessl, 4 secret
}

impl Component for Upgrader {
    type Boxes = UpgraderBoxes;

    fn main(&mut self, cx: &mut Cx<UpgraderBoxes>) -> Step {
        let mut got = self.got.lock().unwrap();
        while let Some(b) = cx.inbox.recv() {
            got.0.extend_from_slice(&b);
        }
        if let Some(ready) = cx.sslready.recv() {
            got.1 = Some(ready);
        }
        let step = match (self.sent, got.0.as_slice(), got.1.is_some()) {
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
        if cx.control.recv().is_some() {
            return Step::Done; // the connection ended first
        }
        Step::Pause
    }
}

#[test]
fn starttls_a_tls_client_upgrades_a_live_connection_on_makessl() {
    let pki = Pki::new();
    let (addr, _running, seen) = starttls_server(&pki);
    let got = Arc::new(Mutex::new((Vec::new(), None)));
    let upgrader = Upgrader {
        got: got.clone(),
        sent: 0,
    };
    let client = TlsClient::starttls(pki.client(), "localhost", upgrader)
        .unwrap()
        .over(TcpClient::new(addr))
        .unwrap();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(client).unwrap();
    Running::to_completion(scheduler);
    let (bytes, ready) = &*got.lock().unwrap();
    assert_eq!(bytes, b"hello\nGO\nsecret");
    let ready = ready
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
