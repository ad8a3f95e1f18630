//! [`ConsoleReader`] and [`ConsoleEchoer`]: the terminal as components.

use std::fmt;
use std::io::{self, BufRead, Write};

use axon::{Component, Control, Cx, Standard, Step};

/// Kamaelia's `ConsoleReader`: each line read from standard input (with
/// its `\n`) out of `outbox`; at the end of the input, `producerFinished`
/// out of `signal`.
///
/// Reading blocks, so it is a threaded component
/// ([`Component::THREADED`]): activating it starts a thread of its own. A
/// line that meets a full destination (A5) waits, and so does the reading.
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `()` | unused |
/// | `control` | inbox | [`Control`] | `shutdownMicroprocess`: stop before the next line |
/// | `outbox` | outbox | `Vec<u8>` | the lines |
/// | `signal` | outbox | [`Control`] | `producerFinished` at the end of the input |
pub struct ConsoleReader {
    input: Box<dyn BufRead + Send>,
    held: Option<Vec<u8>>,
}

impl fmt::Debug for ConsoleReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsoleReader")
    }
}

impl Default for ConsoleReader {
    fn default() -> Self {
        ConsoleReader::new()
    }
}

impl ConsoleReader {
    /// Reads standard input.
    pub fn new() -> ConsoleReader {
        ConsoleReader::from_input(io::BufReader::new(io::stdin()))
    }

    /// Reads `input` instead (a file, a test's bytes).
    pub fn from_input(input: impl BufRead + Send + 'static) -> ConsoleReader {
        ConsoleReader {
            input: Box::new(input),
            held: None,
        }
    }
}

impl Component for ConsoleReader {
    type Boxes = Standard<(), Vec<u8>>;
    const THREADED: bool = true;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if let Some(msg) = cx.control.recv() {
            if !msg.is_producer_finished() {
                return Step::Done;
            }
        }
        let line = match self.held.take() {
            Some(line) => line,
            None => {
                let mut line = Vec::new();
                match self.input.read_until(b'\n', &mut line) {
                    Ok(0) => {
                        let _ = cx.signal.send(Control::ProducerFinished);
                        return Step::Done;
                    }
                    Ok(_) => line,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => return Step::Continue,
                    Err(e) => {
                        log::warn!("consolereader: {e}");
                        let _ = cx.signal.send(Control::ProducerFinished);
                        return Step::Done;
                    }
                }
            }
        };
        match cx.outbox.send(line) {
            Ok(()) => Step::Continue,
            Err(full) => {
                self.held = Some(full.into_inner());
                Step::Pause // woken when there is room
            }
        }
    }
}

/// Kamaelia's `ConsoleEchoer`: writes what arrives in `inbox` to standard
/// output; on a `control` message, passes it on out of `signal` and ends.
///
/// Writing may block (a full pipe), so it is a threaded component
/// ([`Component::THREADED`]).
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `Vec<u8>` | bytes to write |
/// | `control` | inbox | [`Control`] | any message: write what is left, pass it on, end |
/// | `outbox` | outbox | `()` | unused |
/// | `signal` | outbox | [`Control`] | the `control` message, passed on |
pub struct ConsoleEchoer {
    output: Box<dyn Write + Send>,
}

impl fmt::Debug for ConsoleEchoer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsoleEchoer")
    }
}

impl Default for ConsoleEchoer {
    fn default() -> Self {
        ConsoleEchoer::new()
    }
}

impl ConsoleEchoer {
    /// Writes to standard output.
    pub fn new() -> ConsoleEchoer {
        ConsoleEchoer::to_output(io::stdout())
    }

    /// Writes to `output` instead.
    pub fn to_output(output: impl Write + Send + 'static) -> ConsoleEchoer {
        ConsoleEchoer {
            output: Box::new(output),
        }
    }
}

impl Component for ConsoleEchoer {
    type Boxes = Standard<Vec<u8>, ()>;
    const THREADED: bool = true;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        let mut wrote = false;
        while let Some(bytes) = cx.inbox.recv() {
            if let Err(e) = self.output.write_all(&bytes) {
                log::warn!("consoleechoer: {e}");
                return Step::Done;
            }
            wrote = true;
        }
        if wrote {
            let _ = self.output.flush();
        }
        match cx.control.recv() {
            Some(msg) => {
                let _ = cx.signal.send(msg);
                Step::Done
            }
            None => Step::Pause,
        }
    }
}
