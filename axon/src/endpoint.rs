//! Endpoints: boxes for code that is not a component (Kamaelia's
//! `Axon.Handle` / likefile idea).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::boxes::{Boxes, Direction, PushError};
use crate::component::Handle;
use crate::error::{BoxError, NoSpace};
use crate::wake::{Signal, Target};

/// Why [`Endpoint::send`] failed.
#[derive(PartialEq, Eq)]
pub enum SendError<T> {
    /// The destination inbox is full (A5); the message is given back.
    NoSpace(T),
    /// No such outbox, or it carries another type.
    Box(BoxError),
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoSpace(_) => f.write_str("NoSpace(..)"),
            SendError::Box(e) => write!(f, "Box({e:?})"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NoSpace(m) => fmt::Display::fmt(&NoSpace(m), f),
            SendError::Box(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<T> std::error::Error for SendError<T> {}

/// A set of boxes owned by ordinary code (a `main`, a test, another
/// runtime) rather than by a component body. Link its boxes to components
/// like any other [`Handle`]; `recv_timeout` blocks the calling thread until
/// a message arrives, with no polling.
///
/// ```
/// use axon::{Boxes, Endpoint, link};
/// use std::time::Duration;
///
/// let a = Endpoint::new("a", Boxes::new().outbox::<u32>("outbox", "numbers"));
/// let b = Endpoint::new("b", Boxes::new().inbox::<u32>("inbox", "numbers"));
/// link((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
/// a.send(7u32, "outbox").unwrap();
/// assert_eq!(b.recv_timeout::<u32>("inbox", Duration::from_secs(1)).unwrap(), Some(7));
/// ```
pub struct Endpoint {
    handle: Handle,
    signal: Arc<Signal>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({:?})", self.handle)
    }
}

impl Endpoint {
    /// An endpoint with these boxes.
    pub fn new(name: &str, boxes: Boxes) -> Self {
        let handle = Handle::build(name.to_owned().into(), &boxes, None);
        let signal = Arc::new(Signal::default());
        handle.0.wake.bind(Target::External(signal.clone()));
        Endpoint { handle, signal }
    }

    /// The handle, for linking.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Sends out of one of the endpoint's outboxes.
    pub fn send<T: Send + 'static>(&self, msg: T, outbox: &str) -> Result<(), SendError<T>> {
        let node = match self.node::<T>(outbox, Direction::Outbox) {
            Ok(node) => node,
            Err(e) => return Err(SendError::Box(e)),
        };
        node.send(msg, None)
            .map_err(|PushError::Full(m)| SendError::NoSpace(m))
    }

    /// Takes a message if one is waiting.
    pub fn recv<T: Send + 'static>(&self, inbox: &str) -> Result<Option<T>, BoxError> {
        Ok(self.node::<T>(inbox, Direction::Inbox)?.pop())
    }

    /// Waits up to `timeout` for a message in `inbox`.
    pub fn recv_timeout<T: Send + 'static>(
        &self,
        inbox: &str,
        timeout: Duration,
    ) -> Result<Option<T>, BoxError> {
        let node = self.node::<T>(inbox, Direction::Inbox)?;
        let deadline = Instant::now() + timeout;
        loop {
            // Idle first, then look: a delivery after the look raises the
            // signal, so none is missed.
            self.handle.0.wake.set_idle();
            if let Some(msg) = node.pop() {
                return Ok(Some(msg));
            }
            if !self.signal.wait_until(deadline) {
                return Ok(node.pop());
            }
        }
    }

    fn node<T: Send + 'static>(
        &self,
        name: &str,
        direction: Direction,
    ) -> Result<&crate::boxes::Node<T>, BoxError> {
        self.handle.0.typed::<T>(name, direction)
    }
}
