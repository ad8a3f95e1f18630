//! H7, host names: `TcpClient::to_host(host, port)` resolves on a thread
//! of its own (the scheduler goes on meanwhile), tries the addresses in
//! order, and ends with `shutdownMicroprocess` on a name that does not
//! resolve. Only loopback traffic: the one name looked up in the system's
//! resolver that is not `localhost` is under `.invalid` (RFC 6761), and
//! that test passes quickly whether the machine has DNS or none.

mod util;

use std::fmt;
use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use axon::{link, Component, Control, Cx, Endpoint, Standard, Step};
use tcpclient::TcpClient;
use testkit::{Running, DEADLINE};
use util::{collect_until_signal, echo_server, read_n_from, start, wire, Hanging, Refusing};

#[test]
fn h7_a_name_that_does_not_resolve_ends_with_shutdown_microprocess() {
    // With DNS the name is NXDOMAIN at once; with none the lookup fails at
    // once; with a DNS server that never answers the timeout ends it.
    let timeout = Duration::from_secs(5);
    let started = Instant::now();
    let client = TcpClient::to_host("no-such-host.invalid", 80).with_connect_timeout(timeout);
    let (user, running) = start(client);
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ShutdownMicroprocess);
    assert!(got.is_empty());
    assert!(started.elapsed() < timeout + Duration::from_secs(5));
    running.join();
}

#[test]
fn h7_localhost_resolves_and_connects() {
    let (addr, server) = echo_server();
    let (user, running) = start(TcpClient::to_host("localhost", addr.port()));
    user.outbox.send(b"hello".to_vec()).unwrap();
    assert_eq!(read_n_from(&user, 5), b"hello");
    user.signal.send(Control::ProducerFinished).unwrap();
    let (rest, signal) = collect_until_signal(&user);
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(signal, Control::ProducerFinished);
    server.join().unwrap();
    running.join();
}

#[test]
fn h7_an_ip_address_as_the_host_is_not_resolved() {
    let (addr, server) = echo_server();
    let client = TcpClient::to_host("127.0.0.1", addr.port())
        .with_resolver(|host, _| panic!("{host} was sent to the resolver"));
    let (user, running) = start(client);
    user.outbox.send(b"direct".to_vec()).unwrap();
    user.signal.send(Control::ProducerFinished).unwrap();
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(got, b"direct");
    assert_eq!(signal, Control::ProducerFinished);
    server.join().unwrap();
    running.join();
}

#[test]
fn h7_addresses_are_tried_in_order_until_one_connects() {
    let refusing = Refusing::new();
    let hanging = Hanging::new();
    let (good, server) = echo_server();
    let timeout = Duration::from_millis(300);
    let order = vec![refusing.addr, hanging.addr, good];
    let client = TcpClient::to_host("three.example", 7)
        .with_resolver(move |_, _| Ok(order))
        .with_connect_timeout(timeout);
    let started = Instant::now();
    let (user, running) = start(client);
    user.outbox.send(b"third time lucky".to_vec()).unwrap();
    user.signal.send(Control::ProducerFinished).unwrap();
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(got, b"third time lucky");
    assert_eq!(signal, Control::ProducerFinished);
    // The refused address gave way at once, the hanging one at its
    // timeout.
    assert!(started.elapsed() >= timeout);
    server.join().unwrap();
    running.join();
}

#[test]
fn h7_a_name_whose_every_address_fails_ends_with_shutdown_microprocess() {
    let (first, second) = (Refusing::new(), Refusing::new());
    let order = vec![first.addr, second.addr];
    let client = TcpClient::to_host("nowhere.example", 7).with_resolver(move |_, _| Ok(order));
    let (user, running) = start(client);
    let (_, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ShutdownMicroprocess);
    running.join();
}

/// Answers each number with itself, and notes the thread it runs on.
struct Echo {
    thread: Arc<Mutex<Option<ThreadId>>>,
}

impl Component for Echo {
    type Boxes = Standard<u32, u32>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        *self.thread.lock().unwrap() = Some(thread::current().id());
        while let Some(n) = cx.inbox.recv() {
            let _ = cx.outbox.send(n);
        }
        Step::Pause
    }
}

