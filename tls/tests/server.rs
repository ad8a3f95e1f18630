//! TlsServer::wrap around a handler, under a SimpleServer, on real
//! loopback sockets, against blocking rustls clients.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axon::Control;
use common::{
    client, exchange, expired, handshake, next_closed, serve, serve_observed, serve_observed_core,
    short, Counting, Observer, Pki,
};
use examples::Echo;
use rustls::{AlertDescription, CertificateError};
use testkit::{pattern, DEADLINE};
use tls::{TlsError, TlsServer};

fn echo_server(pki: &Pki) -> (std::net::SocketAddr, testkit::Running) {
    let cfg = pki.server.clone();
    serve(move || TlsServer::wrap(cfg.clone(), Echo::new()))
}

/// An echo server whose layers report to the observer returned.
fn observed_echo_server(
    cfg: &Arc<rustls::ServerConfig>,
) -> (std::net::SocketAddr, testkit::Running, Observer) {
    let cfg = cfg.clone();
    serve_observed(move || TlsServer::wrap(cfg.clone(), Echo::new()))
}

/// The rustls error a session ended with, as the server's layer reported
/// it; panics on any other end.
#[track_caller]
fn tls_error(observer: &Observer) -> rustls::Error {
    match next_closed(observer).how_died {
        Some(TlsError::Tls(e)) => e,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn a5_echo_of_1_mib_both_ways_is_byte_exact_then_c7_close_notify_closes() {
    let pki = Pki::new();
    let (addr, _running, observer) = observed_echo_server(&pki.server);
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
    let closed = next_closed(&observer);
    assert_eq!(closed.how_died, None, "an orderly end");
    assert!(closed.handshaken && closed.is_server);
}

#[test]
fn truncation_a_fin_without_close_notify_ends_input_the_reply_still_comes_and_it_is_reported() {
    let pki = Pki::new();
    let (addr, _running, observer) = observed_echo_server(&pki.server);
    let mut c = client(addr, pki.client(), "localhost");
    handshake(&mut c).unwrap();
    let sent = pattern(6, 100_000);
    // The request, then a bare FIN: no close_notify.
    c.write_all(&sent).unwrap();
    c.flush().unwrap();
    c.sock.shutdown(Shutdown::Write).unwrap();
    // Input ends as on a half-close (C7): Echo hears socketShutdown after
    // the last byte, its reply comes, then the server's close_notify.
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("the reply, then close_notify and EOF");
    assert!(
        got == sent,
        "{} of {} bytes came back",
        got.len(),
        sent.len()
    );
    let closed = next_closed(&observer);
    assert_eq!(closed.how_died, Some(TlsError::Truncated));
    assert!(closed.handshaken);
    let io: std::io::Error = TlsError::Truncated.into();
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
}

/// A graceful stop of the server (producerFinished to its ServerCore,
/// what SIGTERM sends) is a close of ours, not a truncation: the client's
/// request is answered, then close_notify comes before the FIN, and the
/// session is reported as ended cleanly.
#[test]
fn c7_a_graceful_server_stop_sends_close_notify_and_is_no_truncation() {
    let pki = Pki::new();
    let cfg = pki.server.clone();
    let (addr, core, running, observer) =
        serve_observed_core(move || TlsServer::wrap(cfg.clone(), Echo::new()));
    let mut c = client(addr, pki.client(), "localhost");
    let sent = pattern(8, 10_000);
    assert_eq!(echoed(&mut c, &sent), sent);
    core.postbox::<Control>("control")
        .unwrap()
        .send(Control::ProducerFinished)
        .unwrap();
    // rustls's stream reports a FIN without close_notify as an error:
    // Ok here means close_notify came first.
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("close_notify, then EOF");
    assert!(rest.is_empty());
    let closed = next_closed(&observer);
    assert_eq!(closed.how_died, None, "a stop of ours is no truncation");
    assert!(closed.handshaken);
    running.join();
}

/// Sends `msg` on `c` and reads as many bytes back.
fn echoed(c: &mut common::Client, msg: &[u8]) -> Vec<u8> {
    c.write_all(msg).unwrap();
    c.flush().unwrap();
    let mut got = vec![0; msg.len()];
    c.read_exact(&mut got).unwrap();
    got
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
    let (addr, _running, observer) = observed_echo_server(&pki.server);
    let mut bad = client(addr, Pki::stranger(), "localhost");
    let err = handshake(&mut bad).expect_err("a certificate from an unknown CA");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    drop(bad);
    // The server's side: the client's alert, as how_died (decrypt_error
    // here: both CAs have the same empty name, so the signature is what
    // fails).
    let e = tls_error(&observer);
    assert!(matches!(e, rustls::Error::AlertReceived(_)), "{e:?}");
    let (_, got) = exchange(
        client(addr, pki.client(), "localhost"),
        b"still here".to_vec(),
    );
    assert_eq!(got, b"still here");
}

#[test]
fn an_expired_server_certificate_fails_the_handshake_clearly_on_both_sides() {
    let pki = Pki::with_server_cert(expired);
    let (addr, _running, observer) = observed_echo_server(&pki.server);
    let mut bad = client(addr, pki.client(), "localhost");
    let err = handshake(&mut bad).expect_err("an expired certificate");
    assert!(err.to_string().contains("expired"), "{err}");
    // The server hears the client's certificate_expired alert.
    assert_eq!(
        tls_error(&observer),
        rustls::Error::AlertReceived(AlertDescription::CertificateExpired)
    );
    let closed_ok = observer.closed.recv();
    assert!(closed_ok.is_none(), "reported twice: {closed_ok:?}");
}

#[test]
fn an_expired_client_certificate_ends_its_handshake_with_a_clear_how_died_and_others_go_on() {
    let pki = Pki::new();
    let (addr, _running, observer) = observed_echo_server(&pki.server_verifying_clients());
    // One connection established before, one made after: both served.
    let good = || {
        client(
            addr,
            pki.client_with_cert(pki.leaf("good", |_| {})),
            "localhost",
        )
    };
    let (before, got) = exchange(good(), b"before".to_vec());
    assert_eq!(got, b"before");
    let mut bad = client(
        addr,
        pki.client_with_cert(pki.leaf("late", expired)),
        "localhost",
    );
    // In TLS 1.3 the server judges the client's certificate after the
    // client's last flight: the refusal shows on the client's next read.
    let refused = handshake(&mut bad).and_then(|()| {
        bad.write_all(b"let me in")?;
        bad.flush()?;
        bad.read(&mut [0u8; 16])
    });
    assert!(!matches!(refused, Ok(n) if n > 0), "{refused:?}");
    match tls_error(&observer) {
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => {}
        other => panic!("expected an expired certificate, got {other:?}"),
    }
    let (_, got) = exchange(before, b" and after".to_vec());
    assert_eq!(got, b" and after");
    let (_, got) = exchange(good(), b"a new one".to_vec());
    assert_eq!(got, b"a new one");
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
        let inner = Counting::new(&counter);
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
    let (addr, _running, observer) = serve_observed(move || {
        TlsServer::wrap(cfg.clone(), Echo::new()).with_handshake_timeout(short(300))
    });
    let start = Instant::now();
    let mut sock = testkit::connect(addr);
    assert!(testkit::sees_eof(&mut sock), "a byte instead of the close");
    let waited = start.elapsed();
    assert!(waited >= short(300), "closed after {waited:?}");
    assert!(waited < DEADLINE);
    let closed = next_closed(&observer);
    assert_eq!(
        closed.how_died,
        Some(TlsError::HandshakeTimeout(short(300)))
    );
    assert!(!closed.handshaken);
}

#[test]
fn eof_during_the_handshake_ends_the_connection_at_once_and_is_reported() {
    let pki = Pki::new();
    let (addr, _running, observer) = observed_echo_server(&pki.server);
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
    let closed = next_closed(&observer);
    assert_eq!(closed.how_died, Some(TlsError::EndedInHandshake));
    assert!(!closed.handshaken);
}

/// The layer wires its handler without linkage records (0.7 KiB per idle
/// TLS connection when it kept them): the plaintext boxes lead where H2's
/// would, and nothing is filed under the layer.
#[test]
fn h2_the_layer_wires_its_handler_and_keeps_no_linkage_records() {
    let pki = Pki::new();
    let inner = axon::Handle::new(Echo::new());
    let layer: axon::Handle = TlsServer::wrap(pki.server.clone(), inner.clone()).into();
    assert!(layer.leads_to("plainOutbox", (&inner, "inbox")));
    assert!(layer.leads_to("plainSignal", (&inner, "control")));
    assert!(inner.leads_to("outbox", (&layer, "plainInbox")));
    assert!(inner.leads_to("signal", (&layer, "plainControl")));
    assert!(layer.links().is_empty(), "{:?}", layer.links());
}
