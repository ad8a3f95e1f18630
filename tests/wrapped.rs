//! Wrapped connections: Kamaelia's `ServerCore.TCPS` and `TCPServer.CSA`
//! overrides ([`TcpServer::with_csa`], [`ServerCore::with_server`]).
//!
//! Each connection's CSA is wrapped in a Graphline with a tap that counts
//! the bytes the client sent, between the CSA's `outbox` and the
//! wrapper's. The tap carries the CSA's `readShutdown` too, after the
//! bytes it has passed on: the handler must see the last chunk before it
//! hears the client will send no more (C7). Everything else the server
//! and ServerCore link (`inbox`, `control`, `ReadReady`, `SendReady`,
//! `CreatorFeedback`) passes straight through to the CSA.
//!
//! The tests in this file run one at a time ([`serial`]): some count this
//! process's descriptors, which the others would disturb.

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axon::{boxes, Component, Control, Cx, Graphline, Handle, Inbox, Outbox, Step};
use chassis::{ConnectionInfo, Csa, ServerCore, ServerOptions, SimpleServer, TcpServer};
use csa::ShutdownCsa;
use testkit::{
    any_loopback_port, assert_each_closed_unanswered, connect, open_fds, pattern, read_n,
    read_to_eof, round_trip, sees_eof, shards, wait_until, PanicsOnInput, Running,
};

/// Runs the tests of this file one at a time (a failed one does not poison
/// the rest).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

boxes! {
    /// The counting tap's boxes.
    pub struct TapBoxes {
        /// bytes the CSA read from the client
        pub inbox: Inbox<Vec<u8>>,
        /// the CSA's readShutdown: the client will send no more
        pub control: Inbox<Control>,
        /// the CSA's shutdownCSA: the connection is over
        #[name = "csaSignal"]
        pub csa_signal: Inbox<ShutdownCsa>,
        /// the same bytes, on to the handler
        pub outbox: Outbox<Vec<u8>>,
        /// readShutdown, on to the handler once the bytes before it are
        pub signal: Outbox<Control>,
    }
}

/// Counts the bytes passing from a CSA to its handler.
struct Tap {
    count: Arc<AtomicUsize>,
    /// A chunk the handler had no room for yet (A5).
    held: Option<Vec<u8>>,
}

impl Component for Tap {
    type Boxes = TapBoxes;

    fn main(&mut self, cx: &mut Cx<TapBoxes>) -> Step {
        let over = cx.csa_signal.recv().is_some();
        loop {
            let chunk = match self.held.take() {
                Some(chunk) => chunk,
                None => match cx.inbox.recv() {
                    Some(chunk) => {
                        self.count.fetch_add(chunk.len(), Ordering::Relaxed);
                        chunk
                    }
                    None => break,
                },
            };
            if let Err(full) = cx.outbox.send(chunk) {
                if over {
                    // The socket is gone: no reply could be written.
                    return Step::Done;
                }
                self.held = Some(full.into_inner()); // woken when there is room
                return Step::Pause;
            }
        }
        // Every byte before it has been passed on: now readShutdown.
        while let Some(c) = cx.control.recv() {
            let _ = cx.signal.send(c);
        }
        if over {
            return Step::Done;
        }
        Step::Pause
    }
}

/// The wrapper: a Graphline of the CSA and a [`Tap`] counting into
/// `count`, presenting the CSA's boxes.
fn counted(csa: Csa, count: &Arc<AtomicUsize>) -> Handle {
    let csa = Handle::new(csa);
    let tap = Handle::new(Tap {
        count: count.clone(),
        held: None,
    });
    // The CSA stops reading while the tap is full (C3), as it would for
    // the handler's bounded inbox.
    tap.set_inbox_size("inbox", Some(chassis::HANDLER_INBOX_LIMIT))
        .unwrap();
    let graph = Graphline::new(
        vec![("csa", csa.clone()), ("tap", tap)],
        &[
            (("self", "inbox"), ("csa", "inbox")),
            (("self", "control"), ("csa", "control")),
            (("self", "ReadReady"), ("csa", "ReadReady")),
            (("self", "SendReady"), ("csa", "SendReady")),
            (("csa", "CreatorFeedback"), ("self", "CreatorFeedback")),
            (("csa", "outbox"), ("tap", "inbox")),
            (("csa", "readShutdown"), ("tap", "control")),
            (("csa", "signal"), ("tap", "csaSignal")),
            (("tap", "outbox"), ("self", "outbox")),
            (("tap", "signal"), ("self", "readShutdown")),
        ],
    );
    match graph {
        Ok(graph) => graph.into(),
        // Cannot happen with fresh children; the plain CSA still serves.
        Err(_) => csa,
    }
}

