//! One test per bug found, named after the bug as a user met it.
//!
//! Each of these failed before its fix (checked by reverting the fix) and
//! passes now. They use real sockets on 127.0.0.1, port 0, and wait on
//! events with deadlines ([`testkit::DEADLINE`]).
//!
//! The tests in this file run one at a time ([`serial`]): one of them
//! counts this process's descriptors, which the others would disturb.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use axon::{link, Component, Control, Cx, Endpoint, Handle, Postbox, Standard, Step};
use chassis::{ServerOptions, SimpleServer};
use tcpclient::TcpClient;
use testkit::{
    any_loopback_port, assert_each_closed_unanswered, collect_until_signal, connect, open_fds,
    read_to_eof, stop_gracefully, wait_until, PanicsOnInput, Running, User, DEADLINE,
};

/// Runs the tests of this file one at a time (a failed one does not poison
/// the rest).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blocking one-shot server thread: accepts one connection, reads the
/// request to EOF, answers `reply: <request>` and closes.
fn one_shot_server() -> (std::net::SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind(any_loopback_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut request = Vec::new();
        s.read_to_end(&mut request).unwrap();
        let mut reply = b"reply: ".to_vec();
        reply.extend_from_slice(&request);
        s.write_all(&reply).unwrap();
    });
    (addr, server)
}

/// A TCPClient to `addr` on a new Selector scheduler (not yet running),
/// wired to a [`User`] endpoint, with `request` and then
/// `producerFinished` already sent to it: both are waiting before the
/// connect has even started.
fn client_with_early_request(addr: std::net::SocketAddr, request: &[u8]) -> (User, Running) {
    let scheduler = selector::scheduler().unwrap();
    let client = scheduler.activate(TcpClient::new(addr)).unwrap();
    let user = User::new("user");
    link((user.handle(), "outbox"), (&client, "inbox")).unwrap();
    link((user.handle(), "signal"), (&client, "control")).unwrap();
    link((&client, "outbox"), (user.handle(), "inbox")).unwrap();
    link((&client, "signal"), (user.handle(), "control")).unwrap();
    user.outbox.send(request.to_vec()).unwrap();
    user.signal.send(Control::ProducerFinished).unwrap();
    (user, Running::start(scheduler))
}

/// Defect 1 of issue 9 (H7): `producerFinished` in `control` while the
/// client was still connecting was never looked at again, so the request
/// was never finished and the client hung (17 of 20 runs). Run 20 times.
#[test]
fn tcpclient_hung_when_producer_finished_came_before_the_connect_completed() {
    let _serial = serial();
    for round in 0..20 {
        let (addr, server) = one_shot_server();
        let request = format!("request {round}");
        let (user, running) = client_with_early_request(addr, request.as_bytes());
        let (got, signal) = collect_until_signal(&user);
        assert_eq!(
            String::from_utf8_lossy(&got),
            format!("reply: {request}"),
            "round {round}"
        );
        assert!(signal.is_producer_finished(), "round {round}: {signal:?}");
        server.join().unwrap();
        running.stop();
    }
}

/// Defect 6 of issue 9 (A8): once a TCPClient had ended, only the Selector
/// was left, and `Scheduler::run` never returned. It returns now that the
/// Selector, with nothing registered, counts as an idle service.
#[test]
fn scheduler_run_never_returned_after_a_tcpclient_ended() {
    let _serial = serial();
    let (addr, server) = one_shot_server();
    let (user, running) = client_with_early_request(addr, b"bye");
    let (got, _) = collect_until_signal(&user);
    assert_eq!(got, b"reply: bye");
    server.join().unwrap();
    // Returns by itself, or fails at the deadline.
    running.join();
}

/// Answers the first bytes it gets with `reply`, then ends in the way
/// `how` says, never with `producerFinished`.
struct AnswersThenEnds {
    reply: Vec<u8>,
    how: Option<Control>,
}

impl Component for AnswersThenEnds {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if cx.inbox.recv().is_none() {
            return Step::Pause;
        }
        cx.outbox
            .send(std::mem::take(&mut self.reply))
            .expect("the first send into an empty CSA inbox has room");
        if let Some(c) = self.how.take() {
            // A control box is unbounded: this cannot fail.
            let _ = cx.signal.send(c);
        }
        Step::Done
    }
}

