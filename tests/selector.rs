//! Selector rules S1 and S8 with a real scheduler (S2–S7 are unit tests of
//! the state machine in `selector/src/state.rs`; S6 under load is in
//! `load.rs`).

mod util;

use std::sync::Arc;

use axon::{boxes, link, Control, Endpoint, Inbox, Outbox, Scheduler};
use selector::{get_selector_services, Ready, Request, SelectorError, Source};
use util::*;

boxes! {
    /// What the S8 test talks to the Selector with.
    struct SelectorUser {
        /// requests
        #[name = "toSelector"]
        to_selector: Outbox<Request>,
        /// shutdown
        #[name = "toControl"]
        to_control: Outbox<Control>,
        /// notices
        ready: Inbox<Ready>,
        /// its signal
        #[name = "selectorSignal"]
        selector_signal: Inbox<Control>,
    }
}

#[test]
fn s1_get_selector_services_creates_registers_then_returns_the_running_one() {
    let scheduler = selector::scheduler().unwrap();
    let (first, new) = get_selector_services(scheduler.cat()).unwrap();
    assert_eq!(
        new.as_ref(),
        Some(&first),
        "a new one is returned for activation"
    );
    let (svc, inbox) = scheduler.cat().retrieve_service("selector").unwrap();
    assert_eq!((svc, &*inbox), (first.clone(), "notify"));
    let (svc, inbox) = scheduler
        .cat()
        .retrieve_service("selectorshutdown")
        .unwrap();
    assert_eq!((svc, &*inbox), (first.clone(), "control"));
    let (again, new) = get_selector_services(scheduler.cat()).unwrap();
    assert_eq!(again, first);
    assert!(new.is_none());
}

#[test]
fn s1_a_scheduler_without_the_reactor_is_a_clear_error() {
    let plain = Scheduler::new();
    let err = get_selector_services(plain.cat()).unwrap_err();
    assert!(matches!(err, SelectorError::NoReactor));
    assert!(err.to_string().contains("selector::scheduler()"));
}

#[test]
fn s8_shutdown_deregisters_and_ends_once_registrations_are_gone() {
    let scheduler = selector::scheduler().unwrap();
    let (sel, new) = get_selector_services(scheduler.cat()).unwrap();
    scheduler.activate(new.unwrap()).unwrap();
    let cat_view = scheduler.handle();
    let me = Endpoint::<SelectorUser>::new("me");
    link((me.handle(), "toSelector"), (&sel, "notify")).unwrap();
    link((me.handle(), "toControl"), (&sel, "control")).unwrap();
    link((&sel, "signal"), (me.handle(), "selectorSignal")).unwrap();

    let listener = Arc::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    listener.set_nonblocking(true).unwrap();
    let source = Source::new(listener.clone());
    // Registered before the scheduler starts: a Selector with nothing
    // registered is an idle service, and a scheduler left with only idle
    // services returns (and clears its CAT), so a request sent after a
    // first, empty step could find no Selector running.
    me.to_selector
        .send(Request::new_reader((me.handle(), "ready"), &source).unwrap())
        .unwrap();
    let running = Running::start(scheduler);
    me.to_control.send(Control::Shutdown).unwrap();
    // Names gone at once; the Selector lives on while a registration does.
    wait_until("the service names to go", || {
        cat_view.cat().retrieve_service("selector").is_err()
            && cat_view.cat().retrieve_service("selectorshutdown").is_err()
    });
    assert!(!sel.is_done(), "ended with a registration left");
    // It still serves the registration it has.
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert!(me.ready.recv_timeout(DEADLINE).is_some());
    assert!(!sel.is_done());
    me.to_selector.send(Request::RemoveReader(source)).unwrap();
    assert_eq!(
        me.selector_signal.recv_timeout(DEADLINE),
        Some(Control::ProducerFinished)
    );
    running.join(); // nothing left: the scheduler ends too
}
