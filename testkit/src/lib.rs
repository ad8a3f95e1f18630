//! Helpers shared by the workspace's tests (`publish = false`).
//!
//! One deadline, one way to run a scheduler on a thread, one set of
//! loopback clients and one set of `/proc` readers, so that every test in
//! `axon/tests`, `tests/` and `examples/tests` waits and measures the same
//! way.
//!
//! Nothing here sleeps to synchronise. Every wait is a read, a channel
//! receive or a condition variable with a deadline. The only polling is for
//! facts that have no event: another process's exit, a descriptor count, a
//! resident size. Those loops are bounded by [`DEADLINE`].
//!
//! ```
//! use testkit::{wait_until, DEADLINE};
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//!
//! let flag = Arc::new(AtomicBool::new(false));
//! let setter = Arc::clone(&flag);
//! std::thread::spawn(move || setter.store(true, Ordering::Release));
//! wait_until("the flag", || flag.load(Ordering::Acquire));
//! assert!(DEADLINE.as_secs() >= 10);
//! ```

mod child;
mod handlers;
mod net;
mod procfs;
mod sched;
mod user;

use std::time::{Duration, Instant};

pub use child::{drain, sigterm, wait_with_deadline, Drained, Listening};
pub use handlers::PanicsOnInput;
pub use net::{
    any_loopback_port, assert_each_closed_unanswered, closed_unanswered, connect, pattern, read_n,
    read_to_eof, round_trip, sees_eof, try_connect,
};
pub use procfs::{ensure_fd_limit, open_fds, tcp_socket, CpuClock, Proc, TcpSocket};
pub use sched::{stop_gracefully, Running};
pub use user::{collect_until_signal, User};

/// How long any test waits for one event (a reply, a close, an exit, a
/// scheduler's return) before it fails. Long enough for a loaded two-core
/// CI machine; a test that needs it is failing anyway.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The fixture parameter for sharded servers: how many shards a test's
/// server runs with (`ServerCore::threads`), from the environment variable
/// `KAMAELIA_SHARDS` (default 1: one thread, no acceptor). CI runs the
/// server tests again with 2 and 4; a value that is not a positive number
/// fails the test that asks, rather than testing something else.
pub fn shards() -> usize {
    match std::env::var("KAMAELIA_SHARDS") {
        Err(_) => 1,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("KAMAELIA_SHARDS={v:?}: not a positive number of shards"),
        },
    }
}

/// Waits until `f` holds, failing at [`DEADLINE`] with `what` in the
/// message. Only for conditions with no event to wait on (another
/// process's state, a descriptor count); it yields between tries.
#[track_caller]
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut tries = 0u32;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tries += 1;
        if tries < 1_000 {
            std::thread::yield_now();
        } else {
            // Past the first thousand tries the condition is slow to come:
            // stop burning the core the code under test needs.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
