//! [`LineSplit`]: bytes to lines.

use std::fmt;

use axon::{Component, Control, Cx, Standard, Step};

/// The longest line [`LineSplit::new`] passes on, in bytes (64 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// What [`LineSplit`] does with a line longer than its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TooLong {
    /// Pass on its first `limit` bytes as the line and drop the rest of it,
    /// up to its newline (logged at `debug`). The default.
    Cut,
    /// Stop: send `shutdownMicroprocess` out of `signal` (which, in a
    /// server's handler, closes the connection at once) and end.
    Close,
}

/// Splits a byte stream into lines: each line, without its `\n` (or
/// `\r\n`), as one message.
///
/// ## Boxes
///
/// [`Standard`]`<Vec<u8>, Vec<u8>>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `Vec<u8>` | bytes, in any chunks |
/// | `control` | inbox | [`Control`] | `producerFinished` / `socketShutdown`: no more bytes: pass on the last lines (and a final line without a newline), then say `producerFinished`; `shutdownMicroprocess`: pass it on and end |
/// | `outbox` | outbox | `Vec<u8>` | one line per message, without its line end |
/// | `signal` | outbox | [`Control`] | what ended it: `producerFinished` after the last line, or `shutdownMicroprocess` |
///
/// ## Bounds
///
/// - **Linear.** Each byte is looked at once: a line that arrives in many
///   chunks is not rescanned, and the chunk a line came in is not copied
///   again per line.
/// - **Bounded memory.** It holds at most the chunk being split and one
///   partial line of at most the limit ([`MAX_LINE`] unless
///   [`with_limit`](Self::with_limit) says otherwise); a longer line is
///   cut or ends the stream ([`TooLong`]), never kept whole.
/// - **Backpressure (A5).** When `outbox` is full it keeps the line, takes
///   no more input and waits to be woken (A6); its own `inbox` then fills,
///   which (as a server's handler) stops the connection reading.
///
/// ```
/// use std::time::Duration;
/// use axon::{link, Control, Endpoint, Handle, Scheduler, Standard};
/// use framing::LineSplit;
///
/// let split = Handle::new(LineSplit::new());
/// let edge = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("edge");
/// link((edge.handle(), "outbox"), (&split, "inbox")).unwrap();
/// link((edge.handle(), "signal"), (&split, "control")).unwrap();
/// link((&split, "outbox"), (edge.handle(), "inbox")).unwrap();
/// edge.outbox.send(b"hello\r\nwor".to_vec()).unwrap();
/// edge.outbox.send(b"ld\nlast".to_vec()).unwrap();
/// edge.signal.send(Control::ProducerFinished).unwrap();
///
/// let scheduler = Scheduler::new();
/// scheduler.activate(&split).unwrap();
/// scheduler.run();
/// let lines: Vec<Vec<u8>> = std::iter::from_fn(|| edge.inbox.recv()).collect();
/// assert_eq!(lines, [b"hello".to_vec(), b"world".to_vec(), b"last".to_vec()]);
/// ```
pub struct LineSplit {
    limit: usize,
    too_long: TooLong,
    /// The chunk being split, and how far.
    chunk: Vec<u8>,
    at: usize,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// Dropping the rest of a line that was cut.
    skipping: bool,
    /// A line the outbox had no room for.
    held: Option<Vec<u8>>,
    /// The input has ended: what to send out of `signal` once every line
    /// is out.
    ending: Option<Control>,
}

impl fmt::Debug for LineSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineSplit")
            .field("limit", &self.limit)
            .field("too_long", &self.too_long)
            .field("partial", &self.partial.len())
            .finish()
    }
}

impl Default for LineSplit {
    fn default() -> Self {
        LineSplit::new()
    }
}

/// Why a step stopped passing lines on.
enum Stop {
    /// The outbox is full: wait to be woken.
    Full,
    /// A line over the limit, with [`TooLong::Close`].
    TooLong,
}

impl LineSplit {
    /// Lines of up to [`MAX_LINE`] bytes; longer ones are cut.
    pub fn new() -> LineSplit {
        LineSplit::with_limit(MAX_LINE, TooLong::Cut)
    }

