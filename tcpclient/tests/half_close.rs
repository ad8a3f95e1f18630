//! H7, `producerFinished` and Kamaelia's `wait_for_serverclose`.
//!
//! By default `producerFinished` half-closes: everything sent is written,
//! the server reads EOF, and its answer, however long and however late,
//! still comes out of the client's `outbox` before `producerFinished` on
//! `signal`. With `wait_for_serverclose` it is swallowed, as in Kamaelia:
//! nothing is shut down and the client ends when the server closes.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;

use axon::Control;
use tcpclient::TcpClient;
use testkit::{pattern, read_n, read_to_eof, DEADLINE};
use util::{collect_until_signal, read_n_from, serve_one, start, wire};

#[test]
fn h7_producer_finished_half_closes_and_the_whole_answer_arrives() {
    const ANSWER: usize = 1 << 20;
    // The server answers only once it has seen the client's FIN.
    let (addr, server) = serve_one(|mut s| {
        let request = read_to_eof(&mut s);
        assert_eq!(request, b"GET /big\r\n\r\n");
        s.write_all(&pattern(7, ANSWER)).unwrap();
    });
    let (user, running) = start(TcpClient::new(addr));
    user.outbox.send(b"GET /big".to_vec()).unwrap();
    user.outbox.send(b"\r\n\r\n".to_vec()).unwrap();
    user.signal.send(Control::ProducerFinished).unwrap();
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(got.len(), ANSWER);
    assert!(got == pattern(7, ANSWER), "the answer was corrupted");
    assert_eq!(signal, Control::ProducerFinished);
    server.join().unwrap();
    running.join();
}

#[test]
fn h7_producer_finished_sent_once_connected_half_closes_too() {
    let (addr, server) = serve_one(|mut s| {
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).unwrap();
        s.write_all(b"hi\n").unwrap();
        let rest = read_to_eof(&mut s);
        s.write_all(&[b"got ", &rest[..]].concat()).unwrap();
    });
    let (user, running) = start(TcpClient::to_host("localhost", addr.port()));
    user.outbox.send(b"hello".to_vec()).unwrap();
    assert_eq!(read_n_from(&user, 3), b"hi\n");
    user.outbox.send(b"bye".to_vec()).unwrap();
    user.signal.send(Control::ProducerFinished).unwrap();
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(got, b"got bye");
    assert_eq!(signal, Control::ProducerFinished);
    server.join().unwrap();
    running.join();
}

#[test]
fn h7_wait_for_serverclose_keeps_the_connection_open_until_the_server_closes() {
    let (check, checked) = mpsc::channel::<()>();
    let (addr, server) = serve_one(move |mut s| {
        assert_eq!(read_n(&mut s, 7), b"request");
        s.write_all(b"answer").unwrap();
        // Once the user has the answer (and the client its
        // producerFinished, long since) the client has not shut anything
        // down: no EOF waits here, just nothing to read.
        checked.recv_timeout(DEADLINE).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("the client half-closed or sent more: {other:?}"),
        }
        s.set_nonblocking(false).unwrap();
        // The server closes: that ends the client, which closes too.
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(read_to_eof(&mut s).is_empty());
    });
    let client = TcpClient::new(addr).with_wait_for_serverclose(true);
    let (user, _, scheduler) = wire(client);
    // Both before the connection exists: Kamaelia's HTTP client's shape.
    user.outbox.send(b"request".to_vec()).unwrap();
    user.signal.send(Control::ProducerFinished).unwrap();
    let running = testkit::Running::start(scheduler);
    assert_eq!(read_n_from(&user, 6), b"answer");
    // Another one once connected is swallowed as well.
    user.signal.send(Control::ProducerFinished).unwrap();
    check.send(()).unwrap();
    let (rest, signal) = collect_until_signal(&user);
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(signal, Control::ProducerFinished);
    server.join().unwrap();
    running.join();
}

#[test]
fn h7_wait_for_serverclose_still_stops_on_shutdown_microprocess() {
    let (addr, server) = serve_one(|mut s| {
        assert_eq!(read_n(&mut s, 4), b"ping");
        s.write_all(b"pong").unwrap();
        // The client closes when told to stop, though the server has not.
        assert!(read_to_eof(&mut s).is_empty());
    });
    let client = TcpClient::new(addr).with_wait_for_serverclose(true);
    let (user, running) = start(client);
    user.outbox.send(b"ping".to_vec()).unwrap();
    user.signal.send(Control::ProducerFinished).unwrap();
    assert_eq!(read_n_from(&user, 4), b"pong");
    user.signal.send(Control::ShutdownMicroprocess).unwrap();
    let (_, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ProducerFinished);
    server.join().unwrap();
    running.join();
}
