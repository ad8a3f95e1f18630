//! The [`Introspector`] component: snapshots of its scheduler, taken at
//! most about once a second and only while somebody is watching.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Postbox, Snapshot, Step};

use crate::graph::View;
use crate::kamaelia::Topology;

/// How old a view may be and still answer a request: requests within a
/// second share one snapshot.
pub const FRESH: Duration = Duration::from_millis(900);

/// How often the `outbox` feed looks again, while it is linked.
pub const FEED_EVERY: Duration = Duration::from_secs(1);

/// The most requests waiting in the Introspector's `inbox` (A5: a handler
/// asking while it is full keeps its request and is woken when there is
/// room).
pub const REQUEST_LIMIT: usize = 256;

/// A request for the current [`View`], answered into `reply`.
#[derive(Debug, Clone)]
pub struct Want {
    /// Where the view goes.
    pub reply: Postbox<Arc<View>>,
}

boxes! {
    /// The Introspector's boxes.
    pub struct IntrospectorBoxes {
        /// Want: requests for the current view (from the HTTP handlers)
        pub inbox: Inbox<Want>,
        /// producerFinished / shutdownMicroprocess: stop the server it runs, then end
        pub control: Inbox<Control>,
        /// snapshots, from the scheduler
        pub snapshots: Inbox<Arc<Snapshot>>,
        /// Kamaelia's topology text (DEL ALL, ADD NODE, ...), once a second while linked
        pub outbox: Outbox<Vec<u8>>,
        /// the stop message, passed on once the server has ended
        pub signal: Outbox<Control>,
        /// shutdownMicroprocess to the server's control
        #[name = "_serverSignal"]
        pub server_signal: Outbox<Control>,
    }
}

/// Kamaelia's `Introspector`, with counts: takes [`Snapshot`]s of the
/// scheduler it runs on and turns each into a [`View`] (the kind-level
/// graph, the instances, the components that are its own).
///
/// It takes a snapshot only when asked, and answers every request made
/// within [`FRESH`] of one with that one: however many pages poll it, the
/// scheduler is looked at about once a second at most, and not at all
/// while nobody is watching. Its own components (itself, and the server
/// it runs with everything below it) are tagged in each view, so a page
/// can hide them.
///
/// | box | | |
/// |---|---|---|
/// | `inbox` | in | [`Want`]: a request; the view goes to its `reply` postbox |
/// | `control` | in | `producerFinished` / `shutdownMicroprocess`: tell the server `shutdownMicroprocess`, wait for it to end, pass the message on out of `signal`, end |
/// | `snapshots` | in | snapshots the scheduler took for it |
/// | `outbox` | out | while linked: Kamaelia's topology text (`DEL ALL`, then the changes), once a second, its own components left out; Kamaelia's `Pipeline(Introspector(), TCPClient(host, 1500))` |
/// | `signal` | out | the stop message, once stopped |
/// | `_serverSignal` | out | `shutdownMicroprocess` to the server it runs |
///
/// A5: its `inbox` holds at most [`REQUEST_LIMIT`] requests (a handler
/// asking while it is full keeps its request and is woken when there is
/// room); topology text the `outbox`'s full destination refuses is kept
/// and sent first at the next look, with the changes since. A view is
/// never refused: it goes to the asking handler's `view` inbox, which is
/// unbounded and holds at most one, as a handler asks once at a time.
#[derive(Debug, Default)]
pub struct Introspector {
    /// The server to adopt and run (the introspection ServerCore).
    server: Option<Handle>,
    started: bool,
    latest: Option<Arc<View>>,
    /// Requests waiting for the snapshot in flight.
    waiting: Vec<Postbox<Arc<View>>>,
    in_flight: bool,
    /// What the `outbox` feed last sent, and text it could not send yet.
    fed: Option<Topology>,
    held_text: Option<Vec<u8>>,
    next_feed: Option<Instant>,
    /// The stop message, once told to stop.
    stopping: Option<Control>,
}

impl Introspector {
    /// An Introspector on its own: link its `outbox` to read Kamaelia's
    /// topology text, or send [`Want`]s to its `inbox`.
    pub fn new() -> Introspector {
        Introspector::default()
    }

    /// An Introspector that adopts, runs and stops `server` (a
    /// [`ServerCore`](chassis::ServerCore) whose handlers ask it for
    /// views), and tags it and everything below it as its own.
    pub fn with_server(server: Handle) -> Introspector {
        Introspector {
            server: Some(server),
            ..Introspector::default()
        }
    }

