//! Connection handlers that misbehave on purpose, for tests of what a
//! server does about them.

use axon::{Component, Cx, Standard, Step};

/// A handler that panics on the first bytes it is sent (the panic, in the
/// log, is part of the test that uses it).
#[derive(Debug, Default)]
pub struct PanicsOnInput;

impl Component for PanicsOnInput {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if cx.inbox.recv().is_some() {
            panic!("a handler bug (this panic is part of the test)");
        }
        Step::Pause
    }
}
