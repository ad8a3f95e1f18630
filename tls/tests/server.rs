//! TlsServer::wrap around a handler, under a SimpleServer, on real
//! loopback sockets, against blocking rustls clients.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axon::{Component, Control, Cx, Standard, Step};
use common::{client, exchange, handshake, serve, short, Pki};
use examples::Echo;
use testkit::{pattern, DEADLINE};
use tls::TlsServer;

/// Echo that counts the plaintext bytes it is given.
struct Counting {
    count: Arc<AtomicUsize>,
    held: Option<Vec<u8>>,
}

impl Component for Counting {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        let next = |cx: &Cx<Self::Boxes>| {
            cx.inbox.recv().map(|b| {
                self.count.fetch_add(b.len(), Ordering::Relaxed);
                b
            })
        };
        while let Some(b) = self.held.take().or_else(|| next(cx)) {
            if let Err(full) = cx.outbox.send(b) {
                self.held = Some(full.into_inner());
                return Step::Pause;
            }
        }
        if cx.control.recv().is_some() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}

fn echo_server(pki: &Pki) -> (std::net::SocketAddr, testkit::Running) {
    let cfg = pki.server.clone();
    serve(move || TlsServer::wrap(cfg.clone(), Echo::new()))
}

#[test]
fn a5_echo_of_1_mib_both_ways_is_byte_exact_then_c7_close_notify_closes() {
    let pki = Pki::new();
    let (addr, _running) = echo_server(&pki);
    let c = client(addr, pki.client(), "localhost");
    let sent = pattern(11, 1 << 20);
    let (mut c, got) = exchange(c, sent.clone());
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "bytes changed");
    // close_notify: a half-close; the server answers with its own, then
    // closes (a clean EOF to rustls: Ok(0), not UnexpectedEof).
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("a clean close_notify from the server");
    assert!(rest.is_empty());
}

#[test]
fn c7_a_reply_sent_after_the_clients_close_notify_is_delivered() {
    let pki = Pki::new();
    let (addr, _running) = echo_server(&pki);
    let mut c = client(addr, pki.client(), "localhost");
    let sent = pattern(5, 200_000);
    // The request and close_notify together: Echo hears socketShutdown
    // only after every byte, and its reply still comes.
    c.write_all(&sent).unwrap();
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert!(
        got == sent,
        "{} of {} bytes came back",
        got.len(),
        sent.len()
    );
}

#[test]
fn an_unknown_ca_fails_the_handshake_and_the_server_goes_on_serving() {
    let pki = Pki::new();
    let (addr, _running) = echo_server(&pki);
    let mut bad = client(addr, Pki::stranger(), "localhost");
    let err = handshake(&mut bad).expect_err("a certificate from an unknown CA");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    drop(bad);
    let (_, got) = exchange(
        client(addr, pki.client(), "localhost"),
        b"still here".to_vec(),
    );
    assert_eq!(got, b"still here");
}

#[test]
fn a_wrong_server_name_fails_the_handshake() {
    let pki = Pki::new();
    let (addr, _running) = echo_server(&pki);
    let mut bad = client(addr, pki.client(), "example.com");
    let err = handshake(&mut bad).expect_err("a certificate for another name");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    let (_, got) = exchange(client(addr, pki.client(), "localhost"), b"ok".to_vec());
    assert_eq!(got, b"ok");
}

#[test]
fn a_plaintext_client_gets_an_alert_and_a_close_and_nothing_reaches_the_handler() {
    let pki = Pki::new();
    let count = Arc::new(AtomicUsize::new(0));
    let (cfg, counter) = (pki.server.clone(), count.clone());
    let (addr, _running) = serve(move || {
        let inner = Counting {
            count: counter.clone(),
            held: None,
        };
        TlsServer::wrap(cfg.clone(), inner)
    });
    let mut sock = testkit::connect(addr);
    sock.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let got = testkit::read_to_eof(&mut sock);
    // A TLS alert record (content type 21), then the close.
    assert_eq!(got.first(), Some(&21), "{got:?}");
    assert_eq!(count.load(Ordering::Relaxed), 0);
}

#[test]
fn a_silent_client_is_closed_at_the_handshake_deadline() {
    let pki = Pki::new();
    let cfg = pki.server.clone();
    let (addr, _running) =
        serve(move || TlsServer::wrap(cfg.clone(), Echo::new()).with_handshake_timeout(short(300)));
    let start = Instant::now();
    let mut sock = testkit::connect(addr);
    assert!(testkit::sees_eof(&mut sock), "a byte instead of the close");
    let waited = start.elapsed();
    assert!(waited >= short(300), "closed after {waited:?}");
    assert!(waited < DEADLINE);
}

#[test]
fn eof_during_the_handshake_ends_the_connection_at_once() {
    let pki = Pki::new();
    let (addr, _running) = echo_server(&pki);
    let mut sock = testkit::connect(addr);
    // Half a ClientHello's record header, then FIN.
    sock.write_all(&[22, 3, 1]).unwrap();
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let start = Instant::now();
    assert!(testkit::sees_eof(&mut sock));
    assert!(
        start.elapsed() < tls::HANDSHAKE_TIMEOUT,
        "waited for the deadline"
    );
}
