//! Backplane, PublishTo and SubscribeTo on a real scheduler: fan-out, and
//! each policy for a subscriber that does not keep up.

use std::sync::Arc;
use std::time::Duration;

use axon::{link, Control, Endpoint, Handle, Scheduler, Standard};
use testkit::{wait_until, Running, DEADLINE};
use util::{Backplane, BackplaneOptions, BackplaneStats, Policy, PublishTo, SubscribeTo};

type Msg = Arc<[u8]>;
type Reader = Endpoint<Standard<Msg, ()>>;
type Writer = Endpoint<Standard<(), Msg>>;

fn msg(i: u32, len: usize) -> Msg {
    let mut v = vec![0u8; len.max(4)];
    v[..4].copy_from_slice(&i.to_be_bytes());
    v.into()
}

fn number(m: &Msg) -> u32 {
    u32::from_be_bytes(m[..4].try_into().unwrap())
}

/// A backplane with `readers` subscribers (each read through an endpoint
/// whose inbox holds one message) and one publisher, activated so that
/// every subscriber joins before the first publication; not yet running.
struct Bus {
    stats: Arc<BackplaneStats>,
    readers: Vec<Reader>,
    subscribers: Vec<Handle>,
    writer: Writer,
}

fn bus(readers: usize, options: BackplaneOptions) -> (Scheduler, Bus) {
    let scheduler = Scheduler::new();
    let plane = Backplane::<Msg>::with_options("BUS", options);
    let stats = plane.stats();
    scheduler.activate(plane).unwrap();
    let mut rs = Vec::new();
    let mut subscribers = Vec::new();
    for i in 0..readers {
        let sub = scheduler.activate(SubscribeTo::<Msg>::new("BUS")).unwrap();
        let r = Reader::new(&format!("reader {i}"));
        r.inbox.set_limit(Some(1));
        link((&sub, "outbox"), (r.handle(), "inbox")).unwrap();
        link((&sub, "signal"), (r.handle(), "control")).unwrap();
        rs.push(r);
        subscribers.push(sub);
    }
    let publisher = scheduler.activate(PublishTo::<Msg>::new("BUS")).unwrap();
    let writer = Writer::new("writer");
    link((writer.handle(), "outbox"), (&publisher, "inbox")).unwrap();
    (
        scheduler,
        Bus {
            stats,
            readers: rs,
            subscribers,
            writer,
        },
    )
}

/// Sends `n` messages through the writer, waiting (with the deadline)
/// whenever the publisher's inbox is full.
fn publish(writer: &Writer, n: u32, len: usize) {
    for i in 0..n {
        let mut m = msg(i, len);
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            match writer.outbox.send(m) {
                Ok(()) => break,
                Err(full) => {
                    m = full.into_inner();
                    assert!(
                        std::time::Instant::now() < deadline,
                        "publisher held for ever"
                    );
                    std::thread::yield_now();
                }
            }
        }
    }
}

#[test]
fn every_subscriber_gets_every_message_in_order() {
    let (scheduler, b) = bus(3, BackplaneOptions::default());
    let running = Running::start(scheduler);
    let writer = b.writer;
    let feeder = std::thread::spawn(move || {
        publish(&writer, 2_000, 16);
        writer
    });
    for r in &b.readers {
        for want in 0..2_000 {
            let got = r.inbox.recv_timeout(DEADLINE).expect("a message");
            assert_eq!(number(&got), want);
        }
    }
    feeder.join().unwrap();
    assert_eq!(b.stats.published(), 2_000);
    assert_eq!(b.stats.dropped(), 0);
    assert_eq!(b.stats.subscribers(), 3);
    running.stop();
}

/// Publishes `n` messages in lock step with reader 0 (it takes each
/// before the next is sent, so it never falls behind), and returns.
fn publish_in_step_with(b: &Bus, n: u32, len: usize) {
    for i in 0..n {
        publish_one(&b.writer, i, len);
        let got = b.readers[0]
            .inbox
            .recv_timeout(DEADLINE)
            .expect("a message");
        assert_eq!(number(&got), i);
    }
}

fn publish_one(writer: &Writer, i: u32, len: usize) {
    writer
        .outbox
        .send(msg(i, len))
        .expect("the publisher has room");
}

