//! The connection timeouts of the real `selector-demo` binary, measured
//! from outside as `robustness.rs` does: rules C9 (`--idle-timeout`) and
//! C10 (`--stall-timeout`), with C11's `--request-timeout` on the command
//! line.
//!
//! * 2,000 idle connections are all closed at the idle timeout (the
//!   server's descriptor count comes back to where it started), none
//!   before it, and the server uses no CPU while it waits: the timeouts
//!   are timers, not a polling loop;
//! * half-open peers (a large request, then `shutdown(SHUT_WR)`, never a
//!   read) are closed within the stall timeout, the server's memory
//!   stays bounded meanwhile, and other clients are served.
//!
//! Nothing here sleeps to synchronise. The sleeps are the CPU measurement
//! window and the short pauses of bounded polls of `/proc/<pid>/fd`, where
//! there is no event to wait on; every loop is bounded in count and time.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    cpu_ms, demo_command, echo, ensure_fd_limit, open_and_echo, wait_for_fd_count, Demo, DEADLINE,
};
use testkit::Proc;

const MIB: u64 = 1024 * 1024;

/// Starts the demo's echo server with `extra` options, per-connection logs
/// off (as `robustness.rs` does, so the measurements do not depend on the
/// caller's RUST_LOG).
fn start_echo(extra: &[&str]) -> Demo {
    let mut args = vec!["--protocol", "echo"];
    args.extend_from_slice(extra);
    Demo::start_with_env(&args, &[("RUST_LOG", "info")])
}

#[test]
fn c9_c10_c11_help_shows_the_timeout_options_and_bad_values_are_usage_errors() {
    let help = Command::new(env!("CARGO_BIN_EXE_selector-demo"))
        .arg("--help")
        .output()
        .expect("run selector-demo --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--idle-timeout", "--stall-timeout", "--request-timeout"] {
        assert!(help.contains(flag), "help does not mention {flag}:\n{help}");
    }
    for (flag, bad) in [
        ("--idle-timeout", "soon"),
        ("--stall-timeout", "-1"),
        ("--request-timeout", "1e400"),
    ] {
        let out = demo_command()
            .args(["--port", "0", flag, bad])
            .output()
            .expect("run selector-demo");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {bad}: {stderr}");
        assert!(
            stderr.starts_with(&format!("selector-demo: {flag}")) && stderr.contains(bad),
            "{flag} {bad}: the error does not name the option and value:\n{stderr}"
        );
    }
}

#[test]
fn c9_2000_idle_connections_are_closed_at_the_idle_timeout_with_no_cpu_while_waiting() {
    const CONNECTIONS: usize = 2_000;
    const IDLE: Duration = Duration::from_secs(5);
    const SLACK: Duration = Duration::from_secs(3);
    ensure_fd_limit(CONNECTIONS as u64 + 200);
    let mut demo = start_echo(&["--idle-timeout", "5"]);
    let pid = demo.pid();
    let fds_at_start = Proc::of(pid).fd_count();

    let first = Instant::now();
    let mut conns = open_and_echo(&demo, CONNECTIONS, 8, "idle");
    let opened = first.elapsed();
    let last = Instant::now();
    assert!(
        opened + Duration::from_millis(1_500) < IDLE,
        "opening {CONNECTIONS} connections took {opened:?}: no window left to measure"
    );
    assert_eq!(Proc::of(pid).fd_count(), fds_at_start + CONNECTIONS);

    // The wait: from just after the last was served until just before the
    // first falls due, nothing may happen, and nothing may cost CPU.
    thread::sleep(Duration::from_millis(100)); // let the last steps finish
    let before_ms = cpu_ms(pid);
    let window = Instant::now();
    let window_end = first + IDLE - Duration::from_millis(300);
    thread::sleep(window_end.saturating_duration_since(Instant::now())); // the window
    let used_ms = cpu_ms(pid) - before_ms;
    let elapsed = window.elapsed();
    let still_open = Proc::of(pid).fd_count();
    demo.assert_alive();
    let budget_ms = elapsed.as_millis() as u64 / 100; // 1% of one core
    eprintln!(
        "{CONNECTIONS} idle connections (opened in {opened:.2?}): server used {used_ms} ms of CPU \
         in {elapsed:.2?} waiting (budget {budget_ms} ms)"
    );
    assert!(
        used_ms <= budget_ms,
        "the server used {used_ms} ms of CPU in {elapsed:?} while {CONNECTIONS} connections \
         waited for their idle timeout (more than 1% of a core)"
    );
    assert_eq!(
        still_open,
        fds_at_start + CONNECTIONS,
        "connections were closed before their idle timeout"
    );

    // Then every one is closed, within the limit and a little after the
    // last one's activity, and every client sees the close.
    let limit = (last + IDLE + SLACK).saturating_duration_since(Instant::now());
    let left = wait_for_fd_count(pid, fds_at_start, limit);
    let closed = last.elapsed();
    assert_eq!(
        left,
        fds_at_start,
        "{} connections still open {closed:?} after the last was active (idle timeout {IDLE:?}); \
         stderr: {}",
        left.saturating_sub(fds_at_start),
        demo.stderr.text()
    );
    eprintln!("all closed {closed:.2?} after the last was active");
    for (i, s) in conns.iter_mut().enumerate() {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("connection {i}: expected the close, got {other:?}"),
        }
    }
    demo.assert_alive();
}

