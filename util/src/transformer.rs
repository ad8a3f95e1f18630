//! [`PureTransformer`].

use std::fmt;
use std::marker::PhantomData;

use axon::{Component, Control, Cx, Standard, Step};

/// Kamaelia's `PureTransformer(function)`: applies `f` to every message
/// from `inbox` and sends the result out of `outbox`; a `None` result
/// sends nothing.
///
/// ## Boxes
///
/// [`Standard`]`<I, O>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `I` | messages to transform |
/// | `control` | inbox | [`Control`] | any message: transform what is left, pass the message on out of `signal`, end |
/// | `outbox` | outbox | `O` | the results |
/// | `signal` | outbox | [`Control`] | the `control` message, passed on |
///
/// A result that meets a full destination (A5) is kept; no more input is
/// taken until it is sent.
///
/// ```
/// use axon::{Component, Pipeline};
/// use util::PureTransformer;
///
/// let shout = PureTransformer::new(|line: Vec<u8>| Some(line.to_ascii_uppercase()));
/// let only_even = PureTransformer::new(|n: u32| (n % 2 == 0).then_some(n));
/// # let _ = (shout, only_even);
/// ```
pub struct PureTransformer<I, O, F> {
    f: F,
    held: Option<O>,
    ending: Option<Control>,
    types: PhantomData<fn(I) -> O>,
}

impl<I, O, F> fmt::Debug for PureTransformer<I, O, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PureTransformer")
            .field("holding", &self.held.is_some())
            .finish()
    }
}

impl<I, O, F> PureTransformer<I, O, F>
where
    F: FnMut(I) -> Option<O>,
{
    /// A transformer applying `f`.
    pub fn new(f: F) -> Self {
        PureTransformer {
            f,
            held: None,
            ending: None,
            types: PhantomData,
        }
    }
}

impl<I, O, F> Component for PureTransformer<I, O, F>
where
    I: Send + 'static,
    O: Send + 'static,
    F: FnMut(I) -> Option<O> + Send + 'static,
{
    type Boxes = Standard<I, O>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        loop {
            let out = match self.held.take() {
                Some(out) => out,
                None => match cx.inbox.recv() {
                    Some(msg) => match (self.f)(msg) {
                        Some(out) => out,
                        None => continue,
                    },
                    None => break,
                },
            };
            if let Err(full) = cx.outbox.send(out) {
                self.held = Some(full.into_inner()); // woken when there is room
                return Step::Pause;
            }
        }
        if self.ending.is_none() {
            self.ending = cx.control.recv();
        }
        match self.ending.take() {
            Some(msg) => {
                let _ = cx.signal.send(msg);
                Step::Done
            }
            None => Step::Pause,
        }
    }
}
