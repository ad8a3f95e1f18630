//! Connection timeouts, rules C9 (idle), C10 (stall) and C11 (request, the
//! slowloris guard), over real loopback sockets: each closes the
//! connection it is meant for within its limit plus a little, never
//! before its limit, and leaves a well-behaved connection alone.
//!
//! Nothing here sleeps to synchronise: a close is seen as a read returning
//! 0 (or a reset), or, for a client that must not read, as the poller
//! reporting the reset on its socket, each with a deadline. The only
//! sleeps pace a client that is meant to be slow.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use axon::{Component, Control, Cx, Standard, Step};
use chassis::ServerOptions;
use util::*;

/// C9's limit in these tests.
const IDLE: Duration = Duration::from_millis(1500);
/// C10's and C11's limit in these tests.
const LIMIT: Duration = Duration::from_secs(1);
/// How late a close may come after its limit on a loaded machine: less
/// than the limit itself, so a timer armed a whole period late would show.
const SLACK: Duration = Duration::from_secs(1);

fn with(f: impl FnOnce(&mut ServerOptions)) -> ServerOptions {
    let mut options = ServerOptions::default();
    f(&mut options);
    options
}

/// Waits (at most `limit`) for the server to close `client`, reading
/// nothing from it: true once the poller reports the reset (or hang-up)
/// on its socket. For a client that must not read, so `sees_eof` is out.
fn closed_without_reading(client: &TcpStream, limit: Duration) -> bool {
    use mio::{unix::SourceFd, Events, Interest, Poll, Token};
    let fd = client.as_raw_fd();
    let mut poll = Poll::new().expect("a poller");
    poll.registry()
        .register(&mut SourceFd(&fd), Token(0), Interest::READABLE)
        .expect("register the client socket");
    let mut events = Events::with_capacity(8);
    let deadline = Instant::now() + limit;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        match poll.poll(&mut events, Some(deadline - now)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("poll: {e}"),
        }
        if events
            .iter()
            .any(|e| e.is_error() || e.is_read_closed() || e.is_write_closed())
        {
            return true;
        }
    }
}

/// Answers each complete line with itself. A request ends only with its
/// newline, so a peer that trickles bytes and never sends one is never
/// answered: the shape a slowloris attacks.
#[derive(Default)]
struct Lines {
    partial: Vec<u8>,
    /// A reply the connection had no room for yet (A5).
    held: Option<Vec<u8>>,
}

impl Component for Lines {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        loop {
            if let Some(reply) = self.held.take() {
                if let Err(full) = cx.outbox.send(reply) {
                    self.held = Some(full.into_inner());
                    return Step::Pause;
                }
            }
            let Some(bytes) = cx.inbox.recv() else {
                break;
            };
            self.partial.extend_from_slice(&bytes);
            if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
                let rest = self.partial.split_off(end + 1);
                self.held = Some(std::mem::replace(&mut self.partial, rest));
            }
        }
        if cx.control.recv().is_some() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}

/// Sends `total` bytes of a pattern in 64 KiB chunks, honouring "no space
/// in box", then producerFinished.
struct Blaster {
    data: Vec<u8>,
    sent: usize,
}

impl Component for Blaster {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while self.sent < self.data.len() {
            let end = (self.sent + 64 * 1024).min(self.data.len());
            if cx.outbox.send(self.data[self.sent..end].to_vec()).is_err() {
                return Step::Pause; // woken when the CSA takes one (A6)
            }
            self.sent = end;
        }
        let _ = cx.signal.send(Control::ProducerFinished);
        Step::Done
    }
}

#[test]
fn c9_c10_c11_defaults_idle_off_stall_60_s_request_off() {
    let options = ServerOptions::default();
    assert_eq!(options.idle_timeout, None);
    assert_eq!(options.stall_timeout, Some(Duration::from_secs(60)));
    assert_eq!(options.request_timeout, None);
    let csa = csa::CsaOptions::default();
    assert_eq!(
        (csa.idle_timeout, csa.stall_timeout, csa.request_timeout),
        (None, Some(Duration::from_secs(60)), None)
    );
}