/// Defect 2 of issue 9 (H3): a handler that panicked left its connection
/// open for ever (CLOSE-WAIT, the client waiting). ServerCore now closes
/// the CSA of a handler that ended any way at all.
#[test]
fn a_handler_that_panicked_left_its_connection_open_for_ever() {
    let _serial = serial();
    let server = SimpleServer::new(
        || PanicsOnInput,
        any_loopback_port(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let core = scheduler.activate(server).unwrap();
    let running = Running::start(scheduler);
    assert_each_closed_unanswered(addr, b"boom", 3);
    // The server itself goes on serving.
    assert!(!core.is_done());
    running.stop();
}

/// Defect 2 of issue 9 (H3), the quieter half: a handler that returned
/// `Step::Done` without `producerFinished` left its connection open. Its
/// reply is still written, and then the connection closes.
#[test]
fn a_handler_that_ended_without_producer_finished_left_its_connection_open() {
    let _serial = serial();
    let server = SimpleServer::new(
        || AnswersThenEnds {
            reply: b"last words".to_vec(),
            how: None,
        },
        any_loopback_port(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    let running = Running::start(scheduler);
    let mut c = connect(addr);
    c.write_all(b"hi").unwrap();
    assert_eq!(read_to_eof(&mut c), b"last words");
    running.stop();
}

/// C5 as we ship it: a reply sent out of `outbox` just before
/// `shutdownMicroprocess` out of `signal` was dropped with the connection.
/// The CSA now makes one pass writing what is queued before it closes.
#[test]
fn a_reply_sent_just_before_shutdown_microprocess_was_lost() {
    let _serial = serial();
    let reply = testkit::pattern(5, 4096);
    let expected = reply.clone();
    let server = SimpleServer::new(
        move || AnswersThenEnds {
            reply: reply.clone(),
            how: Some(Control::ShutdownMicroprocess),
        },
        any_loopback_port(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    let running = Running::start(scheduler);
    for _ in 0..10 {
        let mut c = connect(addr);
        c.write_all(b"go").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut c), expected);
    }
    running.stop();
}

/// Sends `0..n` through a postbox with [`Cx::send_to`], holding any item
/// refused with "no space in box" and pausing until woken (A5, A6).
struct PostboxSender {
    to: Postbox<u64>,
    next: u64,
    n: u64,
}

impl Component for PostboxSender {
    type Boxes = Standard<(), ()>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while self.next < self.n {
            if cx.send_to(&self.to, self.next).is_err() {
                return Step::Pause; // woken when the inbox has room (A6)
            }
            self.next += 1;
        }
        Step::Done
    }
}

/// Defect 5 of issue 9 (A6): a send through a postbox into a full inbox
/// never woke its sender when space freed, so it waited for ever. A
/// component sending with `Cx::send_to` is now woken like one sending out
/// of its own outbox.
#[test]
fn a_postbox_send_into_a_full_inbox_never_woke_its_sender() {
    let _serial = serial();
    const N: u64 = 1_000;
    let sink = Endpoint::<Standard<u64, ()>>::new("sink");
    sink.inbox.set_limit(Some(1));
    let scheduler = axon::Scheduler::new();
    scheduler
        .activate(PostboxSender {
            to: sink.inbox.postbox(),
            next: 0,
            n: N,
        })
        .unwrap();
    let running = Running::start(scheduler);
    for want in 0..N {
        assert_eq!(
            sink.inbox.recv_timeout(DEADLINE),
            Some(want),
            "the sender was not woken when the inbox had room"
        );
    }
    running.join();
}

/// Sets a timer an hour away and waits for it: a `wake_at` pending when
/// the scheduler stops.
struct DistantTimer {
    set: bool,
}

impl Component for DistantTimer {
    type Boxes = Standard<(), ()>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if !self.set {
            self.set = true;
            cx.wake_at(Instant::now() + Duration::from_secs(3600));
        }
        Step::Pause
    }
}

/// Defect 4 of issue 9: a stopped scheduler kept everything alive through
/// a reference cycle (a component's wake cell held the scheduler's shared
/// state, which owned the CAT, which held the Selector, its epoll
/// descriptor and every registered socket). After `stop()` and drop, with
/// a Selector serving a connection and a timer pending, every descriptor
/// is closed again.
#[test]
fn a_stopped_scheduler_kept_its_selector_and_sockets_alive() {
    let _serial = serial();
    let before = open_fds();
    {
        let server = SimpleServer::new(
            examples::Echo::new,
            any_loopback_port(),
            ServerOptions::default(),
        )
        .unwrap();
        let addr = server.local_addr();
        let scheduler = selector::scheduler().unwrap();
        let core: Handle = scheduler.activate(server).unwrap();
        let timer = scheduler.activate(DistantTimer { set: false }).unwrap();
        let running = Running::start(scheduler);
        let mut c = connect(addr);
        testkit::round_trip(&mut c, b"ping");
        running.stop();
        drop((core, timer));
        drop(c);
    }
    wait_until("every descriptor to be closed again", || {
        open_fds() <= before
    });
    assert_eq!(open_fds(), before);
}

/// Found while attacking the chat: a handler made as a pipeline,
/// `Pipeline(LineSplit, PureTransformer(upper))`, held its transformer
/// when the client did not read, but LineSplit went on filling the
/// transformer's unbounded inbox, so the connection never stopped
/// reading and the server buffered everything the client sent. A
/// pipeline now bounds the inboxes inside it (A5).
#[test]
fn a_pipeline_handler_buffered_everything_a_peer_that_never_reads_sent() {
    let _serial = serial();
    const MIB: usize = 1024 * 1024;
    fn upper() -> axon::Pipeline {
        let shout = |line: Vec<u8>| Some([line.to_ascii_uppercase(), b"\n".to_vec()].concat());
        axon::pipeline![framing::LineSplit::new(), util::PureTransformer::new(shout)].unwrap()
    }
    let server = SimpleServer::new(upper, any_loopback_port(), ServerOptions::default()).unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    let running = Running::start(scheduler);
    let before = testkit::Proc::me().rss_bytes();
    let mut c = connect(addr);
    // Write until the server stops taking bytes (a write times out), at
    // most 256 MiB; never read.
    c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let line = [b"x".repeat(1023), b"\n".to_vec()].concat();
    let chunk = line.repeat(256);
    let mut written = 0;
    while written < 256 * MIB && c.write_all(&chunk).is_ok() {
        written += chunk.len();
    }
    let growth = testkit::Proc::me().rss_bytes().saturating_sub(before);
    assert!(
        written < 64 * MIB,
        "the server took {} MiB from a client that never reads",
        written / MIB
    );
    assert!(
        growth < 64 * MIB as u64,
        "the server grew by {} MiB",
        growth / MIB as u64
    );
    running.stop();
}

/// Found while testing shards (`ServerCore::threads`): after a graceful
/// stop (producerFinished, what SIGTERM sends) every server-side socket
/// stayed open until the process ended. The TCPServer ends first (T7);
/// each CSA's `socketShutdown` then waited for ever in the ended server's
/// inbox, holding the CSA and its socket, and the CSA's feedback linkage
/// held the server: a cycle nothing freed. A message to a component that
/// has ended is now discarded, and its inboxes are emptied when it ends.
#[test]
fn a_graceful_stop_left_every_connections_socket_open() {
    let _serial = serial();
    let before = open_fds();
    {
        let server = SimpleServer::new(
            examples::Echo::new,
            any_loopback_port(),
            ServerOptions::default(),
        )
        .unwrap();
        let addr = server.local_addr();
        let scheduler = selector::scheduler().unwrap();
        let core: Handle = scheduler.activate(server).unwrap();
        let running = Running::start(scheduler);
        let mut clients: Vec<_> = (0..4).map(|_| connect(addr)).collect();
        for c in &mut clients {
            testkit::round_trip(c, b"ping");
        }
        stop_gracefully(core, running, &mut clients);
    }
    wait_until("every descriptor to be closed again", || {
        open_fds() <= before
    });
    assert_eq!(open_fds(), before);
}

/// Sets this process's soft descriptor limit (util-linux `prlimit`; the
/// hard one stays), and puts the old one back when dropped.
struct SoftFdLimit(String);

impl SoftFdLimit {
    fn lower_to(n: usize) -> SoftFdLimit {
        let pid = std::process::id().to_string();
        let out = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &pid,
                "--nofile",
                "--noheadings",
                "--raw",
                "--output=SOFT",
            ])
            .output()
            .expect("prlimit (util-linux) is needed for this test");
        let old = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        SoftFdLimit::set(&n.to_string());
        SoftFdLimit(old)
    }

    fn set(soft: &str) {
        let pid = std::process::id().to_string();
        let status = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={soft}:")])
            .status()
            .expect("prlimit (util-linux) is needed for this test");
        assert!(status.success(), "prlimit --nofile={soft}: failed");
    }
}

