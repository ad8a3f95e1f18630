//! `ServerCore::threads(n)`: a server spread over shards by one acceptor
//! (hand-off), each shard a thread with its own scheduler, Selector and
//! ServerCore. Which shard serves a connection shows as the thread its
//! handler is made on (`shard-0`, `shard-1`, …).
//!
//! - the hand-off spreads connections evenly (exact counts);
//! - a stalled shard gets at most the one connection that shows it is
//!   stalled, and the other shards serve everyone else meanwhile;
//! - T8 (the connection limit) counts every shard's connections;
//! - a chat's lines reach members on every shard (the Backplane lives on
//!   the top scheduler, found through `Cat::consult_after`);
//! - after a stop, every thread has ended and the descriptors are back to
//!   their starting count;
//! - with `Accept::ReusePort` (a `SO_REUSEPORT` listener per shard), the
//!   kernel spreads 256 connections over every shard, and a stop leaves
//!   nothing behind either.
//!
//! The existing ServerCore, robustness and stress tests also run sharded:
//! CI runs them again with the fixture parameter `KAMAELIA_SHARDS=2` and
//! `4` (see `testkit::shards`).
//!
//! The tests of this file run one at a time (they count threads and
//! descriptors of the whole process).

mod util;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use axon::{Component, Control, Cx, Handle, Standard, Step};
use chassis::{Accept, ServerOptions, SimpleServer};
use util::*;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shard each connection's handler was made on, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// Records the thread it is called on (the shard), then makes `make()`.
fn recording<H: Into<Handle>>(
    seen: &Seen,
    make: impl Fn() -> H + Clone + Send + 'static,
) -> impl FnMut() -> Handle + Clone + Send + 'static {
    let seen = seen.clone();
    move || {
        let name = thread::current().name().unwrap_or("?").to_owned();
        seen.lock().unwrap().push(name);
        make().into()
    }
}

fn counts(seen: &Seen) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for name in seen.lock().unwrap().iter() {
        *counts.entry(name.clone()).or_insert(0) += 1;
    }
    counts
}

fn sharded(
    protocol: impl FnMut() -> Handle + Clone + Send + 'static,
    options: ServerOptions,
    n: usize,
) -> (std::net::SocketAddr, Handle, Running) {
    sharded_by(protocol, options, n, Accept::HandOff)
}

fn sharded_by(
    protocol: impl FnMut() -> Handle + Clone + Send + 'static,
    options: ServerOptions,
    n: usize,
    accept: Accept,
) -> (std::net::SocketAddr, Handle, Running) {
    let options = ServerOptions {
        reuse_port: accept == Accept::ReusePort,
        ..options
    };
    let server = SimpleServer::new(protocol, any_loopback_port(), options)
        .unwrap()
        .accept(accept)
        .threads(n)
        .unwrap();
    let addr = server.local_addr();
    let scheduler = selector::scheduler().unwrap();
    let core = scheduler.activate(server).unwrap();
    (addr, core, Running::start(scheduler))
}

#[test]
fn handoff_spreads_connections_over_the_shards_in_exact_shares() {
    let _serial = serial();
    let seen = Seen::default();
    let (addr, _core, _running) = sharded(
        recording(&seen, examples::Echo::new),
        ServerOptions::default(),
        4,
    );
    // One at a time, each held open: every shard ends with the same count.
    let clients: Vec<TcpStream> = (0..12)
        .map(|i| {
            let mut c = connect(addr);
            round_trip(&mut c, format!("client {i}").as_bytes());
            c
        })
        .collect();
    let counts = counts(&seen);
    let expected: HashMap<String, usize> = (0..4).map(|i| (format!("shard-{i}"), 3)).collect();
    assert_eq!(counts, expected, "12 connections over 4 shards");
    drop(clients);
}

