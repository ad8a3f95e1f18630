//! ServerCore / SimpleServer (H1–H6) and TCPClient (H7).

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axon::{boxes, link, Component, Control, Cx, Endpoint, Handle, Inbox, Outbox, Standard, Step};
use chassis::{ConnectionInfo, ServerCore, ServerOptions};
use tcpclient::TcpClient;
use util::*;

/// Records the control messages a handler receives; echoes data.
struct Recorder {
    log: Arc<Mutex<Vec<Control>>>,
}

impl Component for Recorder {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while let Some(b) = cx.inbox.recv() {
            let _ = cx.outbox.send(b);
        }
        if let Some(c) = cx.control.recv() {
            self.log.lock().unwrap().push(c);
            return Step::Done;
        }
        Step::Pause
    }
}

#[test]
fn h1_h2_each_connection_gets_a_handler_made_with_its_addresses() {
    let seen: Arc<Mutex<Vec<ConnectionInfo>>> = Arc::default();
    let made = seen.clone();
    let (addr, _core, scheduler) = activate_on_new_scheduler(
        ServerCore::new(
            move |info: &ConnectionInfo| {
                made.lock().unwrap().push(*info);
                examples::Echo::new()
            },
            any_loopback_port(),
            ServerOptions::default(),
        )
        .unwrap(),
    );
    let _running = Running::start(scheduler);
    let mut a = connect(addr);
    let mut b = connect(addr);
    round_trip(&mut a, b"to a");
    round_trip(&mut b, b"to b");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for client in [&a, &b] {
        let info = seen
            .iter()
            .find(|i| i.peer == client.local_addr().unwrap())
            .expect("a handler per connection, told the peer address");
        assert_eq!(info.local, addr);
    }
}

#[test]
fn h3_disconnection_tells_the_handler_socket_shutdown() {
    let log: Arc<Mutex<Vec<Control>>> = Arc::default();
    let handlers: Arc<Mutex<Vec<Handle>>> = Arc::default();
    let (l, h) = (log.clone(), handlers.clone());
    let (addr, _core, _running) = server_with(
        move || {
            let handler = Handle::new(Recorder { log: l.clone() });
            h.lock().unwrap().push(handler.clone());
            handler
        },
        ServerOptions::default(),
    );
    let mut c = connect(addr);
    round_trip(&mut c, b"hi");
    drop(c);
    let handler = handlers.lock().unwrap()[0].clone();
    wait_until("the handler to end", || handler.is_done());
    assert_eq!(log.lock().unwrap()[0], Control::SocketShutdown);
}

/// H2 with handlers of two types, their boxes in different orders and one
/// with a `serversignal` outbox, made in turn: ServerCore finds each box by
/// its place for the type it was found in, so a handler of the other type
/// must be wired by its own boxes (a place kept from the wrong type would
/// link the wrong box, or fail to link).
#[test]
fn h2_h3_handlers_of_two_types_in_turn_are_each_wired_by_their_own_boxes() {
    boxes! {
        /// A handler's boxes in another order, with `serversignal` too.
        struct BackwardsBoxes {
            /// stops the server (never used here)
            serversignal: Outbox<Control>,
            /// producerFinished
            signal: Outbox<Control>,
            /// data to the client
            outbox: Outbox<Vec<u8>>,
            /// socketShutdown
            control: Inbox<Control>,
            /// data from the client
            inbox: Inbox<Vec<u8>>,
        }
    }
    /// Echoes in upper case, so the client can tell which type served it.
    struct Backwards {
        log: Arc<Mutex<Vec<Control>>>,
    }
    impl Component for Backwards {
        type Boxes = BackwardsBoxes;

        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            while let Some(b) = cx.inbox.recv() {
                if b == b"stop" {
                    let _ = cx.serversignal.send(Control::ShutdownMicroprocess);
                } else {
                    let _ = cx.outbox.send(b.to_ascii_uppercase());
                }
            }
            if let Some(c) = cx.control.recv() {
                self.log.lock().unwrap().push(c);
                return Step::Done;
            }
            Step::Pause
        }
    }
    let log: Arc<Mutex<Vec<Control>>> = Arc::default();
    let handlers: Arc<Mutex<Vec<Handle>>> = Arc::default();
    let (l, h) = (log.clone(), handlers.clone());
    // Shared, not per closure: with shards each has its own copy of the
    // factory, and the connections come one at a time in this test.
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (addr, _core, running) = server_with(
        move || {
            let n = made.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let handler = if n % 2 == 1 {
                Handle::new(Recorder { log: l.clone() })
            } else {
                Handle::new(Backwards { log: l.clone() })
            };
            h.lock().unwrap().push(handler.clone());
            handler
        },
        ServerOptions::default(),
    );
    let mut clients = Vec::new();
    for i in 0..6 {
        let mut c = connect(addr);
        let want: &[u8] = if i % 2 == 0 { b"same" } else { b"SAME" };
        c.write_all(b"same").unwrap();
        let mut got = [0u8; 4];
        std::io::Read::read_exact(&mut c, &mut got).unwrap();
        assert_eq!(&got, want, "connection {i} served by its own type");
        clients.push(c);
    }
    // H3 for both types: each handler is told socketShutdown and ends.
    drop(clients);
    let handlers = handlers.lock().unwrap().clone();
    for handler in &handlers {
        wait_until("every handler to end", || handler.is_done());
    }
    {
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 6);
        assert!(log.iter().all(|c| *c == Control::SocketShutdown), "{log:?}");
    }
    // The server goes on serving after both types have come and gone, and
    // only the type with `serversignal` has it wired (H2): it stops the
    // server.
    let mut first = connect(addr);
    round_trip(&mut first, b"after");
    let mut second = connect(addr);
    second.write_all(b"stop").unwrap();
    assert!(sees_eof(&mut first) && sees_eof(&mut second));
    running.join();
}