    /// Lines of up to `limit` bytes (at least 1), and what to do with a
    /// longer one.
    pub fn with_limit(limit: usize, too_long: TooLong) -> LineSplit {
        LineSplit {
            limit: limit.max(1),
            too_long,
            chunk: Vec::new(),
            at: 0,
            partial: Vec::new(),
            skipping: false,
            held: None,
            ending: None,
        }
    }

    /// Sends `line`, or keeps it if the outbox is full.
    fn emit(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>, mut line: Vec<u8>) -> Result<(), Stop> {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        cx.outbox.send(line).map_err(|full| {
            self.held = Some(full.into_inner());
            Stop::Full
        })
    }

    /// A line grew past the limit: cut it or stop.
    fn over_limit(
        &mut self,
        cx: &Cx<Standard<Vec<u8>, Vec<u8>>>,
        line: Vec<u8>,
    ) -> Result<(), Stop> {
        match self.too_long {
            TooLong::Close => Err(Stop::TooLong),
            TooLong::Cut => {
                log::debug!("linesplit: a line over {} bytes was cut", self.limit);
                self.emit(cx, line)
            }
        }
    }

    /// Passes on every complete line of the current chunk.
    fn split(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>) -> Result<(), Stop> {
        while self.at < self.chunk.len() {
            let rest = &self.chunk[self.at..];
            let end = memchr::memchr(b'\n', rest);
            if self.skipping {
                match end {
                    Some(i) => {
                        self.skipping = false;
                        self.at += i + 1;
                        continue;
                    }
                    None => {
                        self.at = self.chunk.len();
                        break;
                    }
                }
            }
            let room = self.limit - self.partial.len();
            match end {
                Some(i) if i <= room => {
                    let line = if self.partial.is_empty() {
                        rest[..i].to_vec()
                    } else {
                        let mut line = std::mem::take(&mut self.partial);
                        line.extend_from_slice(&rest[..i]);
                        line
                    };
                    self.at += i + 1;
                    self.emit(cx, line)?;
                }
                Some(i) if i == room + 1 && rest[i - 1] == b'\r' => {
                    // Exactly at the limit, with a `\r\n` end.
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&rest[..i]);
                    self.at += i + 1;
                    self.emit(cx, line)?;
                }
                _ if rest.len() <= room => {
                    // No end yet, and within the limit: keep it for later.
                    self.partial.extend_from_slice(rest);
                    self.at = self.chunk.len();
                }
                _ => {
                    // Over the limit before its end.
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&rest[..room]);
                    self.at += room;
                    self.skipping = true;
                    self.over_limit(cx, line)?;
                }
            }
        }
        // Drop the buffer: an idle connection keeps none.
        self.chunk = Vec::new();
        self.at = 0;
        Ok(())
    }

    fn step(&mut self, cx: &Cx<Standard<Vec<u8>, Vec<u8>>>) -> Result<Step, Stop> {
        // Control first: bytes sent before producerFinished are then in the
        // inbox by the time it is drained below, even from another thread;
        // and shutdownMicroprocess is acted on at once, even while held.
        if self.ending.is_none() {
            while let Some(msg) = cx.control.recv() {
                if msg.is_producer_finished() {
                    self.ending = Some(Control::ProducerFinished);
                } else {
                    self.ending = Some(msg);
                    break;
                }
            }
        }
        if let Some(msg) = self.ending.clone().filter(|m| !m.is_producer_finished()) {
            let _ = cx.signal.send(msg);
            return Ok(Step::Done);
        }
        if let Some(line) = self.held.take() {
            cx.outbox.send(line).map_err(|full| {
                self.held = Some(full.into_inner());
                Stop::Full
            })?;
        }
        loop {
            self.split(cx)?;
            match cx.inbox.recv() {
                Some(chunk) => {
                    // Reuse the chunk itself: no copy of the input.
                    self.chunk = chunk;
                    self.at = 0;
                }
                None => break,
            }
        }
        match self.ending.clone() {
            None => Ok(Step::Pause),
            Some(msg) => {
                if msg.is_producer_finished() && !self.partial.is_empty() {
                    // The last line, without a line end.
                    let line = std::mem::take(&mut self.partial);
                    self.emit(cx, line)?;
                }
                let _ = cx.signal.send(msg);
                Ok(Step::Done)
            }
        }
    }
}

