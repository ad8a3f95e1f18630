//! [`Framer`]: messages to length-prefixed frames.

use std::fmt;

use axon::{Component, Control, Cx, Standard, Step};

use crate::shared::Ending;

/// The largest message [`Framer::new`] and [`DeFramer::new`](crate::DeFramer::new)
/// accept, in bytes (16 MiB).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// The length prefix: 4 bytes, big-endian.
pub(crate) const PREFIX: usize = 4;

/// The largest length a 4-byte prefix can say.
pub(crate) fn prefix_max() -> usize {
    usize::try_from(u32::MAX).unwrap_or(usize::MAX)
}

/// `msg` as a frame: its length as 4 bytes, big-endian, then its bytes.
/// `None` if the length does not fit in 4 bytes.
pub(crate) fn frame(msg: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(msg.len()).ok()?;
    let mut frame = Vec::with_capacity(PREFIX + msg.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(msg);
    Some(frame)
}

/// Frames messages: each message in, as one frame out: its length as 4
/// bytes, big-endian, then its bytes. [`DeFramer`](crate::DeFramer) undoes
/// it.
///
/// Kamaelia's `Kamaelia.Protocol.Framing.Framer` framed `(tag, data)`
/// pairs as text (`SimpleFrame`); this one frames bytes with the binary
/// length prefix most protocols use. The names and the place in a
/// pipeline are Kamaelia's: a server's protocol handler ends with one,
/// `pipeline![DeFramer::new(), handler, Framer::new()]`.
///
/// ## Boxes
///
/// [`Standard`]`<Vec<u8>, Vec<u8>>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `Vec<u8>` | messages, one per frame, each at most the maximum ([`MAX_MESSAGE`] unless [`with_max`](Self::with_max) says otherwise) |
/// | `control` | inbox | [`Control`] | `producerFinished` / `socketShutdown`: frame and send every message that came, then say `producerFinished`; `shutdownMicroprocess`: send what came as far as `outbox` has room at once, then pass it on and end |
/// | `outbox` | outbox | `Vec<u8>` | one frame per message: the 4-byte big-endian length, then the message |
/// | `signal` | outbox | [`Control`] | what ended it: `producerFinished` after the last frame, the `shutdownMicroprocess` passed on, or `shutdownMicroprocess` for a message over the maximum |
///
/// ## A message over the maximum
///
/// It is refused, never cut or skipped: the Framer logs the size at `warn`
/// and ends, sending `shutdownMicroprocess` out of `signal` (in a
/// server's handler this closes the connection; the frames before it are
/// still written, C5). Dropping it and going on would leave the peer
/// waiting for an answer that never comes, with nothing to say why;
/// sending it would make a peer with the same limit close anyway. The
/// maximum is at most `u32::MAX`, what the prefix can say.
///
/// ## Bounds
///
/// - **Linear.** Each message is copied once, into its frame.
/// - **Backpressure (A5).** When `outbox` is full it keeps the frame,
///   takes no more input and waits to be woken (A6); its own `inbox` then
///   fills, which stalls whoever feeds it. It holds at most one frame.
///
/// ```
/// use axon::{link, Control, Endpoint, Handle, Scheduler, Standard};
/// use framing::Framer;
///
/// let framer = Handle::new(Framer::new());
/// let edge = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("edge");
/// link((edge.handle(), "outbox"), (&framer, "inbox")).unwrap();
/// link((edge.handle(), "signal"), (&framer, "control")).unwrap();
/// link((&framer, "outbox"), (edge.handle(), "inbox")).unwrap();
/// link((&framer, "signal"), (edge.handle(), "control")).unwrap();
/// edge.outbox.send(b"hi".to_vec()).unwrap();
/// edge.outbox.send(Vec::new()).unwrap();
/// edge.signal.send(Control::ProducerFinished).unwrap();
///
/// let scheduler = Scheduler::new();
/// scheduler.activate(&framer).unwrap();
/// scheduler.run();
/// assert_eq!(edge.inbox.recv(), Some(vec![0, 0, 0, 2, b'h', b'i']));
/// assert_eq!(edge.inbox.recv(), Some(vec![0, 0, 0, 0]));
/// assert_eq!(edge.control.recv(), Some(Control::ProducerFinished));
/// ```
pub struct Framer {
    max: usize,
    /// A frame the outbox had no room for.
    held: Option<Vec<u8>>,
    ending: Ending,
}

impl fmt::Debug for Framer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("max", &self.max)
            .field("holding", &self.held.is_some())
            .finish()
    }
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new()
    }
}

/// Why a step stopped framing.
enum Stop {
    /// The outbox is full: wait to be woken.
    Full,
    /// A message of this many bytes, over the maximum.
    TooBig(usize),
}

impl Framer {
    /// Messages of up to [`MAX_MESSAGE`] bytes.
    pub fn new() -> Framer {
        Framer::with_max(MAX_MESSAGE)
    }

