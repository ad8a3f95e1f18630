//! The cap on handshakes in progress ([`HandshakeLimit`]): above it a new
//! connection's handshake waits, its ciphertext unread, for a turn.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chassis::{ServerOptions, SimpleServer};

use common::{client, exchange, handshake, next_closed, serve_observed, Pki};
use examples::Echo;
use testkit::{connect, sees_eof, wait_until, Running, DEADLINE};
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

/// With the limit as the server's accept gate
/// ([`HandshakeLimit::accept_gate`] in `ServerOptions::accept_gate`), above
/// the cap the server does not accept at all, as at T8's connection
/// limit: clients wait in the kernel's backlog, a turn is taken at accept
/// (a silent client holds it until its handshake deadline), and each turn
/// that frees lets exactly one more connection in.
#[test]
fn t8_as_an_accept_gate_the_cap_pauses_accepting_and_each_freed_turn_admits_one() {
    let pki = Pki::new();
    let limit = HandshakeLimit::new(2);
    let made = Arc::new(AtomicUsize::new(0));
    let (cfg, lim, count) = (pki.server.clone(), limit.clone(), made.clone());
    let server = SimpleServer::new(
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            TlsServer::wrap(cfg.clone(), Echo::new()).with_handshake_limit(&lim)
        },
        "127.0.0.1:0".parse().unwrap(),
        ServerOptions {
            accept_gate: Some(limit.accept_gate()),
            ..ServerOptions::default()
        },
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    // Five clients in the backlog before the server first runs: without
    // the gate its first accept round would take them all.
    let mut clients: Vec<TcpStream> = (0..5).map(|_| connect(addr)).collect();
    let running = Running::start(scheduler);
    let made = || made.load(Ordering::SeqCst);
    wait_until("two connections admitted", || {
        limit.in_progress() == 2 && made() == 2
    });
    // A snapshot is taken between steps: the accept round is over, and it
    // made two CSAs only.
    let csas = || {
        let snap = running.handle.snapshot(DEADLINE).expect("a snapshot");
        snap.components.iter().filter(|c| c.kind == "Csa").count()
    };
    assert_eq!(csas(), 2);
    assert_eq!(made(), 2);
    // One admitted client leaves: exactly one more is let in.
    drop(clients.remove(0));
    wait_until("a third connection to be made", || made() == 3);
    wait_until("the freed turn to be taken again", || {
        limit.in_progress() == 2 && csas() == 2
    });
    assert_eq!(made(), 3);
    // Everyone else leaves; a real client then gets through in full.
    drop(clients);
    let c = client(addr, pki.client(), "localhost");
    let (_, got) = exchange(c, b"through the gate".to_vec());
    assert_eq!(got, b"through the gate");
    assert!(limit.most_in_progress() <= 2, "the cap held");
}
