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
//! a step of its own). Medians.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chassis::{ServerOptions, SimpleServer};

use crate::median;

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
    let running = std::thread::spawn(move || scheduler.run());
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
    let mut derive = Vec::new();
    let mut components = 0;
    if result.is_ok() {
        for _ in 0..runs {
            let Some(s) = handle.snapshot(wait) else {
                break;
            };
            components = s.components.len();
            took.push(s.took.as_secs_f64() * 1e3);
            let started = Instant::now();
            let view = introspect::View::new(s, &[]);
            let json = view.graph.to_json();
            derive.push(started.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(json);
        }
    }
    let _ = clients.kill();
    let _ = clients.wait();
    handle.stop();
    let _ = running.join();
    result?;
    if took.is_empty() {
        return Err("snapshot: the scheduler did not answer".into());
    }
    println!(
        "Snapshot of {n} connections ({components} components), {} runs (medians)",
        took.len()
    );
    println!("  scheduler time taking it:      {:>8.2} ms", median(took));
    println!(
        "  View::new + graph.json:        {:>8.2} ms",
        median(derive)
    );
    Ok(())
}
