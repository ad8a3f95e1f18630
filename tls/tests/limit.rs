//! The cap on handshakes in progress ([`HandshakeLimit`]): above it a new
//! connection's handshake waits, its ciphertext unread, for a turn.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{client, exchange, handshake, next_closed, serve_observed, Pki};
use examples::Echo;
use testkit::{connect, sees_eof, wait_until};
use tls::{HandshakeLimit, TlsError, TlsServer};

/// A handshake that starts (half a record header reaches rustls) and
/// never finishes.
fn stuck(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(&[22, 3, 1]).unwrap();
    s
}

#[test]
fn a_handshake_above_the_cap_waits_unread_and_gets_the_next_turn() {
    let pki = Pki::new();
    let limit = HandshakeLimit::new(2);
    let (cfg, lim) = (pki.server.clone(), limit.clone());
    let (addr, _running, observer) = serve_observed(move || {
        TlsServer::wrap(cfg.clone(), Echo::new()).with_handshake_limit(&lim)
    });
    let mut holders = vec![stuck(addr), stuck(addr)];
    wait_until("two handshakes in progress", || limit.in_progress() == 2);

    // One that queues and then leaves: it leaves the queue at once, and
    // the two in progress keep their turns.
    let quitter = stuck(addr);
    wait_until("the quitter to queue", || limit.waiting() == 1);
    drop(quitter);
    assert_eq!(
        next_closed(&observer).how_died,
        Some(TlsError::EndedInHandshake)
    );
    assert_eq!((limit.waiting(), limit.in_progress()), (0, 2));

    // A real client: its ClientHello waits, unread.
    let mut third = client(addr, pki.client(), "localhost");
    while third.conn.wants_write() {
        third.conn.write_tls(&mut third.sock).unwrap();
    }
    wait_until("the third to queue", || limit.waiting() == 1);
    // Nothing of it reached rustls, so no ServerHello can have come.
    third.sock.set_nonblocking(true).unwrap();
    let early = third.sock.read(&mut [0u8; 1]).map_err(|e| e.kind());
    assert_eq!(early, Err(ErrorKind::WouldBlock), "answered over the cap");
    third.sock.set_nonblocking(false).unwrap();

    // One in progress ends: its turn passes to the third, served in full.
    drop(holders.remove(0));
    handshake(&mut third).unwrap();
    let (_, got) = exchange(third, b"my turn".to_vec());
    assert_eq!(got, b"my turn");
    assert_eq!(limit.most_in_progress(), 2, "the cap was passed");
    drop(holders);
    wait_until("every turn back", || {
        limit.in_progress() == 0 && limit.waiting() == 0
    });
}

#[test]
fn a_connection_waiting_for_a_turn_is_still_closed_at_its_deadline() {
    let pki = Pki::new();
    let limit = HandshakeLimit::new(1);
    let (cfg, lim) = (pki.server.clone(), limit.clone());
    let t = Duration::from_millis(500);
    let (addr, _running, observer) = serve_observed(move || {
        TlsServer::wrap(cfg.clone(), Echo::new())
            .with_handshake_limit(&lim)
            .with_handshake_timeout(t)
    });
    let start = Instant::now();
    let mut holder = stuck(addr);
    wait_until("one handshake in progress", || limit.in_progress() == 1);
    let mut queued = stuck(addr);
    wait_until("the second to queue", || limit.waiting() == 1);
    assert!(sees_eof(&mut queued), "a byte instead of the close");
    assert!(sees_eof(&mut holder), "a byte instead of the close");
    assert!(start.elapsed() >= t);
    for _ in 0..2 {
        assert_eq!(
            next_closed(&observer).how_died,
            Some(TlsError::HandshakeTimeout(t))
        );
    }
    assert_eq!((limit.in_progress(), limit.waiting()), (0, 0));
}