    /// Asks for a snapshot, handing back the stale view's (if nobody
    /// else holds it, the new one is written over its memory: about half
    /// the scheduler's time for a big system).
    fn ask(&mut self, cx: &Cx<IntrospectorBoxes>, stale: &mut Option<Arc<View>>) {
        if self.in_flight {
            return;
        }
        self.in_flight = true;
        let post = cx.snapshots.postbox();
        // Unbounded, and one in flight: never refused.
        let deliver = move |s| {
            let _ = post.send(s);
        };
        let old = stale
            .take()
            .and_then(|v| Arc::try_unwrap(v).ok())
            .map(|v| v.snapshot);
        match old {
            Some(old) => cx.scheduler().snapshot_then_reusing(old, deliver),
            None => cx.scheduler().snapshot_then(deliver),
        }
    }

    fn start(&mut self, cx: &Cx<IntrospectorBoxes>) -> bool {
        self.started = true;
        let Some(server) = self.server.clone() else {
            return true;
        };
        let me = cx.me().clone();
        cx.add_child(&server);
        if let Err(e) = cx.link((&me, "_serverSignal"), (&server, "control")) {
            log::error!("introspector: {e}");
            return false;
        }
        if let Err(e) = cx.activate(&server) {
            log::error!("introspector: {e}");
            return false;
        }
        true
    }

    /// Sends the outbox feed's text, keeping what a full box refuses (A5).
    fn feed(&mut self, cx: &Cx<IntrospectorBoxes>, view: Option<&View>) {
        if let Some(text) = self.held_text.take() {
            if let Err(full) = cx.outbox.send(text) {
                self.held_text = Some(full.into_inner());
                return; // this view's changes wait for the next look
            }
        }
        let Some(view) = view else { return };
        let now = Topology::of(&view.snapshot, &view.own);
        let text = match &self.fed {
            None => now.from_scratch(),
            Some(old) => now.changes_from(old),
        };
        self.fed = Some(now);
        if !text.is_empty() {
            if let Err(full) = cx.outbox.send(text.into_bytes()) {
                self.held_text = Some(full.into_inner());
            }
        }
    }
}

impl Component for Introspector {
    type Boxes = IntrospectorBoxes;

    fn created(&mut self, _me: &Handle, boxes: &IntrospectorBoxes) {
        boxes.inbox.set_limit(Some(REQUEST_LIMIT));
    }

    fn main(&mut self, cx: &mut Cx<IntrospectorBoxes>) -> Step {
        if !self.started && !self.start(cx) {
            return Step::Done;
        }
        if let Some(msg) = cx.control.recv() {
            if self.stopping.is_none() {
                let _ = cx.server_signal.send(Control::ShutdownMicroprocess);
                self.stopping = Some(msg);
            }
        }
        if let Some(msg) = &self.stopping {
            let server_done = self.server.as_ref().map_or(true, Handle::is_done);
            let _ = cx.ended_children();
            if server_done {
                let _ = cx.signal.send(msg.clone());
                return Step::Done;
            }
            return Step::Pause; // woken when the server (our child) ends
        }
        let mut fresh = None;
        while let Some(snap) = cx.snapshots.recv() {
            self.in_flight = false;
            let view = Arc::new(View::new(snap, &[cx.me().id()]));
            log::trace!(
                "introspector: {} components, {} kinds",
                view.graph.components,
                view.graph.kinds.len()
            );
            for reply in self.waiting.drain(..) {
                if cx.send_to(&reply, view.clone()).is_err() {
                    log::debug!("introspector: a handler's view inbox is full");
                }
            }
            // Kept to answer requests while fresh, then let go (woken
            // then): a view of a big system is megabytes.
            cx.wake_at(view.at + FRESH);
            self.latest = Some(view.clone());
            fresh = Some(view);
        }
        // Let go once stale; its memory goes to the next snapshot, if one
        // is asked for in this step.
        let mut stale = if self
            .latest
            .as_ref()
            .is_some_and(|v| v.at.elapsed() >= FRESH)
        {
            self.latest.take()
        } else {
            None
        };
        while let Some(want) = cx.inbox.recv() {
            match &self.latest {
                Some(v) if v.at.elapsed() < FRESH => {
                    let _ = cx.send_to(&want.reply, v.clone());
                }
                _ => self.waiting.push(want.reply),
            }
        }
        if !self.waiting.is_empty() {
            self.ask(cx, &mut stale);
        }
        // Kamaelia's feed: only while somebody reads the outbox.
        if cx.outbox.is_linked() {
            if fresh.is_some() || self.held_text.is_some() {
                self.feed(cx, fresh.as_deref());
            }
            let now = Instant::now();
            if self.next_feed.map_or(true, |at| now >= at) {
                self.ask(cx, &mut stale);
                let at = now + FEED_EVERY;
                self.next_feed = Some(at);
                cx.wake_at(at);
            }
        } else {
            self.next_feed = None;
        }
        Step::Pause
    }
}