impl Drop for SoftFdLimit {
    fn drop(&mut self) {
        SoftFdLimit::set(&self.0);
    }
}

/// T5: out of descriptors, the TCPServer waited for one of its own
/// connections to close or for a new client to knock. A client already
/// knocking (a backlog that stays full raises no new edge) then waited for
/// ever when the descriptors freed elsewhere in the process, and so could
/// the rest of a backlog when the server's own connections closed all at
/// once (their descriptors still held by the Selector when it retried).
/// While starved it now also retries on a timer (a few times a second),
/// and after a close it yields so that the Selector lets go first.
#[test]
fn a_server_out_of_descriptors_never_accepted_again_when_they_freed_elsewhere() {
    let _serial = serial();
    let server = SimpleServer::new(
        examples::Echo::new,
        any_loopback_port(),
        ServerOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    let _running = Running::start(scheduler);
    let mut established = connect(addr);
    testkit::round_trip(&mut established, b"before");
    // Room for the client below and a few descriptors more, which the
    // hog takes: every descriptor but the client's is then in use...
    let limit = SoftFdLimit::lower_to(open_fds() + 8);
    let mut hog = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hog.push(f);
    }
    hog.pop();
    // ...when it knocks (the server's accept finds none left)...
    let mut late = connect(addr);
    late.write_all(b"late").unwrap();
    // ...and once a round trip on the established connection, which comes
    // after the knock, shows that the server has had its turn at it, the
    // descriptors free, with none of the server's connections closing and
    // nobody else knocking.
    testkit::round_trip(&mut established, b"after the knock");
    drop(hog);
    assert_eq!(testkit::read_n(&mut late, 4), b"late");
    drop(limit);
}