/// A wrapped echo server on 127.0.0.1, port 0: its address, the count of
/// bytes its clients sent, the wrappers made, its scheduler running.
struct Wrapped {
    addr: SocketAddr,
    count: Arc<AtomicUsize>,
    made: Arc<Mutex<Vec<Handle>>>,
    core: Handle,
    running: Running,
}

fn wrapped_echo_server() -> Wrapped {
    let count = Arc::new(AtomicUsize::new(0));
    let made: Arc<Mutex<Vec<Handle>>> = Arc::default();
    let (c, m) = (count.clone(), made.clone());
    let server = TcpServer::bind(any_loopback_port(), ServerOptions::default())
        .unwrap()
        .with_csa(move |csa, _: &ConnectionInfo| {
            let wrapper = counted(csa, &c);
            m.lock().unwrap().push(wrapper.clone());
            wrapper
        });
    let core = ServerCore::with_server(|_: &ConnectionInfo| examples::Echo::new(), server)
        .threads(shards())
        .unwrap();
    let addr = core.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let core = scheduler.activate(core).unwrap();
    Wrapped {
        addr,
        count,
        made,
        core,
        running: Running::start(scheduler),
    }
}

#[test]
fn a_wrapped_connection_echoes_a_mebibyte_byte_exact_and_the_tap_counts_it() {
    let _serial = serial();
    let server = wrapped_echo_server();
    let sent = pattern(7, 1 << 20);
    let mut client = connect(server.addr);
    // Written from another thread while this one reads: the echo comes
    // back while the request is still going out.
    let writer = {
        let mut w = client.try_clone().unwrap();
        let sent = sent.clone();
        std::thread::spawn(move || w.write_all(&sent).unwrap())
    };
    let got = read_n(&mut client, sent.len());
    writer.join().unwrap();
    assert!(got == sent, "the echo differs from what was sent");
    assert_eq!(server.count.load(Ordering::Relaxed), sent.len());
    let made = server.made.lock().unwrap().clone();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].name(), "Graphline", "the wrapper serves, not a CSA");
    drop(client);
    wait_until("the wrapper to end", || made[0].is_done());
}

