//! [`DeFramer`]: length-prefixed frames to messages.

use std::fmt;

use axon::{Component, Control, Cx, Standard, Step};

use crate::framer::{MAX_MESSAGE, PREFIX};
use crate::shared::{grow, Ending};

/// Takes messages out of a byte stream of frames, one frame at a time:
/// the state machine of [`DeFramer`], apart from its boxes.
#[derive(Debug)]
struct Decoder {
    max: usize,
    /// The length prefix being read, and how many of its bytes have come.
    prefix: [u8; PREFIX],
    prefix_len: usize,
    /// The length of the message being read, once its prefix is whole.
    want: Option<usize>,
    /// The bytes of it that have come.
    body: Vec<u8>,
}

/// What [`Decoder::feed`] found.
#[derive(Debug, PartialEq, Eq)]
enum Fed {
    /// A whole message.
    Message(Vec<u8>),
    /// A length prefix over the maximum: the stream cannot go on.
    TooBig(u32),
    /// The input was used up inside a frame.
    Partial,
}

impl Decoder {
    fn new(max: usize) -> Decoder {
        Decoder {
            max,
            prefix: [0; PREFIX],
            prefix_len: 0,
            want: None,
            body: Vec::new(),
        }
    }

    /// Takes bytes from the front of `input` until a message is whole, a
    /// prefix is too big, or the input is used up; returns how many it
    /// took (at least one, unless `input` is empty) and what it found.
    fn feed(&mut self, input: &[u8]) -> (usize, Fed) {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            let Some(want) = self.want else {
                let n = (PREFIX - self.prefix_len).min(rest.len());
                self.prefix[self.prefix_len..][..n].copy_from_slice(&rest[..n]);
                self.prefix_len += n;
                used += n;
                if self.prefix_len < PREFIX {
                    continue;
                }
                self.prefix_len = 0;
                let len = u32::from_be_bytes(self.prefix);
                let want = match usize::try_from(len) {
                    Ok(want) if want <= self.max => want,
                    _ => return (used, Fed::TooBig(len)),
                };
                if want == 0 {
                    return (used, Fed::Message(Vec::new()));
                }
                // Only the length is known: nothing is allocated for it
                // until its bytes come.
                self.want = Some(want);
                continue;
            };
            let need = want - self.body.len();
            if need <= rest.len() {
                let msg = if self.body.is_empty() {
                    rest[..need].to_vec()
                } else {
                    let mut msg = std::mem::take(&mut self.body);
                    grow(&mut msg, need, want);
                    msg.extend_from_slice(&rest[..need]);
                    msg
                };
                self.want = None;
                return (used + need, Fed::Message(msg));
            }
            grow(&mut self.body, rest.len(), want);
            self.body.extend_from_slice(rest);
            used = input.len();
        }
        (used, Fed::Partial)
    }

    /// The bytes of a frame begun and not finished.
    fn partial(&self) -> usize {
        match self.want {
            Some(_) => PREFIX + self.body.len(),
            None => self.prefix_len,
        }
    }
}

