//! `bench snapshot [--connections N] [--runs R]`: what a snapshot of a
//! busy server costs its scheduler (issue 12: 10,000 connections in under
//! 10 ms).
//!
//! Method: the selector demo's echo server (SimpleServer + `Echo`) runs in
//! this process on a Selector scheduler; a child `bench loadgen idle`
//! opens N connections to it (one ping each, then idle). Once a snapshot
//! lists N CSAs, R more are taken with `SchedulerHandle::snapshot`, and
//! for each we report the time the scheduler spent taking it
//! (`Snapshot::took`: the scheduler's thread does nothing else meanwhile)
//! and, separately, the time `introspect::View::new` and `graph.json`
//! take (on the Introspector's step, also on the scheduler's thread, but
//! a step of its own). Medians. Each request hands back the last
//! snapshot for the next to reuse its memory, as the Introspector does;
//! the first, taken into fresh memory, is reported apart. On a loaded machine the wall time `took`
//! includes time the thread waited for a core, so the scheduler thread's
//! CPU time over each request (from the kernel's `schedstat`) is printed
//! beside it, with that wait.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chassis::{ServerOptions, SimpleServer};

use crate::median;

/// The scheduler thread's name, by which its clock is found.
const SCHEDULER_THREAD: &str = "axon-snapshot";

/// One thread's CPU time and run-queue wait, read from the kernel's
/// `schedstat` (nanoseconds, exact): what `took`'s wall time cannot tell
/// apart on a loaded machine.
struct ThreadClock(std::path::PathBuf);

impl ThreadClock {
    /// The thread of this process called `name`, if the kernel says.
    fn find(name: &str) -> Option<ThreadClock> {
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        tasks.flatten().find_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            (comm.trim() == name).then(|| ThreadClock(t.path().join("schedstat")))
        })
    }

    /// (CPU time, time waiting for a core), in nanoseconds.
    fn read(&self) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(&self.0).ok()?;
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
        Some((fields.next()??, fields.next()??))
    }
}

fn options(mut parser: lexopt::Parser) -> Result<(usize, usize), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut n, mut runs) = (10_000, 10);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("connections") => n = crate::at_least_one(&mut parser, "--connections")?,
            Long("runs") => runs = crate::at_least_one(&mut parser, "--runs")?,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((n, runs))
}

pub fn snapshot(parser: lexopt::Parser) -> Result<(), String> {
    let (n, runs) = options(parser).map_err(|e| format!("snapshot: {e}"))?;
    let scheduler = selector::scheduler().map_err(|e| format!("snapshot: {e}"))?;
    let server = SimpleServer::new(
        examples::Echo::new,
        "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        ServerOptions::default(),
    )
    .map_err(|e| format!("snapshot: {e}"))?;
    let addr = server.local_addr();
    scheduler.activate(server).map_err(|e| e.to_string())?;
    let handle = scheduler.handle();
    let running = std::thread::Builder::new()
        .name(SCHEDULER_THREAD.into())
        .spawn(move || scheduler.run())
        .map_err(|e| format!("snapshot: {e}"))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut clients = Command::new(me)
        .args(["loadgen", "idle", "--addr", &addr.to_string(), "--pid"])
        .arg(std::process::id().to_string())
        .args(["--conns", &n.to_string(), "--window", "120"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("snapshot: cannot start the clients: {e}"))?;
    let csas = |s: &axon::Snapshot| s.components.iter().filter(|c| c.kind == "Csa").count();
    let deadline = Instant::now() + Duration::from_secs(120);
    let wait = Duration::from_secs(10);
    let result = loop {
        let Some(s) = handle.snapshot(wait) else {
            break Err("snapshot: the scheduler did not answer".to_string());
        };
        if csas(&s) >= n {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(format!(
                "snapshot: only {} of {n} connections after 120 s",
                csas(&s)
            ));
        }
        if let Ok(Some(status)) = clients.try_wait() {
            break Err(format!("snapshot: the clients exited early: {status}"));
        }
        std::thread::sleep(Duration::from_millis(100)); // a fact with no event
    };
    let mut took = Vec::new();
    let mut cpu = Vec::new();
    let mut waited = Vec::new();
    let mut derive = Vec::new();
    let clock = ThreadClock::find(SCHEDULER_THREAD);
    let mut components = 0;
    if result.is_ok() {
        // As the Introspector does: each request hands back the last
        // snapshot, whose memory the next one reuses.
        let mut last: Option<std::sync::Arc<axon::Snapshot>> = None;
        for _ in 0..=runs {
            let before = clock.as_ref().and_then(ThreadClock::read);
            let asked = match last.take() {
                Some(old) => handle.snapshot_reusing(old, wait),
                None => handle.snapshot(wait),
            };
            let Some(s) = asked else {
                break;
            };
            let after = clock.as_ref().and_then(ThreadClock::read);
            if let (Some(b), Some(a)) = (before, after) {
                cpu.push((a.0 - b.0) as f64 / 1e6);
                waited.push((a.1 - b.1) as f64 / 1e6);
            }
            components = s.components.len();
            took.push(s.took.as_secs_f64() * 1e3);
            let started = Instant::now();
            let view = introspect::View::new(s, &[]);
            let json = view.graph.to_json();
            derive.push(started.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(json);
            last = Some(view.snapshot.clone());
        }
    }
    let _ = clients.kill();
    let _ = clients.wait();
    handle.stop();
    let _ = running.join();
    result?;
    if took.len() < 2 {
        return Err("snapshot: the scheduler did not answer".into());
    }
    // The first is taken into fresh memory; the others reuse the last.
    let first = took.remove(0);
    let first_cpu = (!cpu.is_empty()).then(|| cpu.remove(0));
    if !waited.is_empty() {
        waited.remove(0);
    }
    println!(
        "Snapshot of {n} connections ({components} components), {} runs (medians)",
        took.len()
    );
    println!("  scheduler time taking it:      {:>8.2} ms", median(took));
    if !cpu.is_empty() {
        println!(
            "  scheduler thread CPU per ask:  {:>8.2} ms (waited for a core {:.2} ms)",
            median(cpu),
            median(waited)
        );
    }
    match first_cpu {
        Some(c) => println!("  the first, into fresh memory:  {first:>8.2} ms ({c:.2} ms CPU)"),
        None => println!("  the first, into fresh memory:  {first:>8.2} ms"),
    }
    println!(
        "  View::new + graph.json:        {:>8.2} ms",
        median(derive)
    );
    Ok(())
}
