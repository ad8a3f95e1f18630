//! Benchmarks for the Kamaelia-in-Rust workspace. See `bench/README.md`.
//!
//! - `cargo run --release -p kamaelia-bench -- compare [--quick] [--runs R]
//!   [--extra NAME=PATH]… [--only SCENARIO]…`: echo servers (raw mio,
//!   tokio, ours, and any other `selector-demo`-compatible builds) under
//!   our load generator; `--only` picks scenarios, for paired runs of two
//!   builds on one row.
//! - `cargo run --release -p kamaelia-bench -- scale [--quick] [--shards
//!   1,2,4,8] [--runs R] [--server-cores LIST] [--load-threads T]
//!   [--same-conns]`: the same echo servers spread over N threads (our
//!   shards, raw mio with a `SO_REUSEPORT` listener per thread, tokio
//!   multi-thread), each pinned to its own cores, against several load
//!   generators on the others.
//! - `cargo run --release -p kamaelia-bench -- callgrind [--quick]`: the
//!   server's instructions per round trip and per connection, counted by
//!   valgrind's callgrind over a fixed workload (a figure that does not
//!   drift with the machine's speed).
//! - `cargo run --release -p kamaelia-bench -- hop [--messages N] [--runs R]`: the
//!   Axon message hop against bare crossbeam-channel operations.
//! - `bench loadgen …`: one scenario against one server (used by
//!   `compare` and `scale`, and with `--rounds` by `callgrind`).
//! - `bench snapshot [--connections N] [--runs R]`: the scheduler time a
//!   snapshot of N open connections takes (issue 12), and the time to make
//!   a view and `graph.json` of it.
//! - `bench soak [--quick] [--seconds N] [--clients M] [--seed S]`: mixed
//!   clients against `selector-demo`, every byte checked, no descriptor
//!   leaks.
//!
//! Every subcommand parses its options with `lexopt`: `--runs 3` and
//! `--runs=3` both work, and an unknown option is an error naming it.

mod callgrind;
mod compare;
mod loadgen;
mod scale;
mod snapshot;
mod soak;
mod tlsload;

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use axon::{Component, Control, Cx, Handle, Pipeline, Scheduler, Standard, Step};
use lexopt::ValueExt;

/// Sends `0..end` out of `outbox`, pausing whenever the consumer's inbox is
/// full (A5) until space frees (A6).
struct Producer {
    next: u64,
    end: u64,
}

impl Component for Producer {
    type Boxes = Standard<(), u64>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while self.next < self.end {
            // A full inbox gives the message back; `next` is simply sent
            // again once space has freed.
            if cx.outbox.send(self.next).is_err() {
                return Step::Pause;
            }
            self.next += 1;
        }
        let _ = cx.signal.send(Control::ProducerFinished);
        Step::Done
    }
}

/// Takes everything and checks it arrives in order and in full.
struct Consumer {
    expect: u64,
    end: u64,
}

impl Component for Consumer {
    type Boxes = Standard<u64, ()>;

    fn created(&mut self, _me: &Handle, boxes: &Self::Boxes) {
        boxes.inbox.set_limit(Some(BOX_SIZE));
    }

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while let Some(n) = cx.inbox.recv() {
            assert_eq!(n, self.expect, "message out of order");
            self.expect += 1;
        }
        if cx.control.recv().is_some() {
            assert_eq!(self.expect, self.end, "messages lost");
            return Step::Done;
        }
        Step::Pause
    }
}

const BOX_SIZE: usize = 1024;

/// `n` messages through Pipeline(Producer, Consumer) on one scheduler
/// thread, the consumer's inbox bounded to [`BOX_SIZE`].
fn axon_hop(n: u64) -> Duration {
    let pipeline = Pipeline::new(vec![
        Producer { next: 0, end: n }.into(),
        Consumer { expect: 0, end: n }.into(),
    ])
    .expect("Producer's outbox carries what Consumer's inbox takes");
    let scheduler = Scheduler::new();
    scheduler.activate(pipeline).expect("activate the pipeline");
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

/// The value of the option just read, parsed; an error names the option.
pub(crate) fn value<T>(parser: &mut lexopt::Parser, option: &str) -> Result<T, lexopt::Error>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let v = parser.value()?;
    let text = v.string()?;
    text.parse()
        .map_err(|e| format!("{option}: {text:?}: {e}").into())
}

