//! Session resumption with rustls's defaults, and early data (0-RTT),
//! which is refused.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use common::{client, exchange, handshake, next_closed, serve_observed, Client, Observer, Pki};
use examples::Echo;
use rustls::HandshakeKind;
use testkit::DEADLINE;
use tls::{SslReady, TlsError, TlsServer};

fn observed_echo_server(
    cfg: Arc<rustls::ServerConfig>,
) -> (std::net::SocketAddr, testkit::Running, Observer) {
    serve_observed(move || TlsServer::wrap(cfg.clone(), Echo::new()))
}

#[track_caller]
fn next_ready(observer: &Observer) -> SslReady {
    observer
        .sslready
        .recv_timeout(DEADLINE)
        .expect("no sslready before the deadline")
}

/// close_notify both ways.
fn close(mut c: Client) {
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn resumption_a_client_with_a_session_store_resumes_its_second_handshake() {
    let pki = Pki::new();
    let (addr, _running, observer) = observed_echo_server(pki.server.clone());
    // One client config, one session store (rustls's default, in memory).
    let config = pki.client();
    // Reading the echo takes the tickets the server sent after its
    // handshake (flushed without application data).
    let (first, got) = exchange(client(addr, config.clone(), "localhost"), b"first".to_vec());
    assert_eq!(got, b"first");
    assert_eq!(first.conn.handshake_kind(), Some(HandshakeKind::Full));
    close(first);
    assert!(!next_ready(&observer).resumed);

    let mut second = client(addr, config, "localhost");
    handshake(&mut second).unwrap();
    assert_eq!(second.conn.handshake_kind(), Some(HandshakeKind::Resumed));
    let (second, got) = exchange(second, b"second".to_vec());
    assert_eq!(got, b"second");
    close(second);
    let ready = next_ready(&observer);
    assert!(ready.resumed, "the server saw a full handshake: {ready:?}");
    assert!(ready.is_server);
}

#[test]
fn early_data_is_refused_by_default() {
    let pki = Pki::new();
    let (addr, _running, observer) = observed_echo_server(pki.server.clone());
    let mut config = (*pki.client()).clone();
    config.enable_early_data = true;
    let config = Arc::new(config);
    let (first, _) = exchange(client(addr, config.clone(), "localhost"), b"first".to_vec());
    close(first);
    // The server's tickets allow no early data: the client cannot offer
    // any, and the resumed handshake goes without it.
    let mut second = client(addr, config, "localhost");
    assert!(
        second.conn.early_data().is_none(),
        "the server's ticket allowed early data"
    );
    handshake(&mut second).unwrap();
    assert_eq!(second.conn.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(!second.conn.is_early_data_accepted());
    let (second, got) = exchange(second, b"after the handshake".to_vec());
    assert_eq!(got, b"after the handshake");
    close(second);
    assert!(!next_ready(&observer).resumed);
    assert!(next_ready(&observer).resumed);
}

#[test]
fn a_server_config_accepting_early_data_is_refused_with_a_clear_error() {
    let pki = Pki::new();
    let mut cfg = (*pki.server).clone();
    cfg.max_early_data_size = 16 * 1024;
    let (addr, _running, observer) = observed_echo_server(Arc::new(cfg));
    let mut c = client(addr, pki.client(), "localhost");
    assert!(handshake(&mut c).is_err(), "served with early data on");
    match next_closed(&observer).how_died {
        Some(TlsError::Setup(e)) => assert!(e.contains("early data"), "{e}"),
        other => panic!("expected a setup error, got {other:?}"),
    }
}

/// The session tickets come before the first reply: a client that reads
/// its echo and closes at once, without waiting for close_notify, has its
/// ticket and resumes next time.
#[test]
fn resumption_the_ticket_comes_before_the_first_reply() {
    let pki = Pki::new();
    let (addr, _running, observer) = observed_echo_server(pki.server.clone());
    let config = pki.client();
    for round in 0..4 {
        let (c, got) = exchange(client(addr, config.clone(), "localhost"), b"hi".to_vec());
        assert_eq!(got, b"hi");
        let kind = c.conn.handshake_kind();
        drop(c); // no close_notify, no waiting for the server's
        let ready = next_ready(&observer);
        if round > 0 {
            assert_eq!(
                kind,
                Some(HandshakeKind::Resumed),
                "round {round}: {ready:?}"
            );
        }
    }
}
