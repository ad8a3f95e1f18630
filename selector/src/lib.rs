//! # The Selector service
//!
//! Kamaelia's `Kamaelia.Internet.Selector`: a component that watches
//! sockets and tells other components, once per request, when one is ready
//! (rules S1–S8 of the project's `docs/PROTOCOL.md`).
//!
//! A component that owns a socket wraps it in a [`Source`], finds the
//! Selector through the CAT ([`get_selector_services`], S1), links an
//! outbox to the Selector's `notify` inbox and sends it requests:
//!
//! - `newReader((component, inbox), source)` →
//!   [`Request::NewReader`] (and `newWriter`, `newExceptional`, S2);
//! - `removeReader(source)` → [`Request::RemoveReader`] (and the others).
//!
//! ## The one-shot contract
//!
//! - **One-shot (S3).** When the source is ready, one [`Ready`] notice goes
//!   to the named inbox and the request is forgotten. To hear again, ask
//!   again, after having seen `WouldBlock`.
//! - **First wins (S4).** While a request for `(source, kind)` is
//!   outstanding, another for the same pair is ignored.
//! - **Removal is idempotent (S5).**
//! - **No lost wake-ups (S6).** Readiness that arrives while no request is
//!   outstanding is remembered and answers the next request at once. A
//!   notice may be *spurious* (the receiver then sees `WouldBlock` and asks
//!   again); one is never *lost*.
//! - **Closed sources (S7)** never disturb anyone else: the Selector holds
//!   a clone of each registered source, so its descriptor cannot be closed
//!   and reused before it is deregistered, and tokens carry a generation so
//!   late events for a freed slot are dropped.
//! - **Shutdown (S8).** `shutdown` on `control` removes the service names
//!   from the CAT; the Selector ends once no registrations are left.
//!
//! ## How it runs
//!
//! mio is edge-triggered; each source is registered once, for both
//! directions, and a request only arms a flag in user space (no system
//! call). The polling itself is the scheduler's way of sleeping: build the
//! scheduler with [`scheduler()`], whose reactor calls `epoll_wait` with a
//! zero timeout every few rounds and with no timeout when nothing is
//! runnable. There is no Selector thread and no timed loop.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axon::{boxes, link, Endpoint, Inbox, Outbox};
//! use selector::{get_selector_services, Ready, Request, Source};
//!
//! boxes! {
//!     struct Me {
//!         /// requests to the Selector
//!         to_selector: Outbox<Request>,
//!         /// the Selector's notices
//!         ready: Inbox<Ready>,
//!     }
//! }
//!
//! let scheduler = selector::scheduler().unwrap();
//! let (sel, new) = get_selector_services(scheduler.cat()).unwrap();
//! scheduler.activate(&new.unwrap()).unwrap();
//!
//! // A listening socket with a client waiting on it is readable.
//! let listener = Arc::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
//! let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
//! let me = Endpoint::<Me>::new("me");
//! link((me.handle(), "to_selector"), (&sel, "notify")).unwrap();
//! let source = Source::new(listener);
//! me.to_selector.send(Request::NewReader(me.ready.postbox(), source.clone())).unwrap();
//!
//! let stop = scheduler.handle();
//! let running = std::thread::spawn(move || scheduler.run());
//! let notice = me.ready.recv_timeout(Duration::from_secs(10));
//! assert!(notice.unwrap().0.same(&source));
//! stop.stop();
//! running.join().unwrap();
//! ```
//!
//! The request is sent before the scheduler runs: a Selector with nothing
//! registered does not keep its scheduler running by itself, so a
//! scheduler whose only component is an idle Selector returns at once.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod component;
mod poll;
mod request;
pub mod state;

use std::fmt;
use std::io;

pub use component::{get_selector_services, link_to_selector, Selector, SelectorBoxes};
pub use poll::{MioPoller, SelectorReactor};
pub use request::{Kind, Notice, Ready, Request, Source, SourceRef, Watched};

/// Why the Selector service could not be had.
#[derive(Debug)]
pub enum SelectorError {
    /// The scheduler has no Selector reactor: build it with [`scheduler()`].
    NoReactor,
    /// The CAT refused a registration.
    Cat(axon::CatError),
    /// The new Selector could not be activated.
    Activate(axon::ActivateError),
    /// Linking to the Selector failed.
    Link(axon::LinkError),
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectorError::NoReactor => {
                "this scheduler has no Selector reactor; build it with selector::scheduler()"
            }
            SelectorError::Cat(_) => "selector service: cannot register it",
            SelectorError::Activate(_) => "selector service: cannot activate it",
            SelectorError::Link(_) => "selector service: cannot link to it",
        })
    }
}

impl std::error::Error for SelectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SelectorError::NoReactor => None,
            SelectorError::Cat(e) => Some(e),
            SelectorError::Activate(e) => Some(e),
            SelectorError::Link(e) => Some(e),
        }
    }
}

/// A scheduler whose idle wait is the Selector's poll (see the crate docs).
/// Components on it find the Selector with [`get_selector_services`].
pub fn scheduler() -> io::Result<axon::Scheduler> {
    let (reactor, shared) = SelectorReactor::new()?;
    let scheduler = axon::Scheduler::with_reactor(reactor);
    scheduler
        .cat()
        .track_value(component::STATE_VALUE, shared)
        .map_err(io::Error::other)?;
    Ok(scheduler)
}
