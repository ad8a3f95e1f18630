//! Clients that stall a handshake (silent, half a ClientHello, EOF in the
//! middle) are closed at the deadline or at once, without spinning: in a
//! test binary of its own, so the CPU time measured is this server's.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use common::{next_closed, serve_observed, Pki};
use examples::Echo;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use testkit::{connect, sees_eof, CpuClock, DEADLINE};
use tls::{TlsError, TlsServer};

/// The handshake deadline here (the default is 10 s).
const T: Duration = Duration::from_secs(1);

/// A real ClientHello, as a rustls client's first flight.
fn client_hello(pki: &Pki) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(pki.client(), name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

#[test]
fn a_silent_client_half_a_client_hello_and_eof_mid_handshake_close_without_spinning() {
    let pki = Pki::new();
    let cfg = pki.server.clone();
    let (addr, _running, observer) =
        serve_observed(move || TlsServer::wrap(cfg.clone(), Echo::new()).with_handshake_timeout(T));
    let hello = client_hello(&pki);
    let half = &hello[..hello.len() / 2];
    let mut clock = CpuClock::open().unwrap();
    let cpu_before = clock.seconds();
    let start = Instant::now();

    let mut silent = connect(addr);
    let mut halting = connect(addr);
    halting.write_all(half).unwrap();
    let mut ending = connect(addr);
    ending.write_all(half).unwrap();
    ending.shutdown(Shutdown::Write).unwrap();

    // EOF in the middle: the handshake can never finish; closed at once.
    assert!(sees_eof(&mut ending), "a byte instead of the close");
    let at_once = start.elapsed();
    assert!(at_once < T, "EOF mid-handshake closed after {at_once:?}");
    // The other two at the deadline, not before.
    assert!(sees_eof(&mut silent), "a byte instead of the close");
    assert!(sees_eof(&mut halting), "a byte instead of the close");
    let waited = start.elapsed();
    let cpu = clock.seconds() - cpu_before;
    eprintln!(
        "closed after {waited:?} (EOF: {at_once:?}); CPU {:.0} ms",
        cpu * 1e3
    );
    assert!(waited >= T, "closed before the deadline: {waited:?}");
    assert!(waited < DEADLINE);
    // A timer, no polling: the wait costs next to nothing.
    assert!(cpu < 0.2, "{:.0} ms of CPU over a {T:?} wait", cpu * 1e3);

    let mut ends: Vec<_> = (0..3).map(|_| next_closed(&observer).how_died).collect();
    ends.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        ends,
        [
            Some(TlsError::EndedInHandshake),
            Some(TlsError::HandshakeTimeout(T)),
            Some(TlsError::HandshakeTimeout(T)),
        ]
    );
}