/// Echoes, except that `stall` busy-loops its shard until `release` is
/// set (at most 10 s).
#[derive(Clone)]
struct Staller {
    stalled: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Component for Staller {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while let Some(msg) = cx.inbox.recv() {
            if msg == b"stall" {
                self.stalled.store(true, Ordering::SeqCst);
                let begun = Instant::now();
                while !self.release.load(Ordering::SeqCst) && begun.elapsed() < DEADLINE / 2 {
                    std::hint::spin_loop();
                }
            }
            // A reply per message: a full outbox is not expected here.
            if cx.outbox.send(msg).is_err() {
                return Step::Done;
            }
        }
        if cx.control.recv().is_some() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}

#[test]
fn a_stalled_shard_gets_no_more_connections_and_the_others_serve_meanwhile() {
    let _serial = serial();
    const CLIENTS: usize = 8;
    /// Longer than any healthy round trip on a loaded machine.
    const PATIENCE: Duration = Duration::from_secs(5);
    let seen = Seen::default();
    let staller = Staller {
        stalled: Arc::default(),
        release: Arc::default(),
    };
    let make = {
        let staller = staller.clone();
        move || staller.clone()
    };
    let (addr, _core, _running) = sharded(recording(&seen, make), ServerOptions::default(), 2);
    let mut first = connect(addr);
    round_trip(&mut first, b"hello");
    let stalled_shard = seen.lock().unwrap()[0].clone();
    first.write_all(b"stall").unwrap();
    wait_until("the shard to stall", || {
        staller.stalled.load(Ordering::SeqCst)
    });
    let made_before = seen.lock().unwrap().len();

    // New clients one after another, each waited for (PATIENCE at most):
    // all but the one that showed the shard stalled are served now.
    let mut waiting = Vec::new();
    for i in 0..CLIENTS {
        let (tx, rx) = mpsc::channel();
        let mut c = connect(addr);
        let msg = format!("client {i}");
        c.write_all(msg.as_bytes()).unwrap();
        let reader = thread::spawn(move || {
            let got = read_n(&mut c, msg.len());
            let _ = tx.send(());
            (got, msg)
        });
        if rx.recv_timeout(PATIENCE).is_err() {
            waiting.push((i, rx, reader));
        } else {
            let (got, msg) = reader.join().unwrap();
            assert_eq!(got, msg.as_bytes());
        }
    }
    assert!(
        waiting.len() <= 1,
        "{} clients waited on a stalled shard: {:?}",
        waiting.len(),
        waiting.iter().map(|w| w.0).collect::<Vec<_>>()
    );
    staller.release.store(true, Ordering::SeqCst);
    assert_eq!(read_n(&mut first, 5), b"stall");
    for (i, rx, reader) in waiting {
        rx.recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("client {i} was never served"));
        let (got, msg) = reader.join().unwrap();
        assert_eq!(got, msg.as_bytes());
    }
    let on_stalled = seen.lock().unwrap()[made_before..]
        .iter()
        .filter(|s| **s == stalled_shard)
        .count();
    assert!(
        on_stalled <= 1,
        "the stalled {stalled_shard} was handed {on_stalled} connections while stalled"
    );
}

#[test]
fn t8_the_connection_limit_counts_every_shards_connections() {
    let _serial = serial();
    let options = ServerOptions {
        max_connections: Some(3),
        ..ServerOptions::default()
    };
    let seen = Seen::default();
    let (addr, _core, _running) = sharded(recording(&seen, examples::Echo::new), options, 2);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut c = connect(addr);
            round_trip(&mut c, format!("held {i}").as_bytes());
            c
        })
        .collect();
    assert_eq!(
        counts(&seen).len(),
        2,
        "both shards serve: {:?}",
        counts(&seen)
    );
    // The fourth waits in the backlog: not accepted, so not answered.
    let mut fourth = connect(addr);
    fourth.write_all(b"fourth").unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    match fourth.read(&mut b) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("over the limit, the fourth was served: {other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 3, "a fourth handler was made");
    // One closes (on whichever shard): the fourth is accepted and served.
    drop(held.remove(0));
    fourth.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut rest = [0u8; 6];
    fourth.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"fourth");
}