/// Turns a byte stream of frames (a 4-byte big-endian length, then that
/// many bytes, as [`Framer`](crate::Framer) makes them), in whatever
/// chunks it comes, back into messages: one message per frame.
///
/// Kamaelia's `Kamaelia.Protocol.Framing.DeFramer` undid its `Framer`'s
/// text frames into `(tag, data)` pairs; this one undoes the binary length
/// prefix. A server's protocol handler starts with one:
/// `pipeline![DeFramer::new(), handler, Framer::new()]`.
///
/// ## Boxes
///
/// [`Standard`]`<Vec<u8>, Vec<u8>>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `Vec<u8>` | bytes, in any chunks |
/// | `control` | inbox | [`Control`] | `producerFinished` / `socketShutdown`: no more bytes: pass on the last messages, then say `producerFinished` (a frame left unfinished is logged at `warn` and dropped); `shutdownMicroprocess`: pass on what is whole as far as `outbox` has room at once, then pass it on and end |
/// | `outbox` | outbox | `Vec<u8>` | one message per frame, without its prefix |
/// | `signal` | outbox | [`Control`] | what ended it: `producerFinished` after the last message, the `shutdownMicroprocess` passed on, or `shutdownMicroprocess` for a length over the maximum |
///
/// ## A length over the maximum
///
/// The maximum is [`MAX_MESSAGE`] unless [`with_max`](Self::with_max)
/// says otherwise. A prefix claiming more ends the stream: the DeFramer
/// logs the claimed size at `warn`, sends `shutdownMicroprocess` out of
/// `signal` (in a server's handler this closes the connection) and ends,
/// having passed on every message before it. Nothing is allocated for
/// the claim.
///
/// ## Bounds
///
/// - **Linear.** Each byte is looked at once and copied into its message;
///   a message arriving in many chunks grows by doubling (up to its
///   length, never past it), so it is not copied again per chunk.
/// - **Bounded memory.** It holds at most one message (at most the
///   maximum) and the rest of the one chunk it is taking apart. A claimed
///   length is never allocated ahead of its bytes: what a message holds is
///   at most twice what has come of it.
/// - **Backpressure (A5).** When `outbox` is full it keeps the message,
///   takes no more input and waits to be woken (A6); its own `inbox` then
///   fills, which (as a server's handler) stops the connection reading.
///
/// ```
/// use axon::{link, Control, Endpoint, Handle, Scheduler, Standard};
/// use framing::DeFramer;
///
/// let deframer = Handle::new(DeFramer::new());
/// let edge = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("edge");
/// link((edge.handle(), "outbox"), (&deframer, "inbox")).unwrap();
/// link((edge.handle(), "signal"), (&deframer, "control")).unwrap();
/// link((&deframer, "outbox"), (edge.handle(), "inbox")).unwrap();
/// link((&deframer, "signal"), (edge.handle(), "control")).unwrap();
/// // "hello" and "!", as two frames cut in awkward places.
/// edge.outbox.send(vec![0, 0]).unwrap();
/// edge.outbox.send(b"\0\x05hel".to_vec()).unwrap();
/// edge.outbox.send(b"lo\0\0\0\x01!".to_vec()).unwrap();
/// edge.signal.send(Control::ProducerFinished).unwrap();
///
/// let scheduler = Scheduler::new();
/// scheduler.activate(&deframer).unwrap();
/// scheduler.run();
/// assert_eq!(edge.inbox.recv(), Some(b"hello".to_vec()));
/// assert_eq!(edge.inbox.recv(), Some(b"!".to_vec()));
/// assert_eq!(edge.control.recv(), Some(Control::ProducerFinished));
/// ```
pub struct DeFramer {
    decoder: Decoder,
    /// The chunk being taken apart, and how far.
    chunk: Vec<u8>,
    at: usize,
    /// A message the outbox had no room for.
    held: Option<Vec<u8>>,
    ending: Ending,
}

impl fmt::Debug for DeFramer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeFramer")
            .field("max", &self.decoder.max)
            .field("partial", &self.decoder.partial())
            .field("holding", &self.held.is_some())
            .finish()
    }
}

impl Default for DeFramer {
    fn default() -> Self {
        DeFramer::new()
    }
}

/// Why a step stopped passing messages on.
enum Stop {
    /// The outbox is full: wait to be woken.
    Full,
    /// A length prefix over the maximum.
    TooBig(u32),
}

impl DeFramer {
    /// Messages of up to [`MAX_MESSAGE`] bytes.
    pub fn new() -> DeFramer {
        DeFramer::with_max(MAX_MESSAGE)
    }

    /// Messages of up to `max` bytes; a longer length prefix ends the
    /// stream.
    pub fn with_max(max: usize) -> DeFramer {
        DeFramer {
            decoder: Decoder::new(max),
            chunk: Vec::new(),
            at: 0,
            held: None,
            ending: Ending::default(),
        }
    }

    /// Sends `msg`, or keeps it if the outbox is full.
    fn emit(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>, msg: Vec<u8>) -> Result<(), Stop> {
        cx.outbox.send(msg).map_err(|full| {
            self.held = Some(full.into_inner());
            Stop::Full
        })
    }

    /// Passes on every whole message of the chunks waiting.
    fn step(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>) -> Result<(), Stop> {
        if let Some(msg) = self.held.take() {
            self.emit(cx, msg)?;
        }
        loop {
            while self.at < self.chunk.len() {
                let (used, fed) = self.decoder.feed(&self.chunk[self.at..]);
                self.at += used;
                match fed {
                    Fed::Message(msg) => self.emit(cx, msg)?,
                    Fed::TooBig(len) => return Err(Stop::TooBig(len)),
                    Fed::Partial => {}
                }
            }
            self.at = 0;
            match cx.inbox.recv() {
                // The chunk itself is kept: no copy of the input.
                Some(chunk) => self.chunk = chunk,
                None => {
                    // Drop the buffer: an idle connection keeps none.
                    self.chunk = Vec::new();
                    return Ok(());
                }
            }
        }
    }
}

