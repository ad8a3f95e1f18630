//! One or more tests per Axon rule (A1–A11 of PROTOCOL.md), named after the
//! rule they prove.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axon::ipc::{NewComponent, Notify, Status};
use axon::{
    link, unlink, ActivateError, Boxes, CatError, Component, Control, Cx, Direction, Endpoint,
    Graphline, Handle, LinkError, Pipeline, Scheduler, Step,
};
use util::*;

fn numbers(name: &str) -> Endpoint {
    Endpoint::new(name, Boxes::standard::<u64, u64>())
}

fn drain(e: &Endpoint, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            e.recv_timeout::<u64>("inbox", DEADLINE)
                .unwrap()
                .unwrap_or_else(|| panic!("message {i} of {n} never arrived"))
        })
        .collect()
}

// ---------------------------------------------------------------- A1

#[test]
fn a1_default_boxes_are_inbox_control_outbox_signal_with_docs() {
    let h = Handle::new(Forwarder::new());
    let boxes = h.boxes();
    let names: Vec<(&str, Direction)> = boxes
        .iter()
        .map(|b| (b.name.as_str(), b.direction))
        .collect();
    assert_eq!(
        names,
        [
            ("inbox", Direction::Inbox),
            ("control", Direction::Inbox),
            ("outbox", Direction::Outbox),
            ("signal", Direction::Outbox)
        ]
    );
    assert!(boxes.iter().all(|b| !b.doc.is_empty()));
    assert_eq!(boxes[0].message_type, "u64");
    assert!(boxes[1].message_type.ends_with("Control"));
}

#[test]
fn a1_declared_boxes_keep_their_one_line_description() {
    let e = Endpoint::new(
        "custom",
        Boxes::standard::<u64, u64>().inbox::<String>("inbox", "lines of text"),
    );
    let inbox = e
        .handle()
        .boxes()
        .into_iter()
        .find(|b| b.name == "inbox")
        .unwrap();
    assert_eq!(inbox.doc, "lines of text");
    assert_eq!(inbox.message_type, "alloc::string::String");
}

// ---------------------------------------------------------------- A2

#[test]
fn a2_messages_arrive_in_the_order_sent() {
    let scheduler = Scheduler::new();
    let producer = Handle::new(Producer::new(10_000));
    let sink = numbers("sink");
    link((&producer, "outbox"), (sink.handle(), "inbox")).unwrap();
    scheduler.activate(&producer).unwrap();
    let (_s, t) = spawn(scheduler);
    assert_eq!(drain(&sink, 10_000), (0..10_000).collect::<Vec<_>>());
    t.join();
}

