//! What [`Framer`](crate::Framer), [`DeFramer`](crate::DeFramer) and
//! [`Chunkifier`](crate::Chunkifier) share: how their input ends, and how a
//! partial message grows.

use axon::{Control, Inbox};

/// How a component's input has ended, as its `control` inbox said.
///
/// `producerFinished` and its kind `socketShutdown` (ServerCore's word for
/// a client that half-closed, C7) both mean "no more input": what has
/// arrived is passed on in full, then `producerFinished`. Anything else
/// (`shutdownMicroprocess`, `serverShutdown`, `shutdown`) means "stop
/// now", is passed on as it came, and overrides an earlier
/// `producerFinished`.
#[derive(Debug, Default)]
pub(crate) struct Ending(Option<Control>);

impl Ending {
    /// Takes what `control` holds, up to the first "stop now" (later
    /// messages are left where they are: the component is ending).
    ///
    /// Called before the component looks at its `inbox`: everything sent
    /// before a `producerFinished` it reads here is then already there, so
    /// none of it is left behind, even from a producer on another thread.
    pub(crate) fn read(&mut self, control: &Inbox<Control>) {
        if self.stop_now() {
            return;
        }
        while let Some(msg) = control.recv() {
            if msg.is_producer_finished() {
                self.0.get_or_insert(Control::ProducerFinished);
            } else {
                self.0 = Some(msg);
                return;
            }
        }
    }

    /// The message to pass on out of `signal` once the component is done,
    /// if its input has ended.
    pub(crate) fn get(&self) -> Option<&Control> {
        self.0.as_ref()
    }

    /// True once told to stop now: what has arrived goes out in one pass,
    /// as far as the outbox has room at once (as the CSA does, C5), and
    /// nothing is waited for.
    pub(crate) fn stop_now(&self) -> bool {
        matches!(&self.0, Some(msg) if !msg.is_producer_finished())
    }
}

/// Makes room in `buf` for `more` bytes of a message that will be `full`
/// bytes long when whole (`buf.len() + more <= full`).
///
/// The capacity doubles, so a message arriving in many small pieces is
/// copied a bounded number of times (linear, not quadratic), but it never
/// passes `full`, nor twice what has arrived: a length a peer claims
/// allocates nothing until its bytes come.
pub(crate) fn grow(buf: &mut Vec<u8>, more: usize, full: usize) {
    let needed = buf.len() + more;
    if needed > buf.capacity() {
        let cap = buf.capacity().saturating_mul(2).max(needed).min(full);
        buf.reserve_exact(cap.max(needed) - buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_doubles_but_never_past_the_whole_message() {
        let mut buf = Vec::new();
        let full = 1000;
        let mut reallocations = 0;
        while buf.len() < full {
            let more = 7.min(full - buf.len());
            let before = buf.capacity();
            grow(&mut buf, more, full);
            if buf.capacity() != before {
                reallocations += 1;
            }
            buf.extend_from_slice(&vec![0; more]);
            assert!(buf.capacity() <= full);
            assert!(buf.capacity() <= 2 * buf.len().max(7));
        }
        // 7, 14, 28, … 896, 1000: logarithmic, not one per piece.
        assert!(reallocations <= 10, "{reallocations} reallocations");
    }

    #[test]
    fn a_claimed_length_alone_allocates_nothing() {
        let mut buf = Vec::new();
        grow(&mut buf, 3, usize::MAX);
        assert!(buf.capacity() < 64, "capacity {}", buf.capacity());
    }
}
