//! [`Chunkifier`]: a byte stream recut into chunks of one size.

use std::fmt;

use axon::{Component, Cx, Standard, Step};

use crate::shared::{grow, Ending};

/// Kamaelia's `Kamaelia.Util.Chunkifier(chunksize)`: recuts a byte stream
/// into chunks of exactly `chunksize` bytes; when the stream ends, what is
/// left goes out as a last, shorter chunk.
///
/// ## Boxes
///
/// [`Standard`]`<Vec<u8>, Vec<u8>>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `Vec<u8>` | bytes, in any chunks |
/// | `control` | inbox | [`Control`](axon::Control) | `producerFinished` / `socketShutdown`: no more bytes: pass on the last chunks (the rest as a shorter one), then say `producerFinished`; `shutdownMicroprocess`: pass on what came as far as `outbox` has room at once, then pass it on and end |
/// | `outbox` | outbox | `Vec<u8>` | chunks of exactly `chunksize` bytes; the last may be shorter |
/// | `signal` | outbox | [`Control`](axon::Control) | what ended it: `producerFinished` after the last chunk, or the `shutdownMicroprocess` passed on |
///
/// Kamaelia's answered `shutdown` with `producerFinished`; this one passes
/// `shutdownMicroprocess` on as it came, as every component here does.
///
/// ## Bounds
///
/// - **Linear.** Each byte is copied into its chunk (a chunk filled from
///   many small pieces grows by doubling, up to `chunksize`, never past
///   it); an input chunk of exactly `chunksize` bytes, arriving at a chunk
///   boundary, goes out as it came, not copied at all.
/// - **Bounded memory.** It holds at most one chunk being filled (less
///   than `chunksize`), one chunk the outbox had no room for and the rest
///   of the one input chunk it is cutting. Kamaelia's queued all its input.
/// - **Backpressure (A5).** When `outbox` is full it keeps the chunk,
///   takes no more input and waits to be woken (A6).
///
/// ```
/// use axon::{link, Control, Endpoint, Handle, Scheduler, Standard};
/// use framing::Chunkifier;
///
/// let chunkifier = Handle::new(Chunkifier::new(4));
/// let edge = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("edge");
/// link((edge.handle(), "outbox"), (&chunkifier, "inbox")).unwrap();
/// link((edge.handle(), "signal"), (&chunkifier, "control")).unwrap();
/// link((&chunkifier, "outbox"), (edge.handle(), "inbox")).unwrap();
/// link((&chunkifier, "signal"), (edge.handle(), "control")).unwrap();
/// edge.outbox.send(b"abcdef".to_vec()).unwrap();
/// edge.outbox.send(b"ghij".to_vec()).unwrap();
/// edge.signal.send(Control::ProducerFinished).unwrap();
///
/// let scheduler = Scheduler::new();
/// scheduler.activate(&chunkifier).unwrap();
/// scheduler.run();
/// let chunks: Vec<Vec<u8>> = std::iter::from_fn(|| edge.inbox.recv()).collect();
/// assert_eq!(chunks, [b"abcd".to_vec(), b"efgh".to_vec(), b"ij".to_vec()]);
/// assert_eq!(edge.control.recv(), Some(Control::ProducerFinished));
/// ```
pub struct Chunkifier {
    size: usize,
    /// The input chunk being cut, and how far.
    chunk: Vec<u8>,
    at: usize,
    /// The start of the next chunk out.
    part: Vec<u8>,
    /// A chunk the outbox had no room for.
    held: Option<Vec<u8>>,
    ending: Ending,
}

impl fmt::Debug for Chunkifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunkifier")
            .field("chunksize", &self.size)
            .field("part", &self.part.len())
            .field("holding", &self.held.is_some())
            .finish()
    }
}

impl Default for Chunkifier {
    /// Chunks of 1 MiB, Kamaelia's default.
    fn default() -> Self {
        Chunkifier::new(1024 * 1024)
    }
}

/// The outbox is full: wait to be woken.
struct Full;

impl Chunkifier {
    /// Chunks of `chunksize` bytes (at least 1).
    pub fn new(chunksize: usize) -> Chunkifier {
        Chunkifier {
            size: chunksize.max(1),
            chunk: Vec::new(),
            at: 0,
            part: Vec::new(),
            held: None,
            ending: Ending::default(),
        }
    }

    /// Sends `chunk`, or keeps it if the outbox is full.
    fn emit(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>, chunk: Vec<u8>) -> Result<(), Full> {
        cx.outbox.send(chunk).map_err(|full| {
            self.held = Some(full.into_inner());
            Full
        })
    }

    /// Cuts the current input chunk, passing on every whole chunk.
    fn cut(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>) -> Result<(), Full> {
        while self.at < self.chunk.len() {
            let rest = &self.chunk[self.at..];
            let room = self.size - self.part.len();
            if rest.len() < room {
                grow(&mut self.part, rest.len(), self.size);
                self.part.extend_from_slice(rest);
                break;
            }
            let out = if !self.part.is_empty() {
                let mut out = std::mem::take(&mut self.part);
                grow(&mut out, room, self.size);
                out.extend_from_slice(&rest[..room]);
                out
            } else if self.at == 0 && self.chunk.len() == self.size {
                // Already the right size: pass it on as it came.
                self.at = self.size;
                let whole = std::mem::take(&mut self.chunk);
                self.emit(cx, whole)?;
                continue;
            } else {
                rest[..room].to_vec()
            };
            self.at += room;
            self.emit(cx, out)?;
        }
        // Drop the buffer: an idle stream keeps none.
        self.chunk = Vec::new();
        self.at = 0;
        Ok(())
    }