#[test]
fn a2_data_ready_and_any_ready_see_waiting_messages() {
    struct Probe(Arc<Mutex<Vec<(bool, bool, bool)>>>);
    impl Component for Probe {
        fn boxes(&self) -> Boxes {
            Boxes::standard::<u64, u64>()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            let seen = (
                cx.data_ready("inbox"),
                cx.data_ready("control"),
                cx.any_ready(),
            );
            self.0.lock().unwrap().push(seen);
            if cx.recv::<u64>("inbox").is_some() {
                return Step::Done;
            }
            Step::Pause
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let probe = Handle::new(Probe(seen.clone()));
    probe.postbox::<u64>("inbox").unwrap().send(1).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&probe).unwrap();
    run(scheduler);
    assert_eq!(*seen.lock().unwrap(), [(true, false, true)]);
}

// ---------------------------------------------------------------- A3

#[test]
fn a3_chain_of_passthroughs_delivers_straight_to_the_final_inbox() {
    // child outbox -> parent outbox (passthrough) -> other inbox ->
    // other's child inbox (passthrough).
    let child = numbers("child");
    let parent = numbers("parent");
    let other = numbers("other");
    let grandchild = numbers("grandchild");
    link((child.handle(), "outbox"), (parent.handle(), "outbox")).unwrap();
    link((other.handle(), "inbox"), (grandchild.handle(), "inbox")).unwrap();
    link((parent.handle(), "outbox"), (other.handle(), "inbox")).unwrap();
    child.send(42u64, "outbox").unwrap();
    assert_eq!(
        other.handle().inbox_len("inbox"),
        0,
        "no copy in the middle"
    );
    assert_eq!(grandchild.recv::<u64>("inbox").unwrap(), Some(42));
}

#[test]
fn a3_one_source_may_not_feed_two_destinations() {
    let a = numbers("a");
    let b = numbers("b");
    let c = numbers("c");
    link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
    let err = link((a.handle(), "outbox"), (c.handle(), "inbox")).unwrap_err();
    assert!(matches!(err, LinkError::AlreadyLinked { .. }), "{err:?}");
    assert!(err.to_string().contains("a.outbox"), "{err}");
    // Many sources into one destination are fine.
    link((c.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
}

#[test]
fn a3_unlink_stops_delivery_to_the_old_destination() {
    let a = numbers("a");
    let b = numbers("b");
    let l = link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
    a.send(1u64, "outbox").unwrap();
    unlink(&l);
    a.send(2u64, "outbox").unwrap();
    assert_eq!(b.recv::<u64>("inbox").unwrap(), Some(1));
    assert_eq!(b.recv::<u64>("inbox").unwrap(), None);
    // The source is free to be linked again.
    link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
}

#[test]
fn a3_linking_boxes_of_different_message_types_is_refused() {
    let a = numbers("a");
    let words = Endpoint::new("words", Boxes::standard::<String, String>());
    let err = link((a.handle(), "outbox"), (words.handle(), "inbox")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LinkError::TypeMismatch { .. }));
    assert!(
        text.contains("a.outbox") && text.contains("u64") && text.contains("String"),
        "{text}"
    );
}

#[test]
fn a3_bad_linkages_are_clear_errors() {
    let a = numbers("a");
    let b = numbers("b");
    assert!(matches!(
        link((a.handle(), "nosuch"), (b.handle(), "inbox")),
        Err(LinkError::NoSuchBox { .. })
    ));
    assert!(matches!(
        link((a.handle(), "inbox"), (b.handle(), "outbox")),
        Err(LinkError::InboxToOutbox { .. })
    ));
    link((a.handle(), "inbox"), (b.handle(), "inbox")).unwrap();
    assert!(matches!(
        link((b.handle(), "inbox"), (a.handle(), "inbox")),
        Err(LinkError::Cycle { .. })
    ));
}

// ---------------------------------------------------------------- A4

#[test]
fn a4_send_to_an_unlinked_outbox_is_discarded() {
    let a = numbers("a");
    a.send(1u64, "outbox").unwrap();
    let b = numbers("b");
    link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
    assert_eq!(b.recv::<u64>("inbox").unwrap(), None);
}

#[test]
fn a4_messages_waiting_in_a_box_move_on_when_it_is_linked() {
    let parent = numbers("parent");
    let child = numbers("child");
    for i in 0..3u64 {
        parent
            .handle()
            .postbox::<u64>("inbox")
            .unwrap()
            .send(i)
            .unwrap();
    }
    link((parent.handle(), "inbox"), (child.handle(), "inbox")).unwrap();
    assert_eq!(parent.handle().inbox_len("inbox"), 0);
    assert_eq!(drain(&child, 3), [0, 1, 2]);
}

// ---------------------------------------------------------------- A5

#[test]
fn a5_full_inbox_refuses_with_no_space_and_recovers() {
    let a = numbers("a");
    let b = numbers("b");
    b.handle().set_inbox_size("inbox", Some(2)).unwrap();
    link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
    a.send(1u64, "outbox").unwrap();
    a.send(2u64, "outbox").unwrap();
    match a.send(3u64, "outbox") {
        Err(axon::SendError::NoSpace(m)) => assert_eq!(m, 3, "the message is given back"),
        other => panic!("expected no space, got {other:?}"),
    }
    assert_eq!(b.recv::<u64>("inbox").unwrap(), Some(1));
    a.send(3u64, "outbox").unwrap();
    assert_eq!(drain(&b, 2), [2, 3]);
    assert!(axon::NoSpace(()).to_string().contains("no space in box"));
}

// ---------------------------------------------------------------- A6

#[test]
fn a6_paused_component_wakes_when_a_message_arrives() {
    let forwarder = Forwarder::new();
    let steps = forwarder.steps.clone();
    let f = Handle::new(forwarder);
    let ends = numbers("ends");
    link((ends.handle(), "outbox"), (&f, "inbox")).unwrap();
    link((&f, "outbox"), (ends.handle(), "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&f).unwrap();
    let (s, t) = spawn(scheduler);
    for i in 0..5u64 {
        ends.send(i, "outbox").unwrap();
        assert_eq!(
            ends.recv_timeout::<u64>("inbox", DEADLINE).unwrap(),
            Some(i)
        );
    }
    // Paused between messages: woken once per message (plus its first run),
    // not spinning.
    assert!(
        steps.load(Ordering::SeqCst) <= 6,
        "stepped {} times",
        steps.load(Ordering::SeqCst)
    );
    s.stop();
    t.join();
}

/// On a message in `inbox`: sends `7` out of `outbox` (waking a paused
/// component on this thread), then runs a whole scheduler of its own inside
/// its step (a pipeline of forwarders), then pauses.
struct Nester;

impl Component for Nester {
    fn boxes(&self) -> Boxes {
        Boxes::standard::<u64, u64>()
    }
    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        if cx.recv::<u64>("inbox").is_none() {
            return Step::Pause;
        }
        let _ = cx.send(7u64, "outbox");
        let inner = Scheduler::new();
        let a = Handle::new(Forwarder::new());
        let b = Handle::new(Forwarder::new());
        link((&a, "outbox"), (&b, "inbox")).unwrap();
        link((&a, "signal"), (&b, "control")).unwrap();
        let feed = numbers("feed");
        link((feed.handle(), "outbox"), (&a, "inbox")).unwrap();
        link((feed.handle(), "signal"), (&a, "control")).unwrap();
        for i in 0..3u64 {
            feed.send(i, "outbox").unwrap();
        }
        feed.send(Control::ProducerFinished, "signal").unwrap();
        inner.activate(&a).unwrap();
        inner.activate(&b).unwrap();
        inner.run();
        Step::Pause
    }
}

/// A wake-up made on a scheduler's thread is kept on that thread's own list
/// (no lock); a scheduler run inside a component must neither take the
/// outer scheduler's pending wake-ups nor lose them.
#[test]
fn a6_a_scheduler_run_inside_a_component_loses_no_outer_wake_up() {
    let nester = Handle::new(Nester);
    let forwarder = Forwarder::new();
    let steps = forwarder.steps.clone();
    let f = Handle::new(forwarder);
    let ends = numbers("ends");
    link((ends.handle(), "outbox"), (&nester, "inbox")).unwrap();
    link((&nester, "outbox"), (&f, "inbox")).unwrap();
    link((&f, "outbox"), (ends.handle(), "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&nester).unwrap();
    scheduler.activate(&f).unwrap();
    let (s, t) = spawn(scheduler);
    // Once the forwarder has had its first step it is paused, so the
    // nester's send wakes it through the scheduler thread's own list.
    let deadline = Instant::now() + DEADLINE;
    while steps.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the forwarder never ran");
        std::thread::yield_now();
    }
    ends.send(1u64, "outbox").unwrap();
    assert_eq!(
        ends.recv_timeout::<u64>("inbox", DEADLINE).unwrap(),
        Some(7),
        "the outer forwarder was woken before the inner scheduler ran"
    );
    s.stop();
    t.join();
}

#[test]
fn a6_paused_component_wakes_when_space_frees() {
    // Producer -> consumer inbox of size 1; the consumer is slow (an
    // Endpoint drained by this thread). Every item must arrive, in order,
    // and the producer must have met "no space" and been woken to resume.
    let producer = Producer::new(200);
    let no_space = producer.no_space_seen.clone();
    let p = Handle::new(producer);
    let sink = numbers("sink");
    sink.handle().set_inbox_size("inbox", Some(1)).unwrap();
    link((&p, "outbox"), (sink.handle(), "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&p).unwrap();
    let (_s, t) = spawn(scheduler);
    assert_eq!(drain(&sink, 200), (0..200).collect::<Vec<_>>());
    t.join();
    assert!(
        no_space.load(Ordering::SeqCst) > 0,
        "the producer never met a full box"
    );
}

#[test]
fn a6_parent_wakes_when_a_child_terminates() {
    struct Parent {
        child: Handle,
        woken_after_child_done: Arc<AtomicUsize>,
        started: bool,
    }
    impl Component for Parent {
        fn boxes(&self) -> Boxes {
            Boxes::new()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            if !self.started {
                self.started = true;
                cx.add_child(&self.child);
                cx.activate(&self.child).unwrap();
                return Step::Pause;
            }
            if self.child.is_done() {
                self.woken_after_child_done.fetch_add(1, Ordering::SeqCst);
                return Step::Done;
            }
            Step::Pause
        }
    }
    let woken = Arc::new(AtomicUsize::new(0));
    let child = Handle::new(Sleeper {
        steps: Arc::new(AtomicUsize::new(0)),
    });
    let parent = Handle::new(Parent {
        child: child.clone(),
        woken_after_child_done: woken.clone(),
        started: false,
    });
    let scheduler = Scheduler::new();
    scheduler.activate(&parent).unwrap();
    let (_s, t) = spawn(scheduler);
    child
        .postbox::<Control>("control")
        .unwrap()
        .send(Control::ShutdownMicroprocess)
        .unwrap();
    t.join(); // ends only if the parent was woken and finished
    assert_eq!(woken.load(Ordering::SeqCst), 1);
}

#[test]
fn a6_wake_at_wakes_a_paused_component_when_its_time_comes() {
    struct Napper {
        woke_after: Arc<Mutex<Option<Duration>>>,
        started: Option<Instant>,
        steps: u32,
    }
    impl Component for Napper {
        fn boxes(&self) -> Boxes {
            Boxes::new()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            self.steps += 1;
            let started = *self.started.get_or_insert_with(Instant::now);
            if self.steps == 1 {
                cx.wake_at(started + Duration::from_millis(100));
                return Step::Pause;
            }
            *self.woke_after.lock().unwrap() = Some(started.elapsed());
            Step::Done
        }
    }
    let woke_after = Arc::new(Mutex::new(None));
    let scheduler = Scheduler::new();
    scheduler
        .activate(&Handle::new(Napper {
            woke_after: woke_after.clone(),
            started: None,
            steps: 0,
        }))
        .unwrap();
    run(scheduler); // paused with nothing else to wake it: only the timer can
    let after = woke_after.lock().unwrap().expect("woken");
    assert!(
        after >= Duration::from_millis(100),
        "woken early: {after:?}"
    );
}

// ---------------------------------------------------------------- A7

#[test]
fn a7_removing_a_child_removes_the_linkages_made_to_it() {
    struct Parent {
        child: Handle,
        sink: Handle,
        step: u32,
        report: Arc<Mutex<Vec<usize>>>,
    }
    impl Component for Parent {
        fn boxes(&self) -> Boxes {
            Boxes::new()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            self.step += 1;
            if self.step == 1 {
                cx.add_child(&self.child);
                let me = cx.me().clone();
                cx.link((&self.child, "outbox"), (&self.sink, "inbox"))
                    .unwrap();
                assert_eq!(me.links().len(), 1);
                self.report.lock().unwrap().push(cx.children().len());
                cx.remove_child(&self.child.clone());
                self.report.lock().unwrap().push(cx.children().len());
                self.report.lock().unwrap().push(me.links().len());
            }
            Step::Done
        }
    }
    let child = numbers("child");
    let sink = numbers("sink");
    let report = Arc::new(Mutex::new(Vec::new()));
    let parent = Handle::new(Parent {
        child: child.handle().clone(),
        sink: sink.handle().clone(),
        step: 0,
        report: report.clone(),
    });
    let scheduler = Scheduler::new();
    scheduler.activate(&parent).unwrap();
    run(scheduler);
    assert_eq!(*report.lock().unwrap(), [1, 0, 0]);
    child.send(9u64, "outbox").unwrap();
    assert_eq!(
        sink.recv::<u64>("inbox").unwrap(),
        None,
        "link survived removal"
    );
}

#[test]
fn a7_a_component_that_ends_drops_the_linkages_it_made() {
    struct Linker(Handle, Handle);
    impl Component for Linker {
        fn boxes(&self) -> Boxes {
            Boxes::new()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            cx.link((&self.0, "outbox"), (&self.1, "inbox")).unwrap();
            Step::Done
        }
    }
    let a = numbers("a");
    let b = numbers("b");
    let scheduler = Scheduler::new();
    scheduler
        .activate(&Handle::new(Linker(a.handle().clone(), b.handle().clone())))
        .unwrap();
    run(scheduler);
    a.send(1u64, "outbox").unwrap();
    assert_eq!(b.recv::<u64>("inbox").unwrap(), None);
}

// ---------------------------------------------------------------- A8

#[test]
fn a8_one_thread_runs_twenty_thousand_components_then_exits() {
    const N: usize = 20_000;
    let scheduler = Scheduler::new();
    let thread_ids = Arc::new(Mutex::new(std::collections::HashSet::new()));
    struct Once(Arc<Mutex<std::collections::HashSet<std::thread::ThreadId>>>);
    impl Component for Once {
        fn boxes(&self) -> Boxes {
            Boxes::standard::<u64, u64>()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            match cx.recv::<u64>("inbox") {
                Some(_) => {
                    self.0.lock().unwrap().insert(std::thread::current().id());
                    Step::Done
                }
                None => Step::Pause,
            }
        }
    }
    let handles: Vec<Handle> = (0..N)
        .map(|_| Handle::new(Once(thread_ids.clone())))
        .collect();
    for h in &handles {
        scheduler.activate(h).unwrap();
    }
    let (_s, t) = spawn(scheduler);
    for h in &handles {
        h.postbox::<u64>("inbox").unwrap().send(1).unwrap();
    }
    t.join(); // exits by itself once no component is left
    assert!(handles.iter().all(Handle::is_done));
    assert_eq!(thread_ids.lock().unwrap().len(), 1);
}

#[test]
fn a8_threaded_component_talks_through_the_same_boxes() {
    // A threaded component that blocks in main (on a std channel) and
    // forwards to a scheduler component, which replies to an endpoint.
    struct Blocking(std::sync::mpsc::Receiver<u64>);
    impl Component for Blocking {
        fn boxes(&self) -> Boxes {
            Boxes::standard::<u64, u64>()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            match self.0.recv() {
                Ok(n) => {
                    let _ = cx.send(n, "outbox");
                    Step::Continue
                }
                Err(_) => {
                    let _ = cx.send(Control::ProducerFinished, "signal");
                    Step::Done
                }
            }
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let threaded = Handle::new(Blocking(rx));
    let f = Handle::new(Forwarder::new());
    let sink = numbers("sink");
    let pipeline = Pipeline::new(vec![threaded.clone(), f]).unwrap();
    link((&pipeline, "outbox"), (sink.handle(), "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate_threaded(&threaded).unwrap();
    scheduler.activate(&pipeline).unwrap();
    let (_s, t) = spawn(scheduler);
    for i in 0..100 {
        tx.send(i).unwrap();
    }
    assert_eq!(drain(&sink, 100), (0..100).collect::<Vec<_>>());
    drop(tx);
    t.join();
}

#[test]
fn a8_threaded_component_is_woken_by_scheduler_components() {
    let threaded = Forwarder::new();
    let steps = threaded.steps.clone();
    let t = Handle::new(threaded);
    let ends = numbers("ends");
    link((ends.handle(), "outbox"), (&t, "inbox")).unwrap();
    link((&t, "outbox"), (ends.handle(), "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate_threaded(&t).unwrap();
    let (_s, thread) = spawn(scheduler);
    for i in 0..2000u64 {
        ends.send(i, "outbox").unwrap();
        assert_eq!(
            ends.recv_timeout::<u64>("inbox", DEADLINE).unwrap(),
            Some(i)
        );
    }
    assert!(
        steps.load(Ordering::SeqCst) <= 2001,
        "threaded component spun"
    );
    t.postbox::<Control>("control")
        .unwrap()
        .send(Control::ProducerFinished)
        .unwrap();
    thread.join();
    assert!(t.is_done());
}

#[test]
fn a8_scheduler_stops_on_request_with_components_paused() {
    let scheduler = Scheduler::new();
    let h = Handle::new(Sleeper {
        steps: Arc::new(AtomicUsize::new(0)),
    });
    scheduler.activate(&h).unwrap();
    let (s, t) = spawn(scheduler);
    s.stop();
    t.join();
    assert!(!h.is_done());
}

#[test]
fn a8_a_component_is_activated_once_and_a_panic_ends_only_it() {
    struct Bad;
    impl Component for Bad {
        fn boxes(&self) -> Boxes {
            Boxes::new()
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            let _ = cx.recv::<u64>("no-such-inbox"); // a programming error
            Step::Pause
        }
    }
    let scheduler = Scheduler::new();
    let bad = Handle::new(Bad);
    scheduler.activate(&bad).unwrap();
    assert!(matches!(
        scheduler.activate(&bad),
        Err(ActivateError::AlreadyActivated(_))
    ));
    let producer = Handle::new(Producer::new(10));
    let sink = numbers("sink");
    link((&producer, "outbox"), (sink.handle(), "inbox")).unwrap();
    scheduler.activate(&producer).unwrap();
    run(scheduler);
    assert!(bad.is_done());
    assert_eq!(drain(&sink, 10), (0..10).collect::<Vec<_>>());
}

// ---------------------------------------------------------------- A9

#[test]
fn a9_cat_registers_retrieves_and_deregisters_services() {
    let scheduler = Scheduler::new();
    let cat = scheduler.cat();
    let svc = numbers("svc");
    cat.register_service("selector", svc.handle(), "inbox")
        .unwrap();
    let (h, inbox) = cat.retrieve_service("selector").unwrap();
    assert_eq!(&h, svc.handle());
    assert_eq!(inbox, "inbox");
    assert_eq!(
        cat.register_service("selector", svc.handle(), "inbox"),
        Err(CatError::AlreadyRegistered("selector".into()))
    );
    assert!(matches!(
        cat.register_service("other", svc.handle(), "nosuch"),
        Err(CatError::NoSuchInbox { .. })
    ));
    cat.deregister_service("selector").unwrap();
    assert_eq!(
        cat.deregister_service("selector"),
        Err(CatError::NotFound("selector".into()))
    );
    assert_eq!(
        cat.retrieve_service("selector").unwrap_err(),
        CatError::NotFound("selector".into())
    );
    assert_ne!(
        CatError::AlreadyRegistered("x".into()).to_string(),
        CatError::NotFound("x".into()).to_string()
    );
}

#[test]
fn a9_cat_tracks_values() {
    let cat = axon::Cat::new();
    cat.track_value("answer", 41u32).unwrap();
    assert_eq!(
        cat.track_value("answer", 0u32),
        Err(CatError::AlreadyRegistered("answer".into()))
    );
    cat.update_value("answer", 42u32).unwrap();
    assert_eq!(cat.retrieve_value::<u32>("answer"), Ok(42));
    assert!(matches!(
        cat.retrieve_value::<String>("answer"),
        Err(CatError::WrongType { .. })
    ));
    assert_eq!(
        cat.update_value("nope", 1u8),
        Err(CatError::NotFound("nope".into()))
    );
    cat.forget_value("answer").unwrap();
    assert_eq!(
        cat.retrieve_value::<u32>("answer"),
        Err(CatError::NotFound("answer".into()))
    );
}

#[test]
fn a9_a_service_found_through_the_cat_can_be_linked_and_used() {
    struct Client {
        replies: Arc<Mutex<Vec<u64>>>,
    }
    impl Component for Client {
        fn boxes(&self) -> Boxes {
            Boxes::new().outbox::<Notify<u64>>("toService", "requests")
        }
        fn main(&mut self, cx: &mut Cx<'_>) -> Step {
            let (svc, inbox) = cx.cat().retrieve_service("doubler").unwrap();
            let me = cx.me().clone();
            cx.link((&me, "toService"), (&svc, &inbox)).unwrap();
            let _ = cx.send(
                Notify {
                    caller: Some(me),
                    payload: 21u64,
                },
                "toService",
            );
            self.replies.lock().unwrap().push(1);
            Step::Done
        }
    }
    let svc = Endpoint::new(
        "doubler",
        Boxes::new().inbox::<Notify<u64>>("notify", "requests"),
    );
    let scheduler = Scheduler::new();
    scheduler
        .cat()
        .register_service("doubler", svc.handle(), "notify")
        .unwrap();
    let replies = Arc::new(Mutex::new(Vec::new()));
    scheduler
        .activate(&Handle::new(Client {
            replies: replies.clone(),
        }))
        .unwrap();
    run(scheduler);
    let req = svc
        .recv::<Notify<u64>>("notify")
        .unwrap()
        .expect("request arrived");
    assert_eq!(req.payload, 21);
    assert_eq!(req.caller.unwrap().name(), "Client");
}

// ---------------------------------------------------------------- A10

#[test]
fn a10_standard_messages_keep_kamaelias_kinds() {
    assert!(Control::ProducerFinished.is_producer_finished());
    assert!(
        Control::SocketShutdown.is_producer_finished(),
        "socketShutdown is a producerFinished"
    );
    assert!(!Control::ShutdownMicroprocess.is_producer_finished());
    assert!(Control::ShutdownMicroprocess.is_shutdown_microprocess());
    assert!(
        Control::ServerShutdown.is_shutdown_microprocess(),
        "serverShutdown is a shutdownMicroprocess"
    );
    assert!(!Control::Shutdown.is_shutdown_microprocess());
    let n = Notify {
        caller: None,
        payload: "x",
    };
    assert_eq!(n.payload, "x");
    assert_eq!(Status("ok".into()), Status("ok".into()));
    let c = NewComponent(vec![Handle::new(Forwarder::new())]);
    assert_eq!(c.0.len(), 1);
}

// ---------------------------------------------------------------- A11

#[test]
fn a11_pipeline_links_outbox_to_inbox_and_signal_to_control() {
    let p = Pipeline::new(vec![
        Handle::new(Producer::new(1000)),
        Handle::new(Forwarder::new()),
        Handle::new(Forwarder::new()),
    ])
    .unwrap();
    let sink = numbers("sink");
    link((&p, "outbox"), (sink.handle(), "inbox")).unwrap();
    link((&p, "signal"), (sink.handle(), "control")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&p).unwrap();
    let (_s, t) = spawn(scheduler);
    assert_eq!(drain(&sink, 1000), (0..1000).collect::<Vec<_>>());
    // producerFinished travelled signal -> control down the chain and out.
    assert_eq!(
        sink.recv_timeout::<Control>("control", DEADLINE).unwrap(),
        Some(Control::ProducerFinished)
    );
    t.join();
    assert!(p.is_done());
}

#[test]
fn a11_pipeline_refuses_neighbours_of_different_types() {
    let words = Endpoint::new("words", Boxes::standard::<String, String>());
    let err =
        Pipeline::new(vec![Handle::new(Producer::new(1)), words.handle().clone()]).unwrap_err();
    assert!(matches!(err, LinkError::TypeMismatch { .. }), "{err:?}");
}

#[test]
fn a11_graphline_wires_named_children_and_exposes_its_own_boxes() {
    let g = Graphline::new(
        vec![
            ("first", Handle::new(Forwarder::new())),
            ("second", Handle::new(Forwarder::new())),
        ],
        &[
            (("self", "inbox"), ("first", "inbox")),
            (("first", "outbox"), ("second", "inbox")),
            (("second", "outbox"), ("self", "outbox")),
        ],
    )
    .unwrap();
    let ends = numbers("ends");
    link((ends.handle(), "outbox"), (&g, "inbox")).unwrap();
    link((&g, "outbox"), (ends.handle(), "inbox")).unwrap();
    link((&g, "signal"), (ends.handle(), "control")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&g).unwrap();
    let (_s, t) = spawn(scheduler);
    for i in 0..10u64 {
        ends.send(i, "outbox").unwrap();
    }
    assert_eq!(drain(&ends, 10), (0..10).collect::<Vec<_>>());
    // control is not linked by any linkage: it is copied to every child.
    g.postbox::<Control>("control")
        .unwrap()
        .send(Control::ShutdownMicroprocess)
        .unwrap();
    assert_eq!(
        ends.recv_timeout::<Control>("control", DEADLINE).unwrap(),
        Some(Control::ProducerFinished),
        "a graphline says producerFinished when its children have ended"
    );
    t.join();
}

#[test]
fn a11_graphline_names_a_missing_child() {
    let err = Graphline::new(
        vec![("a", Handle::new(Forwarder::new()))],
        &[(("a", "outbox"), ("b", "inbox"))],
    )
    .unwrap_err();
    assert_eq!(err, LinkError::NoSuchChild("b".into()));
}

#[test]
fn deadline_helper_is_sane() {
    // Guards the helpers themselves: recv_timeout returns None on time.
    let e = numbers("e");
    let start = Instant::now();
    assert_eq!(
        e.recv_timeout::<u64>("inbox", Duration::from_millis(50))
            .unwrap(),
        None
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
}
