//! The far side of a byte-stream component (a TCPClient, a pipeline): an
//! endpoint that sends it bytes and control, and collects what it sends.

use std::time::Instant;

use axon::{Control, Endpoint, Standard};

use crate::DEADLINE;

/// The user's side of a byte-stream component: link its `outbox` and
/// `signal` to the component's `inbox` and `control`, and the component's
/// `outbox` and `signal` to its `inbox` and `control`.
pub type User = Endpoint<Standard<Vec<u8>, Vec<u8>>>;

/// Collects what comes into `user` until a control message says the
/// component has ended; returns the bytes and that message. Panics at
/// [`DEADLINE`].
#[track_caller]
pub fn collect_until_signal(user: &User) -> (Vec<u8>, Control) {
    let deadline = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    loop {
        while let Some(b) = user.inbox.recv() {
            got.extend_from_slice(&b);
        }
        if let Some(c) = user.control.recv() {
            while let Some(b) = user.inbox.recv() {
                got.extend_from_slice(&b);
            }
            return (got, c);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            user.wait(left),
            "no signal within {DEADLINE:?} (got {} bytes)",
            got.len()
        );
    }
}