    /// Passes on every whole chunk of the input waiting.
    fn step(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>) -> Result<(), Full> {
        if let Some(chunk) = self.held.take() {
            self.emit(cx, chunk)?;
        }
        loop {
            self.cut(cx)?;
            match cx.inbox.recv() {
                // The chunk itself is kept: no copy of the input.
                Some(chunk) => self.chunk = chunk,
                None => return Ok(()),
            }
        }
    }
}

impl Component for Chunkifier {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        self.ending.read(&cx.control);
        let drained = self.step(cx).is_ok();
        if !drained && !self.ending.stop_now() {
            return Step::Pause; // woken when there is room
        }
        let Some(msg) = self.ending.get() else {
            return Step::Pause;
        };
        let msg = msg.clone();
        if drained && !self.part.is_empty() {
            // The rest, as a last shorter chunk.
            let last = std::mem::take(&mut self.part);
            if self.emit(cx, last).is_err() && !self.ending.stop_now() {
                return Step::Pause; // sent first thing when woken
            }
        }
        if self.held.is_some() || !self.part.is_empty() {
            log::debug!("chunkifier: stopping with bytes the outbox had no room for");
        }
        let _ = cx.signal.send(msg);
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cut, run, Run};
    use axon::Control;
    use proptest::prelude::*;
    use testkit::pattern;

    #[test]
    fn chunks_of_exactly_the_size_and_a_shorter_last() {
        let input = vec![
            b"ab".to_vec(),
            b"cdefghi".to_vec(),
            Vec::new(),
            b"jk".to_vec(),
        ];
        let out = run(Chunkifier::new(3), input, Run::default());
        assert_eq!(
            out.messages,
            [&b"abc"[..], b"def", b"ghi", b"jk"].map(<[u8]>::to_vec)
        );
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn no_shorter_last_chunk_when_the_input_divides_evenly() {
        let out = run(Chunkifier::new(2), vec![b"abcd".to_vec()], Run::default());
        assert_eq!(out.messages, [b"ab".to_vec(), b"cd".to_vec()]);
        let out = run(Chunkifier::new(2), Vec::new(), Run::default());
        assert!(out.messages.is_empty());
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn a_chunk_of_the_right_size_passes_as_it_came_and_one_byte_chunks_work() {
        let input = vec![b"abcd".to_vec(), b"e".to_vec(), b"fghi".to_vec()];
        let first = input[0].as_ptr();
        let out = run(Chunkifier::new(4), input, Run::default());
        assert_eq!(out.bytes(), b"abcdefghi");
        assert_eq!(out.messages.len(), 3);
        assert_eq!(
            out.messages[0].as_ptr(),
            first,
            "the first chunk was copied"
        );
        let out = run(Chunkifier::new(1), vec![b"xyz".to_vec()], Run::default());
        assert_eq!(out.messages.len(), 3);
        // A chunk size of 0 is taken as 1.
        let out = run(Chunkifier::new(0), vec![b"xyz".to_vec()], Run::default());
        assert_eq!(out.messages.len(), 3);
    }

    #[test]
    fn socket_shutdown_is_taken_as_producer_finished() {
        let how = Run {
            end: Control::SocketShutdown,
            ..Run::default()
        };
        let out = run(Chunkifier::new(4), vec![b"abcdef".to_vec()], how);
        assert_eq!(out.messages, [b"abcd".to_vec(), b"ef".to_vec()]);
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn the_last_shorter_chunk_waits_for_room_too() {
        let how = Run {
            room: 1,
            ..Run::default()
        };
        let out = run(Chunkifier::new(4), vec![b"abcdefghij".to_vec()], how);
        assert_eq!(out.bytes(), b"abcdefghij");
        assert_eq!(out.messages.last().unwrap(), b"ij");
        assert_eq!(out.signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn shutdown_microprocess_is_passed_on_after_what_fits_at_once() {
        let how = Run {
            end: Control::ShutdownMicroprocess,
            room: 1,
            read: false,
        };
        let out = run(Chunkifier::new(2), vec![b"abcdef".to_vec()], how);
        assert_eq!(out.messages, [b"ab".to_vec()]);
        assert_eq!(out.signal, Some(Control::ShutdownMicroprocess));
    }

    #[test]
    fn a5_a_slow_consumer_gets_every_byte_and_memory_stays_bounded() {
        let input: Vec<Vec<u8>> = (0..200).map(|i| pattern(i, 333)).collect();
        let expected = input.concat();
        let how = Run {
            room: 1,
            ..Run::default()
        };
        let out = run(Chunkifier::new(100), input, how);
        assert_eq!(out.bytes(), expected);
        assert!(out.messages[..out.messages.len() - 1]
            .iter()
            .all(|c| c.len() == 100));
        assert!(out.samples.len() > 100, "{} samples", out.samples.len());
        for s in &out.samples {
            // The chunk it holds and the rest of one input chunk.
            assert!(s.taken <= s.delivered + 100 + 333, "{s:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn any_input_comes_out_whole_in_chunks_of_the_size(
            bytes in prop::collection::vec(any::<u8>(), 0..2000),
            cuts in prop::collection::vec(0usize..2000, 0..30),
            size in 1usize..50,
            room in 1usize..4,
        ) {
            let out = run(Chunkifier::new(size), cut(&bytes, &cuts), Run { room, ..Run::default() });
            prop_assert_eq!(out.bytes(), bytes);
            if let Some((last, whole)) = out.messages.split_last() {
                prop_assert!(whole.iter().all(|c| c.len() == size));
                prop_assert!(out.messages.iter().all(|c| c.capacity() <= size));
                prop_assert!(!last.is_empty() && last.len() <= size);
            }
            prop_assert_eq!(out.signal, Some(Control::ProducerFinished));
        }
    }
}