impl Component for DeFramer {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        self.ending.read(&cx.control);
        match self.step(cx) {
            Ok(()) => {}
            Err(Stop::Full) if !self.ending.stop_now() => return Step::Pause, // woken when there is room
            Err(Stop::Full) => {
                log::debug!("deframer: stopping with messages the outbox had no room for");
            }
            Err(Stop::TooBig(len)) => {
                log::warn!(
                    "deframer: a length prefix claims {len} bytes, over the maximum of {} bytes: closing",
                    self.decoder.max
                );
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                return Step::Done;
            }
        }
        let Some(msg) = self.ending.get() else {
            return Step::Pause;
        };
        let partial = self.decoder.partial();
        if partial > 0 && !self.ending.stop_now() {
            log::warn!(
                "deframer: the input ended inside a frame, {partial} bytes into it: dropped"
            );
        }
        let _ = cx.signal.send(msg.clone());
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framer::frame;
    use crate::testing::{cut, run, Run};
    use crate::{Chunkifier, Framer};
    use axon::pipeline;
    use proptest::prelude::*;
    use testkit::pattern;

    fn frames(msgs: &[Vec<u8>]) -> Vec<u8> {
        msgs.iter().flat_map(|m| frame(m).unwrap()).collect()
    }

    /// Feeds `input` to a decoder in `chunks`, as the component does.
    fn decode(max: usize, chunks: &[Vec<u8>]) -> (Vec<Vec<u8>>, Option<u32>, Decoder) {
        let mut d = Decoder::new(max);
        let mut msgs = Vec::new();
        for chunk in chunks {
            let mut at = 0;
            while at < chunk.len() {
                let (used, fed) = d.feed(&chunk[at..]);
                assert!(used > 0, "no progress");
                at += used;
                match fed {
                    Fed::Message(m) => msgs.push(m),
                    Fed::TooBig(len) => return (msgs, Some(len), d),
                    Fed::Partial => assert_eq!(at, chunk.len()),
                }
            }
        }
        (msgs, None, d)
    }

    fn some_messages() -> Vec<Vec<u8>> {
        vec![
            b"hello".to_vec(),
            Vec::new(),
            pattern(1, 1000),
            vec![0; 3],
            pattern(2, 70_000),
            b"!".to_vec(),
        ]
    }