/// A resolver that says when it has been called (and on which thread) and
/// then blocks until it is told what to answer.
fn blocking_resolver() -> (
    impl FnOnce(&str, u16) -> tcpclient::Resolved + Send + 'static,
    mpsc::Receiver<ThreadId>,
    mpsc::Sender<tcpclient::Resolved>,
) {
    let (called, on) = mpsc::channel();
    let (answer, answers) = mpsc::channel();
    let resolver = move |_: &str, _: u16| {
        let _ = called.send(thread::current().id());
        answers
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| Err(io::Error::other("the test never answered")))
    };
    (resolver, on, answer)
}

#[test]
fn h7_resolution_runs_off_the_scheduler_thread_which_goes_on() {
    let (addr, server) = echo_server();
    let (resolver, called, answer) = blocking_resolver();
    let client = TcpClient::to_host("slow.example", 7).with_resolver(resolver);
    let (user, _client, scheduler) = wire(client);
    let seen_on = Arc::new(Mutex::new(None));
    let echo = scheduler
        .activate(Echo {
            thread: seen_on.clone(),
        })
        .unwrap();
    let pinger = Endpoint::<Standard<u32, u32>>::new("pinger");
    link((pinger.handle(), "outbox"), (&echo, "inbox")).unwrap();
    link((&echo, "outbox"), (pinger.handle(), "inbox")).unwrap();
    let running = Running::start(scheduler);

    let resolver_thread = called
        .recv_timeout(DEADLINE)
        .expect("the resolver was called");
    // The resolver is blocked now; the scheduler still runs components.
    for n in 0..3 {
        pinger.outbox.send(n).unwrap();
        assert_eq!(pinger.inbox.recv_timeout(DEADLINE), Some(n));
    }
    let scheduler_thread = seen_on.lock().unwrap().expect("Echo ran");
    assert_ne!(resolver_thread, scheduler_thread);
    assert_ne!(resolver_thread, thread::current().id());

    answer.send(Ok(vec![addr])).unwrap();
    user.outbox.send(b"resolved".to_vec()).unwrap();
    assert_eq!(read_n_from(&user, 8), b"resolved");
    user.signal.send(Control::ProducerFinished).unwrap();
    let (_, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ProducerFinished);
    server.join().unwrap();
    running.stop();
}

/// An error whose drop says whether it happened in a panic: a resolver's
/// answer that reports where it ends up.
struct Tracer(mpsc::Sender<bool>);

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tracer")
    }
}

impl fmt::Display for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a late answer")
    }
}

impl std::error::Error for Tracer {}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.0.send(thread::panicking());
    }
}

#[test]
fn h7_shutdown_while_resolving_ends_without_waiting_for_the_resolver() {
    let (resolver, called, answer) = blocking_resolver();
    let client = TcpClient::to_host("never.example", 7).with_resolver(resolver);
    let (user, client, scheduler) = wire(client);
    let running = Running::start(scheduler);
    called
        .recv_timeout(DEADLINE)
        .expect("the resolver was called");

    user.signal.send(Control::ShutdownMicroprocess).unwrap();
    let (got, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ShutdownMicroprocess);
    assert!(got.is_empty());
    // The resolver is still blocked, and the scheduler has returned.
    running.join();
    drop((user, client));

    // Its late answer goes into the ended client's `_resolved` and is
    // dropped with it, not in a panic.
    let (dropped, in_a_panic) = mpsc::channel();
    answer.send(Err(io::Error::other(Tracer(dropped)))).unwrap();
    let panicking = in_a_panic
        .recv_timeout(DEADLINE)
        .expect("the late answer was never dropped");
    assert!(!panicking, "the late answer was dropped in a panic");
}

#[test]
fn h7_a_resolver_that_panics_counts_as_a_name_that_does_not_resolve() {
    let client = TcpClient::to_host("broken.example", 7)
        .with_resolver(|_, _| panic!("a resolver bug (this panic is part of the test)"));
    let (user, running) = start(client);
    let (_, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ShutdownMicroprocess);
    running.join();
}

#[test]
fn h7_a_resolver_that_never_answers_times_out() {
    let (resolver, called, _answer) = blocking_resolver();
    let timeout = Duration::from_millis(200);
    let client = TcpClient::to_host("silent.example", 7)
        .with_resolver(resolver)
        .with_connect_timeout(timeout);
    let started = Instant::now();
    let (user, running) = start(client);
    called
        .recv_timeout(DEADLINE)
        .expect("the resolver was called");
    let (_, signal) = collect_until_signal(&user);
    assert_eq!(signal, Control::ShutdownMicroprocess);
    assert!(started.elapsed() >= timeout);
    running.join();
}