impl Component for LineSplit {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        match self.step(cx) {
            Ok(step) => step,
            Err(Stop::Full) => Step::Pause, // woken when the outbox has room
            Err(Stop::TooLong) => {
                log::debug!("linesplit: a line over {} bytes: closing", self.limit);
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                Step::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axon::{link, Endpoint, Handle, Scheduler};
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(20);

    /// Runs `split` over `chunks` (then producerFinished) with its output
    /// into an inbox of `room` messages, read one at a time; returns the
    /// lines and the message out of `signal`.
    fn run(split: LineSplit, chunks: Vec<Vec<u8>>, room: usize) -> (Vec<Vec<u8>>, Option<Control>) {
        let split = Handle::new(split);
        let edge = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("edge");
        edge.inbox.set_limit(Some(room));
        link((edge.handle(), "outbox"), (&split, "inbox")).unwrap();
        link((edge.handle(), "signal"), (&split, "control")).unwrap();
        link((&split, "outbox"), (edge.handle(), "inbox")).unwrap();
        link((&split, "signal"), (edge.handle(), "control")).unwrap();
        for c in chunks {
            edge.outbox.send(c).unwrap();
        }
        edge.signal.send(Control::ProducerFinished).unwrap();
        let scheduler = Scheduler::new();
        scheduler.activate(&split).unwrap();
        let running = std::thread::spawn(move || scheduler.run());
        let mut lines = Vec::new();
        let signal = loop {
            assert!(edge.wait(DEADLINE), "LineSplit stalled");
            while let Some(line) = edge.inbox.recv() {
                lines.push(line);
            }
            if let Some(msg) = edge.control.recv() {
                while let Some(line) = edge.inbox.recv() {
                    lines.push(line);
                }
                break Some(msg);
            }
        };
        running.join().unwrap();
        (lines, signal)
    }

    fn text(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into())
            .collect()
    }

    #[test]
    fn lines_split_across_chunks_and_crlf_ends() {
        let chunks = vec![
            b"one\r\ntw".to_vec(),
            b"o\nthr".to_vec(),
            b"ee".to_vec(),
            b"\n\nlast".to_vec(),
        ];
        let (lines, signal) = run(LineSplit::new(), chunks, 1000);
        assert_eq!(text(&lines), ["one", "two", "three", "", "last"]);
        assert_eq!(signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn a_flood_of_bare_newlines_is_passed_on_through_a_one_message_inbox() {
        // 32 KiB of newlines in one chunk (it grew the old chat server by
        // 513 MiB): 32,768 empty lines, each waiting for room (A5).
        let (lines, _) = run(LineSplit::new(), vec![vec![b'\n'; 32 * 1024]], 1);
        assert_eq!(lines.len(), 32 * 1024);
        assert!(lines.iter().all(|l| l.is_empty()));
    }

    #[test]
    fn a_line_over_the_limit_is_cut_and_its_rest_dropped() {
        let mut chunks = vec![b"short\n".to_vec()];
        // 10 KiB with no newline, in small chunks, then its end.
        chunks.extend((0..160).map(|_| vec![b'x'; 64]));
        chunks.push(b"tail of the long line\nnext\n".to_vec());
        let (lines, signal) = run(LineSplit::with_limit(100, TooLong::Cut), chunks, 1000);
        assert_eq!(lines.len(), 3, "{:?}", text(&lines));
        assert_eq!(lines[0], b"short");
        assert_eq!(lines[1], vec![b'x'; 100]);
        assert_eq!(lines[2], b"next");
        assert_eq!(signal, Some(Control::ProducerFinished));
    }

    #[test]
    fn a_line_over_the_limit_ends_the_stream_when_asked() {
        let chunks = vec![b"ok\n".to_vec(), vec![b'y'; 500], b"\nnever\n".to_vec()];
        let (lines, signal) = run(LineSplit::with_limit(100, TooLong::Close), chunks, 1000);
        assert_eq!(text(&lines), ["ok"]);
        assert_eq!(signal, Some(Control::ShutdownMicroprocess));
    }

    #[test]
    fn lines_exactly_at_the_limit_pass_whole() {
        let mut line = vec![b'z'; 10];
        line.extend_from_slice(b"\r\n");
        line.extend_from_slice(&[b'w'; 10]);
        line.push(b'\n');
        let (lines, _) = run(LineSplit::with_limit(10, TooLong::Close), vec![line], 1000);
        assert_eq!(lines, [vec![b'z'; 10], vec![b'w'; 10]]);
    }
}