    #[test]
    fn round_trip_in_one_byte_chunks() {
        let msgs = some_messages();
        let chunks: Vec<Vec<u8>> = frames(&msgs).into_iter().map(|b| vec![b]).collect();
        let out = run(DeFramer::new(), chunks, Run::default());
        assert_eq!(out.messages, msgs);
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn round_trip_through_framer_chunkifier_and_deframer() {
        // Chunk sizes that cut prefixes and bodies everywhere, and one
        // larger than everything.
        for size in [1, 2, 3, 4, 5, 7, 4096, 1 << 20] {
            let msgs = some_messages();
            let chain = pipeline![Framer::new(), Chunkifier::new(size), DeFramer::new()].unwrap();
            let out = run(chain, msgs.clone(), Run::default());
            assert_eq!(out.messages, msgs, "chunks of {size}");
            assert_eq!(out.signal, Some(Control::ProducerFinished));
        }
    }

    #[test]
    fn a_length_prefix_over_the_maximum_ends_it_after_the_messages_before() {
        let mut input = frames(&[b"first".to_vec()]);
        input.extend_from_slice(&u32::MAX.to_be_bytes());
        input.extend_from_slice(b"never looked at");
        let out = run(DeFramer::new(), cut(&input, &[3, 10, 11]), Run::default());
        assert_eq!(out.messages, [b"first".to_vec()]);
        assert_eq!(out.signal, Some(Control::ShutdownMicroprocess));
    }

    #[test]
    fn a_length_at_the_maximum_passes_and_one_over_is_refused() {
        let (msgs, too_big, _) = decode(8, &[frames(&[vec![1; 8]]), 9u32.to_be_bytes().to_vec()]);
        assert_eq!(msgs, [vec![1; 8]]);
        assert_eq!(too_big, Some(9));
    }

    #[test]
    fn a_claimed_length_is_not_allocated_before_its_bytes_come() {
        // A peer claims the whole maximum and sends 10 bytes of it.
        let mut input = (MAX_MESSAGE as u32).to_be_bytes().to_vec();
        input.extend_from_slice(&[0; 10]);
        let (msgs, too_big, d) = decode(MAX_MESSAGE, &[input]);
        assert!(msgs.is_empty() && too_big.is_none());
        assert_eq!(d.partial(), 14);
        assert!(d.body.capacity() < 1024, "capacity {}", d.body.capacity());
    }

    #[test]
    fn a_message_in_many_chunks_holds_at_most_twice_what_came_and_at_most_itself() {
        let msg = pattern(3, 100_000);
        let input = frames(std::slice::from_ref(&msg));
        let mut d = Decoder::new(MAX_MESSAGE);
        let mut got = None;
        for chunk in input.chunks(1000) {
            let (used, fed) = d.feed(chunk);
            assert_eq!(used, chunk.len());
            if let Fed::Message(m) = fed {
                assert_eq!(m.capacity(), m.len(), "the last piece overallocated");
                got = Some(m);
            } else {
                let came = d.body.len().max(1);
                assert!(d.body.capacity() <= 2 * came && d.body.capacity() <= msg.len());
            }
        }
        assert_eq!(got, Some(msg));
    }

    #[test]
    fn a_frame_cut_short_by_the_end_of_input_is_dropped_and_the_end_passed_on() {
        let mut input = frames(&[b"whole".to_vec()]);
        input.extend_from_slice(&[0, 0, 0, 9, b'h']);
        let out = run(DeFramer::new(), vec![input], Run::default());
        assert_eq!(out.messages, [b"whole".to_vec()]);
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn socket_shutdown_is_taken_as_producer_finished() {
        let how = Run {
            end: Control::SocketShutdown,
            ..Run::default()
        };
        let out = run(DeFramer::new(), vec![frames(&[b"x".to_vec()])], how);
        assert_eq!(out.messages, [b"x".to_vec()]);
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn shutdown_microprocess_is_passed_on_after_what_fits_at_once() {
        let how = Run {
            end: Control::ShutdownMicroprocess,
            room: 1,
            read: false,
        };
        let input = frames(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        let out = run(DeFramer::new(), vec![input], how);
        assert_eq!(out.messages, [b"a".to_vec()]);
        assert_eq!(out.signal, Some(Control::ShutdownMicroprocess));
    }

    #[test]
    fn a5_a_slow_consumer_gets_every_message_and_memory_stays_bounded() {
        // 300 messages of 1000 bytes, in chunks of 700, into a consumer
        // that takes one message at a time.
        let msgs: Vec<Vec<u8>> = (0..300).map(|i| pattern(i, 1000)).collect();
        let chunks = frames(&msgs).chunks(700).map(<[u8]>::to_vec).collect();
        let how = Run {
            room: 1,
            ..Run::default()
        };
        let out = run(DeFramer::new(), chunks, how);
        assert_eq!(out.messages, msgs);
        assert_eq!(out.signal, Some(Control::ProducerFinished));
        assert!(out.samples.len() > 100, "{} samples", out.samples.len());
        for s in &out.samples {
            // What it took beyond what it delivered: the message it holds
            // and the rest of one chunk, never more.
            let frames_delivered = s.delivered / 1000 * 1004;
            assert!(
                s.taken <= frames_delivered + 1004 + 700,
                "took {} bytes, delivered {}",
                s.taken,
                s.delivered
            );
        }
    }

    proptest! {
        #[test]
        fn any_messages_in_any_chunks_decode_to_themselves(
            msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in prop::collection::vec(0usize..7000, 0..40),
        ) {
            let chunks = cut(&frames(&msgs), &cuts);
            let (got, too_big, d) = decode(MAX_MESSAGE, &chunks);
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(too_big, None);
            prop_assert_eq!(d.partial(), 0);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn the_component_too_round_trips_any_chunking(
            msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in prop::collection::vec(0usize..7000, 0..40),
            room in 1usize..4,
        ) {
            let chunks = cut(&frames(&msgs), &cuts);
            let out = run(DeFramer::new(), chunks, Run { room, ..Run::default() });
            prop_assert_eq!(out.messages, msgs);
            prop_assert_eq!(out.signal, Some(Control::ProducerFinished));
        }
    }
}
