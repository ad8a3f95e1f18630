//! Benchmarks for the Kamaelia-in-Rust workspace. See `bench/README.md`.
//!
//! - `cargo run --release -p bench -- compare [--quick] [--runs R]`: echo
//!   servers (raw mio, tokio, ours) under our load generator.
//! - `cargo run --release -p bench -- hop [--messages N] [--runs R]`: the
//!   Axon message hop against bare crossbeam-channel operations.
//! - `bench loadgen …`: one scenario against one server (used by
//!   `compare`).
//! - `bench soak [--quick] [--seconds N] [--clients M]`: mixed clients
//!   against `selector-demo`, every byte checked, no descriptor leaks.

mod compare;
mod loadgen;
mod soak;

use std::time::{Duration, Instant};

use axon::{Boxes, Component, Control, Cx, Handle, Inbox, Outbox, Pipeline, Scheduler, Step};

/// Sends `0..n` out of `outbox`, pausing whenever the consumer's inbox is
/// full (A5) until space frees (A6).
/// With `typed`, it sends through an [`Outbox`] found once instead of by
/// name on every send.
struct Producer {
    next: u64,
    end: u64,
    typed: bool,
    outbox: Option<Outbox<u64>>,
}

impl Component for Producer {
    fn boxes(&self) -> Boxes {
        Boxes::standard::<(), u64>()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        if self.typed {
            let me = cx.me().clone();
            let outbox = self
                .outbox
                .get_or_insert_with(|| me.outbox("outbox").expect("declared"));
            while self.next < self.end {
                if outbox.send(self.next).is_err() {
                    return Step::Pause;
                }
                self.next += 1;
            }
        }
        while self.next < self.end {
            if cx.send(self.next, "outbox").is_err() {
                return Step::Pause;
            }
            self.next += 1;
        }
        let _ = cx.send(Control::ProducerFinished, "signal");
        Step::Done
    }
}

/// Takes everything and checks it arrives in order.
struct Consumer {
    expect: u64,
    typed: bool,
    inbox: Option<Inbox<u64>>,
}

impl Component for Consumer {
    fn boxes(&self) -> Boxes {
        Boxes::standard::<u64, ()>()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        if self.typed {
            let me = cx.me().clone();
            let inbox = self
                .inbox
                .get_or_insert_with(|| me.inbox("inbox").expect("declared"));
            while let Some(n) = inbox.recv() {
                assert_eq!(n, self.expect, "message out of order");
                self.expect += 1;
            }
        }
        while let Some(n) = cx.recv::<u64>("inbox") {
            assert_eq!(n, self.expect, "message out of order");
            self.expect += 1;
        }
        if cx.recv::<Control>("control").is_some() {
            return Step::Done;
        }
        Step::Pause
    }
}

const BOX_SIZE: usize = 1024;

/// Messages through Pipeline(Producer, Consumer) on one scheduler thread;
/// `typed`: through `Outbox`/`Inbox` handles rather than names.
fn axon_hop(n: u64, typed: bool) -> Duration {
    let consumer = Handle::new(Consumer {
        expect: 0,
        typed,
        inbox: None,
    });
    consumer.set_inbox_size("inbox", Some(BOX_SIZE)).unwrap();
    let producer = Handle::new(Producer {
        next: 0,
        end: n,
        typed,
        outbox: None,
    });
    let pipeline = Pipeline::new(vec![producer, consumer]).unwrap();
    let scheduler = Scheduler::new();
    scheduler.activate(&pipeline).unwrap();
    let start = Instant::now();
    scheduler.run();
    start.elapsed()
}

/// The same number of bare send+recv pairs through a bounded channel of the
/// same size, in batches as the pipeline does them.
fn crossbeam_bounded(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(BOX_SIZE);
    let start = Instant::now();
    let mut next = 0;
    let mut expect = 0;
    while next < n {
        while next < n && tx.try_send(next).is_ok() {
            next += 1;
        }
        while let Ok(m) = rx.try_recv() {
            assert_eq!(m, expect);
            expect += 1;
        }
    }
    assert_eq!(expect, n);
    start.elapsed()
}

