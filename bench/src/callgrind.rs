//! `bench callgrind`: the server's user-space instructions per round trip
//! and per connection, counted by valgrind's callgrind over fixed
//! workloads. Unlike wall-clock figures it does not move with this VM's
//! slow spells, so CI prints it and the README tracks it.
//!
//! Method: each workload runs twice against a fresh `selector-demo
//! --protocol echo` under `valgrind --tool=callgrind` (pinned to core 0
//! when `taskset` exists), the load generator outside valgrind (core 1):
//! once as a control with almost no work and once with the work added.
//! The difference of the two runs' total instruction counts (Ir, every
//! thread of the server, start-up and shut-down included in both)
//! divided by the operations added is the figure. Start-up, the listening
//! socket, connection set-up and tear-down (for ping-pong) and shut-down
//! cancel out.
//!
//! - ping-pong 64 B × 64 connections: the control makes one round trip
//!   on each connection, the work `1 + R` (R = 2,000, or 100 with
//!   `--quick`): instructions per round trip = ΔIr / (64 R).
//! - churn × 16 (connect, echo 64 B, close, at most 16 at a time): the
//!   control makes 16 connections, the work `16 + C` (C = 8,000, or 400
//!   with `--quick`): instructions per connection = ΔIr / C.
//!
//! The same workloads then run against raw mio (`mio-echo`), for
//! reference. Callgrind sees user space only: the system calls, which
//! dominate a loopback round trip, are not in these counts.
//!
//! Over TLS (issue 11; the demo with `--tls-cert`, against `mio-tls-echo`,
//! rustls's own mio example server made competent; certificates as
//! `compare --tls` makes them):
//!
//! - resumed handshake × 64 (`tls-handshake --resume`: connect,
//!   handshake, echo 64 B, close_notify both ways): the control makes one
//!   handshake per slot (each a full one: a slot has nothing to resume
//!   yet), the work `64 + H` (H = 1,000, or 100 with `--quick`), the
//!   extra ones resumed: instructions per resumed handshake = ΔIr / H.
//! - bulk × 8 (`tls-bulk`: 64 KiB blocks each way): the control streams
//!   one block per connection, the work `1 + B` (B = 64, or 8 with
//!   `--quick`): instructions per MB = ΔIr / (8 × B × 64 KiB / 10^6).
//!   Most of them are the cipher's, the same for every server; what
//!   differs is the copying around it.
//!
//! Before the server is stopped (SIGTERM: `selector-demo` drains and exits
//! 0, `mio-echo` dies of it, and callgrind writes its counts either way),
//! its descriptor count must return to what it was before the load, so
//! that closing every connection is part of both runs alike.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::compare::{bin_dir, demo, have_taskset, pinned};

/// The connections of the ping-pong workload.
const PINGPONG_CONNS: usize = 64;
/// The parallel connections of the churn workload.
const CHURN_WORKERS: usize = 16;

/// One fixed load: the load generator's arguments, `--rounds` apart.
struct Load {
    scenario: &'static str,
    conns: usize,
    /// More arguments (the TLS scenarios' `--ca PATH`, `--resume`).
    extra: Vec<String>,
}

/// `callgrind`'s options.
struct Options {
    quick: bool,
}

fn options(mut parser: lexopt::Parser) -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options { quick: false };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("quick") => o.quick = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(o)
}

