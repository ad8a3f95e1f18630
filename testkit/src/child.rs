//! Child processes: pipes drained on a thread, exits waited for with a
//! deadline, signals sent without unsafe code.

use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::DEADLINE;

/// Everything a child's pipe has produced so far, collected on a background
/// thread so the child can never block on a full pipe.
pub struct Drained {
    state: Arc<(Mutex<Pipe>, Condvar)>,
}

/// What a pipe has produced, and whether it has ended.
#[derive(Default)]
struct Pipe {
    buf: Vec<u8>,
    eof: bool,
}

impl Drained {
    /// What the pipe has produced so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.state.0.lock().unwrap().buf).into_owned()
    }

    /// Waits (at most `limit`) until what the pipe has produced so far
    /// satisfies `done`, or the pipe ends; returns the text then. Woken by
    /// each chunk read, not by polling.
    pub fn wait_until(&self, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let (lock, more) = &*self.state;
        let deadline = Instant::now() + limit;
        let mut pipe = lock.lock().unwrap();
        loop {
            let text = String::from_utf8_lossy(&pipe.buf).into_owned();
            let now = Instant::now();
            if pipe.eof || done(&text) || now >= deadline {
                return text;
            }
            pipe = more.wait_timeout(pipe, deadline - now).unwrap().0;
        }
    }

    /// Waits (at most [`DEADLINE`]) until `needle` has appeared; true if it
    /// has.
    pub fn wait_for(&self, needle: &str) -> bool {
        self.wait_until(DEADLINE, |t| t.contains(needle))
            .contains(needle)
    }

    /// Waits (at most [`DEADLINE`]) until the pipe has been read to its
    /// end, then returns all of it.
    pub fn finish(self) -> String {
        self.wait_until(DEADLINE, |_| false)
    }
}

/// Drains `pipe` on a background thread.
pub fn drain<R: Read + Send + 'static>(mut pipe: R) -> Drained {
    let state = Arc::new((Mutex::new(Pipe::default()), Condvar::new()));
    let sink = Arc::clone(&state);
    thread::spawn(move || {
        let (lock, more) = &*sink;
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    lock.lock().unwrap().buf.extend_from_slice(&chunk[..n]);
                    more.notify_all();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        lock.lock().unwrap().eof = true;
        more.notify_all();
    });
    Drained { state }
}

/// Polls `try_wait` for at most `limit` (and at most 10,000 times): there
/// is no other event to wait on for a process exit with only std.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    for _ in 0..10_000 {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Sends process `pid` SIGTERM (with `kill(1)`, so no unsafe code).
#[track_caller]
pub fn sigterm(pid: u32) {
    let pid = pid.to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -TERM {pid} failed: {kill:?}");
}

/// A server binary started as a child, once it has said `listening on
/// HOST:PORT` as its first stdout line. Dropping it kills and reaps it.
pub struct Listening {
    /// The process.
    pub child: Child,
    /// The address its first line reports.
    pub addr: SocketAddr,
    /// Its stdout, drained so it never blocks on the pipe.
    pub stdout: Drained,
}

impl Listening {
    /// Starts `cmd` with stdout piped and waits (at most [`DEADLINE`]) for
    /// its `listening on HOST:PORT` line.
    #[track_caller]
    pub fn start(cmd: &mut Command) -> Listening {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let text = stdout.wait_until(DEADLINE, |t| t.contains('\n'));
        let line = text.lines().next().unwrap_or_default();
        let Some(addr) = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?}: first line {line:?} is not `listening on HOST:PORT`");
        };
        Listening {
            child,
            addr,
            stdout,
        }
    }

    /// Its exit status once it exits by itself, within [`DEADLINE`].
    #[track_caller]
    pub fn exit(&mut self) -> ExitStatus {
        wait_with_deadline(&mut self.child, DEADLINE).expect("the server did not exit")
    }

    /// SIGTERM, then its exit status (within [`DEADLINE`]).
    #[track_caller]
    pub fn stop(mut self) -> ExitStatus {
        sigterm(self.child.id());
        self.exit()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn a_child_is_drained_and_its_exit_seen() {
        let mut child = Command::new("sh")
            .args(["-c", "echo hello; exit 3"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = drain(child.stdout.take().unwrap());
        assert!(out.wait_for("hello"));
        let status = wait_with_deadline(&mut child, DEADLINE).expect("exit");
        assert_eq!(status.code(), Some(3));
        assert_eq!(out.finish(), "hello\n");
    }
}