/// A chat client: a connection and a line reader.
struct Member {
    out: TcpStream,
    lines: BufReader<TcpStream>,
}

impl Member {
    fn join(addr: std::net::SocketAddr) -> Member {
        let out = connect(addr);
        let lines = BufReader::new(out.try_clone().unwrap());
        Member { out, lines }
    }

    fn say(&mut self, line: &str) {
        self.out.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    fn hear(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }
}

#[test]
fn chat_lines_reach_every_member_on_every_shard() {
    let _serial = serial();
    const MEMBERS: usize = 4;
    let scheduler = selector::scheduler().unwrap();
    // The backplane lives on the top scheduler; members on the shards find
    // it through their CATs (Cat::consult_after).
    let plane = examples::chat::backplane("CHAT");
    let stats = plane.stats();
    scheduler.activate(plane).unwrap();
    let seen = Seen::default();
    let server = SimpleServer::new(
        recording(&seen, || examples::chat::member("CHAT")),
        any_loopback_port(),
        ServerOptions::default(),
    )
    .unwrap()
    .threads(2)
    .unwrap();
    let addr = server.local_addr();
    scheduler.activate(server).unwrap();
    let running = Running::start(scheduler);

    // Each member has subscribed (on whichever shard) before anyone talks.
    let mut members: Vec<Member> = (0..MEMBERS).map(|_| Member::join(addr)).collect();
    wait_until("every member to subscribe", || {
        stats.subscribers() == MEMBERS as u64
    });
    let shards = counts(&seen);
    assert_eq!(shards.len(), 2, "members on both shards: {shards:?}");
    for i in 0..MEMBERS {
        members[i].say(&format!("line {i}"));
        for (j, m) in members.iter_mut().enumerate() {
            if j != i {
                assert_eq!(m.hear(), format!("line {i}"), "member {j}");
            }
        }
    }
    drop(members);
    running.stop();
}

/// Shard threads (`shard-N`) of this process, from /proc (the test
/// harness's own threads come and go as tests start and end).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("shard-"))
        .count()
}

#[test]
fn after_a_graceful_stop_every_shard_thread_and_descriptor_is_gone() {
    stop_leaves_nothing(Accept::HandOff);
}

#[test]
fn reuseport_after_a_graceful_stop_every_shard_thread_and_descriptor_is_gone() {
    stop_leaves_nothing(Accept::ReusePort);
}

#[test]
fn reuseport_spreads_256_connections_over_every_shard() {
    let _serial = serial();
    let seen = Seen::default();
    let (addr, _core, _running) = sharded_by(
        recording(&seen, examples::Echo::new),
        ServerOptions::default(),
        4,
        Accept::ReusePort,
    );
    let clients: Vec<TcpStream> = (0..256)
        .map(|i| {
            let mut c = connect(addr);
            round_trip(&mut c, format!("client {i}").as_bytes());
            c
        })
        .collect();
    let counts = counts(&seen);
    assert_eq!(counts.len(), 4, "every shard got a connection: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 256);
    drop(clients);
}

fn stop_leaves_nothing(accept: Accept) {
    let _serial = serial();
    let fds_before = open_fds();
    let threads_before = threads();
    assert_eq!(threads_before, 0, "shard threads left by an earlier test");
    let seen = Seen::default();
    let (addr, core, running) = sharded_by(
        recording(&seen, examples::Echo::new),
        ServerOptions::default(),
        4,
        accept,
    );
    // Enough that reuseport's hash reaches every shard too.
    let mut clients: Vec<TcpStream> = (0..64)
        .map(|i| {
            let mut c = connect(addr);
            round_trip(&mut c, format!("client {i}").as_bytes());
            c
        })
        .collect();
    assert_eq!(counts(&seen).len(), 4);
    // Each shard finishes its connections.
    stop_gracefully(core, running, &mut clients);
    drop(clients);
    wait_until("shard threads to end", || threads() == threads_before);
    wait_until("descriptors back to their starting count", || {
        open_fds() == fds_before
    });
}