#[test]
fn c9_an_idle_connection_is_closed_after_the_idle_timeout_not_before() {
    let options = with(|o| o.idle_timeout = Some(IDLE));
    let (addr, _core, _running) = server_with(examples::Echo::new, options);

    // One that talks once, then falls silent; one that never says a word
    // (its clock starts at the connection).
    let connected = Instant::now();
    let mut silent = connect(addr);
    let mut talker = connect(addr);
    let spoke = Instant::now();
    round_trip(&mut talker, b"hello");

    assert!(sees_eof(&mut talker), "a byte came instead of the close");
    let quiet = spoke.elapsed();
    assert!(
        quiet >= IDLE,
        "closed after {quiet:?} of silence, before {IDLE:?}"
    );
    assert!(
        quiet < IDLE + SLACK,
        "closed only after {quiet:?} (limit {IDLE:?})"
    );

    assert!(sees_eof(&mut silent), "a byte came instead of the close");
    let quiet = connected.elapsed();
    assert!(quiet >= IDLE, "closed after {quiet:?}, before {IDLE:?}");
    assert!(quiet < IDLE + SLACK + SLACK, "closed only after {quiet:?}");
}

#[test]
fn c9_activity_defers_the_idle_timeout() {
    let options = with(|o| o.idle_timeout = Some(IDLE));
    let (addr, _core, _running) = server_with(examples::Echo::new, options);
    let mut client = connect(addr);
    let start = Instant::now();
    let mut last = Instant::now();
    // A round trip every third of the limit, for twice the limit and more:
    // the connection outlives its idle time because it is not idle.
    let mut i = 0;
    while start.elapsed() < IDLE * 2 + IDLE / 2 {
        std::thread::sleep(IDLE / 3); // pacing a slow client, not a wait
        last = Instant::now();
        round_trip(&mut client, format!("still here {i}").as_bytes());
        i += 1;
    }
    assert!(i >= 6, "only {i} round trips");
    // Then silence: closed one idle time after the last activity.
    assert!(sees_eof(&mut client), "a byte came instead of the close");
    let quiet = last.elapsed();
    eprintln!("closed after {i} round trips, {quiet:?} after the last (idle timeout {IDLE:?})");
    assert!(
        quiet >= IDLE,
        "closed after {quiet:?} of silence, before {IDLE:?}"
    );
    assert!(
        quiet < IDLE + SLACK,
        "closed only after {quiet:?} (limit {IDLE:?})"
    );
}

/// The half-open peer: it sends a large request to an echo server, shuts
/// down its write side and never reads. The echo backs up, the CSA stops
/// reading (C3) and so never reaches the FIN; without C10 nothing would
/// ever close it.
fn half_open_peer(addr: std::net::SocketAddr) -> (TcpStream, std::thread::JoinHandle<()>) {
    let client = connect(addr);
    let mut writer = client.try_clone().unwrap();
    let request = pattern(10, 8 * 1024 * 1024);
    let writing = std::thread::spawn(move || {
        // If the server gives up while this still blocks, the write fails
        // with a reset or a broken pipe: that is the close.
        if writer.write_all(&request).is_ok() {
            let _ = writer.shutdown(Shutdown::Write);
        }
    });
    (client, writing)
}

#[test]
fn c10_a_half_open_peer_that_never_reads_is_closed_within_the_stall_timeout() {
    let options = with(|o| o.stall_timeout = Some(LIMIT));
    let (addr, _core, _running) = server_with(examples::Echo::new, options);
    // The same peer against a server without C10, to show it would be held.
    let unguarded = with(|o| o.stall_timeout = None);
    let (other, _other_core, _other_running) = server_with(examples::Echo::new, unguarded);

    let start = Instant::now();
    let (client, writing) = half_open_peer(addr);
    let (held, _held_writing) = half_open_peer(other);
    assert!(
        closed_without_reading(&client, LIMIT * 4 + SLACK),
        "the half-open peer was not closed within {:?}",
        LIMIT * 4 + SLACK
    );
    let took = start.elapsed();
    eprintln!("half-open peer closed after {took:?} (stall timeout {LIMIT:?})");
    writing.join().unwrap();
    assert!(
        took >= LIMIT,
        "closed after {took:?}, before the stall timeout"
    );
    // Filling the buffers takes a moment, then the limit runs.
    assert!(took < LIMIT * 3 + SLACK, "closed only after {took:?}");
    assert!(
        !closed_without_reading(&held, LIMIT),
        "the peer was closed without the stall timeout too (the test shows nothing)"
    );
}