fn have_valgrind() -> Option<String> {
    let out = Command::new("valgrind").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn fd_count(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

/// A server under callgrind; stopped with SIGTERM, killed if dropped
/// before that.
struct Traced(Child);

impl Drop for Traced {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `load` with `rounds` against a fresh server under callgrind and
/// returns the server's total instruction count.
fn traced_run(
    server: &[&Path],
    me: &Path,
    out_file: &Path,
    load: &Load,
    rounds: u64,
    taskset: bool,
) -> Result<u64, String> {
    let _ = std::fs::remove_file(out_file);
    let mut cmd = pinned(0, Path::new("valgrind"), taskset);
    cmd.args(["--tool=callgrind", "-q"])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(server[0])
        .args(["--port", "0"])
        .args(&server[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "warn");
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start valgrind: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut traced = Traced(child);
    let pid = traced.0.id();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    // `listening on HOST:PORT`, with ` (tls)` after it over TLS.
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| {
            format!(
                "{} under valgrind: first line {line:?}",
                server[0].display()
            )
        })?
        .to_string();
    let fd0 = fd_count(pid).ok_or("cannot read the server's descriptors")?;
    let out = pinned(1, me, taskset)
        .args(["loadgen", load.scenario, "--addr", &addr])
        .args(["--conns", &load.conns.to_string()])
        .args(["--rounds", &rounds.to_string()])
        .args(&load.extra)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{} --rounds {rounds}: load generator failed: {}",
            load.scenario,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // Every connection closed on the server's side too (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    while fd_count(pid).is_some_and(|n| n > fd0) {
        if Instant::now() > deadline {
            return Err(format!(
                "{}: the server kept connections open",
                load.scenario
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err(format!("cannot send SIGTERM to {pid}"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = traced.0.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            return Err("the server did not stop within 20 s of SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // selector-demo exits 0 on SIGTERM; mio-echo dies of it, and
    // valgrind still writes the counts.
    if !status.success() && status.signal() != Some(15) {
        return Err(format!("the server under valgrind exited with {status}"));
    }
    total_ir(out_file)
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn total_ir(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{}: no totals line", path.display()))
}

/// Prints the instruction counts. Fails, saying why, when valgrind is
/// missing.
pub fn callgrind(parser: lexopt::Parser) -> Result<(), String> {
    let opts = options(parser).map_err(|e| format!("callgrind: {e}"))?;
    let version = have_valgrind().ok_or(
        "callgrind: valgrind not found: install it (apt-get install valgrind) to count \
         instructions",
    )?;
    let dir = bin_dir();
    let demo = demo(&dir)?;
    if !dir.join("mio-echo").is_file() {
        return Err("callgrind: mio-echo is not built next to bench (cargo build --release -p kamaelia-bench)".into());
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let taskset = have_taskset();
    let (rounds, conns) = if opts.quick { (100, 400) } else { (2000, 8000) };
    let started = Instant::now();
    let out = |name: &str| -> PathBuf { dir.join(format!("callgrind.{name}.out")) };
    let pingpong = Load {
        scenario: "pingpong",
        conns: PINGPONG_CONNS,
        extra: Vec::new(),
    };
    let churn = Load {
        scenario: "churn",
        conns: CHURN_WORKERS,
        extra: Vec::new(),
    };
    let rts = PINGPONG_CONNS as u64 * rounds;
    let per = |work: u64, control: u64, ops: u64| (work as f64 - control as f64) / ops as f64;
    println!(
        "Server instructions (callgrind Ir, {version}{}); work run minus control run, \
         per operation added",
        if taskset {
            ", server on core 0, load on core 1"
        } else {
            ", unpinned"
        }
    );
    let mio = dir.join("mio-echo");
    let servers: [(&str, Vec<&Path>); 2] = [
        (
            "axon",
            vec![&demo, Path::new("--protocol"), Path::new("echo")],
        ),
        ("mio", vec![&mio]),
    ];
    let mut ours = (0.0, 0.0);
    for (name, server) in &servers {
        let run = |load: &Load, what: &str, n: u64| {
            traced_run(
                server,
                &me,
                &out(&format!("{name}.{what}")),
                load,
                n,
                taskset,
            )
            .map_err(|e| format!("callgrind: {name}: {e}"))
        };
        let pp0 = run(&pingpong, "pingpong-control", 1)?;
        let pp1 = run(&pingpong, "pingpong", 1 + rounds)?;
        let ch0 = run(&churn, "churn-control", CHURN_WORKERS as u64)?;
        let ch1 = run(&churn, "churn", CHURN_WORKERS as u64 + conns)?;
        let (rt, conn) = (per(pp1, pp0, rts), per(ch1, ch0, conns));
        let vs = |x: f64, o: f64| {
            if *name == "axon" {
                String::new()
            } else {
                format!(", axon / {name} {:.1}x", o / x)
            }
        };
        if *name == "axon" {
            ours = (rt, conn);
        }
        println!(
            "  {name:<4} ping-pong 64 B x {PINGPONG_CONNS}: {rt:>7.0} Ir/round trip  \
             ({rts} round trips; Ir {pp1} - {pp0}{})",
            vs(rt, ours.0)
        );
        println!(
            "  {name:<4} churn x {CHURN_WORKERS}:          {conn:>7.0} Ir/connection  \
             ({conns} connections; Ir {ch1} - {ch0}{})",
            vs(conn, ours.1)
        );
    }
    tls(&dir, &demo, &me, taskset, opts.quick)?;
    println!(
        "  ({:.1} s; callgrind files in {})",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// Connections of the resumed-handshake workload.
const HANDSHAKE_SLOTS: usize = 64;
/// Connections of the TLS bulk workload.
const BULK_CONNS: usize = 8;
/// Bytes per `tls-bulk` round, each way, per connection.
const BULK_BLOCK: u64 = 64 * 1024;

/// The TLS workloads (see the module docs), ours then mio + rustls's.
fn tls(dir: &Path, demo: &Path, me: &Path, taskset: bool, quick: bool) -> Result<(), String> {
    let mio_tls = dir.join("mio-tls-echo");
    if !mio_tls.is_file() {
        return Err("callgrind: mio-tls-echo is not built next to bench (cargo build --release -p kamaelia-bench)".into());
    }
    let certs = crate::tlsload::write_certs(&dir.join("bench-tls"))?;
    let ca = certs.ca.display().to_string();
    let (handshakes, blocks) = if quick { (100, 8) } else { (1000, 64) };
    let resumed = Load {
        scenario: "tls-handshake",
        conns: HANDSHAKE_SLOTS,
        extra: vec!["--ca".into(), ca.clone(), "--resume".into()],
    };
    let bulk = Load {
        scenario: "tls-bulk",
        conns: BULK_CONNS,
        extra: vec!["--ca".into(), ca],
    };
    let mb = (BULK_CONNS as u64 * blocks * BULK_BLOCK) as f64 / 1e6;
    let tls_args = [
        Path::new("--tls-cert"),
        certs.cert.as_path(),
        Path::new("--tls-key"),
        certs.key.as_path(),
    ];
    let mut ours_args = vec![demo, Path::new("--protocol"), Path::new("echo")];
    ours_args.extend(tls_args);
    let mut mio_args = vec![mio_tls.as_path()];
    mio_args.extend(tls_args);
    let out = |name: &str| -> PathBuf { dir.join(format!("callgrind.{name}.out")) };
    let mut ours = (0.0, 0.0);
    for (name, server) in [("axon", ours_args), ("mio-tls", mio_args)] {
        let run = |load: &Load, what: &str, n: u64| {
            traced_run(
                &server,
                me,
                &out(&format!("{name}.{what}")),
                load,
                n,
                taskset,
            )
            .map_err(|e| format!("callgrind: {name}: {e}"))
        };
        let hs0 = run(&resumed, "tls-resumed-control", HANDSHAKE_SLOTS as u64)?;
        let hs1 = run(&resumed, "tls-resumed", HANDSHAKE_SLOTS as u64 + handshakes)?;
        let bk0 = run(&bulk, "tls-bulk-control", 1)?;
        let bk1 = run(&bulk, "tls-bulk", 1 + blocks)?;
        let hs = (hs1 as f64 - hs0 as f64) / handshakes as f64;
        let per_mb = (bk1 as f64 - bk0 as f64) / mb;
        let vs = |x: f64, o: f64| {
            if name == "axon" {
                String::new()
            } else {
                format!(", axon / {name} {:.3}x", o / x)
            }
        };
        if name == "axon" {
            ours = (hs, per_mb);
        }
        println!(
            "  {name:<7} TLS resumed handshake x {HANDSHAKE_SLOTS}: {hs:>9.0} Ir/handshake  \
             ({handshakes} handshakes; Ir {hs1} - {hs0}{})",
            vs(hs, ours.0)
        );
        println!(
            "  {name:<7} TLS bulk x {BULK_CONNS}:                {per_mb:>9.0} Ir/MB  \
             ({mb:.1} MB each way; Ir {bk1} - {bk0}{})",
            vs(per_mb, ours.1)
        );
    }
    Ok(())
}