/// Sends `msg` as soon as it starts, then `producerFinished` (C5): the
/// motd server of Kamaelia's cookbook.
struct Greets(Option<Vec<u8>>);

impl Component for Greets {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if let Some(msg) = self.0.take() {
            if let Err(full) = cx.outbox.send(msg) {
                self.0 = Some(full.into_inner());
                return Step::Pause; // woken when there is room (A6)
            }
        }
        let _ = cx.signal.send(Control::ProducerFinished);
        Step::Done
    }
}

/// A SimpleServer of `protocol`'s handlers with `options`, running.
fn serve<C: Component + Send + 'static>(
    protocol: impl Fn() -> C + Clone + Send + 'static,
    options: ServerOptions,
) -> (std::net::SocketAddr, Running) {
    let server = SimpleServer::new(protocol, any_loopback_port(), options).unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    scheduler.activate(server).unwrap();
    (addr, Running::start(scheduler))
}

/// A SimpleServer of [`Greets`] with `options`, running.
fn greeter(options: ServerOptions) -> (std::net::SocketAddr, Running) {
    serve(|| Greets(Some(b"hello\n".to_vec())), options)
}

/// Found by CI in the cookbook's motd test (one run in many): once its
/// last byte was written after `producerFinished`, the CSA closed the
/// socket at once, so a client that spoke as it read the message was
/// reset (its `shutdown` failed with "not connected"), and a reset also
/// throws away whatever of the message has not reached the client yet.
/// Now the CSA shuts down its write side and reads and drops what the
/// client still sends until it closes (C5's lingering close). Run 5
/// times; the client speaks only after the server's EOF, when the old
/// CSA had always closed already.
#[test]
fn c5_a_client_that_spoke_after_the_servers_last_byte_was_reset() {
    let _serial = serial();
    let (addr, running) = greeter(ServerOptions::default());
    for _ in 0..5 {
        let mut c = connect(addr);
        let me = c.local_addr().unwrap();
        assert_eq!(read_to_eof(&mut c), b"hello\n");
        c.write_all(b"thanks, and goodbye\n").unwrap();
        c.shutdown(Shutdown::Write)
            .expect("the server reset the connection");
        wait_until("the client's socket to close", || {
            testkit::tcp_socket(me, addr).is_none()
        });
        assert!(
            c.take_error().unwrap().is_none(),
            "the server reset the connection"
        );
        // The server's side closed too, on the client's FIN: it is in
        // TIME_WAIT (6), not still open.
        wait_until("the server's socket to close", || {
            testkit::tcp_socket(addr, me).is_none_or(|t| t.state == 6)
        });
    }
    running.stop();
}