#[test]
fn c10_a_slow_reader_that_keeps_reading_is_not_stalled() {
    const TOTAL: usize = 2 * 1024 * 1024;
    let data = pattern(11, TOTAL);
    let expected = data.clone();
    let options = with(|o| o.stall_timeout = Some(LIMIT));
    let (addr, _core, _running) = server_with(
        move || Blaster {
            data: data.clone(),
            sent: 0,
        },
        options,
    );
    let mut client = connect(addr);
    let mut got = Vec::with_capacity(TOTAL);
    while got.len() < TOTAL {
        // 256 KiB, then a pause of a fifth of the limit: the server's
        // writes wait on the peer again and again, never for the limit.
        std::thread::sleep(LIMIT / 5); // pacing a slow reader, not a wait
        let n = (TOTAL - got.len()).min(256 * 1024);
        got.extend_from_slice(&read_n(&mut client, n));
    }
    assert!(got == expected, "bytes lost or changed");
    assert!(sees_eof(&mut client), "more than was sent");
}

#[test]
fn c11_a_slowloris_trickling_a_request_is_closed_within_the_request_timeout() {
    // The idle timeout alone would never fire: a byte comes every quarter
    // of the limit. The request never ends, so it is never answered. (The
    // idle timeout is twice the limit, so a close before then is C11's.)
    let options = with(|o| {
        o.request_timeout = Some(LIMIT);
        o.idle_timeout = Some(LIMIT * 2);
    });
    let (addr, _core, _running) = server_with(Lines::default, options);
    let mut loris = connect(addr);
    // Each read waits a quarter of the limit for the close: the pacing.
    loris.set_read_timeout(Some(LIMIT / 4)).unwrap();
    let start = Instant::now();
    let mut sent = 0;
    let took = loop {
        match loris.write(b"x") {
            Ok(_) => sent += 1,
            Err(_) => break start.elapsed(), // reset: closed
        }
        let mut b = [0u8; 1];
        match loris.read(&mut b) {
            Ok(0) => break start.elapsed(),
            Ok(_) => panic!("an incomplete request was answered"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break start.elapsed(),
            Err(e) => panic!("read: {e}"),
        }
        assert!(
            start.elapsed() < LIMIT * 2 + SLACK,
            "a slowloris sent {sent} bytes over {:?} and is still connected",
            start.elapsed()
        );
    };
    eprintln!("slowloris closed after {took:?} and {sent} bytes (request timeout {LIMIT:?})");
    assert!(
        took >= LIMIT,
        "closed after {took:?}, before the request timeout"
    );
    assert!(
        took < LIMIT + SLACK,
        "closed only after {took:?} (limit {LIMIT:?})"
    );
    assert!(sent >= 3, "closed after {sent} bytes: too soon to tell");
}

#[test]
fn c9_c11_a_slow_but_steady_client_is_not_closed() {
    // Every line is a whole request, answered at once; one goes every
    // quarter of the limits, for three times them.
    let options = with(|o| {
        o.request_timeout = Some(LIMIT);
        o.idle_timeout = Some(LIMIT);
    });
    let (addr, _core, _running) = server_with(Lines::default, options);
    let mut client = connect(addr);
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < LIMIT * 3 {
        std::thread::sleep(LIMIT / 4); // pacing a slow client, not a wait
        let line = format!("line {i:04}\n");
        // Sent in two halves, apart: a request may take its time, within
        // the limit.
        let (a, b) = line.as_bytes().split_at(5);
        client.write_all(a).unwrap();
        std::thread::sleep(LIMIT / 8);
        client.write_all(b).unwrap();
        assert_eq!(read_n(&mut client, line.len()), line.as_bytes(), "line {i}");
        i += 1;
    }
    assert!(i >= 6, "only {i} lines");
    round_trip(&mut client, b"and still served\n");
}

#[test]
fn c9_c10_c11_a_closed_connection_leaves_no_timer_that_matters() {
    // Many connections with every timeout on come and go; the server goes
    // on serving new ones (timers of closed connections fire into nothing).
    let options = with(|o| {
        o.idle_timeout = Some(LIMIT / 4);
        o.request_timeout = Some(LIMIT / 4);
        o.stall_timeout = Some(LIMIT / 4);
    });
    let (addr, _core, _running) = server_with(examples::Echo::new, options);
    for i in 0..50 {
        let mut c = connect(addr);
        round_trip(&mut c, format!("connection {i}").as_bytes());
    }
    let mut last = connect(addr);
    round_trip(&mut last, b"last");
    assert!(sees_eof(&mut last), "a byte came instead of the idle close");
    let mut fresh = connect(addr);
    round_trip(&mut fresh, b"fresh");
}