#[test]
fn c10_half_open_peers_are_closed_within_the_stall_timeout_with_bounded_memory() {
    const PEERS: usize = 16;
    const REQUEST: usize = 8 * 1024 * 1024;
    const STALL: Duration = Duration::from_secs(2);
    const SLACK: Duration = Duration::from_secs(3);
    let mut demo = start_echo(&["--stall-timeout", "2"]);
    let pid = demo.pid();
    let mut warm = demo.connect();
    echo(&mut warm, b"warm-up").unwrap();
    let fds_at_start = Proc::of(pid).fd_count();
    let rss_before = Proc::of(pid).rss_bytes();

    // Each sends 8 MiB and shuts down its write side, and never reads. A
    // write still blocked when the server gives up fails: that is fine.
    let start = Instant::now();
    let peers: Vec<_> = (0..PEERS)
        .map(|i| {
            let client = demo.connect();
            let mut writer = client.try_clone().unwrap();
            let writing = thread::spawn(move || {
                let request = vec![i as u8; REQUEST];
                if writer.write_all(&request).is_ok() {
                    let _ = writer.shutdown(Shutdown::Write);
                }
            });
            (client, writing)
        })
        .collect();
    // Stuck, they hold the server's memory only as far as its bounds let
    // them, and others are still served.
    assert!(
        wait_for_fd_count(pid, fds_at_start + PEERS, DEADLINE) == fds_at_start + PEERS,
        "the half-open peers were not all accepted"
    );
    let mut rss_peak = Proc::of(pid).rss_bytes();
    for i in 0..20 {
        echo(&mut warm, format!("beside them {i}").as_bytes())
            .unwrap_or_else(|e| panic!("a client beside the stuck ones: {e}"));
        rss_peak = rss_peak.max(Proc::of(pid).rss_bytes());
    }

    let left = wait_for_fd_count(pid, fds_at_start, STALL * 2 + SLACK);
    let took = start.elapsed();
    rss_peak = rss_peak.max(Proc::of(pid).rss_bytes());
    let growth = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "{PEERS} half-open peers of {} MiB each: closed after {took:.2?} (stall timeout \
         {STALL:?}); server RSS {:.1} MiB -> peak {:.1} MiB (growth {:.1} MiB)",
        REQUEST as u64 / MIB,
        rss_before as f64 / MIB as f64,
        rss_peak as f64 / MIB as f64,
        growth as f64 / MIB as f64
    );
    assert_eq!(
        left,
        fds_at_start,
        "{} half-open peers still connected after {took:?} (stall timeout {STALL:?}); stderr: {}",
        left.saturating_sub(fds_at_start),
        demo.stderr.text()
    );
    assert!(
        took >= STALL,
        "closed after {took:?}, before the stall timeout"
    );
    // Per connection the server holds at most its bounded queues (about
    // 1 MiB: the handler's inbox, the CSA's inbox, its write backlog), never
    // the request: 8 MiB each would be 128 MiB.
    assert!(
        growth < PEERS as u64 * 2 * MIB + 16 * MIB,
        "server RSS grew by {:.1} MiB for {PEERS} half-open peers",
        growth as f64 / MIB as f64
    );
    for (_client, writing) in peers {
        writing.join().expect("a writer panicked");
    }
    // And the server goes on.
    echo(&mut warm, b"after them").unwrap();
    demo.assert_alive();
}