    /// Messages of up to `max` bytes (at most `u32::MAX`: a larger `max`
    /// is taken as that).
    pub fn with_max(max: usize) -> Framer {
        Framer {
            max: max.min(prefix_max()),
            held: None,
            ending: Ending::default(),
        }
    }

    /// Sends `frame`, or keeps it if the outbox is full.
    fn emit(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>, frame: Vec<u8>) -> Result<(), Stop> {
        cx.outbox.send(frame).map_err(|full| {
            self.held = Some(full.into_inner());
            Stop::Full
        })
    }

    /// Frames and sends every message waiting.
    fn step(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>) -> Result<(), Stop> {
        if let Some(frame) = self.held.take() {
            self.emit(cx, frame)?;
        }
        while let Some(msg) = cx.inbox.recv() {
            if msg.len() > self.max {
                return Err(Stop::TooBig(msg.len()));
            }
            let frame = frame(&msg).ok_or(Stop::TooBig(msg.len()))?;
            drop(msg);
            self.emit(cx, frame)?;
        }
        Ok(())
    }
}

impl Component for Framer {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        self.ending.read(&cx.control);
        match self.step(cx) {
            Ok(()) => {}
            Err(Stop::Full) if !self.ending.stop_now() => return Step::Pause, // woken when there is room
            Err(Stop::Full) => {
                log::debug!("framer: stopping with frames the outbox had no room for");
            }
            Err(Stop::TooBig(len)) => {
                log::warn!(
                    "framer: a message of {len} bytes is over the maximum of {} bytes: closing",
                    self.max
                );
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                return Step::Done;
            }
        }
        match self.ending.get() {
            None => Step::Pause,
            Some(msg) => {
                let _ = cx.signal.send(msg.clone());
                Step::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run, Run};

    #[test]
    fn each_message_becomes_one_frame() {
        let msgs = vec![b"hello".to_vec(), Vec::new(), vec![7; 300]];
        let out = run(Framer::new(), msgs.clone(), Run::default());
        assert_eq!(out.signal, Some(Control::ProducerFinished));
        assert_eq!(out.messages.len(), 3);
        for (frame, msg) in out.messages.iter().zip(&msgs) {
            assert_eq!(frame[..4], (msg.len() as u32).to_be_bytes());
            assert_eq!(frame[4..], msg[..]);
        }
        assert_eq!(out.messages[2][..4], [0, 0, 1, 44]);
    }

    #[test]
    fn a_message_over_the_maximum_ends_it_after_the_frames_before() {
        let msgs = vec![b"ok".to_vec(), vec![0; 11], b"never".to_vec()];
        let out = run(Framer::with_max(10), msgs, Run::default());
        assert_eq!(out.messages, [b"\0\0\0\x02ok".to_vec()]);
        assert_eq!(out.signal, Some(Control::ShutdownMicroprocess));
    }

    #[test]
    fn a_message_exactly_at_the_maximum_passes() {
        let out = run(Framer::with_max(10), vec![vec![1; 10]], Run::default());
        assert_eq!(out.messages.len(), 1);
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn a5_a_slow_consumer_gets_every_frame_and_the_framer_stops_taking_input() {
        let msgs: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let out = run(
            Framer::new(),
            msgs.clone(),
            Run {
                room: 1,
                ..Run::default()
            },
        );
        let expected: Vec<Vec<u8>> = msgs.iter().map(|m| frame(m).unwrap()).collect();
        assert_eq!(out.messages, expected);
        assert!(out.samples.len() > 100, "{} samples", out.samples.len());
        for s in &out.samples {
            // 4-byte messages, 8-byte frames: while the consumer took
            // nothing, the framer held at most the one frame.
            assert!(s.taken / 4 <= s.delivered / 8 + 1, "{s:?}");
        }
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn socket_shutdown_is_taken_as_producer_finished() {
        let out = run(
            Framer::new(),
            vec![b"x".to_vec()],
            Run {
                end: Control::SocketShutdown,
                ..Run::default()
            },
        );
        assert_eq!(out.messages.len(), 1);
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn shutdown_microprocess_is_passed_on_after_what_fits_at_once() {
        // A reply sent just before shutdownMicroprocess still goes out
        // (C5); with no room, the rest is dropped and nothing is waited for.
        let out = run(
            Framer::new(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
            Run {
                end: Control::ShutdownMicroprocess,
                room: 1,
                read: false,
            },
        );
        assert_eq!(out.messages, [b"\0\0\0\x01a".to_vec()]);
        assert_eq!(out.signal, Some(Control::ShutdownMicroprocess));
    }

    #[test]
    fn the_maximum_is_at_most_what_the_prefix_can_say() {
        assert_eq!(Framer::with_max(usize::MAX).max, prefix_max());
    }
}