#[test]
fn c7_a_half_closing_client_of_a_wrapped_connection_gets_its_full_reply_then_eof() {
    let _serial = serial();
    let server = wrapped_echo_server();
    let sent = pattern(8, 1 << 20);
    let mut client = connect(server.addr);
    let writer = {
        let mut w = client.try_clone().unwrap();
        let sent = sent.clone();
        std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    // read_to_eof: the whole reply, and then the server closes.
    let got = read_to_eof(&mut client);
    writer.join().unwrap();
    assert_eq!(got.len(), sent.len(), "reply cut short");
    assert!(got == sent, "the echo differs from what was sent");
    assert_eq!(server.count.load(Ordering::Relaxed), sent.len());
}

#[test]
fn closing_wrapped_connections_gives_back_every_descriptor() {
    let _serial = serial();
    let start = open_fds();
    let server = wrapped_echo_server();
    // One connection first, so that everything made once (the Selector's
    // poller) is counted in `before`.
    let mut first = connect(server.addr);
    round_trip(&mut first, b"warm up");
    let with_first = open_fds();
    drop(first);
    let made = server.made.clone();
    let all_ended = || made.lock().unwrap().iter().all(|w| w.is_done());
    wait_until("the first wrapper to end", all_ended);
    // Its server socket closes when the Selector lets go of it, which may
    // be a moment after the wrapper ends: counted only once it has.
    wait_until("the first connection's descriptors to close", || {
        open_fds() == with_first - 2
    });
    let before = open_fds();
    let mut clients: Vec<_> = (0..20).map(|_| connect(server.addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        round_trip(c, format!("client {i}").as_bytes());
    }
    // Half of them close; the server closes the other half.
    let closing = clients.split_off(10);
    drop(closing);
    wait_until("ten wrappers to end", || {
        made.lock().unwrap().iter().filter(|w| w.is_done()).count() == 11
    });
    // Ten connections open: each a client's socket and the server's.
    wait_until("the closed connections' descriptors to close", || {
        open_fds() == before + 20
    });
    server
        .core
        .postbox::<Control>("control")
        .unwrap()
        .send(Control::ProducerFinished)
        .unwrap();
    for c in &mut clients {
        assert!(sees_eof(c), "a wrapped connection was left open");
    }
    server.running.join(); // the server, its connections and the Selector ended
    assert_eq!(made.lock().unwrap().len(), 21);
    assert!(all_ended(), "a wrapper outlived its connection");
    drop(clients);
    // Let go of what the test kept: a wrapper's boxes lead to the
    // server's, which may hold its last socketShutdown (and socket).
    made.lock().unwrap().clear();
    drop(server.core);
    wait_until("every descriptor to be closed again", || {
        open_fds() <= start
    });
    assert_eq!(open_fds(), start);
}

#[test]
fn a_factory_returning_a_component_without_the_csa_boxes_closes_that_connection_only() {
    let _serial = serial();
    let count = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, n) = (count.clone(), calls.clone());
    let server = TcpServer::bind(any_loopback_port(), ServerOptions::default())
        .unwrap()
        .with_csa(move |csa, _: &ConnectionInfo| {
            if n.fetch_add(1, Ordering::Relaxed) == 0 {
                // No ReadReady, SendReady, readShutdown, CreatorFeedback:
                // refused, and the CSA dropped with it.
                drop(csa);
                Handle::new(examples::Echo::new())
            } else {
                counted(csa, &c)
            }
        });
    let core = SimpleServer::with_server(examples::Echo::new, server);
    let addr = core.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let _core = scheduler.activate(core).unwrap();
    let _running = Running::start(scheduler);
    let before = open_fds();
    let mut refused = connect(addr);
    assert!(sees_eof(&mut refused), "the refused connection was kept");
    drop(refused);
    wait_until("the refused connection's descriptors to close", || {
        open_fds() <= before
    });
    let mut next = connect(addr);
    round_trip(&mut next, b"still serving");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(count.load(Ordering::Relaxed), b"still serving".len());
}

#[test]
fn a_factory_returning_the_csa_itself_serves_as_without_one() {
    let _serial = serial();
    let server = TcpServer::bind(any_loopback_port(), ServerOptions::default())
        .unwrap()
        .with_csa(|csa, _: &ConnectionInfo| csa);
    let core = SimpleServer::with_server(examples::Echo::new, server);
    let addr = core.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let _core = scheduler.activate(core).unwrap();
    let _running = Running::start(scheduler);
    let mut c = connect(addr);
    round_trip(&mut c, b"plain");
    c.shutdown(Shutdown::Write).unwrap();
    assert!(sees_eof(&mut c));
}

/// H3 through a wrapper: ServerCore finds a handler's connection through
/// the linkage of its `signal`, which leads to the wrapper in the CSA's
/// place (not to the CSA inside it): a panicking handler's connection is
/// still closed, and the server goes on serving.
#[test]
fn h3_a_panicking_handler_of_a_wrapped_connection_has_its_connection_closed() {
    let _serial = serial();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let server = TcpServer::bind(any_loopback_port(), ServerOptions::default())
        .unwrap()
        .with_csa(move |csa, _: &ConnectionInfo| counted(csa, &c));
    let core = SimpleServer::with_server(|| PanicsOnInput, server);
    let addr = core.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let core = scheduler.activate(core).unwrap();
    let running = Running::start(scheduler);
    assert_each_closed_unanswered(addr, b"boom", 3);
    assert!(!core.is_done());
    assert_eq!(count.load(Ordering::Relaxed), 3 * b"boom".len());
    running.stop();
}