/// C5's lingering close is bounded: a client that neither closes nor
/// sends is let go at the quiet time (at most the linger time, here 200
/// ms), and one that floods after the server's close is reset once it
/// has sent 1 MiB more, instead of costing the server's CPU for as long
/// as it keeps sending.
#[test]
fn c5_the_lingering_close_ends_for_a_silent_client_and_for_a_flood() {
    let _serial = serial();
    let (addr, running) = greeter(ServerOptions {
        linger: Duration::from_millis(200),
        ..ServerOptions::default()
    });
    let mut silent = connect(addr);
    let me = silent.local_addr().unwrap();
    assert_eq!(read_to_eof(&mut silent), b"hello\n");
    // The server closes its socket, with the client's still open: the
    // kernel finishes it alone (an orphan) or, if it holds too many such
    // (or none may linger), drops it outright; either way no descriptor
    // holds it.
    wait_until("the server to let the silent client go", || {
        testkit::tcp_socket(addr, me).is_none_or(|t| t.orphan)
    });
    let mut flood = connect(addr);
    assert_eq!(read_to_eof(&mut flood), b"hello\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    let reset = loop {
        match flood.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
        if sent > 64 << 20 {
            break false;
        }
    };
    assert!(reset, "the server took {sent} bytes after its close");
    running.stop();
}

/// Gates the reply of [`RepliesWhenTold`] from the test thread.
static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set once [`RepliesWhenTold`] has seen its first input.
static HEARD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Takes one message into an inbox that holds one, so that its CSA stops
/// reading (C3) with the rest of the peer's bytes left in the socket; once
/// [`TOLD`], replies (1 MiB: more than a client that is not reading takes
/// at once, so part of it waits in the server's socket) and sends
/// `shutdownMicroprocess`, as the cookbook servers do.
struct RepliesWhenTold;

impl Component for RepliesWhenTold {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        use std::sync::atomic::Ordering::SeqCst;
        cx.inbox.set_limit(Some(1));
        if cx.inbox.is_empty() {
            return Step::Pause;
        }
        HEARD.store(true, SeqCst);
        if !TOLD.load(SeqCst) {
            std::thread::yield_now();
            return Step::Continue; // bounded: the test tells it or fails
        }
        cx.outbox
            .send(testkit::pattern(4, 1 << 20))
            .expect("the first send into an empty CSA inbox has room");
        let _ = cx.signal.send(Control::ShutdownMicroprocess);
        Step::Done
    }
}