/// A value that must be at least 1.
fn at_least_one<T: FromStr + PartialOrd + From<u8>>(
    parser: &mut lexopt::Parser,
    option: &str,
) -> Result<T, lexopt::Error>
where
    T::Err: std::fmt::Display,
{
    let v: T = value(parser, option)?;
    if v < T::from(1) {
        return Err(format!("{option} must be at least 1").into());
    }
    Ok(v)
}

/// A duration in seconds (fractions allowed).
fn seconds(parser: &mut lexopt::Parser, option: &str) -> Result<Duration, lexopt::Error> {
    let s: f64 = value(parser, option)?;
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("{option}: {s} is not a duration in seconds").into())
}

/// `hop`'s options: messages per run, runs.
fn hop_options(mut parser: lexopt::Parser) -> Result<(u64, usize), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut n, mut runs) = (5_000_000, 5);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("messages") => n = at_least_one(&mut parser, "--messages")?,
            Long("runs") => runs = at_least_one(&mut parser, "--runs")?,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((n, runs))
}

fn hop(parser: lexopt::Parser) -> Result<(), String> {
    let (n, runs) = hop_options(parser).map_err(|e| format!("hop: {e}"))?;
    let ns = |d: Duration| d.as_nanos() as f64 / n as f64;
    let (mut a, mut b, mut u) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // In turn within each run, so drift hits all alike.
        a.push(ns(axon_hop(n)));
        b.push(ns(crossbeam_bounded(n)));
        u.push(ns(crossbeam_unbounded(n)));
    }
    let ratio = |x: &[f64], y: &[f64]| median(x.iter().zip(y).map(|(x, y)| x / y).collect());
    println!("Axon hop vs bare crossbeam-channel, {n} messages x {runs} runs (medians)");
    println!("{:<44} {:>10} {:>12}", "shape", "ns/msg", "Mmsg/s");
    for (name, v) in [
        ("axon Pipeline(Producer, Consumer), box 1024", &a),
        ("crossbeam bounded(1024) send+recv", &b),
        ("crossbeam unbounded send+recv", &u),
    ] {
        let m = median(v.clone());
        println!("{name:<44} {m:>10.1} {:>12.2}", 1e3 / m);
    }
    println!("ratio axon / crossbeam bounded: {:.2}x", ratio(&a, &b));
    println!("ratio axon / crossbeam unbounded: {:.2}x", ratio(&a, &u));
    Ok(())
}

/// `loadgen`'s options.
struct LoadgenOptions {
    scenario: Option<String>,
    addr: Option<SocketAddr>,
    pid: u32,
    conns: usize,
    size: usize,
    warmup: Duration,
    /// `--start-at UNIX_MS`: the window opens at this wall-clock time
    /// (milliseconds since the Unix epoch) instead of `warmup` after the
    /// connections are set up.
    start_at: Option<u64>,
    window: Duration,
    /// A fixed count instead of a timed window: round trips per connection
    /// (pingpong), connections in all (churn), handshakes in all
    /// (tls-handshake), 64 KiB blocks each way per connection (tls-bulk).
    rounds: Option<u64>,
    /// `--ca PATH`: the CA the TLS scenarios trust.
    ca: Option<std::path::PathBuf>,
    /// `--resume`: `tls-handshake` resumes sessions.
    resume: bool,
}

fn loadgen_options(mut parser: lexopt::Parser) -> Result<LoadgenOptions, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = LoadgenOptions {
        scenario: None,
        addr: None,
        pid: 0,
        conns: 1,
        size: 64,
        warmup: Duration::from_millis(300),
        start_at: None,
        window: Duration::from_millis(1500),
        rounds: None,
        ca: None,
        resume: false,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) if o.scenario.is_none() => o.scenario = Some(v.string()?),
            Long("addr") => o.addr = Some(value(&mut parser, "--addr")?),
            Long("pid") => o.pid = value(&mut parser, "--pid")?,
            Long("conns") => o.conns = at_least_one(&mut parser, "--conns")?,
            Long("size") => o.size = at_least_one(&mut parser, "--size")?,
            Long("warmup") => o.warmup = seconds(&mut parser, "--warmup")?,
            Long("start-at") => o.start_at = Some(value(&mut parser, "--start-at")?),
            Long("window") => o.window = seconds(&mut parser, "--window")?,
            Long("rounds") => o.rounds = Some(at_least_one(&mut parser, "--rounds")?),
            Long("ca") => o.ca = Some(parser.value()?.into()),
            Long("resume") => o.resume = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