/// Bare send+recv pairs through an unbounded channel.
fn crossbeam_unbounded(n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    let start = Instant::now();
    for i in 0..n {
        tx.send(i).unwrap();
        assert_eq!(rx.recv().unwrap(), i);
    }
    start.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub(crate) fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => match args.get(i + 1).map(|v| v.parse()) {
            Some(Ok(v)) => v,
            _ => {
                eprintln!("{name} needs a number");
                std::process::exit(2);
            }
        },
        None => default,
    }
}

fn hop(args: &[String]) {
    let n: u64 = arg(args, "--messages", 5_000_000);
    let runs: usize = arg(args, "--runs", 5);
    let ns = |d: Duration| d.as_nanos() as f64 / n as f64;
    let (mut a, mut t, mut b, mut u) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // In turn within each run, so drift hits all alike.
        a.push(ns(axon_hop(n, false)));
        t.push(ns(axon_hop(n, true)));
        b.push(ns(crossbeam_bounded(n)));
        u.push(ns(crossbeam_unbounded(n)));
    }
    let ratio = |x: &[f64], y: &[f64]| median(x.iter().zip(y).map(|(x, y)| x / y).collect());
    println!("Axon hop vs bare crossbeam-channel, {n} messages x {runs} runs (medians)");
    println!("{:<56} {:>10} {:>12}", "shape", "ns/msg", "Mmsg/s");
    for (name, v) in [
        ("axon Pipeline(Producer, Consumer), box 1024, by name", &a),
        ("axon the same, through Outbox/Inbox handles", &t),
        ("crossbeam bounded(1024) send+recv", &b),
        ("crossbeam unbounded send+recv", &u),
    ] {
        let m = median(v.clone());
        println!("{name:<56} {m:>10.1} {:>12.2}", 1e3 / m);
    }
    println!(
        "ratio axon by name / crossbeam bounded:   {:.2}x",
        ratio(&a, &b)
    );
    println!(
        "ratio axon by name / crossbeam unbounded: {:.2}x",
        ratio(&a, &u)
    );
    println!(
        "ratio axon handles / crossbeam bounded:   {:.2}x",
        ratio(&t, &b)
    );
    println!(
        "ratio axon handles / crossbeam unbounded: {:.2}x",
        ratio(&t, &u)
    );
}

fn secs(args: &[String], name: &str, default: f64) -> Duration {
    Duration::from_secs_f64(arg(args, name, default))
}

fn run_loadgen(args: &[String]) -> Result<(), String> {
    let addr: std::net::SocketAddr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1))
        .and_then(|a| a.parse().ok())
        .ok_or("--addr HOST:PORT is required")?;
    let pid: u32 = arg(args, "--pid", 0);
    let conns: usize = arg(args, "--conns", 1);
    let warmup = secs(args, "--warmup", 0.3);
    let window = secs(args, "--window", 1.5);
    let outcome = match args.first().map(String::as_str) {
        Some("pingpong") => {
            loadgen::pingpong(addr, pid, conns, arg(args, "--size", 64), warmup, window)
        }
        Some("bulk") => loadgen::bulk(addr, pid, conns, warmup, window),
        Some("churn") => loadgen::churn(addr, pid, conns, warmup, window),
        Some("idle") => loadgen::idle(addr, pid, conns, window),
        other => return Err(format!("unknown scenario {other:?}")),
    }
    .map_err(|e| e.to_string())?;
    println!("RESULT {}", outcome.json());
    Ok(())
}

const USAGE: &str = "usage:
  bench compare [--quick] [--runs R]
  bench hop [--messages N] [--runs R]
  bench soak [--quick] [--seconds N] [--clients M] [--seed S]
  bench loadgen pingpong|bulk|churn|idle --addr HOST:PORT --pid PID [--conns N] [--size B] [--warmup S] [--window S]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("hop") => {
            hop(&args[1..]);
            Ok(())
        }
        Some("compare") => compare::compare(&args[1..]),
        Some("loadgen") => run_loadgen(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(2);
    }
}