#[test]
fn a_subscriber_that_never_reads_loses_its_oldest_and_slows_nobody() {
    const N: u32 = 2_000;
    let (scheduler, b) = bus(
        2,
        BackplaneOptions {
            max_queued_bytes: 16 * 1024,
            policy: Policy::DropOldest,
            ..BackplaneOptions::default()
        },
    );
    let running = Running::start(scheduler);
    // Reader 0 takes everything as it comes; reader 1 never reads.
    publish_in_step_with(&b, N, 1024);
    // Reader 1 holds 1, its SubscribeTo 1 more and 4 in its inbox, the
    // backplane at most 16 KiB of 1 KiB messages (and their overhead): the
    // rest was dropped.
    let queued = 16 * 1024 / (1024 + util::MESSAGE_OVERHEAD) as u32;
    let kept = 1 + 1 + util::SUBSCRIBER_INBOX as u64 + u64::from(queued);
    wait_until("the drops to be counted", || {
        b.stats.dropped() == u64::from(N) - kept
    });
    // What reader 1 does get is in order: the oldest six, then the newest.
    let mut got = Vec::new();
    while let Some(m) = b.readers[1].inbox.recv_timeout(Duration::from_millis(500)) {
        got.push(number(&m));
    }
    let mut want: Vec<u32> = (0..6).collect();
    want.extend(N - queued..N);
    assert_eq!(got, want);
    running.stop();
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected_when_so_asked() {
    let (scheduler, b) = bus(
        2,
        BackplaneOptions {
            max_queued_bytes: 8 * 1024,
            policy: Policy::Disconnect,
            ..BackplaneOptions::default()
        },
    );
    let running = Running::start(scheduler);
    publish_in_step_with(&b, 100, 1024);
    // Reader 1's subscriber was told to stop, and said so.
    assert_eq!(
        b.readers[1].control.recv_timeout(DEADLINE),
        Some(Control::ShutdownMicroprocess)
    );
    wait_until("the subscriber to end", || b.subscribers[1].is_done());
    assert_eq!(b.stats.disconnected(), 1);
    assert_eq!(b.stats.subscribers(), 1);
    assert_eq!(b.stats.dropped(), 0);
    running.stop();
}

#[test]
fn holding_publishers_loses_nothing_for_a_slow_subscriber() {
    const N: u32 = 1_000;
    let (scheduler, b) = bus(
        2,
        BackplaneOptions {
            max_queued_bytes: 8 * 1024,
            policy: Policy::HoldPublishers,
            ..BackplaneOptions::default()
        },
    );
    let running = Running::start(scheduler);
    let Bus {
        readers,
        writer,
        stats,
        ..
    } = b;
    let mut readers = readers.into_iter();
    let (fast, slow) = (readers.next().unwrap(), readers.next().unwrap());
    let feeder = std::thread::spawn(move || publish(&writer, N, 1024));
    // The slow reader takes a millisecond per message (the slowness under
    // test, not synchronisation); the publisher is held meanwhile.
    let slow_reader = std::thread::spawn(move || {
        for want in 0..N {
            let m = slow.inbox.recv_timeout(DEADLINE).expect("a message");
            assert_eq!(number(&m), want);
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    for want in 0..N {
        let m = fast.inbox.recv_timeout(DEADLINE).expect("a message");
        assert_eq!(number(&m), want);
    }
    slow_reader.join().unwrap();
    feeder.join().unwrap();
    assert_eq!(stats.dropped(), 0);
    running.stop();
}

#[test]
fn a_subscriber_that_ends_is_forgotten() {
    let (scheduler, b) = bus(2, BackplaneOptions::default());
    let running = Running::start(scheduler);
    publish_one(&b.writer, 0, 8);
    for r in &b.readers {
        assert!(r.inbox.recv_timeout(DEADLINE).is_some());
    }
    // Reader 1's subscriber is told to stop: it unsubscribes.
    let stop = Endpoint::<Standard<(), ()>>::new("stopper");
    link((stop.handle(), "signal"), (&b.subscribers[1], "control")).unwrap();
    stop.signal.send(Control::ShutdownMicroprocess).unwrap();
    wait_until("the subscriber to leave", || b.stats.subscribers() == 1);
    publish_one(&b.writer, 1, 8);
    assert!(b.readers[0].inbox.recv_timeout(DEADLINE).is_some());
    running.stop();
}

#[test]
fn a_publisher_without_a_backplane_says_so_and_ends() {
    let scheduler = Scheduler::new();
    let publisher = scheduler
        .activate(PublishTo::<Msg>::new("NOWHERE"))
        .unwrap();
    let watcher = Endpoint::<Standard<(), ()>>::new("watcher");
    link((&publisher, "signal"), (watcher.handle(), "control")).unwrap();
    Running::to_completion(scheduler);
    assert_eq!(watcher.control.recv(), Some(Control::ShutdownMicroprocess));
}