fn run_loadgen(parser: lexopt::Parser) -> Result<(), String> {
    let o = loadgen_options(parser).map_err(|e| format!("loadgen: {e}"))?;
    let (pid, conns, window) = (o.pid, o.conns, o.window);
    let warmup = match o.start_at {
        Some(ms) => loadgen::Start::At(std::time::UNIX_EPOCH + Duration::from_millis(ms)),
        None => loadgen::Start::After(o.warmup),
    };
    let addr = o.addr.ok_or("loadgen: --addr HOST:PORT is required")?;
    if o.scenario.as_deref().is_some_and(|s| s.starts_with("tls-")) {
        let ca =
            o.ca.as_deref()
                .ok_or("loadgen: TLS scenarios need --ca PATH")?;
        let run = match o.rounds {
            Some(n) => tlsload::Run::Fixed(n),
            None => tlsload::Run::Timed {
                pid,
                warmup,
                window,
            },
        };
        let outcome = match o.scenario.as_deref() {
            Some("tls-handshake") => tlsload::handshake(addr, ca, conns, o.resume, run),
            Some("tls-bulk") => tlsload::bulk(addr, ca, conns, run),
            Some(_) if o.rounds.is_some() => {
                return Err("loadgen: --rounds is for tls-handshake and tls-bulk".into())
            }
            Some("tls-pingpong") => tlsload::pingpong(addr, ca, pid, conns, o.size, warmup, window),
            Some("tls-idle") if pid == 0 => return Err("loadgen: tls-idle needs --pid".into()),
            Some("tls-idle") => tlsload::idle(addr, ca, pid, conns, window),
            other => return Err(format!("loadgen: unknown scenario {other:?}")),
        }
        .map_err(|e| e.to_string())?;
        println!("RESULT {}", outcome.json());
        return Ok(());
    }
    let outcome = match (o.scenario.as_deref(), o.rounds) {
        (Some("pingpong"), Some(rounds)) => loadgen::pingpong_fixed(addr, conns, o.size, rounds),
        (Some("churn"), Some(total)) => loadgen::churn_fixed(addr, conns, total),
        (_, Some(_)) => return Err("loadgen: --rounds is for pingpong and churn".into()),
        (Some("pingpong"), None) => loadgen::pingpong(addr, pid, conns, o.size, warmup, window),
        (Some("bulk"), None) => loadgen::bulk(addr, pid, conns, warmup, window),
        (Some("churn"), None) => loadgen::churn(addr, pid, conns, warmup, window),
        (Some("idle"), None) if pid == 0 => return Err("loadgen: idle needs --pid".into()),
        (Some("idle"), None) => loadgen::idle(addr, pid, conns, window),
        (other, None) => return Err(format!("loadgen: unknown scenario {other:?}")),
    }
    .map_err(|e| e.to_string())?;
    println!("RESULT {}", outcome.json());
    Ok(())
}

const USAGE: &str = "usage:
  bench compare [--quick] [--runs R] [--extra NAME=PATH]... [--tls | --no-tls] [--only SCENARIO]...
  bench callgrind [--quick]
  bench hop [--messages N] [--runs R]
  bench soak [--quick] [--seconds N] [--clients M] [--seed S]
  bench scale [--quick] [--shards 1,2,4,8] [--runs R] [--server-cores LIST] [--load-threads T] [--same-conns]
  bench snapshot [--connections N] [--runs R]
  bench loadgen pingpong|bulk|churn|idle --addr HOST:PORT [--pid PID] [--conns N] [--size B] [--warmup S | --start-at UNIX_MS] [--window S] [--rounds N]
  bench loadgen tls-handshake|tls-pingpong|tls-bulk|tls-idle --ca PATH [--resume] --addr HOST:PORT [--pid PID] [--conns N] [--size B] [--warmup S] [--window S] [--rounds N]";

fn main() {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next() {
        Ok(Some(Value(v))) => v.string().map_err(|e| e.to_string()),
        Ok(Some(Short('h') | Long("help"))) => {
            println!("{USAGE}");
            return;
        }
        Ok(Some(arg)) => Err(format!("{}\n{USAGE}", arg.unexpected())),
        Ok(None) => Err(USAGE.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let result = command.and_then(|c| match c.as_str() {
        "hop" => hop(parser),
        "compare" => compare::compare(parser),
        "scale" => scale::scale(parser),
        "callgrind" => callgrind::callgrind(parser),
        "loadgen" => run_loadgen(parser),
        "soak" => soak::soak(parser),
        "snapshot" => snapshot::snapshot(parser),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    });
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(2);
    }
}
