//! The unit tests' harness: one component between an endpoint that feeds
//! it and a consumer that may be slow.

use axon::{link, Control, Endpoint, Handle, Scheduler, Standard};
use testkit::{Running, DEADLINE};

/// How to run a component.
pub(crate) struct Run {
    /// Sent to its `control` after the input.
    pub end: Control,
    /// The consumer's inbox limit, in messages (A5).
    pub room: usize,
    /// False: the consumer reads nothing until the component has ended.
    pub read: bool,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            end: Control::ProducerFinished,
            room: 1000,
            read: true,
        }
    }
}

/// What came out.
#[derive(Debug)]
pub(crate) struct Out {
    /// Out of `outbox`, in order.
    pub messages: Vec<Vec<u8>>,
    /// Out of `signal`.
    pub signal: Option<Control>,
    /// At each moment the consumer's inbox was full: the input bytes the
    /// component had taken, and the output bytes it had delivered. While
    /// the consumer is full nothing more can be delivered, so the
    /// difference is what the component holds.
    pub samples: Vec<Sample>,
}

/// See [`Out::samples`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub taken: usize,
    pub delivered: usize,
}

impl Out {
    /// All the output, joined.
    pub fn bytes(&self) -> Vec<u8> {
        self.messages.concat()
    }
}

/// Runs `component` over `input` (all of it waiting in its inbox at the
/// start, then `how.end` in its `control`) on a scheduler of its own.
pub(crate) fn run(component: impl Into<Handle>, input: Vec<Vec<u8>>, how: Run) -> Out {
    let component = component.into();
    let edge = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("edge");
    edge.inbox.set_limit(Some(how.room));
    link((edge.handle(), "outbox"), (&component, "inbox")).unwrap();
    link((edge.handle(), "signal"), (&component, "control")).unwrap();
    link((&component, "outbox"), (edge.handle(), "inbox")).unwrap();
    link((&component, "signal"), (edge.handle(), "control")).unwrap();
    // taken(k): the bytes of the first k inputs.
    let mut sizes = vec![0];
    for msg in input {
        sizes.push(sizes.last().unwrap() + msg.len());
        edge.outbox.send(msg).unwrap();
    }
    let inputs = sizes.len() - 1;
    edge.signal.send(how.end).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&component).unwrap();
    let running = Running::start(scheduler);

    let mut out = Out {
        messages: Vec::new(),
        signal: None,
        samples: Vec::new(),
    };
    if how.read {
        let mut delivered = 0;
        loop {
            assert!(edge.wait(DEADLINE), "{component:?} stalled");
            // Full: the component can deliver nothing more until we read,
            // so what it has taken now is exactly what it holds. Only the
            // messages there now are read: the component refills the box
            // as soon as we take one.
            let ready = edge.inbox.len();
            let waiting = component.inbox_len("inbox");
            for msg in std::iter::from_fn(|| edge.inbox.recv()).take(ready) {
                delivered += msg.len();
                out.messages.push(msg);
            }
            if ready >= how.room {
                let taken = sizes[inputs - waiting.min(inputs)];
                out.samples.push(Sample { taken, delivered });
            }
            if let Some(msg) = edge.control.recv() {
                // The end comes after the last message: take what is left.
                out.messages
                    .extend(std::iter::from_fn(|| edge.inbox.recv()));
                out.signal = Some(msg);
                break;
            }
        }
    } else {
        out.signal = edge.control.recv_timeout(DEADLINE);
        assert!(out.signal.is_some(), "{component:?} did not end");
        out.messages
            .extend(std::iter::from_fn(|| edge.inbox.recv()));
    }
    running.join();
    out
}

/// `bytes` cut at each of `cuts` (positions, in any order; out of range
/// or repeated ones are ignored).
pub(crate) fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().copied().filter(|&c| c < bytes.len()).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}
