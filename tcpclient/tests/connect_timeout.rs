//! H7, Kamaelia's `connect_timeout`: a connect that never completes fails
//! as a refused one does (`shutdownMicroprocess` out of `signal`),
//! withdrawn from the Selector; waits are timers, not polling.
//!
//! A connect that hangs, on loopback alone: a listener that never accepts,
//! its accept queue filled by another connect, so that Linux drops every
//! further SYN (see `util::Hanging`).

mod util;

use std::time::{Duration, Instant};

use axon::Control;
use tcpclient::TcpClient;
use testkit::{wait_until, DEADLINE};
use util::{collect_until_signal, start, syn_sent_to, Hanging, Refusing};

#[test]
fn h7_a_connect_that_never_completes_times_out() {
    let hanging = Hanging::new();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let (user, running) = start(TcpClient::new(hanging.addr).with_connect_timeout(timeout));
    let (got, signal) = collect_until_signal(&user);
    let took = started.elapsed();
    assert_eq!(signal, Control::ShutdownMicroprocess);
    assert!(got.is_empty());
    // Sooner would mean the connect did not hang (it was refused, say).
    assert!(took >= timeout, "ended after {took:?}, before the timeout");
    assert!(took < DEADLINE, "ended after {took:?}");
    // `run` returns by itself only once the Selector has nothing left
    // registered: the abandoned connect was withdrawn.
    running.join();
}

#[test]
fn h7_a_refused_connect_ends_with_shutdown_microprocess() {
    let refusing = Refusing::new();
    let (user, running) = start(TcpClient::new(refusing.addr));
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ShutdownMicroprocess);
    assert!(got.is_empty());
    running.join();
}

#[test]
fn h7_shutdown_microprocess_while_connecting_ends_the_client_at_once() {
    let hanging = Hanging::new();
    // The default timeout (60 s) is far beyond the test's deadline: only
    // the shutdown can end this client in time.
    let (user, running) = start(TcpClient::new(hanging.addr));
    wait_until("the client's connect to be in SYN-SENT", || {
        syn_sent_to(hanging.addr)
    });
    user.signal.send(Control::ShutdownMicroprocess).unwrap();
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ShutdownMicroprocess);
    assert!(got.is_empty());
    running.join();
}
