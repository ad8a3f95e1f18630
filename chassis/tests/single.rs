//! SingleServer over real loopback sockets: one client at a time, its data
//! through the component's own boxes, the next client served after the
//! first has gone.

use std::io::Write;
use std::net::Shutdown;

use axon::{link, Control, Endpoint, Handle, Standard};
use chassis::SingleServer;
use testkit::{any_loopback_port, connect, pattern, read_n, sees_eof, Running, DEADLINE};

type Owner = Endpoint<Standard<Vec<u8>, Vec<u8>>>;

fn single() -> (std::net::SocketAddr, Handle, Owner, Running) {
    let server = SingleServer::new(any_loopback_port()).unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let single = scheduler.activate(server).unwrap();
    let owner = Owner::new("owner");
    link((&single, "outbox"), (owner.handle(), "inbox")).unwrap();
    link((&single, "signal"), (owner.handle(), "control")).unwrap();
    link((owner.handle(), "outbox"), (&single, "inbox")).unwrap();
    link((owner.handle(), "signal"), (&single, "control")).unwrap();
    (addr, single, owner, Running::start(scheduler))
}

/// Collects `n` bytes out of the owner's inbox, with the deadline.
fn collect(owner: &Owner, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let chunk = owner
            .inbox
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|| panic!("only {} of {n} bytes came out", got.len()));
        got.extend_from_slice(&chunk);
    }
    got
}

/// Sends `data` into the server's inbox in pieces, holding on "no space
/// in box" (A5) until there is room.
fn send(owner: &Owner, data: &[u8]) {
    for piece in data.chunks(16 * 1024) {
        let mut msg = piece.to_vec();
        let deadline = std::time::Instant::now() + DEADLINE;
        while let Err(full) = owner.outbox.send(msg) {
            msg = full.into_inner();
            assert!(
                std::time::Instant::now() < deadline,
                "the server never took it"
            );
            std::thread::yield_now();
        }
    }
}

#[test]
fn a_client_talks_through_the_servers_own_boxes_both_ways() {
    let (addr, _single, owner, running) = single();
    let mut c = connect(addr);
    let up = pattern(1, 1 << 20);
    let writer = {
        let mut w = c.try_clone().unwrap();
        let up = up.clone();
        std::thread::spawn(move || w.write_all(&up).unwrap())
    };
    assert_eq!(collect(&owner, up.len()), up);
    writer.join().unwrap();
    let down = pattern(2, 1 << 20);
    let reader = std::thread::spawn(move || {
        let got = read_n(&mut c, 1 << 20);
        (got, c)
    });
    send(&owner, &down);
    let (got, _c) = reader.join().unwrap();
    assert!(got == down, "bytes to the client changed");
    running.stop();
}

#[test]
fn a_second_client_waits_and_is_served_when_the_first_has_gone() {
    let (addr, _single, owner, running) = single();
    let mut first = connect(addr);
    first.write_all(b"first").unwrap();
    assert_eq!(collect(&owner, 5), b"first");
    // The second connects (into the backlog) and sends; nothing of it
    // comes out while the first is connected.
    let mut second = connect(addr);
    second.write_all(b"second").unwrap();
    owner.outbox.send(b"to the first".to_vec()).unwrap();
    assert_eq!(read_n(&mut first, 12), b"to the first");
    // The first goes: producerFinished, then the second is served.
    first.shutdown(Shutdown::Write).unwrap();
    assert!(sees_eof(&mut first));
    assert_eq!(
        owner.control.recv_timeout(DEADLINE),
        Some(Control::ProducerFinished)
    );
    assert_eq!(collect(&owner, 6), b"second");
    owner.outbox.send(b"to the second".to_vec()).unwrap();
    assert_eq!(read_n(&mut second, 13), b"to the second");
    running.stop();
}

#[test]
fn shutdown_microprocess_closes_the_client_and_ends_the_server() {
    let (addr, single, owner, running) = single();
    let mut c = connect(addr);
    c.write_all(b"x").unwrap();
    assert_eq!(collect(&owner, 1), b"x");
    owner.signal.send(Control::ShutdownMicroprocess).unwrap();
    assert!(sees_eof(&mut c));
    testkit::wait_until("the server to end", || single.is_done());
    running.join();
}