#[test]
fn h4_shutdown_closes_every_connection_and_stops_the_server() {
    let (addr, core, running) = echo_server();
    let mut clients: Vec<_> = (0..5).map(|_| connect(addr)).collect();
    for c in &mut clients {
        round_trip(c, b"x");
    }
    core.postbox::<Control>("control")
        .unwrap()
        .send(Control::ShutdownMicroprocess)
        .unwrap();
    for c in &mut clients {
        assert!(sees_eof(c), "a connection was left open");
    }
    running.join(); // server, connections and Selector all ended
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn h5_h6_a_handler_closes_its_connection_with_producer_finished() {
    struct Greeter;
    impl Component for Greeter {
        type Boxes = Standard<Vec<u8>, Vec<u8>>;

        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            let _ = cx.outbox.send(b"hello and goodbye\n".to_vec());
            let _ = cx.signal.send(Control::ProducerFinished);
            Step::Done
        }
    }
    let (addr, _core, _running) = server_with(|| Greeter, ServerOptions::default());
    let mut c = connect(addr);
    assert_eq!(read_to_eof(&mut c), b"hello and goodbye\n");
}

#[test]
fn h6_a_handler_serversignal_stops_the_whole_server() {
    boxes! {
        /// A handler's four boxes plus `serversignal`.
        struct StopperBoxes {
            /// data from the client
            inbox: Inbox<Vec<u8>>,
            /// socketShutdown
            control: Inbox<Control>,
            /// data to the client
            outbox: Outbox<Vec<u8>>,
            /// producerFinished
            signal: Outbox<Control>,
            /// stops the server
            serversignal: Outbox<Control>,
        }
    }
    struct Stopper;
    impl Component for Stopper {
        type Boxes = StopperBoxes;

        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            if cx.inbox.recv().is_some() {
                let _ = cx.serversignal.send(Control::ShutdownMicroprocess);
            }
            if cx.control.recv().is_some() {
                return Step::Done;
            }
            Step::Pause
        }
    }
    let (addr, _core, running) = server_with(|| Stopper, ServerOptions::default());
    let mut c = connect(addr);
    c.write_all(b"stop").unwrap();
    assert!(sees_eof(&mut c));
    running.join();
}

/// A TCPClient's peer in the test: the tests link the probe's `outbox` and
/// `signal` to the client's `inbox` and `control`, and the client's
/// `outbox` and `signal` to the probe's `inbox` and `control`.
type ClientProbe = Endpoint<Standard<Vec<u8>, Vec<u8>>>;

fn client_probe() -> ClientProbe {
    Endpoint::new("probe")
}

/// The first `n` bytes arriving in the probe's inbox, however chunked.
fn echoed(me: &ClientProbe, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        got.extend(me.inbox.recv_timeout(DEADLINE).expect("echo"));
    }
    got
}