/// C5 over `shutdownMicroprocess`: with bytes from the peer left unread in
/// the socket (its handler was behind), the CSA's close reset the
/// connection: the part of the reply the socket had taken but not yet
/// sent was thrown away, and the client read "connection reset" instead.
/// The CSA now takes, in one bounded pass, what the peer has sent before
/// it closes, and the kernel delivers all the socket took, then the FIN.
#[test]
fn c5_a_close_on_shutdown_microprocess_reset_a_peer_whose_bytes_were_unread() {
    use std::sync::atomic::Ordering::SeqCst;
    let _serial = serial();
    TOLD.store(false, SeqCst);
    HEARD.store(false, SeqCst);
    let (addr, running) = serve(|| RepliesWhenTold, ServerOptions::default());
    // A small receive buffer (no autotuning): the server's socket takes
    // more of the reply than the client's window lets it send at once.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(16 * 1024).unwrap();
    sock.connect_timeout(&addr.into(), DEADLINE).unwrap();
    let mut c = std::net::TcpStream::from(sock);
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let me = c.local_addr().unwrap();
    let on_the_wire = |tx: fn(u32) -> bool, rx: fn(u32) -> bool| {
        testkit::tcp_socket(me, addr).is_some_and(|t| tx(t.tx_queue))
            && testkit::tcp_socket(addr, me).is_some_and(|t| rx(t.rx_queue))
    };
    // In steps, so that what stays unread is a few KiB whatever the CSA's
    // reads take at once (a streaming peer's step reads up to four
    // chunks), well inside the server's receive window: a chunk for the
    // handler's inbox, which it fills; then bytes the CSA reads and holds,
    // refused (C3); then bytes it does not read.
    c.write_all(&testkit::pattern(3, csa::CHUNK)).unwrap();
    wait_until("the handler to hear the client", || HEARD.load(SeqCst));
    c.write_all(&testkit::pattern(5, 2048)).unwrap();
    wait_until("the CSA to read and hold the second write", || {
        on_the_wire(|tx| tx == 0, |rx| rx == 0)
    });
    c.write_all(&testkit::pattern(6, 2048)).unwrap();
    wait_until("every byte to reach the server, some unread", || {
        on_the_wire(|tx| tx == 0, |rx| rx > 0)
    });
    TOLD.store(true, SeqCst);
    let got = read_to_eof(&mut c);
    let reply = testkit::pattern(4, 1 << 20);
    assert!(
        !got.is_empty() && reply.starts_with(&got),
        "{} bytes",
        got.len()
    );
    running.stop();
}

axon::boxes! {
    /// Where a bare TCPServer's events and its CSA's `shutdownCSA` go.
    struct UnreadProbe {
        events: axon::Inbox<tcpserver::ServerEvent>,
        #[name = "csaSignal"]
        csa_signal: axon::Inbox<csa::ShutdownCsa>,
    }
}

/// C6: a CSA's `shutdownCSA` and `socketShutdown` carried its socket, so
/// one left unread in an inbox kept the connection's descriptor open for
/// as long as the message lived (the CSA's `shutdown(Both)` let the peer
/// see the end, the server still lost the descriptor). They now name it
/// with a `SourceRef`, and the socket closes when the CSA and the Selector
/// let go of it.
#[test]
fn an_unread_shutdown_csa_kept_its_connections_descriptor_open() {
    let _serial = serial();
    let scheduler = selector::scheduler().unwrap();
    let server = tcpserver::TcpServer::bind(any_loopback_port(), ServerOptions::default()).unwrap();
    let addr = server.local_addr();
    let server = Handle::new(server);
    let probe: Endpoint<UnreadProbe> = Endpoint::new("probe");
    link(
        (&server, "protocolHandlerSignal"),
        (probe.handle(), "events"),
    )
    .unwrap();
    scheduler.activate(&server).unwrap();
    let running = Running::start(scheduler);
    let before = open_fds();
    let mut client = connect(addr);
    let csa = match probe.events.recv_timeout(DEADLINE) {
        // Its `source` (the socket) is dropped here.
        Some(tcpserver::ServerEvent::NewCsa(new)) => new.csa,
        other => panic!("expected newCSA, got {other:?}"),
    };
    // Its shutdownCSA goes to an inbox nobody reads while the test looks.
    link((&csa, "signal"), (probe.handle(), "csaSignal")).unwrap();
    running.handle.activate(&csa).unwrap();
    // The peer half-closes; with readShutdown leading nowhere the CSA
    // closes (C7).
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut client), b"", "the server's FIN");
    wait_until("the server's end of the connection to close", || {
        open_fds() == before + 1 // the client's end
    });
    let c6 = probe.csa_signal.recv().expect("shutdownCSA, still unread");
    assert!(c6.source.upgrade().is_none(), "{:?}", c6.source);
    assert_eq!(c6.csa, csa);
    running.stop();
}
