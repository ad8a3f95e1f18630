//! A TLS client that never reads (A5, C4): in a test binary of its own,
//! so the resident size measured is this server's alone.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

use common::{client, exchange, handshake, serve, serve_in_csa, short, Pki};
use examples::Echo;
use testkit::{pattern, Proc, DEADLINE};
use tls::TlsServer;

/// Pushes up to 512 MiB at `addr` without reading a byte back, until a
/// write waits a second (the server, the kernel's buffers and the echo
/// path all full), and checks that it stalled with the resident size
/// bounded, and that another client is served meanwhile.
fn a_push_stalls_with_bounded_memory(what: &str, addr: SocketAddr, pki: &Pki) {
    let mut c = client(addr, pki.client(), "localhost");
    handshake(&mut c).unwrap();
    let before = Proc::me().rss_bytes();
    // The stall has no event of its own: a write that waits a second is it.
    let wait = short(1000);
    c.sock.set_write_timeout(Some(wait)).unwrap();
    let piece = pattern(3, 64 * 1024);
    let mut pushed = 0usize;
    let began = Instant::now();
    while pushed < 512 << 20 {
        assert!(
            began.elapsed() < DEADLINE,
            "{what}: no stall after {} MiB",
            pushed >> 20
        );
        let start = Instant::now();
        match c.write(&piece) {
            Ok(n) => pushed += n,
            Err(e) => {
                let kind = e.kind();
                use std::io::ErrorKind::{TimedOut, WouldBlock};
                assert!(matches!(kind, WouldBlock | TimedOut), "{what}: {e}");
                break;
            }
        }
        if start.elapsed() >= wait {
            break;
        }
    }
    let grown = Proc::me().rss_bytes().saturating_sub(before);
    eprintln!(
        "{what}: stalled after {} KiB pushed; resident size grew {} KiB",
        pushed >> 10,
        grown >> 10
    );
    assert!(
        pushed < 512 << 20,
        "{what}: all 512 MiB went in: nothing stalled"
    );
    assert!(grown < 64 << 20, "{what}: grew by {} MiB", grown >> 20);
    // Stalled, it holds only itself back: another client is served.
    let (_, got) = exchange(
        client(addr, pki.client(), "localhost"),
        b"meanwhile".to_vec(),
    );
    assert_eq!(got, b"meanwhile");
    drop(c);
}

/// One after the other (one test: the resident size is the process's).
#[test]
fn a5_a_client_that_never_reads_stalls_a_512_mib_push_with_bounded_memory_and_others_are_served() {
    let pki = Pki::new();
    let cfg = pki.server.clone();
    let (addr, running) = serve(move || TlsServer::wrap(cfg.clone(), Echo::new()));
    a_push_stalls_with_bounded_memory("the layer", addr, &pki);
    drop(running);
    let (addr, _running) = serve_in_csa(pki.server.clone());
    a_push_stalls_with_bounded_memory("in the CSA", addr, &pki);
}
