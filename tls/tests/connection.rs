//! TLS as the connection itself ([`TlsServer::over_csa`] through
//! `TcpServer::with_csa`): the handler gets plaintext, and the creator's
//! `socketShutdown` (C6) says how the TLS session ended.
//!
//! Each connection is tapped once more (a Graphline around the TLS
//! connection) to see the `socketShutdown` on its way to the server.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use chassis::{ConnectionInfo, ServerCore, ServerOptions, TcpServer};
use common::{client, exchange, handshake, tapped, Pki, Seen};
use examples::Echo;
use testkit::{any_loopback_port, pattern, wait_until, Running};
use tls::{TlsError, TlsServer};

fn server(pki: &Pki) -> (SocketAddr, Seen, Running) {
    let seen: Seen = Arc::default();
    let (cfg, s) = (pki.server.clone(), seen.clone());
    let server = TcpServer::bind(any_loopback_port(), ServerOptions::default())
        .unwrap()
        .with_csa(move |csa, _: &ConnectionInfo| {
            tapped(TlsServer::new(cfg.clone()).over_csa(csa), &s)
        });
    let core = ServerCore::with_server(|_: &ConnectionInfo| Echo::new(), server);
    let addr = core.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(core).unwrap();
    (addr, seen, Running::start(scheduler))
}

/// The creator's socketShutdown for the one connection made.
#[track_caller]
fn how_died(seen: &Seen) -> Option<(io::ErrorKind, Option<TlsError>)> {
    wait_until("socketShutdown to the creator", || {
        !seen.lock().unwrap().is_empty()
    });
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    seen[0].clone()
}

#[test]
fn over_csa_echoes_a_mebibyte_and_an_orderly_close_has_no_how_died() {
    let pki = Pki::new();
    let (addr, seen, _running) = server(&pki);
    let sent = pattern(4, 1 << 20);
    let (mut c, got) = exchange(client(addr, pki.client(), "localhost"), sent.clone());
    assert!(got == sent, "bytes changed");
    c.conn.send_close_notify();
    c.flush().unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("the server's close_notify");
    assert_eq!(how_died(&seen), None);
}

#[test]
fn over_csa_truncation_is_the_how_died_of_the_creators_socket_shutdown() {
    let pki = Pki::new();
    let (addr, seen, _running) = server(&pki);
    let mut c = client(addr, pki.client(), "localhost");
    handshake(&mut c).unwrap();
    c.write_all(b"then a bare FIN").unwrap();
    c.flush().unwrap();
    c.sock.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("the reply, then close_notify");
    assert_eq!(got, b"then a bare FIN", "the reply still comes (C7)");
    assert_eq!(
        how_died(&seen),
        Some((io::ErrorKind::UnexpectedEof, Some(TlsError::Truncated)))
    );
}

#[test]
fn over_csa_a_failed_handshake_is_the_how_died_of_the_creators_socket_shutdown() {
    let pki = Pki::new();
    let (addr, seen, _running) = server(&pki);
    let mut bad = client(addr, Pki::stranger(), "localhost");
    assert!(handshake(&mut bad).is_err());
    drop(bad);
    match how_died(&seen) {
        Some((
            io::ErrorKind::InvalidData,
            Some(TlsError::Tls(rustls::Error::AlertReceived(_))),
        )) => {}
        other => panic!("expected the client's alert, got {other:?}"),
    }
}
