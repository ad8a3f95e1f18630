//! One or more tests per Axon rule (A1–A11 of PROTOCOL.md), named after the
//! rule they prove.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axon::ipc::{NewComponent, Notify, Status};
use axon::{
    boxes, link, unlink, ActivateError, BoxError, CatError, Component, Control, Cx, Declaration,
    Direction, Endpoint, Graphline, Handle, Inbox, LinkError, NoSpace, Outbox, Pipeline, Scheduler,
    Standard, Step,
};
use testkit::{wait_until, Running, DEADLINE};
use util::*;

/// An endpoint with the standard boxes, carrying numbers both ways.
type Numbers = Endpoint<Standard<u64, u64>>;

fn numbers(name: &str) -> Numbers {
    Endpoint::new(name)
}

fn drain(e: &Numbers, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            e.inbox
                .recv_timeout(DEADLINE)
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

boxes! {
    /// The standard boxes, with an inbox of text.
    struct LineBoxes {
        /// lines
        ///   of text
        inbox: Inbox<String>,
        /// shutdown signalling
        control: Inbox<Control>,
        /// numbers out
        outbox: Outbox<u64>,
        /// producerFinished when done
        signal: Outbox<Control>,
    }
}

#[test]
fn a1_declared_boxes_keep_their_one_line_description() {
    let inbox_of = |h: &Handle| {
        h.boxes()
            .into_iter()
            .find(|b| b.name == "inbox")
            .expect("an inbox")
    };
    // Declared as a struct: the field's doc comment, joined into one line.
    let e = Endpoint::<LineBoxes>::new("custom");
    let inbox = inbox_of(e.handle());
    assert_eq!(inbox.doc, "lines of text");
    assert_eq!(inbox.message_type, "alloc::string::String");
    // Declared at run time: a later declaration of a name replaces the
    // earlier one, description and type.
    let e = Endpoint::dynamic(
        "custom",
        Declaration::new()
            .inbox::<u64>("inbox", "numbers")
            .inbox::<Control>("control", "shutdown signalling")
            .inbox::<String>("inbox", "lines of text"),
    );
    let inbox = inbox_of(e.handle());
    assert_eq!(inbox.doc, "lines of text");
    assert_eq!(inbox.message_type, "alloc::string::String");
    assert_eq!(e.handle().boxes().len(), 2);
}

// ---------------------------------------------------------------- A2

#[test]
fn a2_messages_arrive_in_the_order_sent() {
    let scheduler = Scheduler::new();
    let producer = Handle::new(Producer::new(10_000));
    let sink = numbers("sink");
    link((&producer, "outbox"), (sink.handle(), "inbox")).unwrap();
    scheduler.activate(&producer).unwrap();
    let running = Running::start(scheduler);
    assert_eq!(drain(&sink, 10_000), (0..10_000).collect::<Vec<_>>());
    running.join();
}

#[test]
fn a2_data_ready_and_any_ready_see_waiting_messages() {
    struct Probe(Arc<Mutex<Vec<(bool, bool, bool)>>>);
    impl Component for Probe {
        type Boxes = Standard<u64, u64>;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            let seen = (!cx.inbox.is_empty(), !cx.control.is_empty(), cx.any_ready());
            self.0.lock().unwrap().push(seen);
            if cx.inbox.recv().is_some() {
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
    Running::to_completion(scheduler);
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
    child.outbox.send(42).unwrap();
    assert_eq!(
        other.handle().inbox_len("inbox"),
        0,
        "no copy in the middle"
    );
    assert_eq!(grandchild.inbox.recv(), Some(42));
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
    a.outbox.send(1).unwrap();
    unlink(&l);
    a.outbox.send(2).unwrap();
    assert_eq!(b.inbox.recv(), Some(1));
    assert_eq!(b.inbox.recv(), None);
    // The source is free to be linked again.
    link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
}

#[test]
fn a3_linking_boxes_of_different_message_types_is_refused() {
    let a = numbers("a");
    let words = Endpoint::<Standard<String, String>>::new("words");
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

#[test]
fn a3_a_loop_of_any_length_is_refused_and_the_chain_still_delivers() {
    let a = numbers("a");
    let b = numbers("b");
    let c = numbers("c");
    // A box linked to itself.
    assert!(matches!(
        link((a.handle(), "inbox"), (a.handle(), "inbox")),
        Err(LinkError::Cycle { .. })
    ));
    // a.inbox -> b.inbox -> c.inbox: closing it from c back to a or b is
    // a loop found only by following the chain past its first hop.
    link((a.handle(), "inbox"), (b.handle(), "inbox")).unwrap();
    link((b.handle(), "inbox"), (c.handle(), "inbox")).unwrap();
    for back in [a.handle(), b.handle()] {
        let err = link((c.handle(), "inbox"), (back, "inbox")).unwrap_err();
        assert!(matches!(err, LinkError::Cycle { .. }), "{err:?}");
    }
    // Nothing was changed by the refusals: a message sent to the head
    // of the chain reaches its end.
    a.handle().postbox::<u64>("inbox").unwrap().send(7).unwrap();
    assert_eq!(c.inbox.recv(), Some(7));
}

// ---------------------------------------------------------------- A4

#[test]
fn a4_send_to_an_unlinked_outbox_is_discarded() {
    let a = numbers("a");
    a.outbox.send(1).unwrap();
    let b = numbers("b");
    link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
    assert_eq!(b.inbox.recv(), None);
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
    a.outbox.send(1).unwrap();
    a.outbox.send(2).unwrap();
    match a.outbox.send(3) {
        Err(full) => assert_eq!(full.into_inner(), 3, "the message is given back"),
        Ok(()) => panic!("expected no space, the third message was taken"),
    }
    assert_eq!(b.inbox.recv(), Some(1));
    a.outbox.send(3).unwrap();
    assert_eq!(drain(&b, 2), [2, 3]);
    assert!(NoSpace(()).to_string().contains("no space in box"));
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
    let running = Running::start(scheduler);
    for i in 0..5u64 {
        ends.outbox.send(i).unwrap();
        assert_eq!(ends.inbox.recv_timeout(DEADLINE), Some(i));
    }
    // Paused between messages: woken once per message (plus its first run),
    // not spinning.
    assert!(
        steps.load(Ordering::SeqCst) <= 6,
        "stepped {} times",
        steps.load(Ordering::SeqCst)
    );
    running.stop();
}

/// On a message in `inbox`: sends `7` out of `outbox` (waking a paused
/// component on this thread), then runs a whole scheduler of its own inside
/// its step (a pipeline of forwarders), then pauses.
struct Nester;

impl Component for Nester {
    type Boxes = Standard<u64, u64>;

    fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
        if cx.inbox.recv().is_none() {
            return Step::Pause;
        }
        let _ = cx.outbox.send(7);
        let inner = Scheduler::new();
        let a = Handle::new(Forwarder::new());
        let b = Handle::new(Forwarder::new());
        link((&a, "outbox"), (&b, "inbox")).unwrap();
        link((&a, "signal"), (&b, "control")).unwrap();
        let feed = numbers("feed");
        link((feed.handle(), "outbox"), (&a, "inbox")).unwrap();
        link((feed.handle(), "signal"), (&a, "control")).unwrap();
        for i in 0..3u64 {
            feed.outbox.send(i).unwrap();
        }
        feed.signal.send(Control::ProducerFinished).unwrap();
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
    let running = Running::start(scheduler);
    // Once the forwarder has had its first step it is paused, so the
    // nester's send wakes it through the scheduler thread's own list.
    wait_until("the forwarder's first step", || {
        steps.load(Ordering::SeqCst) > 0
    });
    ends.outbox.send(1).unwrap();
    assert_eq!(
        ends.inbox.recv_timeout(DEADLINE),
        Some(7),
        "the outer forwarder was woken before the inner scheduler ran"
    );
    running.stop();
}

#[test]
fn a6_paused_component_wakes_when_space_frees() {
    // Producer -> consumer inbox of size 1; the consumer is slow (an
    // Endpoint drained by this thread, which starts only once the producer
    // has met "no space" and paused). Every item must arrive, in order:
    // the producer was woken to resume each time space freed.
    let producer = Producer::new(200);
    let no_space = producer.no_space_seen.clone();
    let p = Handle::new(producer);
    let sink = numbers("sink");
    sink.handle().set_inbox_size("inbox", Some(1)).unwrap();
    link((&p, "outbox"), (sink.handle(), "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&p).unwrap();
    let running = Running::start(scheduler);
    // Waited for, not hoped for: a consumer as fast as the producer could
    // otherwise take every item before the next (a loaded machine did).
    wait_until("the producer to meet a full box", || {
        no_space.load(Ordering::SeqCst) > 0
    });
    assert_eq!(drain(&sink, 200), (0..200).collect::<Vec<_>>());
    running.join();
}

#[test]
fn a6_parent_wakes_when_a_child_terminates() {
    struct Parent {
        child: Handle,
        woken_after_child_done: Arc<AtomicUsize>,
        started: bool,
    }
    impl Component for Parent {
        type Boxes = NoBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
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
    let running = Running::start(scheduler);
    child
        .postbox::<Control>("control")
        .unwrap()
        .send(Control::ShutdownMicroprocess)
        .unwrap();
    running.join(); // ends only if the parent was woken and finished
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
        type Boxes = NoBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
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
        .activate(Napper {
            woke_after: woke_after.clone(),
            started: None,
            steps: 0,
        })
        .unwrap();
    // Paused with nothing else to wake it: only the timer can.
    Running::to_completion(scheduler);
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
        type Boxes = NoBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            self.step += 1;
            if self.step == 1 {
                cx.add_child(&self.child);
                let me = cx.me().clone();
                cx.link((&self.child, "outbox"), (&self.sink, "inbox"))
                    .unwrap();
                assert_eq!(me.links().len(), 1);
                self.report.lock().unwrap().push(cx.children().len());
                cx.remove_child(&self.child);
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
    Running::to_completion(scheduler);
    assert_eq!(*report.lock().unwrap(), [1, 0, 0]);
    child.outbox.send(9).unwrap();
    assert_eq!(sink.inbox.recv(), None, "link survived removal");
}

/// A component that ends at its first step (A7's children).
struct Ends;

impl Component for Ends {
    type Boxes = NoBoxes;
    fn main(&mut self, _: &mut Cx<'_, Self::Boxes>) -> Step {
        Step::Done
    }
}

/// `adopt` is A7 without the list: an adopted child's end is heard (and
/// reported by `ended_children`) though it is never among `children`; a
/// disowned one's is not heard.
#[test]
fn a7_an_adopted_child_is_heard_ending_without_being_listed_and_a_disowned_one_is_not() {
    struct Parent {
        kept: Option<Handle>,
        dropped: Option<Handle>,
        heard: Arc<Mutex<Vec<u64>>>,
        listed: Arc<Mutex<usize>>,
    }
    impl Component for Parent {
        type Boxes = NoBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            if let (Some(kept), Some(dropped)) = (self.kept.take(), self.dropped.take()) {
                let _ = cx.ended_children();
                cx.adopt(&kept);
                cx.adopt(&dropped);
                cx.disown(&dropped);
                *self.listed.lock().unwrap() = cx.children().len();
                // The disowned one first: had it been heard, it would be
                // heard before the other.
                cx.activate(&dropped).unwrap();
                cx.activate(&kept).unwrap();
                return Step::Pause;
            }
            let ended = cx.ended_children();
            self.heard
                .lock()
                .unwrap()
                .extend(ended.iter().map(Handle::id));
            if ended.is_empty() {
                Step::Pause
            } else {
                Step::Done
            }
        }
    }
    let (kept, dropped) = (Handle::new(Ends), Handle::new(Ends));
    let (heard, listed) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(9)));
    let scheduler = Scheduler::new();
    scheduler
        .activate(Parent {
            kept: Some(kept.clone()),
            dropped: Some(dropped.clone()),
            heard: heard.clone(),
            listed: listed.clone(),
        })
        .unwrap();
    Running::to_completion(scheduler);
    assert_eq!(
        *listed.lock().unwrap(),
        0,
        "adopted children are not listed"
    );
    assert_eq!(
        *heard.lock().unwrap(),
        [kept.id()],
        "only the adopted one is heard"
    );
}

/// `ended_children_into` is `ended_children` into the caller's list:
/// each end once, over however many steps they come in.
#[test]
fn a7_ended_children_into_appends_each_childs_end_once() {
    // Two waves: the second starts once the first's end is heard, so the
    // ends come over two calls at least, and one given twice shows.
    struct Parent {
        waves: Vec<Vec<Handle>>,
        launched: usize,
        ended: Vec<Handle>,
        heard: Arc<Mutex<Vec<u64>>>,
    }
    impl Component for Parent {
        type Boxes = NoBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            cx.ended_children_into(&mut self.ended);
            let mut heard = self.heard.lock().unwrap();
            heard.extend(self.ended.drain(..).map(|h| h.id()));
            if heard.len() >= self.launched {
                let Some(wave) = self.waves.pop() else {
                    return Step::Done;
                };
                for child in wave {
                    cx.adopt(&child);
                    cx.activate(&child).unwrap();
                    self.launched += 1;
                }
            }
            Step::Pause
        }
    }
    let children: Vec<Handle> = (0..3).map(|_| Handle::new(Ends)).collect();
    let mut ids: Vec<u64> = children.iter().map(Handle::id).collect();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let scheduler = Scheduler::new();
    scheduler
        .activate(Parent {
            waves: vec![children[1..].to_vec(), children[..1].to_vec()],
            launched: 0,
            ended: Vec::new(),
            heard: heard.clone(),
        })
        .unwrap();
    Running::to_completion(scheduler);
    let mut heard = heard.lock().unwrap().clone();
    heard.sort_unstable();
    ids.sort_unstable();
    assert_eq!(heard, ids, "every end, once");
}

#[test]
fn a7_a_component_that_ends_drops_the_linkages_it_made() {
    struct Linker(Handle, Handle);
    impl Component for Linker {
        type Boxes = NoBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            cx.link((&self.0, "outbox"), (&self.1, "inbox")).unwrap();
            Step::Done
        }
    }
    let a = numbers("a");
    let b = numbers("b");
    let scheduler = Scheduler::new();
    let linker = scheduler
        .activate(Linker(a.handle().clone(), b.handle().clone()))
        .unwrap();
    Running::to_completion(scheduler);
    assert!(linker.is_done() && !linker.panicked(), "the linker ran");
    a.outbox.send(1).unwrap();
    assert_eq!(b.inbox.recv(), None);
}

// ---------------------------------------------------------------- A8

#[test]
fn a8_a_component_that_yields_runs_after_the_components_its_step_woke() {
    // A CSA hands decrypted bytes to its handler and yields with records
    // to write: the handler must run first, so that its reply leaves with
    // them in one write. Log: the yielder's first step, the sink, then
    // the yielder again (before this order, it ran again first).
    type Log = Arc<Mutex<Vec<&'static str>>>;
    struct Yielder(Log, bool);
    impl Component for Yielder {
        type Boxes = Standard<u64, u64>;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            if std::mem::replace(&mut self.1, true) {
                self.0.lock().unwrap().push("yielder again");
                return Step::Done;
            }
            self.0.lock().unwrap().push("yielder");
            cx.outbox.send(1).unwrap();
            Step::Continue
        }
    }
    struct Sink(Log);
    impl Component for Sink {
        type Boxes = Standard<u64, u64>;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            match cx.inbox.recv() {
                Some(_) => {
                    self.0.lock().unwrap().push("sink");
                    Step::Done
                }
                None => Step::Pause,
            }
        }
    }
    let log = Log::default();
    let sink = Handle::new(Sink(log.clone()));
    let yielder = Handle::new(Yielder(log.clone(), false));
    link((&yielder, "outbox"), (&sink, "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&sink).unwrap();
    scheduler.activate(&yielder).unwrap();
    Running::start(scheduler).join();
    assert_eq!(*log.lock().unwrap(), ["yielder", "sink", "yielder again"]);
}

#[test]
fn a8_one_thread_runs_twenty_thousand_components_then_exits() {
    const N: usize = 20_000;
    let scheduler = Scheduler::new();
    let thread_ids = Arc::new(Mutex::new(std::collections::HashSet::new()));
    struct Once(Arc<Mutex<std::collections::HashSet<std::thread::ThreadId>>>);
    impl Component for Once {
        type Boxes = Standard<u64, u64>;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            match cx.inbox.recv() {
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
    let running = Running::start(scheduler);
    for h in &handles {
        h.postbox::<u64>("inbox").unwrap().send(1).unwrap();
    }
    running.join(); // exits by itself once no component is left
    assert!(handles.iter().all(Handle::is_done));
    assert_eq!(thread_ids.lock().unwrap().len(), 1);
}

#[test]
fn a8_threaded_component_talks_through_the_same_boxes() {
    // A threaded component that blocks in main (on a std channel) and
    // forwards to a scheduler component, which replies to an endpoint.
    // It keeps a message the forwarder has no room for (A5) and is woken
    // when there is (A6): the pipeline bounds the forwarder's inbox.
    struct Blocking(std::sync::mpsc::Receiver<u64>, Option<u64>);
    impl Component for Blocking {
        type Boxes = Standard<u64, u64>;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            match self.1.take().or_else(|| self.0.recv().ok()) {
                Some(n) => match cx.outbox.send(n) {
                    Ok(()) => Step::Continue,
                    Err(full) => {
                        self.1 = Some(full.into_inner());
                        Step::Pause
                    }
                },
                None => {
                    let _ = cx.signal.send(Control::ProducerFinished);
                    Step::Done
                }
            }
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let threaded = Handle::new(Blocking(rx, None));
    let f = Handle::new(Forwarder::new());
    let sink = numbers("sink");
    let pipeline = Handle::new(Pipeline::new(vec![threaded.clone(), f]).unwrap());
    link((&pipeline, "outbox"), (sink.handle(), "inbox")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate_threaded(&threaded).unwrap();
    scheduler.activate(&pipeline).unwrap();
    let running = Running::start(scheduler);
    for i in 0..100 {
        tx.send(i).unwrap();
    }
    assert_eq!(drain(&sink, 100), (0..100).collect::<Vec<_>>());
    drop(tx);
    running.join();
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
    let running = Running::start(scheduler);
    for i in 0..2000u64 {
        ends.outbox.send(i).unwrap();
        assert_eq!(ends.inbox.recv_timeout(DEADLINE), Some(i));
    }
    assert!(
        steps.load(Ordering::SeqCst) <= 2001,
        "threaded component spun"
    );
    t.postbox::<Control>("control")
        .unwrap()
        .send(Control::ProducerFinished)
        .unwrap();
    running.join();
    assert!(t.is_done());
}

#[test]
fn a8_scheduler_stops_on_request_with_components_paused() {
    let scheduler = Scheduler::new();
    let steps = Arc::new(AtomicUsize::new(0));
    let h = Handle::new(Sleeper {
        steps: steps.clone(),
    });
    scheduler.activate(&h).unwrap();
    let running = Running::start(scheduler);
    wait_until("the sleeper's first step", || {
        steps.load(Ordering::SeqCst) > 0
    });
    running.stop();
    // It was paused, not finished, when the scheduler stopped: it was never
    // stepped again. A stopped scheduler lets go of what it still held, so
    // it is ended now, without having panicked.
    assert_eq!(steps.load(Ordering::SeqCst), 1);
    assert!(h.is_done() && !h.panicked());
}

#[test]
fn a8_a_component_is_activated_once_and_a_panic_ends_only_it() {
    /// Asks its own handle for an inbox it does not have, by a name that
    /// could have come from outside: a wrong name is an error at the
    /// caller, which unwraps it (a programming error, a panic).
    struct Bad;
    impl Component for Bad {
        type Boxes = NoBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            let _ = cx.me().postbox::<u64>("no-such-inbox").unwrap();
            Step::Pause
        }
    }
    let scheduler = Scheduler::new();
    let bad = Handle::new(Bad);
    assert!(matches!(
        bad.postbox::<u64>("no-such-inbox"),
        Err(BoxError::NoSuchBox { .. })
    ));
    scheduler.activate(&bad).unwrap();
    assert!(matches!(
        scheduler.activate(&bad),
        Err(ActivateError::AlreadyActivated(_))
    ));
    let producer = Handle::new(Producer::new(10));
    let sink = numbers("sink");
    link((&producer, "outbox"), (sink.handle(), "inbox")).unwrap();
    scheduler.activate(&producer).unwrap();
    Running::to_completion(scheduler);
    assert!(bad.is_done() && bad.panicked());
    assert!(producer.is_done() && !producer.panicked());
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

boxes! {
    /// A client of the doubler service.
    struct ClientBoxes {
        /// requests
        #[name = "toService"]
        to_service: Outbox<Notify<u64>>,
    }
}

boxes! {
    /// The doubler service's one inbox.
    struct DoublerBoxes {
        /// requests
        notify: Inbox<Notify<u64>>,
    }
}

#[test]
fn a9_a_service_found_through_the_cat_can_be_linked_and_used() {
    struct Client {
        replies: Arc<Mutex<Vec<u64>>>,
    }
    impl Component for Client {
        type Boxes = ClientBoxes;
        fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
            let (svc, inbox) = cx.cat().retrieve_service("doubler").unwrap();
            let me = cx.me().clone();
            cx.link((&me, "toService"), (&svc, &inbox)).unwrap();
            let _ = cx.to_service.send(Notify {
                caller: Some(me),
                payload: 21u64,
            });
            self.replies.lock().unwrap().push(1);
            Step::Done
        }
    }
    let svc = Endpoint::<DoublerBoxes>::new("doubler");
    let scheduler = Scheduler::new();
    scheduler
        .cat()
        .register_service("doubler", svc.handle(), "notify")
        .unwrap();
    let replies = Arc::new(Mutex::new(Vec::new()));
    scheduler
        .activate(Client {
            replies: replies.clone(),
        })
        .unwrap();
    Running::to_completion(scheduler);
    assert_eq!(*replies.lock().unwrap(), [1], "the client ran once");
    let req = svc.notify.recv().expect("request arrived");
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
    let p = Handle::new(
        Pipeline::new(vec![
            Producer::new(1000).into(),
            Forwarder::new().into(),
            Forwarder::new().into(),
        ])
        .unwrap(),
    );
    let sink = numbers("sink");
    link((&p, "outbox"), (sink.handle(), "inbox")).unwrap();
    link((&p, "signal"), (sink.handle(), "control")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&p).unwrap();
    let running = Running::start(scheduler);
    assert_eq!(drain(&sink, 1000), (0..1000).collect::<Vec<_>>());
    // producerFinished travelled signal -> control down the chain and out.
    assert_eq!(
        sink.control.recv_timeout(DEADLINE),
        Some(Control::ProducerFinished)
    );
    running.join();
    assert!(p.is_done());
}

#[test]
fn a11_pipeline_refuses_neighbours_of_different_types() {
    let words = Endpoint::<Standard<String, String>>::new("words");
    let err = Pipeline::new(vec![Producer::new(1).into(), words.handle().clone()]).unwrap_err();
    assert!(matches!(err, LinkError::TypeMismatch { .. }), "{err:?}");
}

#[test]
fn a11_graphline_wires_named_children_and_exposes_its_own_boxes() {
    let g = Handle::new(
        Graphline::new(
            vec![
                ("first", Forwarder::new().into()),
                ("second", Forwarder::new().into()),
            ],
            &[
                (("self", "inbox"), ("first", "inbox")),
                (("first", "outbox"), ("second", "inbox")),
                (("second", "outbox"), ("self", "outbox")),
            ],
        )
        .unwrap(),
    );
    let ends = numbers("ends");
    link((ends.handle(), "outbox"), (&g, "inbox")).unwrap();
    link((&g, "outbox"), (ends.handle(), "inbox")).unwrap();
    link((&g, "signal"), (ends.handle(), "control")).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&g).unwrap();
    let running = Running::start(scheduler);
    for i in 0..10u64 {
        ends.outbox.send(i).unwrap();
    }
    assert_eq!(drain(&ends, 10), (0..10).collect::<Vec<_>>());
    // control is not linked by any linkage: it is copied to every child.
    g.postbox::<Control>("control")
        .unwrap()
        .send(Control::ShutdownMicroprocess)
        .unwrap();
    assert_eq!(
        ends.control.recv_timeout(DEADLINE),
        Some(Control::ProducerFinished),
        "a graphline says producerFinished when its children have ended"
    );
    running.join();
}

#[test]
fn a11_graphline_names_a_missing_child() {
    let err = Graphline::new(
        vec![("a", Forwarder::new().into())],
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
    assert_eq!(e.inbox.recv_timeout(Duration::from_millis(50)), None);
    assert!(start.elapsed() >= Duration::from_millis(50));
}
