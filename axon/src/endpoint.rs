//! Endpoints: boxes for code that is not a component (Kamaelia's
//! `Axon.Handle` / likefile idea).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::boxset::{BoxSet, BoxesRef, Declaration, DynamicBoxes};
use crate::handle::Handle;
use crate::sync::Signal;
use crate::wake::Target;

/// A set of boxes owned by ordinary code (a `main`, a test, another
/// runtime) rather than by a component body. Link its boxes to components
/// like any other [`Handle`]'s; reach them as fields (through `Deref`), and
/// wait for messages with [`Inbox::recv_timeout`](crate::Inbox::recv_timeout)
/// or, for any of its inboxes at once, [`wait`](Self::wait): the thread
/// sleeps until a delivery wakes it, with no polling.
///
/// ```
/// use axon::{link, Endpoint, Standard};
/// use std::time::Duration;
///
/// let a = Endpoint::<Standard<(), u32>>::new("a");
/// let b = Endpoint::<Standard<u32, ()>>::new("b");
/// link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
/// a.outbox.send(7).unwrap();
/// assert_eq!(b.inbox.recv_timeout(Duration::from_secs(1)), Some(7));
/// ```
pub struct Endpoint<B> {
    handle: Handle,
    boxes: BoxesRef<B>,
    signal: Arc<Signal>,
}

impl<B> fmt::Debug for Endpoint<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({:?})", self.handle)
    }
}

impl<B> Deref for Endpoint<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.boxes
    }
}

impl<B: BoxSet> Endpoint<B> {
    /// An endpoint with the boxes of `B`.
    pub fn new(name: &str) -> Self {
        Endpoint::build(name, &Declaration::new())
    }

    fn build(name: &str, dynamic: &Declaration) -> Self {
        let (handle, boxes) = Handle::without_body::<B>(name.to_owned().into(), dynamic);
        let signal = Arc::new(Signal::default());
        handle.0.wake().bind(Target::External(signal.clone()));
        Endpoint {
            handle,
            boxes,
            signal,
        }
    }

    /// The handle, for linking.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The boxes (also reached through `Deref`).
    pub fn boxes(&self) -> &B {
        &self.boxes
    }

    /// Waits up to `timeout` until any of the endpoint's inboxes holds a
    /// message (Kamaelia's `anyReady`, blocking); true if one does.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // Idle first, then look: a delivery after the look raises the
            // signal, so none is missed.
            self.handle.0.wake().set_idle();
            if self.any_ready() {
                return true;
            }
            if !self.signal.wait_until(deadline) {
                return self.any_ready();
            }
        }
    }

    fn any_ready(&self) -> bool {
        self.handle.0.any_ready()
    }
}

impl Endpoint<DynamicBoxes> {
    /// An endpoint whose boxes are declared at run time, reached by name
    /// (`endpoint.inbox::<T>("name")`).
    pub fn dynamic(name: &str, boxes: Declaration) -> Self {
        Endpoint::build(name, &boxes)
    }
}