#[test]
fn h7_tcpclient_talks_to_our_tcpserver() {
    let (addr, _core, server) = echo_server();
    let scheduler = selector::scheduler().unwrap();
    let client = Handle::new(TcpClient::new(addr));
    let me = client_probe();
    link((me.handle(), "outbox"), (&client, "inbox")).unwrap();
    link((&client, "outbox"), (me.handle(), "inbox")).unwrap();
    link((me.handle(), "signal"), (&client, "control")).unwrap();
    link((&client, "signal"), (me.handle(), "control")).unwrap();
    scheduler.activate(&client).unwrap();
    let running = Running::start(scheduler);
    // Sent before the connection exists: waits in the client's inbox and
    // moves on when it connects (A4).
    me.outbox.send(b"hello ".to_vec()).unwrap();
    me.outbox.send(b"server".to_vec()).unwrap();
    assert_eq!(echoed(&me, 12), b"hello server");
    me.signal.send(Control::ProducerFinished).unwrap();
    assert_eq!(
        me.control.recv_timeout(DEADLINE),
        Some(Control::ProducerFinished)
    );
    wait_until("the client to end", || client.is_done());
    // The Selector service lives on (as in Kamaelia) until told to stop.
    drop(running);
    drop(server);
}

#[test]
fn h7_tcpclient_with_a_delay_connects_after_it_and_sends_what_waited() {
    let delay = Duration::from_millis(300);
    let (addr, _core, server) = echo_server();
    let scheduler = selector::scheduler().unwrap();
    let client = Handle::new(TcpClient::with_delay(addr, delay));
    let me = client_probe();
    link((me.handle(), "outbox"), (&client, "inbox")).unwrap();
    link((&client, "outbox"), (me.handle(), "inbox")).unwrap();
    let started = Instant::now();
    scheduler.activate(&client).unwrap();
    let running = Running::start(scheduler);
    me.outbox.send(b"sent during the delay".to_vec()).unwrap();
    assert_eq!(echoed(&me, 21), b"sent during the delay");
    // The echo needs the connection, which waited for the delay.
    assert!(
        started.elapsed() >= delay,
        "echoed after {:?}, before the {delay:?} delay was over",
        started.elapsed()
    );
    running.handle.stop();
    drop(running);
    drop(server);
}

#[test]
fn h7_tcpclient_stopped_during_its_delay_never_connects() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let scheduler = selector::scheduler().unwrap();
    let client = Handle::new(TcpClient::with_delay(addr, Duration::from_secs(3600)));
    let me = client_probe();
    link((me.handle(), "signal"), (&client, "control")).unwrap();
    link((&client, "signal"), (me.handle(), "control")).unwrap();
    scheduler.activate(&client).unwrap();
    let running = Running::start(scheduler);
    me.signal.send(Control::ShutdownMicroprocess).unwrap();
    assert_eq!(
        me.control.recv_timeout(DEADLINE),
        Some(Control::ShutdownMicroprocess),
        "a client stopped before connecting reports it on signal"
    );
    wait_until("the client to end", || client.is_done());
    assert!(listener.accept().is_err(), "it never connected");
    running.handle.stop();
    drop(running);
}

#[test]
fn h7_a_refused_connection_is_reported_on_signal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let scheduler = selector::scheduler().unwrap();
    let client = Handle::new(TcpClient::new(addr));
    let me = client_probe();
    link((&client, "signal"), (me.handle(), "control")).unwrap();
    scheduler.activate(&client).unwrap();
    let running = Running::start(scheduler);
    assert_eq!(
        me.control.recv_timeout(DEADLINE),
        Some(Control::ShutdownMicroprocess)
    );
    running.handle.stop();
    drop(running);
}

/// Answers only when its input ends: collects everything, then sends it
/// back on `socketShutdown` and says producerFinished.
struct Accumulator {
    got: Vec<u8>,
    seen: Arc<std::sync::atomic::AtomicUsize>,
}

impl Component for Accumulator {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while let Some(b) = cx.inbox.recv() {
            self.got.extend_from_slice(&b);
            self.seen
                .store(self.got.len(), std::sync::atomic::Ordering::SeqCst);
        }
        if cx.control.recv().is_some() {
            let _ = cx.outbox.send(std::mem::take(&mut self.got));
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}

#[test]
fn h4_graceful_stop_answers_everything_taken_then_closes() {
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = seen.clone();
    let (addr, core, running) = server_with(
        move || Accumulator {
            got: Vec::new(),
            seen: s.clone(),
        },
        ServerOptions::default(),
    );
    let mut c = connect(addr);
    let request = pattern(4, 200_000);
    c.write_all(&request).unwrap();
    wait_until("the server to take the whole request", || {
        seen.load(std::sync::atomic::Ordering::SeqCst) == request.len()
    });
    // producerFinished: a graceful stop. The client has not half-closed,
    // yet its handler is told its input is over, answers, and only then
    // does the connection close.
    core.postbox::<Control>("control")
        .unwrap()
        .send(Control::ProducerFinished)
        .unwrap();
    assert!(read_to_eof(&mut c) == request, "the reply was cut short");
    running.join();
}
