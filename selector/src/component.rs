//! The Selector component and how it is found (S1, S2, S8).

use axon::{boxes, CatError, Component, Control, Cx, Handle, Inbox, Outbox, Step};

use crate::poll::{lock, Shared};
use crate::request::Request;
use crate::SelectorError;

/// The CAT value under which a selector scheduler keeps its poller state.
pub(crate) const STATE_VALUE: &str = "selector.state";

/// Kamaelia's Selector: the service that tells components when their
/// sockets are ready (S1–S8).
///
/// ## Boxes
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `notify` | inbox | [`Request`] | `newReader`/`newWriter`/`newExceptional` requests and their removals (S2) |
/// | `control` | inbox | [`Control`] | `shutdown`: deregister the service names, end once no registrations are left (S8) |
/// | `signal` | outbox | [`Control`] | `producerFinished` when it ends |
///
/// It sends [`Ready`](crate::Ready) notices to the `(component, inbox)` each
/// request names, once per request (S3).
///
/// Found through the CAT as `selector` (its `notify`) and
/// `selectorshutdown` (its `control`): use [`get_selector_services`].
pub struct Selector {
    shared: Shared,
    shutting_down: bool,
}

boxes! {
    /// The [`Selector`]'s boxes.
    pub struct SelectorBoxes {
        /// newReader/newWriter/newExceptional requests and their removals
        pub notify: Inbox<Request>,
        /// shutdown: deregister, end when no registrations are left
        pub control: Inbox<Control>,
        /// producerFinished when the Selector ends
        pub signal: Outbox<Control>,
    }
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Selector(shutting_down: {})", self.shutting_down)
    }
}

impl Component for Selector {
    type Boxes = SelectorBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "Selector".into()
    }

    fn created(&mut self, _me: &Handle, boxes: &SelectorBoxes) {
        // Every socket's requests come here, several per connection.
        boxes.notify.keep_queue();
    }

    fn main(&mut self, cx: &mut Cx<SelectorBoxes>) -> Step {
        // `control` before `notify`: a request sent before the shutdown is
        // then always handled before the Selector decides it is idle and
        // ends. (The other way round, both could arrive between the two
        // looks: the Selector would end with the request unread, and its
        // requester would wait for ever.)
        while let Some(msg) = cx.control.recv() {
            log::debug!("selector: {msg:?} received, shutting down");
            if !self.shutting_down {
                self.shutting_down = true;
                // S8: the names go now; a later caller gets a new Selector.
                let me = cx.me().clone();
                for name in ["selector", "selectorshutdown"] {
                    if let Ok((h, _)) = cx.cat().retrieve_service(name) {
                        if h == me {
                            let _ = cx.cat().deregister_service(name);
                        }
                    }
                }
                // Removals may come through another Selector sharing this
                // state: be woken when the last registration goes.
                lock(&self.shared).notify_when_empty(cx.control.postbox());
            }
        }
        if let Some(first) = cx.notify.recv() {
            let mut state = lock(&self.shared);
            state.apply(first);
            while let Some(request) = cx.notify.recv() {
                state.apply(request);
            }
            state.settle();
        }
        let idle = lock(&self.shared).is_empty();
        if self.shutting_down && idle {
            let _ = cx.signal.send(Control::ProducerFinished);
            log::debug!("selector: ended");
            return Step::Done;
        }
        // With nothing registered the Selector has nothing to serve: it
        // does not keep the scheduler running by itself (Kamaelia's
        // Selector ended when idle, too).
        cx.set_idle_service(idle);
        Step::Pause
    }
}

/// Kamaelia's `Selector.getSelectorServices` (S1): the running Selector's
/// handle from the CAT or, if there is none, a new one, registered under
/// `selector` and `selectorshutdown`. The second value is `Some` when the
/// Selector is new: the caller activates it (`cx.activate(&h)`).
///
/// Errors with [`SelectorError::NoReactor`] if the scheduler was not made by
/// [`scheduler`](crate::scheduler) (so nothing polls for a Selector).
pub fn get_selector_services(cat: &axon::Cat) -> Result<(Handle, Option<Handle>), SelectorError> {
    match cat.retrieve_service("selector") {
        Ok((h, _)) => return Ok((h, None)),
        Err(CatError::NotFound(_)) => {}
        Err(e) => return Err(SelectorError::Cat(e)),
    }
    let shared: Shared = cat
        .retrieve_value(STATE_VALUE)
        .map_err(|_| SelectorError::NoReactor)?;
    let h = Handle::new(Selector {
        shared,
        shutting_down: false,
    });
    cat.register_service("selector", &h, "notify")
        .map_err(SelectorError::Cat)?;
    cat.register_service("selectorshutdown", &h, "control")
        .map_err(SelectorError::Cat)?;
    log::debug!("selector: new Selector service");
    Ok((h.clone(), Some(h)))
}

/// For components: finds (S1) the Selector, activating it if new, and links
/// `(me, outbox)` to its `notify` inbox.
pub fn link_to_selector<B>(cx: &Cx<B>, outbox: &str) -> Result<Handle, SelectorError> {
    let (selector, new) = get_selector_services(cx.cat())?;
    if let Some(new) = new {
        cx.activate(&new).map_err(SelectorError::Activate)?;
    }
    let me = cx.me().clone();
    // The linkage leaves one of the caller's own outboxes, so it ends with
    // the caller; it is not kept in its linkage book (memory per CSA).
    axon::link_boxes((&me, outbox), (&selector, "notify")).map_err(SelectorError::Link)?;
    Ok(selector)
}
